#pragma once
// The E-step's tile policies: the launch shapes and tile sizes of its kernels, and the
// choice of kernel by problem shape (which statistics kernel, whether normalisation is
// deferred). Host and device code both read the constants; the kernels are in
// estep_posteriors.cuh, estep_stats.cuh and estep_fused.cuh, their launches in
// estep_dispatch.cuh.
#include <cuda_runtime.h>

#include <algorithm>

#include "cuem/options.hpp"
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

// tiled_log_joint_kernel (estep_posteriors.cuh).
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

// tiled_full_log_joint_kernel (estep_posteriors.cuh).
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

// multi_block_stats_kernel (estep_stats.cuh).
inline constexpr int kBlockStatsThreads = 256;

inline constexpr int kBlockStatsMinD = 8;
inline constexpr int kBlockStatsMaxD = 87;  // (D + 1) / 4 blocks a side: at most 256 blocks

__host__ __device__ inline int stats_block_side(int D) { return (D + 1 + 3) / 4; }

// Components a block of multi_block_stats_kernel takes: 256 / its 4 x 4 blocks.
__host__ __device__ inline int stats_components_per_block(int D) {
  const int CB = stats_block_side(D);
  return kBlockStatsThreads / (CB * (CB + 1) / 2);
}

// diag_segment_stats_kernel (estep_stats.cuh).
inline constexpr int kDiagThreads = 256;
inline constexpr int kDiagPairs = 4;  // (component, dimension) pairs per thread per pass
inline constexpr int kDiagTileBytes = 32 * 1024;
inline constexpr int kDiagMinTile = 32;

// tiled_diag_stats_kernel (estep_stats.cuh).
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

// fused_estep_kernel (estep_fused.cuh).
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

// The kernel choices arrive as a CudaTuning (cuem/options.hpp) from the primitives that
// launch: tuning.tiled (default true) takes the tiled kernels where they apply
// (tiled_log_joint_kernel where a block's tile of components is mostly used, K >= 8, in
// the diagonal and spherical layouts; tiled_diag_stats_kernel for their statistics with
// K >= 32 and D >= 32; likewise the fused, full-layout and multi-block kernels, and the
// k-means distances of kmeans.cuh); false keeps the simpler kernels everywhere, for
// side-by-side timing (bench/NOTES.md).

// Components a thread of tiled_diag_stats_kernel takes: 2 where K <= 32; beyond, 4 (64 a
// block, 0.5 shared loads a cell, ~175 registers: one block an SM) unless
// tuning.diag_stats_components asks for 2 (32 a block, 0.75 loads a cell, ~96 registers:
// two blocks), so that a GPU run can time both (scripts/gpu_check.sh, bench/NOTES.md).
inline int diag_stats_rk(int K, const CudaTuning& tuning) {
  return K <= 32 || tuning.diag_stats_components == 2 ? 2 : 4;
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
StatsPlan plan_stats(int K, int D, int M, const CudaTuning& tuning) {
  StatsPlan plan;
  // Many components and dimensions: the register-tiled kernel (32 or 64 components x 64
  // dimensions a block; it idles threads where K or D is well under its tile, so smaller
  // shapes keep the kernels below).
  if (M == 1 + 2 * D && K >= kStatTileComponents<2> && D >= kStatTileDims / 2 && tuning.tiled &&
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
  if (full_layout && D >= kBlockStatsMinD && D <= kBlockStatsMaxD && tuning.tiled) {
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
bool defers_normalization(CovarianceType type, int K, int D, const CudaTuning& tuning) {
  if (type != CovarianceType::diag && type != CovarianceType::spherical) return false;
  if (K <= kTileComponents<4> || !tuning.tiled) return false;
  const StatsKernel k = plan_stats<S>(K, D, 1 + 2 * D, tuning).kernel;
  return k == StatsKernel::tiled_diag || k == StatsKernel::diag_segment;
}

// Rows of the normalisation buffer (combine_tiles_kernel) where the E-step defers, else 0.
template <typename S>
std::size_t deferred_norm_rows(CovarianceType type, int K, int D, const CudaTuning& tuning) {
  if (!defers_normalization<S>(type, K, D, tuning)) return 0;
  return 2 + 2 * static_cast<std::size_t>((K + kTileComponents<4> - 1) / kTileComponents<4>);
}

}  // namespace detail
}  // namespace cuem::cuda
