#pragma once
// The starting model of one EM run (scikit-learn's _initialize_parameters).
#include <cstdint>
#include <string>
#include <vector>

#include "core/backend.hpp"
#include "cuem/data_view.hpp"
#include "cuem/model.hpp"
#include "cuem/options.hpp"

namespace cuem {

/// Responsibilities from the init method, then one M-step from them; user-given weights,
/// means and precisions replace the derived ones. `seed` is this restart's seed.
/// The k-means methods run their per-point work on `backend` (the fit's); 'kmeans' and
/// 'random' their two starting statistics passes too where the backend takes them
/// (Backend::partition_stats, Backend::random_stats; the CPU backend leaves them to the
/// host code here). The point-seeded starts ('k-means++', 'random_from_data') need no
/// pass over the data. The overload without a backend uses the CPU for everything.
/// `notices`, when given, receives what a user should hear about the start (k-means
/// found fewer distinct clusters than components, as scikit-learn warns).
Model initialize(Backend& backend, DataView X, const FitOptions& options, std::uint64_t seed,
                 std::vector<std::string>* notices = nullptr);
Model initialize(DataView X, const FitOptions& options, std::uint64_t seed);

}  // namespace cuem
