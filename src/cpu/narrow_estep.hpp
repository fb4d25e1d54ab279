#pragma once
// The float64 CPU E-step with every vector lane a point (narrow_kernels.hpp for few
// dimensions, wide_kernels.hpp for more) over all rows in one parallel pass.
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

/// Rows per unit of work and of the fixed-order sum (a multiple of both passes' blocks).
constexpr std::size_t kNarrowUnitRows = 16 * kNarrowRows;

/// The statistics about p.shift, the log-likelihood, the points and their weight. `poll`
/// (may be empty) runs on the calling thread between units; what it throws ends the pass
/// and is rethrown.
SufficientStats lanes_estep(DataView X, const NarrowParams& p, WeightView w, const std::function<void()>& poll);

/// Whether lanes_estep serves this shape (narrow_applies or wide_applies).
bool lanes_applies(CovarianceType type, int D) noexcept;

}  // namespace cuem::cpu
