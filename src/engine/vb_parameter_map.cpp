#include "engine/vb_parameter_map.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "cuem/errors.hpp"
#include "engine/gmm_parameter_map.hpp"

namespace cuem::engine {
namespace {

constexpr double kMaxLog = 300.0;

double clamped_exp(double v) { return std::exp(std::clamp(v, -kMaxLog, kMaxLog)); }

// The Gaussian part as a Model the GMM map reads: equal weights (their log-ratios are 0
// and are dropped from the vector).
Model gaussian_part(const BayesianPosterior& q) {
  Model m;
  m.covariance_type = q.covariance_type;
  m.n_components = q.n_components;
  m.n_features = q.n_features;
  m.weights.assign(static_cast<std::size_t>(q.n_components), 1.0 / q.n_components);
  m.means = q.means;
  m.covariances = q.covariances;
  m.precisions_cholesky = q.precisions_cholesky;
  return m;
}

}  // namespace

std::vector<double> vb_to_vector(const BayesianPosterior& q) {
  const double floor_dof = q.n_features - 1.0;
  std::vector<double> v;
  for (double a : q.weight_concentration) v.push_back(std::log(a));
  for (double b : q.mean_precision) v.push_back(std::log(b));
  for (double nu : q.degrees_of_freedom) v.push_back(std::log(nu - floor_dof));
  const std::vector<double> g = gmm_to_vector(gaussian_part(q));
  v.insert(v.end(), g.begin() + (q.n_components - 1), g.end());
  return v;
}

BayesianPosterior vb_from_vector(const std::vector<double>& v, const BayesianPosterior& shape) {
  const int K = shape.n_components, D = shape.n_features;
  const std::size_t n_alpha = shape.weight_concentration.size(), n_beta = shape.mean_precision.size(),
                    n_nu = shape.degrees_of_freedom.size();
  const std::size_t n_gauss = gmm_vector_size(shape.covariance_type, K, D) - static_cast<std::size_t>(K - 1);
  if (v.size() != n_alpha + n_beta + n_nu + n_gauss)
    throw InvalidArgument("a posterior vector of length " + std::to_string(v.size()) + " does not fit its shape (" +
                          std::to_string(n_alpha + n_beta + n_nu + n_gauss) + ")");
  BayesianPosterior q = shape;
  std::size_t i = 0;
  for (double& a : q.weight_concentration) a = clamped_exp(v[i++]);
  for (double& b : q.mean_precision) b = clamped_exp(v[i++]);
  for (double& nu : q.degrees_of_freedom) nu = (D - 1.0) + clamped_exp(v[i++]);
  std::vector<double> g(static_cast<std::size_t>(K - 1), 0.0);  // the equal weights' log-ratios
  g.insert(g.end(), v.begin() + static_cast<std::ptrdiff_t>(i), v.end());
  Model m = gmm_from_vector(g, shape.covariance_type, K, D);
  q.means = std::move(m.means);
  q.covariances = std::move(m.covariances);
  q.precisions_cholesky = std::move(m.precisions_cholesky);
  return q;
}

std::vector<double> to_unconstrained(const VariationalGaussianMixture&, const BayesianPosterior& q) {
  return vb_to_vector(q);
}

BayesianPosterior from_unconstrained(const VariationalGaussianMixture&, const std::vector<double>& v,
                                     const BayesianPosterior& shape) {
  return vb_from_vector(v, shape);
}

}  // namespace cuem::engine
