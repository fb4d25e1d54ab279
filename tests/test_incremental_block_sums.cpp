// The tree of partial sums behind incremental EM's totals (src/engine/block_sum_tree.hpp):
// after any history of block updates, the total and every total-but-one equal a plain
// loop's sums (exactly, on integer-valued statistics), and bit for bit what a tree built
// afresh over the same blocks gives (on values whose sums round): a fixed-order function
// of the blocks, whatever the history. Each merge is counted, to check that a block step
// costs O(log B) merges, not O(B).
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <random>
#include <vector>

#include "engine/block_sum_tree.hpp"

namespace {

long long g_merges = 0;

struct ToyStats {
  double value = 0.0;
  void merge(const ToyStats& other) {
    value += other.value;
    ++g_merges;
  }
};

using Tree = cuem::engine::BlockSumTree<ToyStats>;

TEST(BlockSumTree, TotalsFollowEveryUpdate) {
  std::mt19937_64 rng(17);
  for (std::size_t B : {1, 2, 3, 5, 8, 13, 100}) {
    std::vector<ToyStats> leaves(B);
    for (auto& l : leaves) l.value = static_cast<double>(rng() % 1000);
    Tree tree(leaves);
    tree.build();
    for (int step = 0; step < 300; ++step) {
      const std::size_t b = rng() % B;
      leaves[b].value = static_cast<double>(rng() % 1000);
      tree.update(b);
      double total = 0.0;
      for (const auto& l : leaves) total += l.value;
      ASSERT_EQ(tree.total().value, total) << "B " << B << ", step " << step;
      if (B > 1) {
        const std::size_t skip = rng() % B;
        ASSERT_EQ(tree.total_without(skip).value, total - leaves[skip].value) << "B " << B << ", skip " << skip;
      }
    }
  }
}

TEST(BlockSumTree, TotalsDoNotDependOnTheHistory) {
  std::mt19937_64 rng(19);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  const std::size_t B = 37;
  std::vector<ToyStats> leaves(B);
  for (auto& l : leaves) l.value = u(rng) * std::pow(10.0, 8.0 * u(rng));  // sums that round
  Tree tree(leaves);
  tree.build();
  for (int step = 0; step < 500; ++step) {
    const std::size_t b = rng() % B;
    leaves[b].value = u(rng) * std::pow(10.0, 8.0 * u(rng));
    tree.update(b);
  }
  Tree fresh(leaves);
  fresh.build();
  EXPECT_EQ(tree.total().value, fresh.total().value);
  for (std::size_t b = 0; b < B; ++b) EXPECT_EQ(tree.total_without(b).value, fresh.total_without(b).value) << b;
}

TEST(BlockSumTree, OneBlockIsThatBlockAndAStepCostsLogBMerges) {
  std::vector<ToyStats> one{{0.1}};
  Tree single(one);
  single.build();
  EXPECT_EQ(single.total().value, 0.1);

  const std::size_t B = 1024;
  std::vector<ToyStats> leaves(B, ToyStats{1.0});
  Tree tree(leaves);
  g_merges = 0;
  tree.build();
  EXPECT_EQ(g_merges, static_cast<long long>(B - 1));
  g_merges = 0;
  tree.update(517);
  const ToyStats others = tree.total_without(517);
  EXPECT_EQ(others.value, static_cast<double>(B - 1));
  EXPECT_EQ(g_merges, 10 + 9);  // log2 B sums above the leaf, then log2 B - 1 merges of the other subtrees
}

}  // namespace
