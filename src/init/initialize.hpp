#pragma once
// The starting model of one EM run (scikit-learn's _initialize_parameters).
#include <cstdint>
#include <string>
#include <vector>

#include "cuem/data_view.hpp"
#include "cuem/model.hpp"
#include "cuem/options.hpp"
#include "engine/primitives.hpp"
#include "init/kmeans.hpp"

namespace cuem {

/// Responsibilities from the init method, then one M-step from them; user-given weights,
/// means and precisions replace the derived ones. `seed` is this restart's seed.
/// Every method runs its per-point work on `prims` (the fit's; X is the data they were
/// made for): k-means on the primitives, and 'kmeans' and 'random' their two starting
/// statistics passes through two_pass_stats. The point-seeded starts ('k-means++',
/// 'random_from_data') need no pass over the data. The overload without primitives uses
/// the CPU for everything. With weights placed in `prims`, 'random_from_data' draws among
/// the rows of positive weight. `notices`, when given, receives what a user should hear about
/// the start (k-means found fewer distinct clusters than components, as scikit-learn
/// warns); `shared`, when given, carries what the fit's restarts reuse.
Model initialize(Primitives& prims, DataView X, const FitOptions& options, std::uint64_t seed,
                 std::vector<std::string>* notices = nullptr, KMeansShared* shared = nullptr);
Model initialize(DataView X, const FitOptions& options, std::uint64_t seed);

/// 'random_from_data''s rows: K distinct rows of N drawn uniformly (Floyd's algorithm,
/// rng stream kRandomFromData), with weights among the rows of positive weight only
/// (InvalidArgument when fewer than K have it). Other models' starts draw the same rows.
std::vector<std::size_t> random_from_data_rows(const WeightView& w, std::size_t N, int K, std::uint64_t seed);

}  // namespace cuem
