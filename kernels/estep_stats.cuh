#pragma once
// The E-step's statistics kernels (math in estep.hpp; tile sizes in estep_policy.cuh).
//
// segment_stats_kernel: one block per (segment, component). Points are staged in shared
// memory a tile at a time as y = x - c_k (with y[D] = 1); each thread owns statistics
// entries and sums g * y[a] * y[b] over the tile in S, then adds the tile's sum into a
// float64 accumulator. When a component has fewer entries than the block has threads,
// groups of threads split the tile's points and are combined in group order. Every sum
// has a fixed order: results are bitwise reproducible.
// multi_block_stats_kernel, diag_segment_stats_kernel, tiled_diag_stats_kernel: the
// full and diagonal layouts with several components per block (below).
// The diagonal kernels read deferred log joints through staged_resp
// (estep_posteriors.cuh).
#include <cub/block/block_reduce.cuh>
#include <cuda_runtime.h>

#include "cuda_check.cuh"
#include "estep_posteriors.cuh"

namespace cuem::cuda {
namespace detail {

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

}  // namespace detail
}  // namespace cuem::cuda
