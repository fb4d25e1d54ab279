#pragma once
// The E-step kernels (math in estep.hpp). Templated on the arithmetic type S; the tiny
// estep_float.cu / estep_double.cu instantiate them.
//
// posteriors_kernel: one thread per point; the log joints go to the K-major
// responsibility buffer (coalesced across the threads of a warp), are normalised there,
// and the point's log-likelihood is kept.
// tiled_log_joint_kernel + normalize_kernel: the same for the diagonal and spherical
// layouts with many components, as register-blocked tiles (below).
// segment_stats_kernel: one block per (segment, component). Points are staged in shared
// memory a tile at a time as y = x - c_k (with y[D] = 1); each thread owns statistics
// entries and sums g * y[a] * y[b] over the tile in S, then adds the tile's sum into a
// float64 accumulator. When a component has fewer entries than the block has threads,
// groups of threads split the tile's points and are combined in group order. Every sum
// has a fixed order: results are bitwise reproducible.
// diag_segment_stats_kernel: the diagonal layout for several components per block (below).
#include <cub/block/block_reduce.cuh>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <type_traits>

#include "core/point_math.hpp"
#include "cuda_check.cuh"
#include "device_memory.cuh"
#include "estep.hpp"

namespace cuem::cuda {
namespace detail {

inline constexpr int kPosteriorThreads = 128;
// Eight resident blocks of 128 threads allow 64 registers a thread. Without a minimum,
// nvcc 12 capped the float64 full/tied posteriors at 32 and spilled (sm_80).
inline constexpr int kPosteriorMinBlocks = 8;
inline constexpr int kStatsThreads = 256;
inline constexpr int kStatsAccumulators = 8;  // entries per thread per pass over a segment
inline constexpr int kStatsTileBytes = 32 * 1024;
inline constexpr int kSumThreads = 256;

__device__ __forceinline__ float exp_s(float v) { return expf(v); }
__device__ __forceinline__ double exp_s(double v) { return exp(v); }
__device__ __forceinline__ float log_s(float v) { return logf(v); }
__device__ __forceinline__ double log_s(double v) { return log(v); }
__device__ __forceinline__ float fma_s(float a, float b, float c) { return fmaf(a, b, c); }
__device__ __forceinline__ double fma_s(double a, double b, double c) { return fma(a, b, c); }

// ||P^T (x - mu)||^2 by the shared math, with the mean in two parts (estep.hpp):
// x_i - mu_i is taken as (x_i - hi_i) - lo_i, whose first difference is exact for the
// points near the component, the ones whose responsibilities matter.
template <typename S, CovarianceType C>
__device__ __forceinline__ S mahalanobis_sq(const S* x, const ComponentParams<S>& p, int k) {
  const int D = p.D;
  const S* hi = p.means + static_cast<std::size_t>(k) * D;
  const S* lo = p.means_lo + static_cast<std::size_t>(k) * D;
  const auto diff = [&](int i) { return (x[i] - hi[i]) - lo[i]; };
  if constexpr (C == CovarianceType::full)
    return math::mahalanobis_sq_full_of(diff, p.factors + static_cast<std::size_t>(k) * D * D, D);
  else if constexpr (C == CovarianceType::tied)
    return math::mahalanobis_sq_full_of(diff, p.factors, D);
  else if constexpr (C == CovarianceType::diag)
    return math::mahalanobis_sq_diag_of(diff, p.factors + static_cast<std::size_t>(k) * D, D);
  else
    return math::mahalanobis_sq_spherical_of(diff, p.factors[k], D);
}

// Turns point i's log joints (K-major in resp) into responsibilities, in place, and
// returns log p(x_i).
template <typename S>
__device__ __forceinline__ S normalize_point(S* __restrict__ resp, std::size_t stride, std::size_t i, int K) {
  // One pass for the maximum and the sum of exp(v - max) together (the sum rescaled
  // when the maximum moves), one for the responsibilities: the N x K log joints are read
  // twice and written once, where a pass each for the maximum, the exponentials and the
  // scaling read them three times and wrote them twice (the traffic is the time at
  // large K).
  S m = S(-INFINITY);
  S s = S(0);
  for (int k = 0; k < K; ++k) {
    const S v = resp[k * stride + i];
    if (v > m) {
      s = (m > S(-INFINITY) ? s * exp_s(m - v) : S(0)) + S(1);
      m = v;
    } else if (v > S(-INFINITY)) {
      s += exp_s(v - m);
    }
  }
  if (!(m > S(-INFINITY))) {  // no component can explain the point: share it evenly
    for (int k = 0; k < K; ++k) resp[k * stride + i] = S(1) / static_cast<S>(K);
    return m;
  }
  const S inv = S(1) / s;
  for (int k = 0; k < K; ++k) resp[k * stride + i] = exp_s(resp[k * stride + i] - m) * inv;
  return m + log_s(s);
}

template <typename S, CovarianceType C>
__global__ void __launch_bounds__(kPosteriorThreads, kPosteriorMinBlocks)
    posteriors_kernel(ComponentParams<S> p, const S* __restrict__ X, std::size_t n, S* __restrict__ resp,
                      std::size_t stride, S* __restrict__ log_prob) {
  const std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const S* x = X + i * static_cast<std::size_t>(p.D);
  for (int k = 0; k < p.K; ++k)
    resp[k * stride + i] = math::log_joint(p.log_weights[k], p.log_det[k], mahalanobis_sq<S, C>(x, p, k), p.D);
  const S lp = normalize_point(resp, stride, i, p.K);
  if (log_prob) log_prob[i] = lp;
}

template <typename S>
__global__ void __launch_bounds__(kPosteriorThreads)
    normalize_kernel(int K, std::size_t n, S* __restrict__ resp, std::size_t stride, S* __restrict__ log_prob) {
  const std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const S lp = normalize_point(resp, stride, i, K);
  if (log_prob) log_prob[i] = lp;
}

// Deferred normalisation (the diagonal and spherical E-step with K > 64, whose
// statistics kernels normalise as they read): the log joints stay in resp, and the
// normalisation buffer aux (stride values a row) holds
//   row 0: each point's maximum log joint m,   row 1: 1 / sum_k exp(v_k - m),
//   rows 2 .. 2 + T: each component tile's maximum m_t,   rows 2 + T .. 2 + 2 T: its
//   sum of exp(v - m_t) (T tiles, written by tiled_log_joint_kernel),
// so the log joints are written once and read once, by the statistics, where the
// in-place normalisation read them twice and wrote them again (12 GB at G4's shape).
// This kernel combines the tiles in order into rows 0 and 1 and log p(x) = m + log(sum).
template <typename S>
__global__ void __launch_bounds__(kPosteriorThreads)
    combine_tiles_kernel(int T, std::size_t n, S* __restrict__ aux, std::size_t stride, S* __restrict__ log_prob) {
  const std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const S* tile_max = aux + 2 * stride;
  const S* tile_sum = aux + (2 + static_cast<std::size_t>(T)) * stride;
  S m = S(-INFINITY);
  for (int t = 0; t < T; ++t) {
    const S v = tile_max[t * stride + i];
    m = v > m ? v : m;
  }
  S sum = S(0);
  if (m > S(-INFINITY))
    for (int t = 0; t < T; ++t) {
      const S mt = tile_max[t * stride + i];
      if (mt > S(-INFINITY)) sum += tile_sum[t * stride + i] * exp_s(mt - m);
    }
  aux[i] = m;
  aux[stride + i] = m > S(-INFINITY) ? S(1) / sum : S(0);
  if (log_prob) log_prob[i] = m > S(-INFINITY) ? m + log_s(sum) : m;
}

// A deferred log joint v as a responsibility, given its point's maximum m and reciprocal
// sum inv (the normalisation buffer above), as normalize_point forms it: a point no
// component explains is shared evenly.
template <typename S>
__device__ __forceinline__ S deferred_resp(S v, S m, S inv, int K) {
  return m > S(-INFINITY) ? exp_s(v - m) * inv : S(1) / static_cast<S>(K);
}

// g_ik as the diagonal statistics kernels stage it: resp holds the responsibilities, or
// with norm the log joints (tiled_diag_stats_kernel reads m and inv once a tile instead).
template <typename S>
__device__ __forceinline__ S staged_resp(const S* __restrict__ resp, const S* __restrict__ norm, std::size_t stride,
                                         int k, int K, std::size_t i) {
  const S v = resp[static_cast<std::size_t>(k) * stride + i];
  return norm ? deferred_resp(v, norm[i], norm[stride + i], K) : v;
}

// Log joints of the diagonal and spherical layouts as tiles of kTilePoints points x
// kTileComponents components per block: dimensions are staged kTileDims at a time in
// shared memory (points and parameters, rows padded by one against bank conflicts), and
// each thread sums a register tile of kTileRP points x RK components, so a value loaded
// from shared memory feeds RK or kTileRP cells instead of one. (One thread
// per point reads its own row of X, strided across the warp: at D = 128 every load of
// a warp touches 32 cache lines.) Lanes take neighbouring points, so the K-major stores
// are coalesced; normalize_kernel then makes them responsibilities. Padding (points past
// n, components past K, dimensions past D) is zero and adds exactly zero.
inline constexpr int kTileThreads = 256;  // 16 x 16
inline constexpr int kTileRP = 8;
inline constexpr int kTilePoints = 16 * kTileRP;
inline constexpr int kTileDims = 16;
inline constexpr int kTilePitch = kTileDims + 1;

// RK components per thread: 4 (64 per block), or 2 or 1 where K is at most 32 or 16, so
// that a block's tile is not mostly padding.
template <int RK>
inline constexpr int kTileComponents = 16 * RK;

// What the kernel writes into resp (K-major):
//   log_joint: the log joints, for normalize_kernel;
//   responsibilities: when one block's tile holds all K (gridDim.y == 1), the normalised
//     responsibilities and log p(x) (into log_prob, may be null) straight away, the
//     maxima and sums taken across the 16 threads that share a point through shared
//     memory in a fixed order: no log joints are written and read back;
//   distance (with C spherical): the squared distances ||(x - hi) - lo||^2, for the
//     k-means assignment (kmeans.cuh); only p.means, p.means_lo, p.K and p.D are read;
//   deferred: the log joints, and per point the tile's maximum m_t and sum of
//     exp(v - m_t) into aux (the normalisation buffer, layout at combine_tiles_kernel),
//     for an E-step whose statistics kernel normalises as it reads (K > 64).
// aux is log p(x) for responsibilities (may be null), the normalisation buffer for
// deferred, unused otherwise.
enum class TileOut { log_joint, responsibilities, distance, deferred };

// Resident blocks asked of ptxas: with the thread count alone it held some of the
// smaller tiles to 40-48 registers and spilled; 3 blocks allow 85, 2 allow 128 (float64
// with 4 components a thread needs 128, and its normalising variants more; sm_90
// spilled float64 at 80).
template <typename S, int RK, TileOut Out>
inline constexpr int kTileMinBlocks =
    sizeof(S) == 4 ? 3 : RK == 4 && (Out == TileOut::responsibilities || Out == TileOut::deferred) ? 1 : 2;

template <typename S, CovarianceType C, int RK, TileOut Out>
__device__ __forceinline__ void tile_epilogue(const ComponentParams<S>& p, S (&acc)[kTileRP][RK], std::size_t n,
                                              S* __restrict__ resp, std::size_t stride, S* __restrict__ aux,
                                              S* red, std::size_t p0, int k0, int tp, int tk);

// A thread's tile of values to resp[k * stride + i] (K-major), real cells only.
template <typename S, int RK>
__device__ __forceinline__ void store_tile(const S (&acc)[kTileRP][RK], std::size_t n, int K, S* __restrict__ resp,
                                           std::size_t stride, std::size_t p0, int k0, int tp, int tk) {
#pragma unroll
  for (int c = 0; c < RK; ++c) {
    const int k = k0 + tk + 16 * c;
    if (k >= K) continue;
#pragma unroll
    for (int r = 0; r < kTileRP; ++r) {
      const std::size_t i = p0 + static_cast<std::size_t>(tp + 16 * r);
      if (i < n) resp[static_cast<std::size_t>(k) * stride + i] = acc[r][c];
    }
  }
}

template <typename S, CovarianceType C, int RK, TileOut Out>
__global__ void __launch_bounds__(kTileThreads, (kTileMinBlocks<S, RK, Out>))
    tiled_log_joint_kernel(ComponentParams<S> p, const S* __restrict__ X, std::size_t n, S* __restrict__ resp,
                           std::size_t stride, S* __restrict__ aux) {
  constexpr bool kDiag = C == CovarianceType::diag;
  __shared__ S xs[kTilePoints * kTilePitch];
  // float64 holds a mean exactly: its low part is zero, neither staged nor subtracted.
  constexpr bool kLo = sizeof(S) == 4;
  __shared__ S hs[kTileComponents<RK> * kTilePitch];
  __shared__ S ls[kLo ? kTileComponents<RK> * kTilePitch : 1];
  __shared__ S fs[kDiag ? kTileComponents<RK> * kTilePitch : 1];
  const int tid = static_cast<int>(threadIdx.x);
  const int tp = tid % 16;
  const int tk = tid / 16;
  const std::size_t p0 = static_cast<std::size_t>(blockIdx.x) * kTilePoints;
  const int k0 = static_cast<int>(blockIdx.y) * kTileComponents<RK>;
  const int D = p.D;
  const int K = p.K;
  S acc[kTileRP][RK];
#pragma unroll
  for (int r = 0; r < kTileRP; ++r)
#pragma unroll
    for (int c = 0; c < RK; ++c) acc[r][c] = S(0);

  for (int d0 = 0; d0 < D; d0 += kTileDims) {
    __syncthreads();  // the previous step's tiles are consumed
    for (int idx = tid; idx < kTilePoints * kTileDims; idx += kTileThreads) {
      const int q = idx / kTileDims;
      const int d = idx - q * kTileDims;
      const std::size_t i = p0 + static_cast<std::size_t>(q);
      xs[q * kTilePitch + d] = i < n && d0 + d < D ? X[i * static_cast<std::size_t>(D) + d0 + d] : S(0);
    }
    // diag: the means scaled by the factors (ComponentParams::scaled_means).
    const S* mh = kDiag ? p.scaled_means : p.means;
    const S* ml = kDiag ? p.scaled_means_lo : p.means_lo;
    for (int idx = tid; idx < kTileComponents<RK> * kTileDims; idx += kTileThreads) {
      const int j = idx / kTileDims;
      const int d = idx - j * kTileDims;
      const bool in = k0 + j < K && d0 + d < D;
      const std::size_t at = static_cast<std::size_t>(k0 + j) * D + d0 + d;
      hs[j * kTilePitch + d] = in ? mh[at] : S(0);
      if constexpr (kLo) ls[j * kTilePitch + d] = in ? ml[at] : S(0);
      if constexpr (kDiag) fs[j * kTilePitch + d] = in ? p.factors[at] : S(0);
    }
    __syncthreads();
    // Only the dimensions this step holds (the padding would add zeros, 16 / D times the
    // work where D is small).
    const int dims = D - d0 < kTileDims ? D - d0 : kTileDims;
#pragma unroll 4
    for (int d = 0; d < dims; ++d) {
      S xv[kTileRP];
#pragma unroll
      for (int r = 0; r < kTileRP; ++r) xv[r] = xs[(tp + 16 * r) * kTilePitch + d];
#pragma unroll
      for (int c = 0; c < RK; ++c) {
        const int j = tk + 16 * c;
        const S h = hs[j * kTilePitch + d];
        const S l = kLo ? ls[j * kTilePitch + d] : S(0);
        if constexpr (kDiag) {
          const S f = fs[j * kTilePitch + d];
#pragma unroll
          for (int r = 0; r < kTileRP; ++r) {
            S y = fma_s(xv[r], f, -h);  // (x - mu) P: 3 instructions a cell, not 4
            if constexpr (kLo) y -= l;
            acc[r][c] = fma_s(y, y, acc[r][c]);
          }
        } else {
#pragma unroll
          for (int r = 0; r < kTileRP; ++r) {
            S y = xv[r] - h;
            if constexpr (kLo) y -= l;
            acc[r][c] += y * y;
          }
        }
      }
    }
  }
  if constexpr (Out == TileOut::distance) {
    store_tile<S, RK>(acc, n, K, resp, stride, p0, k0, tp, tk);
  } else {
    tile_epilogue<S, C, RK, Out>(p, acc, n, resp, stride, aux, xs, p0, k0, tp, tk);
  }
}

// The log-joint and responsibility epilogues of tiled_log_joint_kernel (a function of its
// own so that the distance instantiation has no unreachable code). red is the kernel's
// point tile in shared memory, free once the sums are done.
template <typename S, CovarianceType C, int RK, TileOut Out>
__device__ __forceinline__ void tile_epilogue(const ComponentParams<S>& p, S (&acc)[kTileRP][RK], std::size_t n,
                                              S* __restrict__ resp, std::size_t stride, S* __restrict__ aux,
                                              S* red, std::size_t p0, int k0, int tp, int tk) {
  constexpr bool kDiag = C == CovarianceType::diag;
  const int K = p.K;
  const int D = p.D;
  // The log joints, in place of the distances (components past K: -inf).
#pragma unroll
  for (int c = 0; c < RK; ++c) {
    const int k = k0 + tk + 16 * c;
    if (k >= K) {
#pragma unroll
      for (int r = 0; r < kTileRP; ++r) acc[r][c] = S(-INFINITY);
      continue;
    }
    const S lw = p.log_weights[k];
    const S ld = p.log_det[k];
    const S f = kDiag ? S(1) : p.factors[k];
#pragma unroll
    for (int r = 0; r < kTileRP; ++r) {
      const S maha = kDiag ? acc[r][c] : acc[r][c] * f * f;
      acc[r][c] = math::log_joint(lw, ld, maha, D);
    }
  }
  if constexpr (Out == TileOut::log_joint) {
    store_tile<S, RK>(acc, n, K, resp, stride, p0, k0, tp, tk);
  } else {
    // Per point: the maximum, then the sum of exp(v - max), each over the 16 threads that
    // hold its components (thread tk has components tk, tk + 16, ...), through red
    // (kTilePoints x 16 values, [tk][point]).
    // A NaN log joint takes no part in the maximum or the sum (its own responsibility is
    // NaN), as in normalize_point.
    S m[kTileRP], sum[kTileRP];
#pragma unroll
    for (int r = 0; r < kTileRP; ++r) {
      S v = S(-INFINITY);
#pragma unroll
      for (int c = 0; c < RK; ++c) v = acc[r][c] > v ? acc[r][c] : v;
      m[r] = v;
    }
    __syncthreads();  // the point tile is consumed
#pragma unroll
    for (int r = 0; r < kTileRP; ++r) red[tk * kTilePoints + tp + 16 * r] = m[r];
    // The log joints themselves, before they become exponentials.
    if constexpr (Out == TileOut::deferred) store_tile<S, RK>(acc, n, K, resp, stride, p0, k0, tp, tk);
    __syncthreads();
#pragma unroll
    for (int r = 0; r < kTileRP; ++r) {
      S v = red[tp + 16 * r];
      for (int t = 1; t < 16; ++t) {
        const S w = red[t * kTilePoints + tp + 16 * r];
        v = w > v ? w : v;
      }
      m[r] = v;
      S part = S(0);
#pragma unroll
      for (int c = 0; c < RK; ++c) {
        acc[r][c] = m[r] > S(-INFINITY) ? exp_s(acc[r][c] - m[r]) : S(0);
        part += acc[r][c] == acc[r][c] ? acc[r][c] : S(0);
      }
      sum[r] = part;
    }
    __syncthreads();  // the maxima are read
#pragma unroll
    for (int r = 0; r < kTileRP; ++r) red[tk * kTilePoints + tp + 16 * r] = sum[r];
    __syncthreads();
#pragma unroll
    for (int r = 0; r < kTileRP; ++r) {
      S total = S(0);
      for (int t = 0; t < 16; ++t) total += red[t * kTilePoints + tp + 16 * r];
      const std::size_t i = p0 + static_cast<std::size_t>(tp + 16 * r);
      if (i >= n) continue;
      if constexpr (Out == TileOut::deferred) {
        if (tk == 0) {
          aux[(2 + static_cast<std::size_t>(blockIdx.y)) * stride + i] = m[r];
          aux[(2 + static_cast<std::size_t>(gridDim.y) + blockIdx.y) * stride + i] = total;
        }
        continue;
      }
      const bool none = !(m[r] > S(-INFINITY));  // no component explains the point: share it
      const S inv = none ? S(0) : S(1) / total;
#pragma unroll
      for (int c = 0; c < RK; ++c) {
        const int k = k0 + tk + 16 * c;
        if (k < K) resp[static_cast<std::size_t>(k) * stride + i] = none ? S(1) / static_cast<S>(K) : acc[r][c] * inv;
      }
      if (aux && tk == 0) aux[i] = none ? m[r] : m[r] + log_s(total);
    }
  }
}

// Log joints of the full and tied layouts for 8 <= D <= kFullMaxD: per component, a tile
// of points is staged (rows of odd pitch) as y = (x - hi) - lo (once, not once per
// multiply-add as in the per-point kernel) with the factor P (its lower triangle as
// zeros) beside it; each thread forms z = P^T y for kFullRP points x 4 consecutive
// columns, loading 4 y values and one row of 4 factors per 16 multiply-adds, and sums
// its z^2; the column groups' sums are then added in group order per point. Components
// run one after another over the same tile (kFullComponents per block).
inline constexpr int kFullThreads = 256;
inline constexpr int kFullRP = 4;
inline constexpr int kFullRJ = 4;
inline constexpr int kFullComponents = 8;
inline constexpr int kFullMinD = 8;
inline constexpr int kFullTileElements = 4608;  // max over D >= 8 of points x ((D + 1) | 1)
template <typename S>
inline constexpr int kFullMaxD = sizeof(S) == 4 ? 64 : 32;

// Point groups per tile for D: 256 threads as (point group, column group) pairs.
__host__ __device__ inline int full_point_groups(int D) {
  const int column_groups = (D + kFullRJ - 1) / kFullRJ;
  return kFullThreads / column_groups;
}

// Three resident blocks (their 34-45 KiB of shared memory allow no more): up to 85
// registers. Without a minimum, ptxas for sm_90 held the float kernel to 48 and spilled.
template <typename S, CovarianceType C>
__global__ void __launch_bounds__(kFullThreads, 3)
    tiled_full_log_joint_kernel(ComponentParams<S> p, const S* __restrict__ X, std::size_t n,
                                S* __restrict__ resp, std::size_t stride) {
  constexpr int MD = kFullMaxD<S>;
  __shared__ S ys[kFullTileElements];  // [point][D + 1]; then the column groups' sums
  __shared__ S ps[MD * MD];            // [i][j], zero below the diagonal
  const int D = p.D;
  const int K = p.K;
  const int CG = (D + kFullRJ - 1) / kFullRJ;
  const int PG = kFullThreads / CG;
  const int TP = PG * kFullRP;
  const int W = (D + 1) | 1;  // odd: lanes on neighbouring points read distinct banks
  const int tid = static_cast<int>(threadIdx.x);
  const int pg = tid % PG;
  const int cg = tid / PG;  // == CG for the few threads past PG * CG: idle
  const int j0 = cg * kFullRJ;
  const std::size_t p0 = static_cast<std::size_t>(blockIdx.x) * TP;
  const int k_first = static_cast<int>(blockIdx.y) * kFullComponents;
  const int k_last = k_first + kFullComponents < K ? k_first + kFullComponents : K;
  for (int k = k_first; k < k_last; ++k) {
    const S* hi = p.means + static_cast<std::size_t>(k) * D;
    const S* lo = p.means_lo + static_cast<std::size_t>(k) * D;
    const S* P = C == CovarianceType::tied ? p.factors : p.factors + static_cast<std::size_t>(k) * D * D;
    __syncthreads();  // the previous component's sums are read
    for (int idx = tid; idx < D * D; idx += kFullThreads) {
      const int i = idx / D;
      const int j = idx - i * D;
      ps[idx] = i <= j ? P[idx] : S(0);
    }
    for (int idx = tid; idx < TP * D; idx += kFullThreads) {
      const int q = idx / D;
      const int i = idx - q * D;
      const std::size_t pt = p0 + static_cast<std::size_t>(q);
      ys[q * W + i] = pt < n ? (X[pt * static_cast<std::size_t>(D) + i] - hi[i]) - lo[i] : S(0);
    }
    __syncthreads();
    S part[kFullRP];
#pragma unroll
    for (int r = 0; r < kFullRP; ++r) part[r] = S(0);
    if (cg < CG) {
      S z[kFullRP][kFullRJ];
#pragma unroll
      for (int r = 0; r < kFullRP; ++r)
#pragma unroll
        for (int c = 0; c < kFullRJ; ++c) z[r][c] = S(0);
      const int rows = j0 + kFullRJ < D ? j0 + kFullRJ : D;  // z_j needs rows i <= j
      for (int i = 0; i < rows; ++i) {
        S pv[kFullRJ];
#pragma unroll
        for (int c = 0; c < kFullRJ; ++c) pv[c] = j0 + c < D ? ps[i * D + j0 + c] : S(0);
#pragma unroll
        for (int r = 0; r < kFullRP; ++r) {
          const S y = ys[(pg + PG * r) * W + i];
#pragma unroll
          for (int c = 0; c < kFullRJ; ++c) z[r][c] += y * pv[c];
        }
      }
#pragma unroll
      for (int r = 0; r < kFullRP; ++r)
#pragma unroll
        for (int c = 0; c < kFullRJ; ++c) part[r] += z[r][c] * z[r][c];
    }
    __syncthreads();  // ys is free: it takes the sums [column group][point]
    if (cg < CG) {
#pragma unroll
      for (int r = 0; r < kFullRP; ++r) ys[cg * TP + pg + PG * r] = part[r];
    }
    __syncthreads();
    const S lw = p.log_weights[k];
    const S ld = p.log_det[k];
    for (int q = tid; q < TP; q += kFullThreads) {
      const std::size_t pt = p0 + static_cast<std::size_t>(q);
      if (pt >= n) continue;
      S maha = S(0);
      for (int g = 0; g < CG; ++g) maha += ys[g * TP + q];
      resp[static_cast<std::size_t>(k) * stride + pt] = math::log_joint(lw, ld, maha, D);
    }
  }
}

template <typename S>
__global__ void __launch_bounds__(kStatsThreads)
    segment_stats_kernel(const S* __restrict__ X, std::size_t n, int D, const S* __restrict__ shift,
                         const S* __restrict__ resp, std::size_t stride, const unsigned* __restrict__ entries,
                         int M, int lanes, int groups, int tile_points, double* __restrict__ partials,
                         std::size_t L) {
  CUEM_DYNAMIC_SHARED(smem);
  double* red = reinterpret_cast<double*>(smem);  // kStatsThreads
  S* g = reinterpret_cast<S*>(red + kStatsThreads);  // tile_points
  S* y = g + tile_points;                          // tile_points x (D + 1)
  const int k = static_cast<int>(blockIdx.y);
  const std::size_t seg = blockIdx.x;
  const std::size_t begin = seg * kSegmentPoints;
  const std::size_t end = begin + kSegmentPoints < n ? begin + kSegmentPoints : n;
  const int tid = static_cast<int>(threadIdx.x);
  const int group = tid / lanes;
  const int lane = tid - group * lanes;
  const bool active = group < groups;
  const int W = D + 1;
  const S* c = shift + static_cast<std::size_t>(k) * D;
  const S* gk = resp + static_cast<std::size_t>(k) * stride;
  double* out = partials + seg * L + static_cast<std::size_t>(k) * M;
  const unsigned one_one = static_cast<unsigned>(D) | (static_cast<unsigned>(D) << 16);

  for (int pass = 0; pass < M; pass += lanes * kStatsAccumulators) {
    // Accumulators this pass needs (the same for the whole block): M = 257 needs 2, not 8.
    const int left = (M - pass + lanes - 1) / lanes;
    const int used = left < kStatsAccumulators ? left : kStatsAccumulators;
    double acc[kStatsAccumulators];
    unsigned ab[kStatsAccumulators];
#pragma unroll
    for (int j = 0; j < kStatsAccumulators; ++j) {
      const int e = pass + j * lanes + lane;
      acc[j] = 0.0;
      ab[j] = active && e < M ? entries[e] : one_one;
    }
    for (std::size_t t0 = begin; t0 < end; t0 += static_cast<std::size_t>(tile_points)) {
      const int cnt = static_cast<int>(end - t0 < static_cast<std::size_t>(tile_points) ? end - t0 : tile_points);
      __syncthreads();  // the previous tile is consumed
      for (int idx = tid; idx < cnt * W; idx += kStatsThreads) {
        const int q = idx / W;
        const int d = idx - q * W;
        y[idx] = d < D ? X[(t0 + q) * static_cast<std::size_t>(D) + d] - c[d] : S(1);
      }
      for (int idx = tid; idx < cnt; idx += kStatsThreads) g[idx] = gk[t0 + idx];
      __syncthreads();
      if (active) {
        S part[kStatsAccumulators];
#pragma unroll
        for (int j = 0; j < kStatsAccumulators; ++j) part[j] = S(0);
        for (int q = group; q < cnt; q += groups) {
          const S gq = g[q];
          if (gq == S(0)) continue;  // hard assignments: most points miss most components
          const S* yq = y + q * W;
#pragma unroll
          for (int j = 0; j < kStatsAccumulators; ++j)
            if (j < used) part[j] += gq * yq[ab[j] & 0xffffu] * yq[ab[j] >> 16];
        }
#pragma unroll
        for (int j = 0; j < kStatsAccumulators; ++j) acc[j] += static_cast<double>(part[j]);
      }
    }
    if (groups == 1) {
      // Only the threads of group 0: when lanes does not divide the block (M = 153 for
      // full D = 16), the idle threads past it would write zeros over its entries.
#pragma unroll
      for (int j = 0; j < kStatsAccumulators; ++j) {
        const int e = pass + j * lanes + lane;
        if (active && e < M) out[e] = acc[j];
      }
    } else {
      // Several groups only when M < kStatsThreads: then lanes == M, one pass, and only
      // accumulator 0 holds an entry.
      __syncthreads();
      if (active) red[group * lanes + lane] = acc[0];
      __syncthreads();
      if (tid < M) {
        double s = 0.0;
        for (int q = 0; q < groups; ++q) s += red[q * lanes + tid];
        out[tid] = s;
      }
    }
  }
}

// The full layout's statistics (M = 1 + D + D(D+1)/2) in 4 x 4 blocks: with y extended
// by y[D] = 1, N_k, S1_k and S2_k are the upper triangle of sum g y y^T over D + 1
// coordinates, and each thread of multi_block_stats_kernel (below) owns one 4 x 4 block
// of it. Per point it makes two vector loads and reads a responsibility for 16 products,
// where segment_stats_kernel loads 2 or 3 values per product. Rows of the staged tile
// are zero past x[D], so no load needs a guard.

// Four consecutive values from 16-byte aligned shared memory in vector loads (one
// instruction in float32, two in float64, where four scalar loads issued four).
__device__ __forceinline__ void load4(const float* p, float (&out)[4]) {
  const float4 v = *reinterpret_cast<const float4*>(p);
  out[0] = v.x;
  out[1] = v.y;
  out[2] = v.z;
  out[3] = v.w;
}
__device__ __forceinline__ void load4(const double* p, double (&out)[4]) {
  const double2 a = *reinterpret_cast<const double2*>(p);
  const double2 b = *reinterpret_cast<const double2*>(p + 2);
  out[0] = a.x;
  out[1] = a.y;
  out[2] = b.x;
  out[3] = b.y;
}

inline constexpr int kBlockStatsThreads = 256;

inline constexpr int kBlockStatsMinD = 8;
inline constexpr int kBlockStatsMaxD = 87;  // (D + 1) / 4 blocks a side: at most 256 blocks

__host__ __device__ inline int stats_block_side(int D) { return (D + 1 + 3) / 4; }

// The statistics entry of (a, b), a <= b <= D, over y extended by y[D] = 1: N_k at
// (D, D), S1 at (a, D), S2's upper triangle row by row (stats_entries' order).
__host__ __device__ inline int stats_entry(int D, int a, int b) {
  if (b == D) return a == D ? 0 : 1 + a;
  return 1 + D + a * D - a * (a - 1) / 2 + (b - a);
}

// Which block of the triangle a thread owns, and the per-point and per-tile updates of
// its 16 cells.
__device__ __forceinline__ void stats_block_of(int blk, int CB, int* bi, int* bj) {
  int i = 0, rest = blk;  // row by row over the blocks (i, j), i <= j
  while (rest >= CB - i) {
    rest -= CB - i;
    ++i;
  }
  *bi = i;
  *bj = i + rest;
}

template <typename S>
__device__ __forceinline__ void outer_add(const S (&a)[4], const S (&b)[4], S (&part)[4][4]) {
#pragma unroll
  for (int u = 0; u < 4; ++u)
#pragma unroll
    for (int v = 0; v < 4; ++v) part[u][v] += a[u] * b[v];
}

template <typename S, typename T>
__device__ __forceinline__ void fill4x4(T (&cells)[4][4], S value) {
#pragma unroll
  for (int u = 0; u < 4; ++u)
#pragma unroll
    for (int v = 0; v < 4; ++v) cells[u][v] = static_cast<T>(value);
}

template <typename S>
__device__ __forceinline__ void add_tile(const S (&part)[4][4], double (&acc)[4][4]) {
#pragma unroll
  for (int u = 0; u < 4; ++u)
#pragma unroll
    for (int v = 0; v < 4; ++v) acc[u][v] += static_cast<double>(part[u][v]);
}



// A block takes one segment and G = 256 / blocks components (G = 1 past D = 59; 5 at
// D = 32): the tile is staged once, unshifted (x[D] = 1), for all G, and each thread,
// one (component, block) pair, forms y = x - c_k for its 8 coordinates in registers and
// runs over all the tile's points.
__host__ __device__ inline int stats_components_per_block(int D) {
  const int CB = stats_block_side(D);
  return kBlockStatsThreads / (CB * (CB + 1) / 2);
}

template <typename S>
__global__ void __launch_bounds__(kBlockStatsThreads)
    multi_block_stats_kernel(const S* __restrict__ X, std::size_t n, int D, int K, const S* __restrict__ shift,
                             const S* __restrict__ resp, std::size_t stride, int tile_points,
                             double* __restrict__ partials, std::size_t L) {
  CUEM_DYNAMIC_SHARED(smem);
  const int CB = stats_block_side(D);
  const int pitch = 4 * CB;
  const int nb = CB * (CB + 1) / 2;
  const int G = kBlockStatsThreads / nb;
  S* x = reinterpret_cast<S*>(smem);                        // tile_points x pitch, 16-byte rows
  S* g = x + static_cast<std::size_t>(tile_points) * pitch;  // G x tile_points
  const int tid = static_cast<int>(threadIdx.x);
  const int j = tid / nb;
  const int blk = tid % nb;
  const int k0 = static_cast<int>(blockIdx.y) * G;
  const int Gb = K - k0 < G ? K - k0 : G;
  const bool active = j < Gb;
  int bi = 0, bj = 0;
  stats_block_of(blk, CB, &bi, &bj);
  const int k = k0 + (active ? j : 0);
  const std::size_t seg = blockIdx.x;
  const std::size_t begin = seg * kSegmentPoints;
  const std::size_t end = begin + kSegmentPoints < n ? begin + kSegmentPoints : n;
  S ca[4], cb[4];  // the shift of this thread's coordinates (0 for the ones and the padding)
#pragma unroll
  for (int u = 0; u < 4; ++u) {
    ca[u] = 4 * bi + u < D ? shift[static_cast<std::size_t>(k) * D + 4 * bi + u] : S(0);
    cb[u] = 4 * bj + u < D ? shift[static_cast<std::size_t>(k) * D + 4 * bj + u] : S(0);
  }
  double acc[4][4];
  fill4x4(acc, 0.0);
  for (std::size_t t0 = begin; t0 < end; t0 += static_cast<std::size_t>(tile_points)) {
    const int cnt = static_cast<int>(end - t0 < static_cast<std::size_t>(tile_points) ? end - t0 : tile_points);
    __syncthreads();  // the previous tile is consumed
    for (int idx = tid; idx < cnt * pitch; idx += kBlockStatsThreads) {
      const int q = idx / pitch;
      const int d = idx - q * pitch;
      x[q * pitch + d] = d < D ? X[(t0 + q) * static_cast<std::size_t>(D) + d] : (d == D ? S(1) : S(0));
    }
    for (int idx = tid; idx < Gb * cnt; idx += kBlockStatsThreads) {
      const int jj = idx / cnt;
      const int q = idx - jj * cnt;
      g[jj * tile_points + q] = resp[static_cast<std::size_t>(k0 + jj) * stride + t0 + q];
    }
    __syncthreads();
    if (active) {
      S part[4][4];
      fill4x4(part, S(0));
      const S* gj = g + j * tile_points;
      for (int q = 0; q < cnt; ++q) {
        const S gq = gj[q];
        if (gq == S(0)) continue;  // hard assignments: most points miss most components
        const S* xq = x + q * pitch;
        S ga[4], yb[4];
        load4(xq + 4 * bi, ga);
        load4(xq + 4 * bj, yb);
#pragma unroll
        for (int u = 0; u < 4; ++u) {
          ga[u] = gq * (ga[u] - ca[u]);
          yb[u] -= cb[u];
        }
        outer_add(ga, yb, part);
      }
      add_tile(part, acc);
    }
  }
  if (!active) return;
  double* out = partials + seg * L + static_cast<std::size_t>(k) * (1 + D + static_cast<std::size_t>(D) * (D + 1) / 2);
#pragma unroll
  for (int u = 0; u < 4; ++u)
#pragma unroll
    for (int v = 0; v < 4; ++v) {
      const int a = 4 * bi + u;
      const int b = 4 * bj + v;
      if (a <= b && b <= D) out[stats_entry(D, a, b)] = acc[u][v];
    }
}

// The diagonal layout (M = 1 + 2D: N_k, S1, the diagonal of S2) for several components
// per block: the tile of points is staged once, unshifted, and each thread owns
// (component, dimension) pairs, forming y = x_d - c_kd in registers. Staging is then
// shared by G components instead of repeated for each (the generic kernel reads a
// segment K times; at K = 1024 that is most of its time). Used when a block's pairs give
// every thread work; the sums run in the same fixed order pattern (tile sums in S, then
// float64).
inline constexpr int kDiagThreads = 256;
inline constexpr int kDiagPairs = 4;  // (component, dimension) pairs per thread per pass
inline constexpr int kDiagTileBytes = 32 * 1024;
inline constexpr int kDiagMinTile = 32;

template <typename S>
__global__ void __launch_bounds__(kDiagThreads)
    diag_segment_stats_kernel(const S* __restrict__ X, std::size_t n, int D, int K, const S* __restrict__ shift,
                              const S* __restrict__ resp, const S* __restrict__ norm, std::size_t stride, int G,
                              int tile_points,
                              double* __restrict__ partials, std::size_t L) {
  CUEM_DYNAMIC_SHARED(smem);
  S* x = reinterpret_cast<S*>(smem);                             // tile_points x D
  S* g = x + static_cast<std::size_t>(tile_points) * D;          // G x tile_points
  const int k0 = static_cast<int>(blockIdx.y) * G;
  const int Gb = K - k0 < G ? K - k0 : G;
  const std::size_t seg = blockIdx.x;
  const std::size_t begin = seg * kSegmentPoints;
  const std::size_t end = begin + kSegmentPoints < n ? begin + kSegmentPoints : n;
  const int tid = static_cast<int>(threadIdx.x);
  const int P = Gb * D;
  const std::size_t M = 1 + 2 * static_cast<std::size_t>(D);
  for (int pass = 0; pass < P; pass += kDiagThreads * kDiagPairs) {
    int jj[kDiagPairs], dd[kDiagPairs];
    bool own[kDiagPairs];
    S c[kDiagPairs];
    double a1[kDiagPairs], a2[kDiagPairs], an[kDiagPairs];
#pragma unroll
    for (int p = 0; p < kDiagPairs; ++p) {
      const int idx = pass + p * kDiagThreads + tid;
      own[p] = idx < P;
      jj[p] = own[p] ? idx / D : 0;
      dd[p] = own[p] ? idx - jj[p] * D : 0;
      c[p] = own[p] ? shift[static_cast<std::size_t>(k0 + jj[p]) * D + dd[p]] : S(0);
      a1[p] = a2[p] = an[p] = 0.0;
    }
    for (std::size_t t0 = begin; t0 < end; t0 += static_cast<std::size_t>(tile_points)) {
      const int cnt = static_cast<int>(end - t0 < static_cast<std::size_t>(tile_points) ? end - t0 : tile_points);
      __syncthreads();  // the previous tile is consumed
      const S* src = X + t0 * static_cast<std::size_t>(D);
      for (int idx = tid; idx < cnt * D; idx += kDiagThreads) x[idx] = src[idx];
      for (int idx = tid; idx < Gb * cnt; idx += kDiagThreads) {
        const int j = idx / cnt;
        const int q = idx - j * cnt;
        g[j * tile_points + q] = staged_resp(resp, norm, stride, k0 + j, K, t0 + q);
      }
      __syncthreads();
      S p1[kDiagPairs], p2[kDiagPairs], pn[kDiagPairs];
#pragma unroll
      for (int p = 0; p < kDiagPairs; ++p) p1[p] = p2[p] = pn[p] = S(0);
      for (int q = 0; q < cnt; ++q) {
#pragma unroll
        for (int p = 0; p < kDiagPairs; ++p) {
          if (!own[p]) continue;
          const S gq = g[jj[p] * tile_points + q];
          const S y = x[q * D + dd[p]] - c[p];
          const S gy = gq * y;
          p1[p] += gy;
          p2[p] += gy * y;
          pn[p] += gq;
        }
      }
#pragma unroll
      for (int p = 0; p < kDiagPairs; ++p) {
        a1[p] += static_cast<double>(p1[p]);
        a2[p] += static_cast<double>(p2[p]);
        an[p] += static_cast<double>(pn[p]);
      }
    }
#pragma unroll
    for (int p = 0; p < kDiagPairs; ++p) {
      if (!own[p]) continue;
      double* o = partials + seg * L + static_cast<std::size_t>(k0 + jj[p]) * M;
      o[1 + dd[p]] = a1[p];
      o[1 + D + dd[p]] = a2[p];
      if (dd[p] == 0) o[0] = an[p];
    }
  }
}

// The diagonal layout's statistics for many components and dimensions as register
// tiles: a block owns 64 components x 64 dimensions of one segment, each thread 4 x 4
// (component, dimension) cells, and the segment's points pass through shared memory
// kStatTilePoints at a time (x rows and the components' responsibilities, padded rows).
// Per point a thread loads 4 x values and 4 responsibilities for 16 cells, where
// diag_segment_stats_kernel loads 2 values per cell. Tiles of 32 dimensions (RD = 2,
// 2 x values and RK responsibilities for 2 RK cells) where they pad fewer dimensions
// than tiles of 64 (D mod 64 in 1..32: at D = 32 a 64-dimension tile is half padding).
// Sums as there: over a tile in S, then into float64, in point order. Padding (points
// past the segment, components past K, dimensions past D) is zero and adds exactly zero;
// only real cells are written.
inline constexpr int kStatTileThreads = 256;  // 16 x 16
// RK components a thread: 4 (64 a block), or 2 where K is at most 32.
template <int RK>
inline constexpr int kStatTileComponents = 16 * RK;
// RD dimensions a thread: 4 (64 a block), or 2 (32) where that pads fewer dimensions.
template <int RD>
inline constexpr int kStatTileDimsOf = 16 * RD;
inline constexpr int kStatTileDims = kStatTileDimsOf<4>;
inline bool narrow_stat_tiles(int D) { return (D + 31) / 32 * 32 < (D + 63) / 64 * 64; }
template <typename S>
inline constexpr int kStatTilePoints = static_cast<int>(256 / sizeof(S));  // 32 KiB of tiles

template <typename S, int RK, int RD>
__global__ void __launch_bounds__(kStatTileThreads)
    tiled_diag_stats_kernel(const S* __restrict__ X, std::size_t n, int D, int K, const S* __restrict__ shift,
                            const S* __restrict__ resp, const S* __restrict__ norm, std::size_t stride,
                            double* __restrict__ partials, std::size_t L) {
  constexpr int TP = kStatTilePoints<S>;
  constexpr int TD = kStatTileDimsOf<RD>;
  __shared__ S xs[TP * (TD + 1)];                       // [point][dimension]
  __shared__ S gs[kStatTileComponents<RK> * (TP + 1)];  // [component][point]
  const int tid = static_cast<int>(threadIdx.x);
  const int td = tid % 16;
  const int tk = tid / 16;
  const std::size_t seg = blockIdx.x;
  const int k0 = static_cast<int>(blockIdx.y) * kStatTileComponents<RK>;
  const int d0 = static_cast<int>(blockIdx.z) * TD;
  const std::size_t begin = seg * kSegmentPoints;
  const std::size_t end = begin + kSegmentPoints < n ? begin + kSegmentPoints : n;
  S c[RK][RD];
  double a1[RK][RD], a2[RK][RD], an[RK];
#pragma unroll
  for (int i = 0; i < RK; ++i) {
    const int k = k0 + tk + 16 * i;
    an[i] = 0.0;
#pragma unroll
    for (int j = 0; j < RD; ++j) {
      const int d = d0 + td + 16 * j;
      c[i][j] = k < K && d < D ? shift[static_cast<std::size_t>(k) * D + d] : S(0);
      a1[i][j] = a2[i][j] = 0.0;
    }
  }
  for (std::size_t t0 = begin; t0 < end; t0 += TP) {
    const int cnt = static_cast<int>(end - t0 < static_cast<std::size_t>(TP) ? end - t0 : TP);
    __syncthreads();  // the previous tile is consumed
    for (int idx = tid; idx < TP * TD; idx += kStatTileThreads) {
      const int q = idx / TD;
      const int d = idx - q * TD;
      xs[q * (TD + 1) + d] =
          q < cnt && d0 + d < D ? X[(t0 + q) * static_cast<std::size_t>(D) + d0 + d] : S(0);
    }
    {
      // A thread stages one point's components (TP divides the thread count), so a
      // deferred normalisation's maximum and reciprocal sum are read once a tile.
      static_assert(kStatTileThreads % TP == 0, "a thread's point must not change within a tile");
      const int q = tid % TP;
      const std::size_t i = t0 + static_cast<std::size_t>(q);
      const S m = norm && q < cnt ? norm[i] : S(0);
      const S inv = norm && q < cnt ? norm[stride + i] : S(0);
      for (int j = tid / TP; j < kStatTileComponents<RK>; j += kStatTileThreads / TP) {
        S g = S(0);
        if (q < cnt && k0 + j < K) {
          const S v = resp[static_cast<std::size_t>(k0 + j) * stride + i];
          g = norm ? deferred_resp(v, m, inv, K) : v;
        }
        gs[j * (TP + 1) + q] = g;
      }
    }
    __syncthreads();
    S p1[RK][RD], p2[RK][RD], pn[RK];
#pragma unroll
    for (int i = 0; i < RK; ++i) {
      pn[i] = S(0);
#pragma unroll
      for (int j = 0; j < RD; ++j) p1[i][j] = p2[i][j] = S(0);
    }
    for (int q = 0; q < TP; ++q) {
      S xv[RD], gv[RK];
#pragma unroll
      for (int j = 0; j < RD; ++j) xv[j] = xs[q * (TD + 1) + td + 16 * j];
#pragma unroll
      for (int i = 0; i < RK; ++i) gv[i] = gs[(tk + 16 * i) * (TP + 1) + q];
#pragma unroll
      for (int i = 0; i < RK; ++i) {
        pn[i] += gv[i];
#pragma unroll
        for (int j = 0; j < RD; ++j) {
          const S y = xv[j] - c[i][j];
          const S gy = gv[i] * y;
          p1[i][j] += gy;
          p2[i][j] += gy * y;
        }
      }
    }
#pragma unroll
    for (int i = 0; i < RK; ++i) {
      an[i] += static_cast<double>(pn[i]);
#pragma unroll
      for (int j = 0; j < RD; ++j) {
        a1[i][j] += static_cast<double>(p1[i][j]);
        a2[i][j] += static_cast<double>(p2[i][j]);
      }
    }
  }
  const std::size_t M = 1 + 2 * static_cast<std::size_t>(D);
#pragma unroll
  for (int i = 0; i < RK; ++i) {
    const int k = k0 + tk + 16 * i;
    if (k >= K) continue;
    double* o = partials + seg * L + static_cast<std::size_t>(k) * M;
    if (td == 0 && blockIdx.z == 0) o[0] = an[i];
#pragma unroll
    for (int j = 0; j < RD; ++j) {
      const int d = d0 + td + 16 * j;
      if (d >= D) continue;
      o[1 + d] = a1[i][j];
      o[1 + D + d] = a2[i][j];
    }
  }
}

template <typename S>
__global__ void __launch_bounds__(kSumThreads)
    segment_log_likelihood_kernel(const S* __restrict__ log_prob, std::size_t n, double* __restrict__ partials,
                                  std::size_t L, std::size_t offset) {
  using BlockReduce = cub::BlockReduce<double, kSumThreads, cub::BLOCK_REDUCE_RAKING>;
  __shared__ typename BlockReduce::TempStorage temp;
  const std::size_t seg = blockIdx.x;
  const std::size_t begin = seg * kSegmentPoints;
  const std::size_t end = begin + kSegmentPoints < n ? begin + kSegmentPoints : n;
  double s = 0.0;
  for (std::size_t i = begin + threadIdx.x; i < end; i += kSumThreads) s += static_cast<double>(log_prob[i]);
  const double total = BlockReduce(temp).Sum(s);
  if (threadIdx.x == 0) partials[seg * L + offset] = total;
}

// The whole E-step of a segment in one kernel, for one or two dimensions and few
// components (G1, G5, configs A and E): a block is a segment (256 threads x 32 points,
// strided so loads coalesce); each thread forms its points' responsibilities in
// registers and adds them straight into its statistics (sums in S over its 32 points),
// and the block adds every thread's sums in float64 in a fixed order (below). No N x K responsibilities are written or read back, and the data are
// read once where the two-kernel path reads them once per component.
inline constexpr int kFusedThreads = 256;
inline constexpr int kFusedPerThread = static_cast<int>(kSegmentPoints) / kFusedThreads;
inline constexpr int kFusedBatch = 16;  // values summed per round; kFusedBatch^2 == kFusedThreads

template <CovarianceType C, int D>
inline constexpr int kFusedM = C == CovarianceType::full || C == CovarianceType::tied ? 1 + D + D * (D + 1) / 2
                                                                                      : 1 + 2 * D;
// The largest K per D: K x M sums in registers, about 48 in float32 and half that in
// float64 (at 16 x 3 doubles ptxas spilled on sm_80).
template <typename S, int D>
inline constexpr int kFusedMaxK = (D == 1 ? 16 : 8) / (sizeof(S) == 8 ? 2 : 1);

// Two resident blocks (up to 128 registers): with the thread count alone ptxas held the
// sm_90 tied kernel to 80 and spilled.
template <typename S, CovarianceType C, int D>
__global__ void __launch_bounds__(kFusedThreads, 2)
    fused_estep_kernel(ComponentParams<S> p, const S* __restrict__ X, std::size_t n, double* __restrict__ partials,
                       std::size_t L) {
  constexpr int KMAX = kFusedMaxK<S, D>;
  constexpr int M = kFusedM<C, D>;
  constexpr bool kFull = C == CovarianceType::full || C == CovarianceType::tied;
  __shared__ double values[kFusedBatch][kFusedThreads];
  __shared__ double parts[kFusedBatch][kFusedBatch + 1];  // odd pitch: the totals' reads hit distinct banks
  const int K = p.K;
  const std::size_t seg = blockIdx.x;
  const std::size_t begin = seg * kSegmentPoints;
  S acc[KMAX][M];
  S lp_sum = S(0);
#pragma unroll
  for (int k = 0; k < KMAX; ++k)
#pragma unroll
    for (int e = 0; e < M; ++e) acc[k][e] = S(0);
  for (int j = 0; j < kFusedPerThread; ++j) {
    const std::size_t i = begin + static_cast<std::size_t>(j) * kFusedThreads + threadIdx.x;
    if (i >= n) break;
    S x[D];
#pragma unroll
    for (int d = 0; d < D; ++d) x[d] = X[i * D + d];
    S v[KMAX] = {};
    S m = S(-INFINITY);
#pragma unroll
    for (int k = 0; k < KMAX; ++k) {
      if (k >= K) break;
      const S* hi = p.means + k * D;
      const S* lo = p.means_lo + k * D;
      const auto diff = [&](int d) { return (x[d] - hi[d]) - lo[d]; };
      S maha;
      if constexpr (C == CovarianceType::full)
        maha = math::mahalanobis_sq_full_of(diff, p.factors + k * D * D, D);
      else if constexpr (C == CovarianceType::tied)
        maha = math::mahalanobis_sq_full_of(diff, p.factors, D);
      else if constexpr (C == CovarianceType::diag)
        maha = math::mahalanobis_sq_diag_of(diff, p.factors + k * D, D);
      else
        maha = math::mahalanobis_sq_spherical_of(diff, p.factors[k], D);
      v[k] = math::log_joint(p.log_weights[k], p.log_det[k], maha, D);
      m = v[k] > m ? v[k] : m;
    }
    // As normalize_point: exp(v - m) / sum, or an even share where no component can
    // explain the point.
    const bool none = !(m > S(-INFINITY));
    S sum = S(0);
#pragma unroll
    for (int k = 0; k < KMAX; ++k) {
      if (k >= K) break;
      v[k] = none ? S(1) / static_cast<S>(K) : exp_s(v[k] - m);
      sum += v[k];
    }
    const S inv = none ? S(1) : S(1) / sum;
    lp_sum += none ? m : m + log_s(sum);
#pragma unroll
    for (int k = 0; k < KMAX; ++k) {
      if (k >= K) break;
      const S g = none ? v[k] : v[k] * inv;
      S y[D];
#pragma unroll
      for (int d = 0; d < D; ++d) y[d] = x[d] - p.means[k * D + d];  // about the shift (hi)
      acc[k][0] += g;
#pragma unroll
      for (int a = 0; a < D; ++a) acc[k][1 + a] += g * y[a];
      int e = 1 + D;
#pragma unroll
      for (int a = 0; a < D; ++a)
#pragma unroll
        for (int b = kFull ? a : 0; b < (kFull ? D : 1); ++b) {
          const int bb = kFull ? b : a;
          acc[k][e] += g * y[a] * y[bb];
          ++e;
        }
    }
  }
  // The block's sums of the K x M statistics and the log-likelihood (value v = k M + e,
  // then K M), 16 values at a time: every thread's values in shared memory, 16 partial
  // sums of 16 threads each (partial q of threads q, q + 16, ..., so that the 16 lanes
  // reading one value's row hit 16 different banks), then the 16 totals; every sum in a
  // fixed order. (One block reduction per value would cost two barriers each, 98 at
  // K x M = 48.)
  double* out = partials + seg * L;
  const int tid = static_cast<int>(threadIdx.x);
  const int n_values = K * M + 1;
  for (int base = 0; base < n_values; base += kFusedBatch) {
    __syncthreads();  // the previous batch is read
#pragma unroll
    for (int k = 0; k < KMAX; ++k)
#pragma unroll
      for (int e = 0; e < M; ++e) {
        const int v = k * M + e - base;
        if (k < K && v >= 0 && v < kFusedBatch) values[v][tid] = static_cast<double>(acc[k][e]);
      }
    if (K * M - base >= 0 && K * M - base < kFusedBatch) values[K * M - base][tid] = static_cast<double>(lp_sum);
    __syncthreads();
    {
      const int j = tid / kFusedBatch;
      const int part = tid % kFusedBatch;
      double sum = 0.0;
      if (base + j < n_values)
        for (int t = 0; t < kFusedThreads / kFusedBatch; ++t) sum += values[j][t * kFusedBatch + part];
      parts[j][part] = sum;
    }
    __syncthreads();
    if (tid < kFusedBatch && base + tid < n_values) {
      double sum = 0.0;
      for (int q = 0; q < kFusedBatch; ++q) sum += parts[tid][q];
      out[base + tid] = sum;
    }
  }
}

// The tiled kernels (tiled_log_joint_kernel where a block's tile of components is mostly
// used, K >= 8, in the diagonal and spherical layouts; tiled_diag_stats_kernel for their
// statistics with K >= 32 and D >= 32). CUEM_CUDA_TILED=0 in the environment keeps the
// simpler kernels everywhere, for side-by-side timing of the two (bench/NOTES.md).
inline bool tiled_kernels_enabled() {
  static const bool enabled = [] {
    const char* v = std::getenv("CUEM_CUDA_TILED");
    return !(v && v[0] == '0');
  }();
  return enabled;
}

// Components a thread of tiled_diag_stats_kernel takes where K > 32: 4 (64 a block, 0.5
// shared loads a cell, ~175 registers: one block an SM) unless CUEM_CUDA_STATS_RK=2 in
// the environment asks for 2 (32 a block, 0.75 loads a cell, ~96 registers: two blocks),
// so that the first GPU run can time both (scripts/gpu_check.sh, bench/NOTES.md).
inline int diag_stats_rk() {
  static const int rk = [] {
    const char* v = std::getenv("CUEM_CUDA_STATS_RK");
    return v && v[0] == '2' && v[1] == '\0' ? 2 : 4;
  }();
  return rk;
}

template <typename S>
void posteriors(const ComponentParams<S>& p, const S* X, std::size_t n, S* resp, std::size_t stride, S* log_prob,
                cudaStream_t stream) {
  if (n == 0) return;
  const auto blocks = checked_cast<unsigned>((n + kPosteriorThreads - 1) / kPosteriorThreads, "posterior blocks");
  const bool tiled_layout = p.type == CovarianceType::diag || p.type == CovarianceType::spherical;
  if (tiled_layout && p.K >= 8 && tiled_kernels_enabled()) {
    // K <= 64: one tile holds every component and the kernel normalises; beyond, the
    // log joints go to normalize_kernel.
    const auto launch = [&](auto rk, auto out) {
      constexpr int RK = decltype(rk)::value;
      constexpr TileOut Out = decltype(out)::value;
      const dim3 grid(checked_cast<unsigned>((n + kTilePoints - 1) / kTilePoints, "posterior tiles"),
                      checked_cast<unsigned>((p.K + kTileComponents<RK> - 1) / kTileComponents<RK>, "component tiles"));
      if (grid.y > 65535u) throw DeviceError("too many components for the CUDA backend; use device 'cpu'");
      if (p.type == CovarianceType::diag)
        CUEM_LAUNCH((tiled_log_joint_kernel<S, CovarianceType::diag, RK, Out>), grid, kTileThreads, 0, stream)(
            p, X, n, resp, stride, log_prob);
      else
        CUEM_LAUNCH((tiled_log_joint_kernel<S, CovarianceType::spherical, RK, Out>), grid, kTileThreads, 0, stream)(
            p, X, n, resp, stride, log_prob);
      CUEM_CUDA_CHECK_LAUNCH();
    };
    using Normalised = std::integral_constant<TileOut, TileOut::responsibilities>;
    if (p.K <= 16) {
      launch(std::integral_constant<int, 1>{}, Normalised{});
    } else if (p.K <= 32) {
      launch(std::integral_constant<int, 2>{}, Normalised{});
    } else if (p.K <= 64) {
      launch(std::integral_constant<int, 4>{}, Normalised{});
    } else {
      launch(std::integral_constant<int, 4>{}, std::integral_constant<TileOut, TileOut::log_joint>{});
      CUEM_LAUNCH((normalize_kernel<S>), blocks, kPosteriorThreads, 0, stream)(p.K, n, resp, stride, log_prob);
      CUEM_CUDA_CHECK_LAUNCH();
    }
    return;
  }
  const bool full_layout = p.type == CovarianceType::full || p.type == CovarianceType::tied;
  if (full_layout && p.D >= kFullMinD && p.D <= kFullMaxD<S> && tiled_kernels_enabled()) {
    const int TP = full_point_groups(p.D) * kFullRP;
    const dim3 grid(checked_cast<unsigned>((n + TP - 1) / TP, "posterior tiles"),
                    checked_cast<unsigned>((p.K + kFullComponents - 1) / kFullComponents, "component groups"));
    if (grid.y > 65535u) throw DeviceError("the CUDA backend handles at most 65535 x 8 components; use device 'cpu'");
    if (p.type == CovarianceType::full)
      CUEM_LAUNCH((tiled_full_log_joint_kernel<S, CovarianceType::full>), grid, kFullThreads, 0, stream)(
          p, X, n, resp, stride);
    else
      CUEM_LAUNCH((tiled_full_log_joint_kernel<S, CovarianceType::tied>), grid, kFullThreads, 0, stream)(
          p, X, n, resp, stride);
    CUEM_CUDA_CHECK_LAUNCH();
    CUEM_LAUNCH((normalize_kernel<S>), blocks, kPosteriorThreads, 0, stream)(p.K, n, resp, stride, log_prob);
    CUEM_CUDA_CHECK_LAUNCH();
    return;
  }
  switch (p.type) {
    case CovarianceType::full:
      CUEM_LAUNCH((posteriors_kernel<S, CovarianceType::full>), blocks, kPosteriorThreads, 0, stream)(
          p, X, n, resp, stride, log_prob);
      break;
    case CovarianceType::tied:
      CUEM_LAUNCH((posteriors_kernel<S, CovarianceType::tied>), blocks, kPosteriorThreads, 0, stream)(
          p, X, n, resp, stride, log_prob);
      break;
    case CovarianceType::diag:
      CUEM_LAUNCH((posteriors_kernel<S, CovarianceType::diag>), blocks, kPosteriorThreads, 0, stream)(
          p, X, n, resp, stride, log_prob);
      break;
    case CovarianceType::spherical:
      CUEM_LAUNCH((posteriors_kernel<S, CovarianceType::spherical>), blocks, kPosteriorThreads, 0, stream)(
          p, X, n, resp, stride, log_prob);
      break;
  }
  CUEM_CUDA_CHECK_LAUNCH();
}

// The fused E-step where it applies (one or two dimensions, K up to kFusedMaxK, the
// tiled kernels enabled); false where the caller must run posteriors and statistics.
template <typename S>
bool fused_estep(const ComponentParams<S>& p, const S* X, std::size_t n, double* partials, std::size_t L,
                 cudaStream_t stream) {
  if (!tiled_kernels_enabled() || p.D < 1 || p.D > 2 || p.K < 1) return false;
  if (p.K > (p.D == 1 ? kFusedMaxK<S, 1> : kFusedMaxK<S, 2>)) return false;
  if (n == 0) return true;
  const auto blocks = checked_cast<unsigned>((n + kSegmentPoints - 1) / kSegmentPoints, "statistics segments");
  const auto launch = [&](auto type, auto dims) {
    constexpr CovarianceType C = decltype(type)::value;
    constexpr int D = decltype(dims)::value;
    CUEM_LAUNCH((fused_estep_kernel<S, C, D>), blocks, kFusedThreads, 0, stream)(p, X, n, partials, L);
  };
  const auto with_type = [&](auto dims) {
    switch (p.type) {
      case CovarianceType::full: launch(std::integral_constant<CovarianceType, CovarianceType::full>{}, dims); break;
      case CovarianceType::tied: launch(std::integral_constant<CovarianceType, CovarianceType::tied>{}, dims); break;
      case CovarianceType::diag: launch(std::integral_constant<CovarianceType, CovarianceType::diag>{}, dims); break;
      case CovarianceType::spherical:
        launch(std::integral_constant<CovarianceType, CovarianceType::spherical>{}, dims);
        break;
    }
  };
  if (p.D == 1)
    with_type(std::integral_constant<int, 1>{});
  else
    with_type(std::integral_constant<int, 2>{});
  CUEM_CUDA_CHECK_LAUNCH();
  return true;
}

// Which statistics kernel a chunk's segments take, and its launch shape.
enum class StatsKernel { tiled_diag, diag_segment, multi_block, generic };
struct StatsPlan {
  StatsKernel kernel = StatsKernel::generic;
  int G = 1;             // components a block (diag_segment, multi_block)
  int tile = 1;          // points staged at a time (diag_segment, multi_block, generic)
  std::size_t smem = 0;  // dynamic shared memory
};

template <typename S>
StatsPlan plan_stats(int K, int D, int M) {
  StatsPlan plan;
  // Many components and dimensions: the register-tiled kernel (32 or 64 components x 64
  // dimensions a block; it idles threads where K or D is well under its tile, so smaller
  // shapes keep the kernels below).
  if (M == 1 + 2 * D && K >= kStatTileComponents<2> && D >= kStatTileDims / 2 && tiled_kernels_enabled() &&
      D <= 65535 * kStatTileDims) {
    plan.kernel = StatsKernel::tiled_diag;
    return plan;
  }
  // The diagonal layout with enough (component, dimension) pairs per block for every
  // thread: the multi-component kernel. (For D = 1 every layout is this one.)
  // A grid has at most 65535 component groups; beyond that the generic path says so.
  // G is also held to a tile of at least 32 points (kDiagMinTile), or the barriers
  // would outnumber the work when D is small and K large.
  const int tile_cap = static_cast<int>(kDiagTileBytes / (kDiagMinTile * sizeof(S))) - D;
  const int G = std::min({K, std::max(1, kDiagThreads * kDiagPairs / D), std::max(1, tile_cap)});
  if (M == 1 + 2 * D && G * D >= kDiagThreads && (K + G - 1) / G <= 65535) {
    const std::size_t per_point = (static_cast<std::size_t>(D) + static_cast<std::size_t>(G)) * sizeof(S);
    const int tile = static_cast<int>(std::clamp<std::size_t>(kDiagTileBytes / per_point, 1, 1024));
    const std::size_t smem = static_cast<std::size_t>(tile) * per_point;
    if (smem <= 48 * 1024) return {StatsKernel::diag_segment, G, tile, smem};
  }
  const bool full_layout = M == 1 + D + D * (D + 1) / 2 && M != 1 + 2 * D;
  if (full_layout && D >= kBlockStatsMinD && D <= kBlockStatsMaxD && tiled_kernels_enabled()) {
    const int Gb = stats_components_per_block(D);
    const int pitch = 4 * stats_block_side(D);
    const std::size_t per_point = static_cast<std::size_t>(pitch + Gb) * sizeof(S);
    // Whole 16-byte rows after the tile: a multiple of 4 points.
    const int tile = static_cast<int>(std::clamp<std::size_t>(kStatsTileBytes / per_point, 4, 1024)) / 4 * 4;
    return {StatsKernel::multi_block, Gb, tile, static_cast<std::size_t>(tile) * per_point};
  }
  const std::size_t per_point = static_cast<std::size_t>(D + 2) * sizeof(S);
  const int tile = static_cast<int>(std::clamp<std::size_t>(kStatsTileBytes / per_point, 1, 1024));
  return {StatsKernel::generic, 1, tile, kStatsThreads * sizeof(double) + static_cast<std::size_t>(tile) * per_point};
}

// Whether an E-step of this shape defers its normalisation to the statistics kernel
// (combine_tiles_kernel): the diagonal and spherical layouts with more components than
// one tile holds, whose statistics take a diagonal kernel that normalises as it stages.
template <typename S>
bool defers_normalization(CovarianceType type, int K, int D) {
  if (type != CovarianceType::diag && type != CovarianceType::spherical) return false;
  if (K <= kTileComponents<4> || !tiled_kernels_enabled()) return false;
  const StatsKernel k = plan_stats<S>(K, D, 1 + 2 * D).kernel;
  return k == StatsKernel::tiled_diag || k == StatsKernel::diag_segment;
}

// Rows of the normalisation buffer (combine_tiles_kernel) where the E-step defers, else 0.
template <typename S>
std::size_t deferred_norm_rows(CovarianceType type, int K, int D) {
  if (!defers_normalization<S>(type, K, D)) return 0;
  return 2 + 2 * static_cast<std::size_t>((K + kTileComponents<4> - 1) / kTileComponents<4>);
}

// Statistics of every segment of the chunk; norm: null where resp holds responsibilities,
// else the normalisation buffer of a deferred E-step (resp then holds log joints).
template <typename S>
void segment_stats(int K, int D, const S* X, std::size_t n, const S* shift, const S* resp, const S* norm,
                   std::size_t stride, const S* log_prob, const unsigned* entries, int M, double* partials,
                   std::size_t L, cudaStream_t stream) {
  if (n == 0) return;
  if (D > max_stats_dim(sizeof(S)))
    throw DeviceError("D = " + std::to_string(D) + " is more dimensions than the CUDA statistics kernel stages (" +
                      std::to_string(max_stats_dim(sizeof(S))) + "); use device 'cpu'");
  const std::size_t n_segments = (n + kSegmentPoints - 1) / kSegmentPoints;
  const StatsPlan plan = plan_stats<S>(K, D, M);
  if (norm && plan.kernel != StatsKernel::tiled_diag && plan.kernel != StatsKernel::diag_segment)
    throw Error("internal: deferred normalisation for a statistics kernel that cannot apply it");
  const auto segments = checked_cast<unsigned>(n_segments, "statistics segments");
  switch (plan.kernel) {
    case StatsKernel::tiled_diag: {
      const auto launch = [&](auto rk, auto rd) {
        constexpr int RK = decltype(rk)::value;
        constexpr int RD = decltype(rd)::value;
        const dim3 grid(segments,
                        checked_cast<unsigned>((K + kStatTileComponents<RK> - 1) / kStatTileComponents<RK>,
                                               "component tiles"),
                        static_cast<unsigned>((D + kStatTileDimsOf<RD> - 1) / kStatTileDimsOf<RD>));
        if (grid.y > 65535u) throw DeviceError("too many components for the CUDA backend; use device 'cpu'");
        CUEM_LAUNCH((tiled_diag_stats_kernel<S, RK, RD>), grid, kStatTileThreads, 0, stream)(
            X, n, D, K, shift, resp, norm, stride, partials, L);
      };
      const auto with_dims = [&](auto rk) {
        if (narrow_stat_tiles(D))
          launch(rk, std::integral_constant<int, 2>{});
        else
          launch(rk, std::integral_constant<int, 4>{});
      };
      if (K <= 32 || diag_stats_rk() == 2)
        with_dims(std::integral_constant<int, 2>{});
      else
        with_dims(std::integral_constant<int, 4>{});
      break;
    }
    case StatsKernel::diag_segment: {
      const dim3 grid(segments, checked_cast<unsigned>((K + plan.G - 1) / plan.G, "component groups"));
      CUEM_LAUNCH((diag_segment_stats_kernel<S>), grid, kDiagThreads, plan.smem, stream)(
          X, n, D, K, shift, resp, norm, stride, plan.G, plan.tile, partials, L);
      break;
    }
    case StatsKernel::multi_block: {
      const dim3 grid(segments, checked_cast<unsigned>((K + plan.G - 1) / plan.G, "component groups"));
      if (grid.y > 65535u) throw DeviceError("too many components for the CUDA backend; use device 'cpu'");
      CUEM_LAUNCH((multi_block_stats_kernel<S>), grid, kBlockStatsThreads, plan.smem, stream)(
          X, n, D, K, shift, resp, stride, plan.tile, partials, L);
      break;
    }
    case StatsKernel::generic: {
      const int lanes = std::min(M, kStatsThreads);
      const int groups = kStatsThreads / lanes;
      const dim3 grid(segments, checked_cast<unsigned>(K, "components"));
      if (grid.y > 65535u) throw DeviceError("the CUDA backend handles at most 65535 components; use device 'cpu'");
      CUEM_LAUNCH((segment_stats_kernel<S>), grid, kStatsThreads, plan.smem, stream)(
          X, n, D, shift, resp, stride, entries, M, lanes, groups, plan.tile, partials, L);
      break;
    }
  }
  CUEM_CUDA_CHECK_LAUNCH();
  // Each segment's log-likelihood after the statistics.
  CUEM_LAUNCH((segment_log_likelihood_kernel<S>), segments, kSumThreads, 0, stream)(
      log_prob, n, partials, L, static_cast<std::size_t>(K) * M);
  CUEM_CUDA_CHECK_LAUNCH();
}

// The two-kernel E-step of a chunk: posteriors, then the segments' statistics about
// p.means. Where defers_normalization holds and norm is given (deferred_norm_rows x
// stride values), the tiles' log joints go straight to the statistics kernel, which
// normalises them as it stages them (combine_tiles_kernel).
template <typename S>
void estep(const ComponentParams<S>& p, const S* X, std::size_t n, S* resp, std::size_t stride, S* log_prob,
           S* norm, const unsigned* entries, int M, double* partials, std::size_t L, cudaStream_t stream) {
  if (n == 0) return;
  if (!norm || !defers_normalization<S>(p.type, p.K, p.D)) {
    posteriors(p, X, n, resp, stride, log_prob, stream);
    segment_stats(p.K, p.D, X, n, p.means, resp, static_cast<const S*>(nullptr), stride, log_prob, entries, M,
                  partials, L, stream);
    return;
  }
  constexpr int RK = 4;
  const unsigned T = checked_cast<unsigned>((p.K + kTileComponents<RK> - 1) / kTileComponents<RK>, "component tiles");
  if (T > 65535u) throw DeviceError("too many components for the CUDA backend; use device 'cpu'");
  const dim3 grid(checked_cast<unsigned>((n + kTilePoints - 1) / kTilePoints, "posterior tiles"), T);
  if (p.type == CovarianceType::diag)
    CUEM_LAUNCH((tiled_log_joint_kernel<S, CovarianceType::diag, RK, TileOut::deferred>), grid, kTileThreads, 0,
                stream)(p, X, n, resp, stride, norm);
  else
    CUEM_LAUNCH((tiled_log_joint_kernel<S, CovarianceType::spherical, RK, TileOut::deferred>), grid, kTileThreads, 0,
                stream)(p, X, n, resp, stride, norm);
  CUEM_CUDA_CHECK_LAUNCH();
  const auto blocks = checked_cast<unsigned>((n + kPosteriorThreads - 1) / kPosteriorThreads, "posterior blocks");
  CUEM_LAUNCH((combine_tiles_kernel<S>), blocks, kPosteriorThreads, 0, stream)(static_cast<int>(T), n, norm, stride,
                                                                               log_prob);
  CUEM_CUDA_CHECK_LAUNCH();
  segment_stats(p.K, p.D, X, n, p.means, resp, norm, stride, log_prob, entries, M, partials, L, stream);
}

}  // namespace detail
}  // namespace cuem::cuda
