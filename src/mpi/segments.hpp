#pragma once
// The fixed segments of a distributed fit: rows [j S, (j + 1) S) form segment j whatever
// the number of ranks R, and rank r owns the contiguous segments
// [floor(n r / R), floor(n (r + 1) / R)) of the n = ceil(N / S). Every sum over points is
// a sum per segment, folded in segment order, so a model does not depend on R.
#include <algorithm>
#include <cstddef>
#include <string>

#include "cuem/data_view.hpp"

namespace cuem::mpi {

struct SegmentLayout {
  std::size_t n_rows = 0;        ///< N, over all ranks
  std::size_t segment_rows = 1;  ///< S
  int ranks = 1;                 ///< R

  std::size_t segments() const noexcept { return (n_rows + segment_rows - 1) / segment_rows; }
  std::size_t first_segment(int rank) const noexcept {
    return segments() * static_cast<std::size_t>(rank) / static_cast<std::size_t>(ranks);
  }
  std::size_t end_segment(int rank) const noexcept { return first_segment(rank + 1); }
  std::size_t row_begin(std::size_t segment) const noexcept { return std::min(n_rows, segment * segment_rows); }
  std::size_t row_end(std::size_t segment) const noexcept { return std::min(n_rows, (segment + 1) * segment_rows); }
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
