#pragma once
// The fixed segments of a distributed fit: rows [j S, (j + 1) S) form segment j whatever
// the number of ranks R, and rank r owns the contiguous segments
// [floor(n r / R), floor(n (r + 1) / R)) of the n = ceil(N / S). Every sum over points is
// a sum per segment, folded in segment order, so a model does not depend on R.
// A layout may instead hold explicit segments and their owners (sequence_units: an HMM's
// whole sequences); the rule that a sum is per segment, in segment order, is the same.
#include <algorithm>
#include <cstddef>
#include <string>
#include <vector>

#include "cuem/data_view.hpp"
#include "cuem/errors.hpp"

namespace cuem::mpi {

struct SegmentLayout {
  std::size_t n_rows = 0;        ///< N, over all ranks
  std::size_t segment_rows = 1;  ///< S
  int ranks = 1;                 ///< R
  /// Explicit segments, where not empty: segment j is rows [bounds[j], bounds[j + 1]), and
  /// rank r owns segments [rank_first[r], rank_first[r + 1]).
  std::vector<std::size_t> bounds{};
  std::vector<std::size_t> rank_first{};

  std::size_t segments() const noexcept {
    return bounds.empty() ? (n_rows + segment_rows - 1) / segment_rows : bounds.size() - 1;
  }
  std::size_t first_segment(int rank) const noexcept {
    if (!rank_first.empty()) return rank_first[static_cast<std::size_t>(rank)];
    return segments() * static_cast<std::size_t>(rank) / static_cast<std::size_t>(ranks);
  }
  std::size_t end_segment(int rank) const noexcept { return first_segment(rank + 1); }
  std::size_t row_begin(std::size_t segment) const noexcept {
    return bounds.empty() ? std::min(n_rows, segment * segment_rows) : bounds[std::min(segment, segments())];
  }
  std::size_t row_end(std::size_t segment) const noexcept { return row_begin(segment + 1); }
  /// The first row and one past the last of a rank's segments.
  std::size_t rank_row_begin(int rank) const noexcept { return row_begin(first_segment(rank)); }
  std::size_t rank_row_end(int rank) const noexcept { return row_begin(end_segment(rank)); }
  /// "rank 2 (rows 500-999)": how messages name a rank and its rows (0-based, inclusive).
  std::string rank_label(int rank) const {
    const std::size_t b = rank_row_begin(rank), e = rank_row_end(rank);
    return "rank " + std::to_string(rank) +
           (e > b ? " (rows " + std::to_string(b) + "-" + std::to_string(e - 1) + ")" : " (no rows)");
  }
};

/// The units of a distributed HMM fit: unit j holds the whole sequences whose first frame
/// lies in rows [j S, (j + 1) S), windows where none starts left out, so the units depend
/// on the sequences and S only, never on R. Ranks own contiguous runs of units, at least
/// one each, balanced by rows (rank r from the unit boundary nearest r N / R). `offsets` are the sequences' bounds (0 first, N last).
/// InvalidArgument where there are fewer units than ranks.
inline SegmentLayout sequence_units(const std::vector<std::size_t>& offsets, std::size_t segment_rows, int ranks) {
  if (segment_rows < 1 || ranks < 1) throw InvalidArgument("segment_rows and ranks must be at least 1");
  SegmentLayout L;
  L.n_rows = offsets.back();
  L.segment_rows = segment_rows;
  L.ranks = ranks;
  for (std::size_t q = 0; q + 1 < offsets.size(); ++q)
    if (q == 0 || offsets[q] / segment_rows != offsets[q - 1] / segment_rows) L.bounds.push_back(offsets[q]);
  L.bounds.push_back(L.n_rows);
  const std::size_t U = L.bounds.size() - 1, R = static_cast<std::size_t>(ranks), n_seq = offsets.size() - 1;
  if (n_seq < R)
    throw InvalidArgument(std::to_string(n_seq) + " sequence(s) for " + std::to_string(R) +
                          " ranks: a sequence is never split, so run at most " + std::to_string(n_seq) + " rank(s)");
  if (U < R)
    throw InvalidArgument(std::to_string(n_seq) + " sequence(s) starting in windows of " +
                          std::to_string(segment_rows) + " rows make " + std::to_string(U) +
                          " unit(s), fewer than the " + std::to_string(R) +
                          " ranks: run at most " + std::to_string(U) +
                          " rank(s), or give a smaller --segment-rows (a sequence is never split)");
  // Rank r from the unit boundary nearest r N / R, leaving every rank a unit.
  L.rank_first.assign(R + 1, 0);
  L.rank_first[R] = U;
  std::size_t u = 0;
  for (std::size_t r = 1; r < R; ++r) {
    const std::size_t target = L.n_rows / R * r + L.n_rows % R * r / R;
    while (u < U && L.bounds[u] < target) ++u;
    const std::size_t nearest = u > 0 && target - L.bounds[u - 1] < L.bounds[u] - target ? u - 1 : u;
    L.rank_first[r] = std::min(std::max(nearest, L.rank_first[r - 1] + 1), U - (R - r));
  }
  return L;
}

/// Rows [begin, end) of a view, in place.
inline DataView row_range(DataView v, std::size_t begin, std::size_t end) noexcept {
  const std::size_t offset = begin * v.row_stride;
  if (v.data) v.data += offset;
  if (v.data_f32) v.data_f32 += offset;
  v.n_rows = end - begin;
  return v;
}

/// The segment length a distributed fit takes unless told: a multiple of the CPU
/// backend's blocks, long enough that a segment's pass amortises its setup.
constexpr std::size_t kDefaultSegmentRows = std::size_t{1} << 16;

}  // namespace cuem::mpi
