#pragma once
// The E-step and its statistics in one pass for narrow data (few dimensions), where the
// general path's cost is bookkeeping per (point, component) pair: a responsibilities
// matrix written and re-read by column, lists of non-zero weights, rows of 8 lanes of
// which D are used. Here every vector lane is a point through both halves: log joints,
// the normalisation, and the statistics as per-lane partial sums, so nothing per pair
// leaves registers and L1.
//
// Compiled once per instruction-set level like cpu_kernels.hpp (simd.hpp).
#include <cstddef>

#include "cuem/covariance_type.hpp"

namespace cuem::cpu {

/// Rows per narrow block: the transposed buffer holds D x kNarrowRows doubles.
constexpr int kNarrowRows = 256;

/// Whether the narrow pass serves this shape: full and tied up to 4 dimensions, diag and
/// spherical up to 8.
constexpr bool narrow_applies(CovarianceType type, int D) noexcept {
  return D >= 1 && D <= ((type == CovarianceType::full || type == CovarianceType::tied) ? 4 : 8);
}

/// Statistics per component in the narrow layout: N_k, S1_k (D), then S2_k: the upper
/// triangle row by row for full and tied (D (D + 1) / 2), the diagonal otherwise (D).
constexpr int narrow_stats_per_component(CovarianceType type, int D) noexcept {
  return 1 + D + ((type == CovarianceType::full || type == CovarianceType::tied) ? D * (D + 1) / 2 : D);
}

/// The parameters in the layout the kernel reads (as cpu_kernels.hpp's log joints):
/// means K x D, factors K x D x pad4(D) (full, tied: upper-triangular precision Cholesky
/// factors, zeros elsewhere), K x D (diag: 1 / sigma) or K (spherical: 1 / sigma), and
/// constants K (log pi_k + log|P_k|); shift K x D: the centres c_k of the statistics
/// (the means, for the E-step). negligible: the wide pass (wide_kernels.hpp) leaves out of
/// the statistics the weights at most this (0: only exact zeros, which add nothing; see
/// wide_kernels.hpp for which are left out);
/// the narrow pass ignores it.
struct NarrowParams {
  CovarianceType type;
  int K;
  int D;
  const double* means;
  const double* factors;
  const double* constants;
  const double* shift;
  double negligible = 0.0;
};

/// Adds `rows` (1 to kNarrowRows) points to per-lane partial sums. xt: D x kNarrowRows,
/// the block transposed (lanes past `rows`, up to a multiple of 8, hold anything finite);
/// w: kNarrowRows weights, the points' (1 without weights) and 0 past `rows`; g: K x
/// kNarrowRows scratch. acc holds, for each of the
/// K * narrow_stats_per_component values and then the log-likelihood, 8 lane partials:
/// value v's partial in lane l at acc[v * 8 + l]. Each partial sums its lane's points in
/// order, with the statistics about the shift:
///   N_k += g,  S1_k += g (x - c_k),  S2_k += g (x - c_k)(x - c_k)^T,
///   loglik += w log p(x)  (a point of zero weight adds nothing),
/// with g = w p(k | x), and a point no component can explain (every log joint -inf)
/// shared evenly (g = w / K) as in the general path.
void narrow_block(const NarrowParams& p, const double* xt, int rows, const double* w, double* g, double* acc);

/// The statistics half of narrow_block for weights that are given: g (K x kNarrowRows,
/// component-major, 0 in the lanes past `rows`) are the points' weights as they are (the
/// sample weights already in them). Adds N_k, S1_k and S2_k about p.shift to acc's lane
/// partials as narrow_block does; the log-likelihood's partials are left as they are.
void narrow_given_block(const NarrowParams& p, const double* xt, int rows, const double* g, double* acc);

/// The posteriors of `rows` (1 to kNarrowRows) points transposed in xt: resp (rows x K,
/// row-major) = p(k | x) and log_prob (rows; may be null) = log p(x), by the operations of
/// the row-block path (cpu_kernels.hpp: log joints, exp_normalise_block,
/// responsibilities_block), so the same bits. Diag and spherical only (full and tied log
/// joints sum in another order than the row blocks' panels; nothing is written for them);
/// a point no component explains gets 1 / K each and its maximum log joint. g: 8 K
/// doubles of scratch.
void narrow_posteriors_block(const NarrowParams& p, const double* xt, int rows, double* g, double* resp,
                             double* log_prob);

/// The block of `rows` (1 to kNarrowRows) rows of D values at x, `stride` values apart,
/// transposed into xt (D x kNarrowRows) as float64; the lanes past `rows` up to the next
/// multiple of 8 repeat the first row (finite, and weighted 0 by the kernel).
void narrow_transpose(const double* x, std::size_t stride, int D, int rows, double* xt);
void narrow_transpose(const float* x, std::size_t stride, int D, int rows, double* xt);

}  // namespace cuem::cpu
