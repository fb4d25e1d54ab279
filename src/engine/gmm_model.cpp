#include "engine/gmm_model.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/incremental_bound.hpp"
#include "core/m_step.hpp"
#include "core/prepared_params.hpp"
#include "cuem/errors.hpp"
#include "init/initialize.hpp"

namespace cuem::engine {
namespace {

// The features whose spread the fitted model cannot resolve because reg_covar swamps it:
// 0 < variance < reg_covar / 2. A feature's variance follows from the model alone (the
// law of total variance holds exactly at an M-step: the weighted within-component
// variances less reg_covar, plus the spread of the means), so no pass over the data is
// needed. Constant features (variance 0 up to rounding) are what reg_covar is for and are
// not named. Spherical models keep no per-feature variance and are not checked.
std::string swamped_features_notice(const Model& m, double reg_covar) {
  if (reg_covar <= 0 || m.covariance_type == CovarianceType::spherical) return "";
  const std::size_t K = static_cast<std::size_t>(m.n_components), D = static_cast<std::size_t>(m.n_features);
  std::vector<std::size_t> named;
  double worst = 0.0;
  for (std::size_t j = 0; j < D; ++j) {
    double centre = 0.0;
    for (std::size_t k = 0; k < K; ++k) centre += m.weights[k] * m.means[k * D + j];
    double variance = 0.0;
    for (std::size_t k = 0; k < K; ++k) {
      double within = 0.0;
      switch (m.covariance_type) {
        case CovarianceType::full: within = m.covariances[(k * D + j) * D + j]; break;
        case CovarianceType::tied: within = m.covariances[j * D + j]; break;
        default: within = m.covariances[k * D + j]; break;
      }
      const double gap = m.means[k * D + j] - centre;
      variance += m.weights[k] * ((within - reg_covar) + gap * gap);
    }
    const double rounding = 1e-10 * std::max(std::abs(centre), std::sqrt(reg_covar));
    if (variance > rounding * rounding && variance < 0.5 * reg_covar) {
      named.push_back(j);
      worst = worst == 0.0 ? variance : std::min(worst, variance);
    }
  }
  if (named.empty()) return "";
  std::string list;
  for (std::size_t i = 0; i < named.size() && i < 8; ++i) list += (i ? ", " : "") + std::to_string(named[i]);
  if (named.size() > 8) list += ", ... (" + std::to_string(named.size()) + " in all)";
  char detail[160];
  std::snprintf(detail, sizeof detail, "variance down to %.3g, below reg_covar = %.3g", worst, reg_covar);
  const bool one = named.size() == 1;
  return std::string(one ? "feature " : "features ") + list + " (0-based) " + (one ? "varies" : "vary") +
         " too little for the fit (" + detail + ", which then dominates the covariances): the components cannot be "
         "told apart along " + (one ? "it" : "them") + "; standardise the data or lower reg_covar";
}

}  // namespace

Model GaussianMixtureEM::initialize(std::uint64_t seed, std::vector<std::string>* notices) {
  if (end_ > 0) throw Error("internal: a model over a row range does not initialise");
  return cuem::initialize(prims_, X_, o_, seed, notices, &shared_);
}

SufficientStats GaussianMixtureEM::e_step(const Model& m) {
  if (end_ > 0) return prims_.gaussian_estep_rows(prepare(m), begin_, end_);
  return prims_.gaussian_estep(prepare(m));
}

double GaussianMixtureEM::complete_log_likelihood(const SufficientStats& s, const Model& m) const {
  return expected_complete_log_likelihood(s, m);
}

Model GaussianMixtureEM::m_step(const SufficientStats& s) const { return cuem::m_step(s, o_.reg_covar); }

std::string GaussianMixtureEM::final_notice(const Model& m) const { return swamped_features_notice(m, o_.reg_covar); }

}  // namespace cuem::engine
