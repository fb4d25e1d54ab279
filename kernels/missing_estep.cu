// The incomplete-rows E-step (math in missing_estep.hpp), float32 and float64.
//
// One block a segment: a fixed run of tiles, each tile up to tile_rows rows of a single
// pattern. Per tile, each (row, component) pair is completed by one thread (y in shared
// memory, one row of D + 1 values a thread, y[D] = 1 so that N_k and S1 are entries like
// S2's) and its log joint kept in the block's work rows; one thread a row normalises
// them into w g_k; then per component the block completes the tile again, an entry a
// thread, and each thread sums its statistics entries over the tile's rows in order. Completing twice
// costs |m| |o| + |o| a row and component, less than the D^2 / 2 of the Mahalanobis
// term and of the scatter, and keeps shared memory at one tile of one component.
// Nothing is atomic: each partial entry belongs to one thread of one block.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "core/point_math.hpp"
#include "cuda_check.cuh"
#include "device_memory.cuh"
#include "missing_estep.hpp"

namespace cuem::cuda {
namespace {

// Rows of a tile are bounded by this much shared memory, so that four blocks fit an SM
// (the resident-block minimum below; with the thread count alone, ptxas spilled a few
// bytes in four of the eight instantiations at 40-56 registers).
constexpr std::size_t kTileBytes = 32 * 1024;
constexpr int kMissingMinBlocks = 4;
constexpr std::size_t kMaxSharedBytes = 48 * 1024;

__device__ __forceinline__ float exp_of(float v) { return expf(v); }
__device__ __forceinline__ double exp_of(double v) { return exp(v); }
__device__ __forceinline__ float log_of(float v) { return logf(v); }
__device__ __forceinline__ double log_of(double v) { return log(v); }

// Observed entry c of a completed row: x_c - mu_c as (x_c - hi_c) - lo_c (estep.hpp's
// two-part means).
template <typename S>
__device__ __forceinline__ S observed_entry(const S* __restrict__ x, const S* __restrict__ hi,
                                            const S* __restrict__ lo, int c) {
  return (x[c] - hi[c]) - lo[c];
}

// Missing entry i of a completed row whose observed entries are in y: -(G y_o)_i for the
// full and tied layouts, 0 for the diagonal ones (their conditional mean is the mean).
template <typename S, CovarianceType C>
__device__ __forceinline__ S missing_entry(const S* __restrict__ G, const int* __restrict__ cols, int n_obs, int i,
                                           const S* __restrict__ y) {
  S v = S(0);
  if constexpr (C == CovarianceType::full || C == CovarianceType::tied) {
    const S* row = G + static_cast<std::size_t>(i) * n_obs;
    for (int j = 0; j < n_obs; ++j) v += row[j] * y[cols[j]];
    v = -v;
  }
  return v;
}

// A row completed by one thread: y_o, then y_m, and y[D] = 1.
template <typename S, CovarianceType C>
__device__ __forceinline__ void complete_row(const MissingLaunch<S>& a, const S* __restrict__ x,
                                             const int* __restrict__ cols, int n_obs, const S* __restrict__ G, int k,
                                             S* __restrict__ y) {
  const int D = a.D;
  const S* hi = a.means_hi + static_cast<std::size_t>(k) * D;
  const S* lo = a.means_lo + static_cast<std::size_t>(k) * D;
  for (int j = 0; j < n_obs; ++j) y[cols[j]] = observed_entry(x, hi, lo, cols[j]);
  for (int i = 0; i < D - n_obs; ++i) y[cols[n_obs + i]] = missing_entry<S, C>(G, cols, n_obs, i, y);
  y[D] = S(1);
}

// ||P_k^T y||^2 of a completed row; its missing coordinates are 0 in the diagonal
// layouts, so the sum over all of them is the sum over the observed ones.
template <typename S, CovarianceType C>
__device__ __forceinline__ S mahalanobis_completed(const MissingLaunch<S>& a, const S* y, int k) {
  const int D = a.D;
  const auto diff = [&](int i) { return y[i]; };
  if constexpr (C == CovarianceType::full)
    return math::mahalanobis_sq_full_of(diff, a.factors + static_cast<std::size_t>(k) * D * D, D);
  else if constexpr (C == CovarianceType::tied)
    return math::mahalanobis_sq_full_of(diff, a.factors, D);
  else if constexpr (C == CovarianceType::diag)
    return math::mahalanobis_sq_diag_of(diff, a.factors + static_cast<std::size_t>(k) * D, D);
  else
    return math::mahalanobis_sq_spherical_of(diff, a.factors[k], D);
}

template <typename S, CovarianceType C>
__global__ void __launch_bounds__(kMissingThreads, kMissingMinBlocks) missing_estep_kernel(MissingLaunch<S> a) {
  CUEM_DYNAMIC_SHARED(shared);
  const int T = a.tile_rows, D = a.D, K = a.K, M = a.M;
  const int stride = D + 1;
  double* row_ll = reinterpret_cast<double*>(shared);  // T: w lp of the tile's rows
  S* Y = reinterpret_cast<S*>(shared + static_cast<std::size_t>(T) * sizeof(double));  // T x (D + 1)
  const int tid = static_cast<int>(threadIdx.x);
  const int threads = static_cast<int>(blockDim.x);
  const std::size_t seg = blockIdx.x;
  double* part = a.partials + seg * a.L;
  double* work = a.work + seg * static_cast<std::size_t>(T) * K;  // K x T: w g of the tile's rows
  for (std::size_t j = tid; j < a.L; j += threads) part[j] = 0.0;
  double ll = 0.0;  // thread 0's
  __syncthreads();
  for (std::uint32_t ti = a.segment_tiles[seg]; ti < a.segment_tiles[seg + 1]; ++ti) {
    const MissingTile tile = a.tiles[ti];
    const int rows = static_cast<int>(tile.rows);
    const int* cols = a.cols + static_cast<std::size_t>(tile.pattern) * D;
    const int n_obs = a.n_observed[tile.pattern];
    const std::size_t g_size = static_cast<std::size_t>(D - n_obs) * n_obs;
    const S* G = a.g ? a.g + a.g_offset[tile.pattern] : nullptr;
    const S* consts = a.constants + static_cast<std::size_t>(tile.pattern - a.pattern_base) * K;
    // The log joints of the tile's (row, component) pairs, a pair a thread at a time in
    // its own row of Y, so that a tile of one row still keeps K threads busy.
    const int pair_threads = T < threads ? T : threads;  // each with a row of Y
    if (tid < pair_threads)
      for (int j = tid; j < rows * K; j += pair_threads) {
        const int t = j % rows, k = j / rows;
        S* y = Y + static_cast<std::size_t>(tid) * stride;
        complete_row<S, C>(a, a.X + (tile.row + static_cast<std::size_t>(t)) * D, cols, n_obs,
                           G ? G + k * g_size : nullptr, k, y);
        work[static_cast<std::size_t>(k) * T + t] =
            static_cast<double>(consts[k] - S(0.5) * mahalanobis_completed<S, C>(a, y, k));
      }
    __syncthreads();
    if (tid < rows) {
      const std::size_t r = tile.row + static_cast<std::size_t>(tid);
      // normalize_point's one pass for the maximum and the sum, then the responsibilities.
      S m = S(-INFINITY), s = S(0);
      for (int k = 0; k < K; ++k) {
        const S v = static_cast<S>(work[static_cast<std::size_t>(k) * T + tid]);
        if (v > m) {
          s = (m > S(-INFINITY) ? s * exp_of(m - v) : S(0)) + S(1);
          m = v;
        } else if (v > S(-INFINITY)) {
          s += exp_of(v - m);
        }
      }
      const double w = a.w ? a.w[r] : 1.0;
      S lp = m;
      if (m > S(-INFINITY)) {
        const S inv = S(1) / s;
        for (int k = 0; k < K; ++k) {
          double& g = work[static_cast<std::size_t>(k) * T + tid];
          g = w * static_cast<double>(exp_of(static_cast<S>(g) - m) * inv);
        }
        lp = m + log_of(s);
      } else {  // no component can explain the row: share it evenly
        for (int k = 0; k < K; ++k)
          work[static_cast<std::size_t>(k) * T + tid] = w * static_cast<double>(S(1) / static_cast<S>(K));
      }
      // A row of weight 0 adds nothing, where 0 * -inf would be NaN.
      row_ll[tid] = w == 0.0 ? 0.0 : w * static_cast<double>(lp);
    }
    __syncthreads();
    if (tid == 0)
      for (int t = 0; t < rows; ++t) ll += row_ll[t];
    for (int k = tid; k < K; k += threads) {
      double sum = 0.0;
      for (int t = 0; t < rows; ++t) sum += work[static_cast<std::size_t>(k) * T + t];
      a.tile_nk[static_cast<std::size_t>(ti - a.first_tile) * K + k] = sum;
    }
    for (int k = 0; k < K; ++k) {
      __syncthreads();  // the previous component's readers are done with Y
      // The tile completed by the whole block: its observed entries (and y[D] = 1), then
      // its missing ones, an entry a thread, so that a one-row tile takes |o| steps.
      const S* hi = a.means_hi + static_cast<std::size_t>(k) * D;
      const S* lo = a.means_lo + static_cast<std::size_t>(k) * D;
      const S* Gk = G ? G + k * g_size : nullptr;
      const int n_mis = D - n_obs;
      for (int j = tid; j < rows * (n_obs + 1); j += threads) {
        const int t = j / (n_obs + 1), c = j % (n_obs + 1);
        S* y = Y + static_cast<std::size_t>(t) * stride;
        if (c == n_obs) y[D] = S(1);
        else y[cols[c]] = observed_entry(a.X + (tile.row + static_cast<std::size_t>(t)) * D, hi, lo, cols[c]);
      }
      __syncthreads();
      for (int j = tid; j < rows * n_mis; j += threads) {
        const int t = j / n_mis, i = j % n_mis;
        S* y = Y + static_cast<std::size_t>(t) * stride;
        y[cols[n_obs + i]] = missing_entry<S, C>(Gk, cols, n_obs, i, y);
      }
      __syncthreads();
      const double* gk = work + static_cast<std::size_t>(k) * T;
      for (int e = tid; e < M; e += threads) {
        const int ea = static_cast<int>(a.entries[e] & 0xffffu);
        const int eb = static_cast<int>(a.entries[e] >> 16);
        double acc = 0.0;
        for (int t = 0; t < rows; ++t) {
          const S* y = Y + static_cast<std::size_t>(t) * stride;
          acc += gk[t] * static_cast<double>(y[ea]) * static_cast<double>(y[eb]);
        }
        part[static_cast<std::size_t>(k) * M + e] += acc;
      }
    }
    __syncthreads();  // the next tile overwrites Y, the work rows and row_ll
  }
  if (tid == 0) part[static_cast<std::size_t>(K) * M] = ll;
}

__global__ void pattern_sums_kernel(const double* __restrict__ tile_nk,
                                    const std::uint32_t* __restrict__ pattern_first_tile, std::uint32_t first_tile,
                                    std::uint32_t end_tile, std::uint32_t p_begin, std::size_t n, int K,
                                    std::uint32_t pattern_base, double* __restrict__ pattern_nk) {
  const std::size_t j = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= n) return;
  const std::uint32_t p = p_begin + static_cast<std::uint32_t>(j / K);
  const int k = static_cast<int>(j % K);
  const std::uint32_t t0 = pattern_first_tile[p] > first_tile ? pattern_first_tile[p] : first_tile;
  const std::uint32_t t1 = pattern_first_tile[p + 1] < end_tile ? pattern_first_tile[p + 1] : end_tile;
  double* out = pattern_nk + static_cast<std::size_t>(p - pattern_base) * K + k;
  double acc = *out;
  for (std::uint32_t t = t0; t < t1; ++t) acc += tile_nk[static_cast<std::size_t>(t - first_tile) * K + k];
  *out = acc;
}

template <typename S>
void missing_estep(const MissingLaunch<S>& a, cudaStream_t stream) {
  if (a.n_segments == 0) return;
  const auto blocks = checked_cast<unsigned>(a.n_segments, "incomplete-row segments");
  const std::size_t shared = missing_shared_bytes(a.D, a.tile_rows, sizeof(S));
  if (a.tile_rows < 1 || shared > kMaxSharedBytes)
    throw DeviceError("the incomplete-rows E-step cannot stage one row of " + std::to_string(a.D) +
                      " features in shared memory");
  switch (a.type) {
    case CovarianceType::full:
      CUEM_LAUNCH((missing_estep_kernel<S, CovarianceType::full>), blocks, kMissingThreads, shared, stream)(a);
      break;
    case CovarianceType::tied:
      CUEM_LAUNCH((missing_estep_kernel<S, CovarianceType::tied>), blocks, kMissingThreads, shared, stream)(a);
      break;
    case CovarianceType::diag:
      CUEM_LAUNCH((missing_estep_kernel<S, CovarianceType::diag>), blocks, kMissingThreads, shared, stream)(a);
      break;
    case CovarianceType::spherical:
      CUEM_LAUNCH((missing_estep_kernel<S, CovarianceType::spherical>), blocks, kMissingThreads, shared, stream)(a);
      break;
  }
  CUEM_CUDA_CHECK_LAUNCH();
}

}  // namespace

