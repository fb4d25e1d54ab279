// engine::resize_large (src/engine/large_arrays.hpp): std::vector::resize's contents (the
// prefix kept, the rest zero) for arrays below and above the huge-page threshold, alone
// and several at once over two threads, with errors passed to the caller.
#include <gtest/gtest.h>

#include <cstddef>
#include <stdexcept>
#include <vector>

#include "engine/large_arrays.hpp"

namespace {

using cuem::engine::resize_large;

// v holds 0.5 + i for i < kept and 0 from there to n.
void expect_resized(const std::vector<double>& v, std::size_t kept, std::size_t n) {
  ASSERT_EQ(v.size(), n);
  for (std::size_t i = 0; i < n; ++i)
    ASSERT_EQ(v[i], i < kept ? 0.5 + static_cast<double>(i) : 0.0) << "element " << i << " of " << n;
}

std::vector<double> counting(std::size_t n) {
  std::vector<double> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = 0.5 + static_cast<double>(i);
  return v;
}

TEST(ResizeLarge, KeepsThePrefixAndZeroesTheRestBelowAndAboveTheThreshold) {
  // 100 doubles (no advice) and 3 x 2^20 (24 MiB: whole huge pages inside it).
  for (std::size_t n0 : {std::size_t{100}, std::size_t{3} << 20}) {
    std::vector<double> v = counting(n0 / 3);
    resize_large(v, n0);
    expect_resized(v, n0 / 3, n0);
    // Shrinking keeps the prefix; growing again within the capacity does not reallocate.
    resize_large(v, n0 / 4);
    expect_resized(v, n0 / 4, n0 / 4);
    const double* storage = v.data();
    resize_large(v, n0 / 2);
    EXPECT_EQ(v.data(), storage);
    expect_resized(v, n0 / 4, n0 / 2);
  }
}

TEST(ResizeLarge, SeveralArraysOnEitherThreadCount) {
  for (bool two_threads : {false, true}) {
    std::vector<double> big = counting(1000), other = counting(10), fits = counting(50), empty;
    fits.reserve(5000);  // grows without reallocating
    const std::size_t n_big = std::size_t{5} << 20, n_other = std::size_t{2} << 20;
    resize_large({{&big, n_big}, {&other, n_other}, {&fits, 5000}, {&empty, 7}}, two_threads);
    expect_resized(big, 1000, n_big);
    expect_resized(other, 10, n_other);
    expect_resized(fits, 50, 5000);
    expect_resized(empty, 0, 7);
  }
}

TEST(ResizeLarge, AnImpossibleSizeThrowsToTheCaller) {
  for (bool two_threads : {false, true}) {
    std::vector<double> ok = counting(10), impossible;
    EXPECT_THROW(resize_large({{&ok, std::size_t{3} << 20}, {&impossible, impossible.max_size() + 1}}, two_threads),
                 std::length_error)
        << two_threads;
  }
}

}  // namespace
