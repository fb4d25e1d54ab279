// The distributed fit's pieces that need no MPI: the fixed segments and their owners (an
// HMM's units of whole sequences too), and the checkpoint journal's file format.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "cuem/errors.hpp"
#include "mpi/checkpoint.hpp"
#include "mpi/segments.hpp"
#include "mpi/wire.hpp"

namespace cuem::mpi {
namespace {

TEST(SegmentLayout, EveryRowOnceInOrderForAnyRanks) {
  for (std::size_t N : {1u, 7u, 64u, 1000u, 1001u})
    for (std::size_t S : {1u, 16u, 100u, 4096u})
      for (int R = 1; R <= 5; ++R) {
        const SegmentLayout L{N, S, R};
        if (L.segments() < static_cast<std::size_t>(R)) continue;  // refused by the fit
        // Segments do not depend on R: segment j is rows [j S, min(N, (j + 1) S)).
        std::size_t expected_row = 0;
        for (std::size_t j = 0; j < L.segments(); ++j) {
          ASSERT_EQ(L.row_begin(j), expected_row);
          ASSERT_EQ(L.row_end(j), std::min(N, (j + 1) * S));
          ASSERT_GT(L.row_end(j), L.row_begin(j)) << "an empty segment, N " << N << " S " << S;
          expected_row = L.row_end(j);
        }
        ASSERT_EQ(expected_row, N);
        // Ranks hold contiguous, ascending, non-empty runs of segments covering all of them.
        std::size_t next = 0;
        for (int r = 0; r < R; ++r) {
          ASSERT_EQ(L.first_segment(r), next);
          ASSERT_GT(L.end_segment(r), L.first_segment(r));
          ASSERT_EQ(L.rank_row_begin(r), L.row_begin(L.first_segment(r)));
          next = L.end_segment(r);
        }
        ASSERT_EQ(next, L.segments());
        ASSERT_EQ(L.rank_row_end(R - 1), N);
      }
}

TEST(SegmentLayout, RankLabelNamesInclusiveRows) {
  const SegmentLayout L{1000, 125, 4};
  EXPECT_EQ(L.rank_label(2), "rank 2 (rows 500-749)");
  EXPECT_EQ(L.rank_label(3), "rank 3 (rows 750-999)");
}

// Offsets of sequences of these lengths.
std::vector<std::size_t> offsets_of(const std::vector<std::size_t>& lengths) {
  std::vector<std::size_t> o{0};
  for (std::size_t L : lengths) o.push_back(o.back() + L);
  return o;
}

TEST(SequenceUnits, WholeSequencesByTheirFirstRowIndependentOfRanks) {
  // Short ones, one longer than several windows, ones crossing window borders, a last of 1.
  std::vector<std::size_t> lengths{1, 2, 700, 5};
  for (std::size_t i = 0; i < 60; ++i) lengths.push_back(3 + (i * 37) % 90);
  lengths.push_back(1);
  const std::vector<std::size_t> offsets = offsets_of(lengths);
  for (std::size_t S : {1u, 50u, 256u, 1000u, 100000u}) {
    const SegmentLayout one = sequence_units(offsets, S, 1);
    // A unit is the sequences whose first row lies in one window, never part of one.
    std::size_t q = 0;
    for (std::size_t j = 0; j < one.segments(); ++j) {
      ASSERT_EQ(one.row_begin(j), offsets[q]) << "S " << S << " unit " << j;
      const std::size_t window = offsets[q] / S;
      while (q + 1 < offsets.size() && offsets[q] < one.row_end(j)) {
        ASSERT_EQ(offsets[q] / S, window);
        ++q;
      }
      ASSERT_EQ(one.row_end(j), offsets[q]);
    }
    ASSERT_EQ(q + 1, offsets.size());
    ASSERT_EQ(one.row_end(one.segments() - 1), offsets.back());
    for (int R = 1; R <= 6 && static_cast<std::size_t>(R) <= one.segments(); ++R) {
      const SegmentLayout L = sequence_units(offsets, S, R);
      ASSERT_EQ(L.bounds, one.bounds) << "the units changed with R = " << R;
      // Contiguous, non-empty runs of units, in rank order, covering them all.
      std::size_t next = 0;
      for (int r = 0; r < R; ++r) {
        ASSERT_EQ(L.first_segment(r), next);
        ASSERT_GT(L.end_segment(r), L.first_segment(r)) << "S " << S << " R " << R << " rank " << r;
        next = L.end_segment(r);
      }
      ASSERT_EQ(next, L.segments());
      ASSERT_EQ(L.rank_row_begin(0), 0u);
      ASSERT_EQ(L.rank_row_end(R - 1), offsets.back());
    }
  }
}

TEST(SequenceUnits, FramesOfLengthOneAreTheUniformSegments) {
  const std::vector<std::size_t> offsets = offsets_of(std::vector<std::size_t>(1001, 1));
  for (std::size_t S : {1u, 16u, 100u})
    for (int R : {1, 3}) {
      const SegmentLayout units = sequence_units(offsets, S, R), uniform{1001, S, R};
      ASSERT_EQ(units.segments(), uniform.segments());
      for (std::size_t j = 0; j <= units.segments(); ++j) ASSERT_EQ(units.row_begin(j), uniform.row_begin(j));
    }
}

TEST(SequenceUnits, RanksShareRowsNotUnitCounts) {
  // Ten units: one of 910 rows, nine of 10. Two ranks: the long unit alone on rank 0.
  std::vector<std::size_t> lengths{910};
  for (int i = 0; i < 9; ++i) lengths.push_back(10);
  const SegmentLayout L = sequence_units(offsets_of(lengths), 10, 2);
  ASSERT_EQ(L.segments(), 10u);
  EXPECT_EQ(L.end_segment(0), 1u);
  EXPECT_EQ(L.rank_label(1), "rank 1 (rows 910-999)");
  // Three ranks: the long unit's rank cannot take the others' share of units; a long unit
  // last leaves the units before it to the first ranks.
  std::vector<std::size_t> last_long(9, 10);
  last_long.push_back(910);
  for (const std::vector<std::size_t>& ls : {lengths, last_long}) {
    const SegmentLayout three = sequence_units(offsets_of(ls), 10, 3);
    for (int r = 0; r < 3; ++r) EXPECT_GT(three.end_segment(r), three.first_segment(r)) << "rank " << r;
    EXPECT_EQ(three.end_segment(2), 10u);
  }
  // The nearer boundary: units at rows 0, 23 and 59 of 60 split 23 / 37 over two ranks,
  // not 59 / 1.
  const SegmentLayout nearer = sequence_units({0, 23, 59, 60}, 13, 2);
  ASSERT_EQ(nearer.segments(), 3u);
  EXPECT_EQ(nearer.rank_row_end(0), 23u);
  // Balanced as far as whole units allow: 4 ranks over units of equal rows.
  const SegmentLayout even = sequence_units(offsets_of(std::vector<std::size_t>(8, 25)), 25, 4);
  for (int r = 0; r < 4; ++r) EXPECT_EQ(even.end_segment(r) - even.first_segment(r), 2u) << r;
}

TEST(SequenceUnits, MoreRanksThanUnitsIsRefusedSayingWhatToDo) {
  try {
    sequence_units(offsets_of({500, 500}), 1000, 2);
    FAIL() << "two sequences in one window made two units";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("make 1 unit(s), fewer than the 2 ranks"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("--segment-rows"), std::string::npos) << e.what();
  }
  // Windows of 500 rows: the two sequences are two units, one a rank.
  const SegmentLayout two = sequence_units(offsets_of({500, 500}), 500, 2);
  EXPECT_EQ(two.bounds, (std::vector<std::size_t>{0, 500, 1000}));
  EXPECT_EQ(two.rank_first, (std::vector<std::size_t>{0, 1, 2}));
  // Fewer sequences than ranks: no window size helps, and the message says so.
  try {
    sequence_units(offsets_of({1000}), 10, 2);
    FAIL() << "one sequence on two ranks";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("1 sequence(s) for 2 ranks"), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find("--segment-rows"), std::string::npos) << e.what();
  }
  EXPECT_THROW(sequence_units(offsets_of({10}), 0, 1), InvalidArgument);
}

TEST(SegmentLayout, RowRangeViewsInPlace) {
  std::vector<float> x(20);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i);
  const DataView v(x.data(), 5, 3, 4);  // 5 rows of 3 values, rows 4 apart
  const DataView r = row_range(v, 2, 4);
  EXPECT_EQ(r.n_rows, 2u);
  EXPECT_EQ(r.value(0, 0), 8.0);
  EXPECT_EQ(r.value(1, 2), 14.0);
}

