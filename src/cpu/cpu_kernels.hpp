#pragma once
// Vector kernels of the float64 CPU backend: log joints and their normalisation for a block
// of rows, and the weighted sums of the statistics. Plain functions on padded float64
// buffers; cpu_primitives.cpp lays the data out and splits the work over threads.
//
// Every kernel is compiled for x86-64-v4 (AVX-512), x86-64-v3 (AVX2, FMA) and the baseline,
// and the loader picks one at run time (GCC target_clones), so one build runs anywhere and
// uses the machine it runs on. All vectors hold 8 doubles whatever the instruction set.
//
// Determinism: a row's log joints are computed in its own vector lane by the same
// sequence of operations whatever the lane, the block or the thread, and every sum over
// points runs over the points in order; so results do not depend on how rows are split
// over threads (they may differ between instruction sets, as FMA contraction differs).
#include <cstddef>

namespace cuem::cpu {

/// Rows per E-step block: two vectors of 8 doubles.
constexpr int kBlockRows = 16;

/// The instruction-set level whose clones of these kernels run on this CPU (as the
/// loader picks them), for `cuem info`.
const char* kernel_level() noexcept;

constexpr int pad4(int n) noexcept { return (n + 3) / 4 * 4; }
constexpr int pad8(int n) noexcept { return (n + 7) / 8 * 8; }

/// Squared Mahalanobis terms as log joints, full (and tied) covariance, for one block:
///   lj[k][r] = constant_k - 1/2 (D log 2 pi + ||P_k^T (x_r - mu_k)||^2)
/// xt: D x 16 (the block transposed), means: K x D, factors: K x D x pad4(D) row-major
/// upper-triangular precision Cholesky factors with zeros below the diagonal and in the
/// padding columns, constants: K (log pi_k + log|P_k|), yt: D x 16 scratch, lj: K x 16.
void log_joints_full(const double* xt, int D, int K, const double* means, const double* factors,
                     const double* constants, double* yt, double* lj);

/// Doubles per component of pack_full_panels' layout.
constexpr std::size_t full_panel_size(int D) noexcept {
  std::size_t n = 0;
  for (int jb = 0; jb < pad4(D); jb += 4) n += 4 * static_cast<std::size_t>(jb + 4 < D ? jb + 4 : D);
  return n;
}

/// log_joints_full's factors (K x D x pad4(D)) in column panels: for each block of 4
/// columns jb, the rows 0 .. min(jb + 4, D) - 1 of those columns one after another, the
/// order log_joints_full32 reads them in. out: K x full_panel_size(D).
void pack_full_panels(const double* factors, int D, int K, double* out);

/// log_joints_full for 32 rows (four vectors) at once, the factors as pack_full_panels
/// lays them out: each factor value read once for 32 rows instead of 16, from consecutive
/// addresses. Every row's value is log_joints_full's bit for bit (the same operations in
/// the same order). xt, yt: D x 32; lj0 and lj1: K x 16 each, rows 0-15 and 16-31.
void log_joints_full32(const double* xt, int D, int K, const double* means, const double* panels,
                       const double* constants, double* yt, double* lj0, double* lj1);

/// The same for diagonal factors (K x D, 1 / sigma per dimension).
void log_joints_diag(const double* xt, int D, int K, const double* means, const double* factors,
                     const double* constants, double* lj);

/// The same for spherical factors (K values, 1 / sigma).
void log_joints_spherical(const double* xt, int D, int K, const double* means, const double* factors,
                          const double* constants, double* lj);

/// For each of the 16 rows: row_max = max_k lj[k], e[k] = exp(lj[k] - row_max),
/// row_sum = sum_k e[k] (in k order). exp of anything below -708 is 0 (no subnormals).
/// lj, e: K x 16; row_max, row_sum: 16.
void exp_normalise_block(const double* lj, int K, double* e, double* row_max, double* row_sum);

/// Responsibilities and log p(x) of the first `rows` rows of a block from the output of
/// exp_normalise_block: resp[r][k] = e[k][r] / row_sum[r], log_prob[r] = row_max[r] +
/// log(row_sum[r]) (log_prob may be null); a row whose maximum is -inf or NaN is shared
/// evenly (1/K) with log_prob = its maximum. resp: rows x K.
void responsibilities_block(const double* e, const double* row_max, const double* row_sum, int K, int rows,
                            double* resp, double* log_prob);

/// Full statistics of one component for D <= 8 (one vector per row), t in order:
///   s1 += g[t] y[t],  s2[i][j] += g[t] y[t][i] y[t][j]  with y[t] = x[index[t]] - c.
/// x: rows of width 8, c, s1: 8, s2: pad4(D) x 8 (rows i < D written).
void add_full_narrow(const double* x, const int* index, const double* g, int n, const double* c, int D, double* s1,
                     double* s2);

/// Shifted rows of one component for the scatter: for the n gathered rows t,
///   y[t] = x[index[t]] - c,  a[t] = g[t] y[t],  and when s1 is not null s1 += a[t] in t order.
/// x: rows of width W = pad8(D) (zero padding), c: W (zero padding), y, a: n x W.
void gather_shifted(const double* x, const int* index, const double* g, int n, const double* c, int W, double* y,
                    double* a, double* s1);

/// Upper-triangle scatter, row tiles [tile_begin, tile_end) of 4 rows:
///   s2[i][j] += sum_t a[t][i] y[t][j]  (t in order) for the column vectors at or right
/// of the diagonal. a, y: n x W, s2: pad4(D) x W.
void scatter_tiles(const double* a, const double* y, int n, int W, int tile_begin, int tile_end, double* s2);

/// Diagonal statistics of one component over n gathered rows, t in order:
///   s1 += g[t] (x[index[t]] - c),  s2 += g[t] (x[index[t]] - c)^2  (elementwise).
/// x: rows of width W = pad8(D), c, s1, s2: W.
void add_diag(const double* x, const int* index, const double* g, int n, const double* c, int W, double* s1,
              double* s2);

}  // namespace cuem::cpu
