#pragma once
// Launchers of the incomplete-rows E-step (kernels/missing_estep.cu), callable from host
// code. The rows of one missingness pattern (observed o, missing m) are contiguous, and
// per (pattern, component k) the host uploads G_pk = Lambda_mm^-1 Lambda_mo and
//   const_pk = log pi_k + log|P_k| - log_det_mm - |o|/2 log 2pi
// (engine/conditional_gaussian.hpp). Per point x and component k, with y_o = x_o - mu_o,
//   y_m = -G_pk y_o (full, tied; 0 for diag and spherical),
//   v_k = const_pk - 1/2 ||P_k^T y||^2,   lp = logsumexp_k v_k,   g_k = exp(v_k - lp),
// and per segment (a fixed run of tiles, one block each) and component, in float64:
//   N_k = sum w g_k,  S1_k = sum w g_k y,  S2_k = sum w g_k y y^T   (y = y_k, completed)
// in the entries' layout of estep.hpp (stats_entries), the segment's sum of w lp in the
// last slot, and per tile and component sum w g_k (for the conditional covariance term
// the host adds per pattern). Sums run over the points of a tile in order and over the
// tiles of a segment in order; a segment's partial does not depend on the block's thread
// count.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "cuem/covariance_type.hpp"

namespace cuem::cuda {

/// Threads a block of the incomplete-rows kernel.
inline constexpr int kMissingThreads = 128;

/// Rows of one pattern that a block completes together (at most tile_rows of them).
struct MissingTile {
  std::uint64_t row = 0;  ///< first row, an index into X
  std::uint32_t rows = 0;
  std::uint32_t pattern = 0;  ///< index into the pattern tables
};

/// Device pointers for one launch, over the patterns of one batch. Patterns: cols[p * D
/// ...] lists pattern p's observed columns (n_observed[p] of them, ascending) then its
/// missing ones; its G_pk start at g + g_offset[p] + k * |m| |o| (|m| x |o| row-major;
/// null for diag and spherical); const_pk is constants[(p - pattern_base) * K + k].
template <typename S>
struct MissingLaunch {
  CovarianceType type = CovarianceType::full;
  int K = 0;
  int D = 0;
  const S* X = nullptr;        ///< rows x D, relative to the origin
  const double* w = nullptr;   ///< per row; null: unweighted
  const S* means_hi = nullptr; ///< K x D, S(mu - origin)
  const S* means_lo = nullptr; ///< K x D, S(mu - origin - hi)
  const S* factors = nullptr;  ///< precisions_cholesky in the model's layout
  const int* cols = nullptr;
  const int* n_observed = nullptr;
  const std::uint64_t* g_offset = nullptr;
  const S* g = nullptr;
  const S* constants = nullptr;
  std::uint32_t pattern_base = 0;  ///< the batch's first pattern
  const MissingTile* tiles = nullptr;
  const std::uint32_t* segment_tiles = nullptr;  ///< n_segments + 1 tile indices
  std::size_t n_segments = 0;
  std::uint32_t first_tile = 0;  ///< tile_nk holds tiles from this one on
  int tile_rows = 0;
  const unsigned* entries = nullptr;  ///< estep.hpp's stats_entries
  int M = 0;
  double* partials = nullptr;  ///< n_segments x L
  std::size_t L = 0;           ///< >= K * M + 1
  double* tile_nk = nullptr;   ///< (tiles of the launch) x K
  double* work = nullptr;      ///< n_segments x tile_rows x K
};

/// Rows a tile may hold for D features and element size `bytes` (0 where one row of
/// D + 1 values does not fit in shared memory).
int missing_tile_rows(int D, std::size_t element_bytes) noexcept;

/// Bytes of dynamic shared memory the kernel takes.
std::size_t missing_shared_bytes(int D, int tile_rows, std::size_t element_bytes) noexcept;

void launch_missing_estep(const MissingLaunch<float>& a, cudaStream_t stream);
void launch_missing_estep(const MissingLaunch<double>& a, cudaStream_t stream);

/// Per pattern p in [p_begin, p_end) and component k, adds the sums of the tiles in
/// [first_tile, end_tile) that belong to p (tile_nk[(t - first_tile) * K + k], in tile
/// order; pattern p's tiles are [pattern_first_tile[p], pattern_first_tile[p + 1])) to
/// pattern_nk[(p - pattern_base) * K + k]: the patterns' sums of w g, in a fixed order
/// across the launches of a batch.
void launch_missing_pattern_sums(const double* tile_nk, const std::uint32_t* pattern_first_tile,
                                 std::uint32_t first_tile, std::uint32_t end_tile, std::uint32_t p_begin,
                                 std::uint32_t p_end, int K, std::uint32_t pattern_base, double* pattern_nk,
                                 cudaStream_t stream);

}  // namespace cuem::cuda
