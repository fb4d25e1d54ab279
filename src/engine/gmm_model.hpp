#pragma once
// The Gaussian mixture as an engine model (src/engine/batch_driver.hpp): parameters are a
// cuem::Model, statistics SufficientStats; the E-step is the primitives' fused Gaussian
// pass over all of the data, the M-step core/m_step.cpp's.
#include <cstddef>
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
      : prims_(prims), X_(X), o_(o), shared_(shared), begin_(0), end_(0) {}
  /// The model over rows [begin, end) of the data `prims` placed (which must offer
  /// estep_over_rows()): an incremental block or out-of-core chunk with no primitives of its
  /// own. It runs E-steps only; the whole data's model initialises.
  GaussianMixtureEM(Primitives& prims, DataView X, const FitOptions& o, KMeansShared& shared, std::size_t begin,
                    std::size_t end)
      : prims_(prims), X_(X), o_(o), shared_(shared), begin_(begin), end_(end) {}

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
  std::size_t begin_, end_;  ///< a row range of prims_'s data when end_ > 0
};

}  // namespace cuem::engine