int missing_tile_rows(int D, std::size_t element_bytes) noexcept {
  const std::size_t row = (static_cast<std::size_t>(D) + 1) * element_bytes + sizeof(double);
  if (row > kMaxSharedBytes) return 0;
  const std::size_t fit = kTileBytes / row;
  return static_cast<int>(fit < 1 ? 1 : fit > static_cast<std::size_t>(kMissingThreads) ? kMissingThreads : fit);
}

std::size_t missing_shared_bytes(int D, int tile_rows, std::size_t element_bytes) noexcept {
  const std::size_t T = tile_rows > 0 ? static_cast<std::size_t>(tile_rows) : 0;
  return T * sizeof(double) + T * (static_cast<std::size_t>(D) + 1) * element_bytes;
}

void launch_missing_pattern_sums(const double* tile_nk, const std::uint32_t* pattern_first_tile,
                                 std::uint32_t first_tile, std::uint32_t end_tile, std::uint32_t p_begin,
                                 std::uint32_t p_end, int K, std::uint32_t pattern_base, double* pattern_nk,
                                 cudaStream_t stream) {
  const std::size_t n = static_cast<std::size_t>(p_end - p_begin) * static_cast<std::size_t>(K);
  if (n == 0) return;
  constexpr int threads = 256;
  const auto blocks = checked_cast<unsigned>((n + threads - 1) / threads, "pattern-sum blocks");
  CUEM_LAUNCH(pattern_sums_kernel, blocks, threads, 0, stream)(tile_nk, pattern_first_tile, first_tile, end_tile,
                                                                 p_begin, n, K, pattern_base, pattern_nk);
  CUEM_CUDA_CHECK_LAUNCH();
}

void launch_missing_estep(const MissingLaunch<float>& a, cudaStream_t stream) { missing_estep(a, stream); }
void launch_missing_estep(const MissingLaunch<double>& a, cudaStream_t stream) { missing_estep(a, stream); }

}  // namespace cuem::cuda
