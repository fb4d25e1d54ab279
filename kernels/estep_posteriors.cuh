#pragma once
// The E-step's log joints and posteriors (math in estep.hpp; tile sizes in
// estep_policy.cuh).
//
// posteriors_kernel: one thread per point; the log joints go to the K-major
// responsibility buffer (coalesced across the threads of a warp), are normalised there,
// and the point's log-likelihood is kept.
// tiled_log_joint_kernel + normalize_kernel: the same for the diagonal and spherical
// layouts with many components, as register-blocked tiles (below).
// tiled_full_log_joint_kernel: the full and tied layouts' log joints as tiles (below).
#include <cuda_runtime.h>

#include <cmath>

#include "core/point_math.hpp"
#include "cuda_check.cuh"
#include "estep_policy.cuh"

namespace cuem::cuda {
namespace detail {

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

}  // namespace detail
}  // namespace cuem::cuda
