#pragma once
// The Gaussian mixture on data with missing entries, as an engine model
// (src/engine/model.hpp): parameters and statistics are the complete-data model's; the
// E-step sums the complete rows' ordinary fused pass and the incomplete rows' expected
// statistics (incomplete_rows.hpp); the M-step is unchanged, since the expected
// statistics take the place of the complete ones. The log-likelihood is that of the
// observed entries, which EM never lowers.
#include <cstdint>
#include <string>
#include <vector>

#include "core/sufficient_stats.hpp"
#include "cuem/data_view.hpp"
#include "cuem/model.hpp"
#include "cuem/options.hpp"
#include "engine/gmm_parameter_map.hpp"
#include "engine/incomplete_rows.hpp"
#include "engine/primitives.hpp"
#include "init/kmeans.hpp"

namespace cuem::engine {

class MissingDataGaussianMixtureEM {
 public:
  using Params = Model;
  using Stats = SufficientStats;

  /// `filled` holds every row with information, missing entries replaced by column
  /// means, and is what k-means initialises on (over `filled_view`); `complete` (null
  /// when no row is complete) holds the complete rows alone; `incomplete` sums the rest.
  /// Everything must outlive the model.
  MissingDataGaussianMixtureEM(Primitives& filled, DataView filled_view, Primitives* complete,
                               IncompleteRows& incomplete, const FitOptions& o, KMeansShared& shared)
      : filled_(filled), filled_view_(filled_view), complete_(complete), incomplete_(incomplete), o_(o),
        shared_(shared) {}

  Model initialize(std::uint64_t seed, std::vector<std::string>* notices);
  SufficientStats e_step(const Model& m);
  Model m_step(const SufficientStats& s) const;
  double unit_roundoff() const noexcept;

 private:
  Primitives& filled_;
  DataView filled_view_;
  Primitives* complete_;
  IncompleteRows& incomplete_;
  const FitOptions& o_;
  KMeansShared& shared_;
};

/// The accelerated driver's parameter map: the Gaussian mixture's (gmm_parameter_map.hpp).
inline std::vector<double> to_unconstrained(const MissingDataGaussianMixtureEM&, const Model& params) {
  return gmm_to_vector(params);
}
inline Model from_unconstrained(const MissingDataGaussianMixtureEM&, const std::vector<double>& v, const Model& shape) {
  return gmm_from_vector(v, shape.covariance_type, shape.n_components, shape.n_features);
}

}  // namespace cuem::engine
