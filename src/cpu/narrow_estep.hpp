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
#include <vector>

#include "core/sufficient_stats.hpp"
#include "cpu/narrow_kernels.hpp"
#include "cuem/data_view.hpp"

namespace cuem::cpu {

/// Rows per unit of work and of the fixed-order sum (a multiple of both passes' blocks).
constexpr std::size_t kNarrowUnitRows = 16 * kNarrowRows;

/// Weights g = w r at most this count as negligible in the E-step (CpuPrimitives): the
/// wide pass leaves out their statistics (wide_kernels.hpp says which).
constexpr double kNegligibleWeight = 1e-20;

/// The largest weight the skip may leave out of a component, relative to the weight kept.
constexpr double kSkippedTolerance = 1e-13;

/// The statistics about p.shift, the log-likelihood, the points and their weight. `poll`
/// (may be empty) runs on the calling thread between units; what it throws ends the pass
/// and is rethrown.
///
/// Negligible weights (p.negligible > 0, the wide pass): the statistics leave out weights
/// at most p.negligible (wide_kernels.hpp says which exactly). If the weight m_k
/// so left out exceeds `tolerance` times the weight N_k kept, for any component (a dying
/// component: N_k itself tiny), the pass runs again with nothing left out. So the kept
/// statistics are those of weights that differ from the true ones by m_k <= tol N_k in all:
/// N_k is low by at most that fraction; the mean moves by m_k / (N_k + m_k) times the
/// distance from it to the average of the points left out, so by at most
/// tol * max |x_i - mu_k| over them; the covariance, to first order in tol, by at most
/// tol (|Sigma_k| + max |x_i - mu_k|^2) in each entry. What is left out depends only on the
/// values, so the result is still the same for any thread count. `skipped` (may be null)
/// receives the K weights left out of the result (zeros after a rerun).
SufficientStats lanes_estep(DataView X, const NarrowParams& p, WeightView w, const std::function<void()>& poll,
                            double tolerance = kSkippedTolerance, std::vector<double>* skipped = nullptr);

/// The statistics about `shift` (K x D) of the rows of X with given weights g (n_rows x K,
/// row-major; times w where w is given), by the narrow pass's lanes and units (the same
/// result for any thread count); log_likelihood 0. For the shapes narrow_applies serves.
SufficientStats lanes_given_stats(DataView X, CovarianceType type, int K, const double* shift, const double* g,
                                  WeightView w, const std::function<void()>& poll);

/// Whether lanes_estep serves this shape (narrow_applies or wide_applies).
bool lanes_applies(CovarianceType type, int D) noexcept;

}  // namespace cuem::cpu
