#include "engine/hmm_parameter_map.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "cuem/errors.hpp"
#include "engine/gmm_parameter_map.hpp"
#include "engine/hmm_model.hpp"

namespace cuem::engine {
namespace {

double floored_log(double p) { return std::log(std::max(p, std::numeric_limits<double>::min())); }

// Row softmax of logs[0..n), with the shape's exact zeros kept at zero.
void softmax_row(const double* logs, const double* shape, std::size_t n, double* out) {
  double top = -std::numeric_limits<double>::infinity();
  for (std::size_t j = 0; j < n; ++j)
    if (shape[j] != 0.0) top = std::max(top, logs[j]);
  double sum = 0.0;
  for (std::size_t j = 0; j < n; ++j) sum += out[j] = shape[j] != 0.0 ? std::exp(logs[j] - top) : 0.0;
  for (std::size_t j = 0; j < n; ++j) out[j] /= sum;
}

bool has(const std::string& letters, char c) { return letters.find(c) != std::string::npos; }

}  // namespace

std::vector<double> hmm_to_vector(const HmmModel& m) {
  const int K = m.n_components();
  std::vector<double> v;
  for (double p : m.startprob) v.push_back(floored_log(p));
  for (double p : m.transmat) v.push_back(floored_log(p));
  const std::vector<double> g = gmm_to_vector(m.emissions);
  v.insert(v.end(), g.begin() + (K - 1), g.end());
  return v;
}

HmmModel hmm_from_vector(const std::vector<double>& v, const HmmModel& shape, const std::string& params) {
  const int K = shape.n_components(), D = shape.n_features();
  const std::size_t k = static_cast<std::size_t>(K);
  const std::size_t n_gauss = gmm_vector_size(shape.covariance_type(), K, D) - (k - 1);
  if (v.size() != k + k * k + n_gauss)
    throw InvalidArgument("an HMM vector of length " + std::to_string(v.size()) + " does not fit its shape (" +
                          std::to_string(k + k * k + n_gauss) + ")");
  HmmModel m = shape;
  if (has(params, 's')) softmax_row(v.data(), shape.startprob.data(), k, m.startprob.data());
  if (has(params, 't'))
    for (std::size_t i = 0; i < k; ++i)
      softmax_row(v.data() + k + i * k, shape.transmat.data() + i * k, k, m.transmat.data() + i * k);
  if (has(params, 'm') || has(params, 'c')) {
    std::vector<double> g(k - 1, 0.0);  // the emission model's equal weights' log-ratios
    g.insert(g.end(), v.begin() + static_cast<std::ptrdiff_t>(k + k * k), v.end());
    Model e = gmm_from_vector(g, shape.covariance_type(), K, D);
    if (has(params, 'm')) m.emissions.means = std::move(e.means);
    if (has(params, 'c')) {
      m.emissions.covariances = std::move(e.covariances);
      m.emissions.precisions_cholesky = std::move(e.precisions_cholesky);
    }
  }
  return m;
}

std::vector<double> to_unconstrained(const GaussianHmmEM&, const HmmModel& m) { return hmm_to_vector(m); }

HmmModel from_unconstrained(const GaussianHmmEM& model, const std::vector<double>& v, const HmmModel& shape) {
  return hmm_from_vector(v, shape, model.options().params);
}

}  // namespace cuem::engine
