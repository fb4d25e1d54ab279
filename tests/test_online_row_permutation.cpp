// The keyed row permutation of `cuem generate` (src/core/row_permutation.hpp): a bijection
// on [0, n) for every n (small ones, powers of 4 and their neighbours, where cycle walking
// does the most), a pure function of (seed, stream, n) that another seed changes, and a
// shuffle in the statistical sense: over many seeds each row's destination is spread
// evenly, and the permutation has about one fixed point (the count of a uniform random
// permutation's fixed points tends to Poisson(1)).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "core/row_permutation.hpp"

namespace {

using cuem::RowPermutation;

TEST(RowPermutation, IsABijectionOnZeroToN) {
  for (std::uint64_t n : {1, 2, 3, 4, 5, 15, 16, 17, 63, 64, 65, 1000, 4095, 4096, 4097, 100003}) {
    const RowPermutation perm(n, 7, 104);
    std::vector<char> seen(n, 0);
    for (std::uint64_t i = 0; i < n; ++i) {
      const std::uint64_t j = perm(i);
      ASSERT_LT(j, n) << "n " << n << ", row " << i;
      ASSERT_FALSE(seen[j]) << "n " << n << ": row " << i << " lands on " << j << " twice";
      seen[j] = 1;
    }
  }
}

TEST(RowPermutation, DependsOnTheSeedAndStreamOnly) {
  const std::uint64_t n = 5000;
  const RowPermutation a(n, 11, 104), again(n, 11, 104), seed(n, 12, 104), stream(n, 11, 105);
  std::uint64_t same_seed = 0, same_stream = 0;
  for (std::uint64_t i = 0; i < n; ++i) {
    ASSERT_EQ(a(i), again(i)) << "row " << i;
    same_seed += a(i) == seed(i);
    same_stream += a(i) == stream(i);
  }
  // Two independent uniform permutations agree at about one place.
  EXPECT_LT(same_seed, 10u);
  EXPECT_LT(same_stream, 10u);
}

TEST(RowPermutation, SpreadsEachRowEvenly) {
  // n = 40 (domain 64: cycle walking on a third of the values); over S seeds, the
  // count of seeds sending row i to j is Binomial(S, 1/n): chi-square over the n x n table.
  const std::uint64_t n = 40, seeds = 20000;
  std::vector<double> count(n * n, 0.0);
  double fixed_points = 0.0;
  for (std::uint64_t s = 0; s < seeds; ++s) {
    const RowPermutation perm(n, s, 104);
    for (std::uint64_t i = 0; i < n; ++i) {
      count[i * n + perm(i)] += 1.0;
      fixed_points += perm(i) == i;
    }
  }
  const double expected = static_cast<double>(seeds) / n;
  double chi2 = 0.0;
  for (double c : count) chi2 += (c - expected) * (c - expected) / expected;
  // Degrees of freedom about (n - 1)^2 = 1521 (rows and columns both sum to S): mean 1521,
  // standard deviation sqrt(2 * 1521) = 55; 6 standard deviations either side.
  EXPECT_GT(chi2, 1521.0 - 6 * 55.0);
  EXPECT_LT(chi2, 1521.0 + 6 * 55.0);
  // Mean fixed points per permutation: 1, standard error 1 / sqrt(S) = 0.007.
  EXPECT_NEAR(fixed_points / seeds, 1.0, 0.05);
}

}  // namespace
