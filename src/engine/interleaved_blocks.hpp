#pragma once
// Incremental EM's blocks as interleaved tiles of rows (docs/ONLINE.md, "Blocks"): the
// rows cut into tiles of consecutive rows, tile t in block t mod B, so that every block
// samples the whole order of the rows. Contiguous blocks are alike only when the rows are
// in random order; sorted or grouped rows give blocks of one group each, and the M-steps
// of an incremental first pass then fit the first groups alone.
//
// The tile size: as long as it can be (a tile is one E-step over consecutive rows: long
// sequential reads of a mapped file, the E-step's row blocks and a device's streamed
// pieces full, the fixed cost of an E-step call paid rarely) while every block still
// holds at least kMinTilesPerBlock tiles spread over the rows. So N / (16 B) rows, at most
// kMaxTileRows (2 MiB of float32 rows at D = 8; a multiple of the CPU's 16-row blocks and
// of a device's 8192-point pieces), rounded down to the CPU's 16-row blocks where it is
// longer than a few of them; one row when the data have fewer than 16 rows a block.
#include <algorithm>
#include <cstddef>
#include <vector>

namespace cuem::engine {

constexpr std::size_t kMinTilesPerBlock = 16;
constexpr std::size_t kMaxTileRows = std::size_t{1} << 16;
constexpr std::size_t kTileRowGranule = 16;  // cpu::kBlockRows

/// Rows a tile for N rows in B blocks; N (one tile) for B = 1, so that one block is the
/// whole data as batch EM reads it.
inline std::size_t interleaved_tile_rows(std::size_t N, std::size_t B) {
  if (B <= 1) return std::max<std::size_t>(N, 1);
  std::size_t rows = std::clamp<std::size_t>(N / (kMinTilesPerBlock * B), 1, kMaxTileRows);
  if (rows >= 4 * kTileRowGranule) rows -= rows % kTileRowGranule;
  return rows;
}

/// The first row of each tile of `tile_rows` rows, then N: the last tile holds the rest
/// (also out of core's chunks of rows).
inline std::vector<std::size_t> tile_starts(std::size_t N, std::size_t tile_rows) {
  std::vector<std::size_t> starts;
  for (std::size_t r = 0; r < N; r += tile_rows) starts.push_back(r);
  starts.push_back(N);
  return starts;
}

/// The block of tile t of B blocks.
inline std::size_t block_of_tile(std::size_t t, std::size_t B) { return t % B; }

/// The tiles of each of B blocks, in row order, given the number of tiles (at least B, so
/// that no block is empty: interleaved_tile_rows gives N / tile_rows >= B tiles).
inline std::vector<std::vector<std::size_t>> tiles_of_blocks(std::size_t n_tiles, std::size_t B) {
  std::vector<std::vector<std::size_t>> tiles(B);
  for (std::size_t t = 0; t < n_tiles; ++t) tiles[block_of_tile(t, B)].push_back(t);
  return tiles;
}

/// Incremental EM's tiles for N rows in B blocks, as their first rows and then N. Where the
/// first pass is incremental (its M-steps come block by block, so each block must sample
/// the whole order of the rows): interleaved tiles of interleaved_tile_rows(N, B). With the
/// full first pass every block is seen before the first M-step, so the blocks' order does
/// not bias it: B contiguous tiles, one a block (rows [b N / B, (b + 1) N / B)), the fewest
/// and longest E-step calls.
inline std::vector<std::size_t> incremental_tile_starts(std::size_t N, std::size_t B, bool interleave) {
  if (interleave) return tile_starts(N, interleaved_tile_rows(N, B));
  std::vector<std::size_t> starts;
  for (std::size_t b = 0; b <= B; ++b) starts.push_back(b * N / B);
  return starts;
}

}  // namespace cuem::engine
