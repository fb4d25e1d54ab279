#pragma once
// The missing-data Gaussian mixture (engine/missing_gmm_model.hpp) over a range of rows of
// the caller's data, as an engine model with its layout and primitives built inside: the
// whole data for batch EM, one block each for incremental EM, one chunk each out of
// core. Out of core (`keep` false) the layout (a copy of the range's rows) and its
// primitives are built for each E-step and dropped after it, so that one chunk's copy is
// held at a time; otherwise they are built once.
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/sufficient_stats.hpp"
#include "cuem/data_view.hpp"
#include "cuem/missing.hpp"
#include "cuem/model.hpp"
#include "cuem/options.hpp"
#include "engine/gmm_parameter_map.hpp"
#include "engine/primitives.hpp"

namespace cuem {

class MissingRangeModel {
 public:
  using Params = Model;
  using Stats = SufficientStats;

  /// Rows [begin, begin + X.n_rows) of the caller's data are X (and w); `require_columns`
  /// as make_missing_layout's (the whole data: a column never observed is an error; a
  /// block or chunk may lack one). Builds the layout once (also when not kept: for the
  /// summary, the description and the unit roundoff). X, w, o and context must outlive it.
  MissingRangeModel(DataView X, WeightView w, std::size_t begin, const FitOptions& o, const PrimitivesRequest& request,
                    std::shared_ptr<cuda::DeviceContext>* context, bool keep, bool require_columns);
  ~MissingRangeModel();
  MissingRangeModel(const MissingRangeModel&) = delete;
  MissingRangeModel& operator=(const MissingRangeModel&) = delete;

  Model initialize(std::uint64_t seed, std::vector<std::string>* notices);
  SufficientStats e_step(const Model& m);
  Model m_step(const SufficientStats& s) const;
  double unit_roundoff() const noexcept { return unit_roundoff_; }
  /// Q(s, theta) of the expected complete-data statistics (incremental EM's free energy).
  double complete_log_likelihood(const SufficientStats& s, const Model& m) const;

  /// The range's missing entries (row numbers counted from the whole data's first row).
  const MissingSummary& summary() const noexcept { return summary_; }
  /// The range's distinct sets of missing columns (to count patterns over chunks).
  const std::set<std::vector<int>>& pattern_sets() const noexcept { return patterns_; }
  /// observed_columns()[d]: some row of the range observes column d (out of core, a column
  /// no chunk observes is refused as the whole data's layout refuses it).
  const std::vector<bool>& observed_columns() const noexcept { return observed_; }
  /// Rows with an observed entry (and a positive weight, with weights).
  std::size_t informative_rows() const noexcept { return informative_; }
  const std::string& notice() const noexcept { return notice_; }
  const std::string& description() const noexcept { return description_; }

 private:
  struct Placed;
  std::unique_ptr<Placed> place(std::string* notice) const;

  DataView X_;
  WeightView w_;
  const FitOptions& o_;
  PrimitivesRequest request_;
  std::shared_ptr<cuda::DeviceContext>* context_;
  bool require_columns_;
  std::unique_ptr<Placed> kept_;
  MissingSummary summary_;
  std::set<std::vector<int>> patterns_;
  std::vector<bool> observed_;
  std::size_t informative_ = 0;
  double unit_roundoff_ = 0x1p-53;
  std::string notice_, description_;
};

/// The Gaussian mixtures' parameter map (SQUAREM).
inline std::vector<double> to_unconstrained(const MissingRangeModel&, const Model& params) {
  return engine::gmm_to_vector(params);
}
inline Model from_unconstrained(const MissingRangeModel&, const std::vector<double>& v, const Model& shape) {
  return engine::gmm_from_vector(v, shape.covariance_type, shape.n_components, shape.n_features);
}

}  // namespace cuem
