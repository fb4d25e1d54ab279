#pragma once
// The float64 CPU E-step for narrow data (narrow_kernels.hpp) over all rows in one
// parallel pass.
//
// Determinism: the rows fall into fixed units of kNarrowUnitRows; a unit's statistics
// are summed by one thread, in lanes and then over the lanes in a fixed order, and the
// units' sums are added in unit order. The result depends on neither the thread count
// nor which thread took which unit, so the units are handed out dynamically: a thread
// that the system stalls holds up one unit, not a share of every chunk.
#include <cstddef>
#include <functional>

#include "core/sufficient_stats.hpp"
#include "cpu/narrow_kernels.hpp"
#include "cuem/data_view.hpp"

namespace cuem::cpu {

/// Rows per unit of work and of the fixed-order sum.
constexpr std::size_t kNarrowUnitRows = 16 * kNarrowRows;

/// The statistics about p.shift, the log-likelihood, the points and their weight. `poll`
/// (may be empty) runs on the calling thread between units; what it throws ends the pass
/// and is rethrown.
SufficientStats narrow_estep(DataView X, const NarrowParams& p, WeightView w, const std::function<void()>& poll);

}  // namespace cuem::cpu
