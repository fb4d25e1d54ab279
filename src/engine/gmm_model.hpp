#pragma once
// The Gaussian mixture as an engine model (src/engine/batch_driver.hpp): parameters are a
// cuem::Model, statistics SufficientStats; the E-step is the primitives' fused Gaussian
// pass over all of the data, the M-step core/m_step.cpp's.
#include <cstdint>
#include <string>
#include <vector>

#include "core/backend.hpp"
#include "core/sufficient_stats.hpp"
#include "cuem/data_view.hpp"
#include "cuem/model.hpp"
#include "cuem/options.hpp"

namespace cuem::engine {

class GaussianMixtureEM {
 public:
  using Params = Model;
  using Stats = SufficientStats;

  /// X and o must outlive the model; prims holds the placed data.
  GaussianMixtureEM(Backend& prims, DataView X, const FitOptions& o) : prims_(prims), X_(X), o_(o) {}

  /// The start of one restart (src/init/initialize.hpp), user-given parameters applied.
  Model initialize(std::uint64_t seed, std::vector<std::string>* notices);
  SufficientStats e_step(const Model& m);
  Model m_step(const SufficientStats& s) const;
  double unit_roundoff() const noexcept { return prims_.unit_roundoff(); }

  /// What a user should hear about a fitted model (features reg_covar swamps), or "".
  std::string final_notice(const Model& m) const;

 private:
  Backend& prims_;
  DataView X_;
  const FitOptions& o_;
};

}  // namespace cuem::engine