TEST(Journal, RoundTripsBitwiseAndResumesWhereItStopped) {
  SufficientStats s = SufficientStats::zeros(CovarianceType::diag, 2, 3, {1e-310, -0.0, 3, 4, 5, 6});
  s.nk = {0.1, 0.2};
  s.log_likelihood = -1.0 / 3.0;
  s.n_points = 12345;
  s.weight = 12345;
  Journal j;
  j.record(encode(s));
  j.record("second");
  const std::string bytes = j.serialize("fit A", 7);
  long iterations = 0;
  Journal back = Journal::parse(bytes, "fit A", "ck", &iterations);
  EXPECT_EQ(iterations, 7);
  ASSERT_TRUE(back.replaying());
  const SufficientStats t = decode_stats(back.replay());
  EXPECT_EQ(encode(t), encode(s));  // every byte, -0.0 and the subnormal included
  EXPECT_TRUE(std::signbit(t.shift[1]));
  EXPECT_EQ(t.n_points, 12345u);
  EXPECT_EQ(back.replay(), "second");
  EXPECT_FALSE(back.replaying());
  back.record("third");  // live results go on after the replayed ones
  EXPECT_EQ(back.size(), 3u);
}

TEST(Journal, RefusesAnotherFitAndTruncatedFiles) {
  Journal j;
  j.record("x");
  const std::string bytes = j.serialize("fit A", 1);
  long iterations = 0;
  try {
    Journal::parse(bytes, "fit B", "ck.bin", &iterations);
    FAIL() << "another fit's checkpoint was accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("belongs to another fit"), std::string::npos) << e.what();
  }
  for (std::size_t cut : {std::size_t{0}, std::size_t{5}, bytes.size() - 1})
    EXPECT_THROW(Journal::parse(bytes.substr(0, cut), "fit A", "ck.bin", &iterations), DataError) << cut;
  EXPECT_THROW(Journal::parse(bytes + "z", "fit A", "ck.bin", &iterations), DataError);
}

}  // namespace
}  // namespace cuem::mpi
