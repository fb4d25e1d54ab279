#pragma once
// The Gaussian mixture as an engine model (src/engine/batch_driver.hpp): parameters are a
// cuem::Model, statistics SufficientStats; the E-step is the primitives' fused Gaussian
// pass over all of the data, the M-step core/m_step.cpp's.
#include <cstdint>
#include <string>
#include <vector>

#include "core/sufficient_stats.hpp"
#include "cuem/data_view.hpp"
#include "cuem/model.hpp"
#include "cuem/options.hpp"
#include "engine/primitives.hpp"
#include "init/kmeans.hpp"

namespace cuem::engine {

class GaussianMixtureEM {
 public:
  using Params = Model;
  using Stats = SufficientStats;

  /// X, o and shared must outlive the model; prims holds the placed data, `shared` what
  /// k-means learns once about them.
  GaussianMixtureEM(Primitives& prims, DataView X, const FitOptions& o, KMeansShared& shared)
      : prims_(prims), X_(X), o_(o), shared_(shared) {}

  /// The start of one restart (src/init/initialize.hpp), user-given parameters applied.
  Model initialize(std::uint64_t seed, std::vector<std::string>* notices);
  SufficientStats e_step(const Model& m);
  Model m_step(const SufficientStats& s) const;
  double unit_roundoff() const noexcept { return prims_.unit_roundoff(); }
  /// Q(s, m) for incremental EM's free energy (src/core/incremental_bound.hpp).
  double complete_log_likelihood(const SufficientStats& s, const Model& m) const;

  /// What a user should hear about a fitted model (features reg_covar swamps), or "".
  std::string final_notice(const Model& m) const;

 private:
  Primitives& prims_;
  DataView X_;
  const FitOptions& o_;
  KMeansShared& shared_;
};

}  // namespace cuem::engine
