#pragma once
// Launchers of the E-step kernels (kernels/estep_dispatch.cuh), callable from host code
// compiled by nvcc. The math, in DESIGN.md's notation, for a chunk of points x_n
// (already shifted by a global origin and converted to the arithmetic type S):
//   v_nk  = log pi_k + log|P_k| - 1/2 (D log 2pi + ||P_k^T (x_n - mu_k)||^2)
//   lp_n  = logsumexp_k v_nk,  g_nk = exp(v_nk - lp_n)                (posteriors)
//   per segment of kSegmentPoints points and component k, with y = x_n - c_k:
//   N_k = sum g_nk,  S1_k = sum g_nk y,  S2_k = sum g_nk y y^T        (segment statistics)
// and the running totals add the segments' float64 partials one after another
// (accumulate_segments): the same sums in the same order however the points are
// chunked, so a streamed fit equals an in-memory one bitwise.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <vector>

#include "cuem/covariance_type.hpp"
#include "cuem/options.hpp"

namespace cuem::cuda {

/// Points per statistics partial. Chunks of a streamed data set start at multiples of it.
inline constexpr std::size_t kSegmentPoints = 8192;

/// Device pointers to one iteration's parameters in the arithmetic type S. Means are
/// relative to the data's origin and split in two: `means` = S(mu - origin), which is
/// also the statistics' shift, and `means_lo` = S(mu - origin - means), the part S
/// rounded away. The posteriors use (x - means) - means_lo: in float32 the rounding of
/// the means alone (up to half an ulp of the data's extent) would move every
/// responsibility of a component the same way, a bias that does not average out over
/// points. Factors: full K x D x D, tied D x D, diag K x D, spherical K
/// (upper-triangular precision Cholesky factors, as in the model).
template <typename S>
struct ComponentParams {
  CovarianceType type = CovarianceType::full;
  int K = 0;
  int D = 0;
  const S* log_weights = nullptr;
  const S* means = nullptr;
  const S* means_lo = nullptr;
  const S* factors = nullptr;
  const S* log_det = nullptr;
  /// diag only (else null): S(mu - origin) times each factor S(P_kd), in two parts the
  /// same way, so that (x - mu) P = fma(x, P, -scaled_means) - scaled_means_lo: one
  /// instruction fewer per (point, component, dimension) than ((x - hi) - lo) P, to the
  /// same accuracy (the fma's product is exact and the two parts carry mu P to float64
  /// precision, for the factor the kernel multiplies x by).
  const S* scaled_means = nullptr;
  const S* scaled_means_lo = nullptr;
};

/// Which products a component's statistics are: entry e sums g * y[a] * y[b] with
/// (a, b) = (entries[e] & 0xffff, entries[e] >> 16) and y[D] = 1. Entry 0 is N_k,
/// 1..D are S1_k, then S2_k: the upper triangle row by row (full, tied) or the
/// diagonal (diag, spherical).
std::vector<unsigned> stats_entries(CovarianceType type, int D);

/// Largest D the statistics kernel can stage in shared memory for element size `bytes`.
int max_stats_dim(std::size_t element_bytes) noexcept;

/// Posteriors of n points: resp[k * resp_stride + i] = g_ik, log_prob[i] = lp_i (may be
/// null). X is n x D row-major.
void launch_posteriors(const ComponentParams<float>& p, const float* X, std::size_t n, float* resp,
                       std::size_t resp_stride, float* log_prob, const CudaTuning& tuning,
                       cudaStream_t stream);
void launch_posteriors(const ComponentParams<double>& p, const double* X, std::size_t n, double* resp,
                       std::size_t resp_stride, double* log_prob, const CudaTuning& tuning,
                       cudaStream_t stream);

/// Posteriors and statistics (about p.means) of each segment in one pass, where the
/// problem is small enough (D <= 2, few components): the same partials as
/// launch_segment_stats. Returns false, launching nothing, where it does not apply.
bool launch_fused_estep(const ComponentParams<float>& p, const float* X, std::size_t n, double* partials,
                        std::size_t L, const CudaTuning& tuning, cudaStream_t stream);
bool launch_fused_estep(const ComponentParams<double>& p, const double* X, std::size_t n, double* partials,
                        std::size_t L, const CudaTuning& tuning, cudaStream_t stream);

/// Statistics of each segment of the chunk about `shift` (K x D, relative to the origin)
/// into partials[s * L + k * M + e] (M = entries.size(), L >= K * M + 1), and the sum of
/// the segment's log_prob into partials[s * L + K * M].
void launch_segment_stats(int K, int D, const float* X, std::size_t n, const float* shift, const float* resp,
                          std::size_t resp_stride, const float* log_prob, const unsigned* entries, int M,
                          double* partials, std::size_t L, const CudaTuning& tuning, cudaStream_t stream);
void launch_segment_stats(int K, int D, const double* X, std::size_t n, const double* shift, const double* resp,
                          std::size_t resp_stride, const double* log_prob, const unsigned* entries, int M,
                          double* partials, std::size_t L, const CudaTuning& tuning, cudaStream_t stream);

/// The E-step of a chunk where launch_fused_estep does not apply: launch_posteriors, then
/// launch_segment_stats about p.means, with the same partials. For the diagonal and
/// spherical layouts with K > 64 the log joints are not normalised in place: each
/// component tile leaves its points' maxima and sums in `norm` and the statistics kernel
/// normalises as it reads (12 GB less traffic at K = 1024, D = 128, N = 1M); resp then
/// holds log joints, not responsibilities. `norm` holds deferred_norm_rows(...) x
/// resp_stride values (may be null where that is 0).
void launch_estep(const ComponentParams<float>& p, const float* X, std::size_t n, float* resp,
                  std::size_t resp_stride, float* log_prob, float* norm, const unsigned* entries, int M,
                  double* partials, std::size_t L, const CudaTuning& tuning, cudaStream_t stream);
void launch_estep(const ComponentParams<double>& p, const double* X, std::size_t n, double* resp,
                  std::size_t resp_stride, double* log_prob, double* norm, const unsigned* entries, int M,
                  double* partials, std::size_t L, const CudaTuning& tuning, cudaStream_t stream);

/// Rows of launch_estep's normalisation buffer for this shape and element size (0 where
/// the E-step normalises in place).
std::size_t deferred_norm_rows(CovarianceType type, int K, int D, std::size_t element_bytes,
                               const CudaTuning& tuning);

/// total[j] += partials[0 * L + j] + partials[1 * L + j] + ... (segments in order), j < L.
void launch_accumulate_segments(const double* partials, std::size_t n_segments, std::size_t L, double* total,
                                cudaStream_t stream);

}  // namespace cuem::cuda
