#include "engine/missing_gmm_model.hpp"

#include <algorithm>

#include "core/m_step.hpp"
#include "core/prepared_params.hpp"
#include "init/initialize.hpp"

namespace cuem::engine {

Model MissingDataGaussianMixtureEM::initialize(std::uint64_t seed, std::vector<std::string>* notices) {
  return cuem::initialize(filled_, filled_view_, o_, seed, notices, &shared_);
}

SufficientStats MissingDataGaussianMixtureEM::e_step(const Model& m) {
  SufficientStats s = incomplete_.estep(m);
  if (!complete_) return s;
  SufficientStats c = complete_->gaussian_estep(prepare(m));
  c.merge(s);
  return c;
}

Model MissingDataGaussianMixtureEM::m_step(const SufficientStats& s) const { return cuem::m_step(s, o_.reg_covar); }

double MissingDataGaussianMixtureEM::unit_roundoff() const noexcept {
  return std::max(incomplete_.unit_roundoff(), complete_ ? complete_->unit_roundoff() : 0.0);
}

}  // namespace cuem::engine
