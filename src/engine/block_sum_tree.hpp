#pragma once
// The sum of B blocks' statistics kept through a fixed binary tree of partial sums
// (incremental EM's totals, incremental_driver.hpp): replacing one block's statistics
// recomputes the log2 B sums above it, and the sum of all blocks but one combines the
// log2 B subtrees beside its path, so a block step costs O(log B) merges instead of the
// O(B) of re-summing every block. The tree's shape depends on B alone (each node splits
// its range [lo, hi) at the middle), so every total is a fixed-order function of the
// leaves' current statistics, whatever the history of updates: the same bits as summing
// afresh in that tree order. One block: the total is that block's statistics, bit for bit.
// Stats needs merge(const Stats&) (model.hpp).
#include <cstddef>
#include <utility>
#include <vector>

namespace cuem::engine {

template <class Stats>
class BlockSumTree {
 public:
  /// Over leaves[0..B), which must outlive the tree (the caller replaces a leaf, then calls
  /// update for it); build() computes every partial sum.
  explicit BlockSumTree(const std::vector<Stats>& leaves) : leaves_(leaves) {
    if (leaves_.size() > 1) root_ = make_node(0, leaves_.size());
  }

  void build() {
    for (std::size_t n = nodes_.size(); n-- > 0;) recompute(n);  // children come after parents
  }
  /// After leaves[b] changed: the sums above it.
  void update(std::size_t b) {
    if (leaves_.size() < 2) return;
    std::vector<std::size_t> path;
    for (std::size_t n = root_; n != kLeaf;) {
      path.push_back(n);
      const Child toward = side_of(n, b).first;
      n = toward.second ? kLeaf : toward.first;
    }
    for (std::size_t i = path.size(); i-- > 0;) recompute(path[i]);
  }
  /// The sum of every leaf.
  const Stats& total() const { return leaves_.size() < 2 ? leaves_.front() : nodes_[root_].sum; }
  /// The sum of every leaf but leaves[b] (B > 1): the subtrees beside b's path, from the
  /// root down.
  Stats total_without(std::size_t b) const {
    Stats out;
    bool any = false;
    for (std::size_t n = root_; n != kLeaf;) {
      const auto [toward, away] = side_of(n, b);
      const Stats& part = away.second ? leaves_[away.first] : nodes_[away.first].sum;
      if (!any) {
        out = part;
        any = true;
      } else {
        out.merge(part);
      }
      n = toward.second ? kLeaf : toward.first;
    }
    return out;
  }

 private:
  static constexpr std::size_t kLeaf = static_cast<std::size_t>(-1);
  // A child: (index, is a leaf), a leaf's index being its block.
  using Child = std::pair<std::size_t, bool>;
  struct Node {
    std::size_t mid;  // the left child holds the blocks below mid
    Child left, right;
    Stats sum;
  };

  Child make_child(std::size_t lo, std::size_t hi) { return hi - lo == 1 ? Child{lo, true} : Child{make_node(lo, hi), false}; }
  std::size_t make_node(std::size_t lo, std::size_t hi) {
    const std::size_t n = nodes_.size();
    nodes_.push_back({lo + (hi - lo) / 2, {}, {}, {}});
    const Child left = make_child(lo, nodes_[n].mid);
    const Child right = make_child(nodes_[n].mid, hi);
    nodes_[n].left = left;
    nodes_[n].right = right;
    return n;
  }
  const Stats& sum_of(const Child& c) const { return c.second ? leaves_[c.first] : nodes_[c.first].sum; }
  void recompute(std::size_t n) {
    Node& node = nodes_[n];
    node.sum = sum_of(node.left);
    node.sum.merge(sum_of(node.right));
  }
  // (the child toward block b, the other child) of node n.
  std::pair<Child, Child> side_of(std::size_t n, std::size_t b) const {
    const Node& node = nodes_[n];
    return b < node.mid ? std::pair<Child, Child>{node.left, node.right} : std::pair<Child, Child>{node.right, node.left};
  }

  const std::vector<Stats>& leaves_;
  std::vector<Node> nodes_;
  std::size_t root_ = kLeaf;
};

}  // namespace cuem::engine
