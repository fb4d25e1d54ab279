#pragma once
// A keyed pseudorandom permutation of [0, n), evaluated one index at a time in constant
// memory (`cuem generate` shuffles its rows with it instead of storing a permutation of
// n indices). A Feistel network on the smallest domain of t >= 2 bits that holds n (fewer
// than 2n values), cut into a left part of t/2 bits and a right part of the rest; each
// round replaces (L, R) by (R, L XOR F_r(R)), which swaps the parts' widths, so an even
// number of rounds ends on the starting cut. F_r is SplitMix64's finaliser (rng.hpp) of R
// XOR a round key, the counter-based hash of (seed, stream, r): one mix a round, these
// being most of generate's cost a row besides the draws. A value that lands at n or
// beyond is sent through the network again (cycle walking), which keeps the map a
// bijection on [0, n): the network permutes the whole domain, so the cycle through i < n
// comes back below n, after fewer than 2 passes on average. A pure function of
// (seed, stream, n).
#include <cstdint>

#include "core/rng.hpp"

namespace cuem {

class RowPermutation {
 public:
  RowPermutation(std::uint64_t n, std::uint64_t seed, std::uint64_t stream) : n_(n) {
    int bits = 2;
    while (bits < 64 && (std::uint64_t{1} << bits) < n) ++bits;
    left_bits_ = bits / 2;
    right_bits_ = bits - left_bits_;
    for (int r = 0; r < kRounds; ++r) keys_[r] = rng::hash(seed, stream, static_cast<std::uint64_t>(r));
  }

  /// The index that row i takes; i < n.
  std::uint64_t operator()(std::uint64_t i) const noexcept {
    do i = network(i);
    while (i >= n_);
    return i;
  }

 private:
  static constexpr int kRounds = 6;  // even: the cut comes back to (left_bits_, right_bits_)

  static std::uint64_t low_bits(int bits) noexcept { return (std::uint64_t{1} << bits) - 1; }

  std::uint64_t network(std::uint64_t x) const noexcept {
    int lw = left_bits_, rw = right_bits_;
    std::uint64_t left = x >> rw, right = x & low_bits(rw);
    for (int round = 0; round < kRounds; ++round) {
      const std::uint64_t next = left ^ (rng::mix(keys_[round] ^ right) & low_bits(lw));
      left = right;
      right = next;
      const int w = lw;
      lw = rw;
      rw = w;
    }
    return (left << rw) | right;
  }

  std::uint64_t n_;
  std::uint64_t keys_[kRounds] = {};
  int left_bits_ = 1, right_bits_ = 1;
};

}  // namespace cuem
