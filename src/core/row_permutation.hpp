#pragma once
// A keyed pseudorandom permutation of [0, n), evaluated one index at a time in constant
// memory (`cuem generate` shuffles its rows with it instead of storing a permutation of
// n indices). A balanced Feistel network on the smallest domain of 2h bits that holds n
// (fewer than 4n values), each round's function the counter-based hash (rng.hpp) of the
// seed, the round and the right half; a value that lands at n or beyond is sent through
// the network again (cycle walking), which keeps the map a bijection on [0, n): the
// network permutes the whole domain, so the cycle through i < n comes back below n.
// Fewer than 4 passes are expected per index. A pure function of (seed, stream, n).
#include <cstdint>

#include "core/rng.hpp"

namespace cuem {

class RowPermutation {
 public:
  RowPermutation(std::uint64_t n, std::uint64_t seed, std::uint64_t stream) : n_(n), seed_(seed), stream_(stream) {
    while (half_bits_ < 32 && (std::uint64_t{1} << (2 * half_bits_)) < n) ++half_bits_;
    mask_ = (std::uint64_t{1} << half_bits_) - 1;
  }

  /// The index that row i takes; i < n.
  std::uint64_t operator()(std::uint64_t i) const noexcept {
    do i = network(i);
    while (i >= n_);
    return i;
  }

 private:
  static constexpr int kRounds = 8;

  std::uint64_t network(std::uint64_t x) const noexcept {
    std::uint64_t left = x >> half_bits_, right = x & mask_;
    for (std::uint64_t round = 0; round < kRounds; ++round) {
      const std::uint64_t f = rng::hash(seed_, stream_, (round << 32) | right) & mask_;
      const std::uint64_t next = left ^ f;
      left = right;
      right = next;
    }
    return (left << half_bits_) | right;
  }

  std::uint64_t n_, seed_, stream_;
  int half_bits_ = 1;  // at least one bit a half: a domain of 4 for n <= 4
  std::uint64_t mask_ = 1;
};

}  // namespace cuem
