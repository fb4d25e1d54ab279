// The kernels' scratch type (src/cpu/aligned_buffer.hpp): every buffer starts on a cache
// line whatever its size and however malloc's state was left, it starts zeroed, and
// resize / assign keep std::vector's meaning (kept prefix, zeroed growth).
#include <gtest/gtest.h>

#include <cstdint>
#include <thread>
#include <utility>
#include <vector>

#include "cpu/aligned_buffer.hpp"

namespace {

using cuem::cpu::AlignedBuffer;

bool on_line(const double* p) { return reinterpret_cast<std::uintptr_t>(p) % AlignedBuffer::kAlignment == 0; }

TEST(AlignedBuffer, EverySizeStartsOnACacheLineAndZeroed) {
  std::vector<AlignedBuffer> kept;  // held, so that later allocations land elsewhere
  for (std::size_t n : {1u, 3u, 7u, 8u, 9u, 100u, 4369u * 8u, 1u << 20}) {
    kept.emplace_back(n);
    const AlignedBuffer& b = kept.back();
    ASSERT_EQ(b.size(), n);
    EXPECT_TRUE(on_line(b.data())) << n;
    for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(b[i], 0.0) << n << " " << i;
  }
}

TEST(AlignedBuffer, OnACacheLineInAnotherThreadsArena) {
  // A second thread allocates from its own malloc arena, which gave the old buffers other
  // offsets than the main thread's.
  bool aligned = false;
  std::thread t([&] {
    AlignedBuffer b(35000);
    aligned = on_line(b.data());
  });
  t.join();
  EXPECT_TRUE(aligned);
}

TEST(AlignedBuffer, EmptyHasNoStorage) {
  AlignedBuffer b;
  EXPECT_EQ(b.size(), 0u);
  EXPECT_EQ(b.data(), nullptr);
  AlignedBuffer z(0);
  EXPECT_EQ(z.data(), nullptr);
}

TEST(AlignedBuffer, ResizeKeepsThePrefixAndZeroesGrowth) {
  AlignedBuffer b(5);
  for (std::size_t i = 0; i < 5; ++i) b[i] = static_cast<double>(i + 1);
  b.resize(3);  // shrinks without reallocating
  const double* before = b.data();
  EXPECT_EQ(b.size(), 3u);
  b.resize(5);  // within capacity: the dropped tail comes back as zeros, as std::vector's would
  EXPECT_EQ(b.data(), before);
  EXPECT_EQ(b[2], 3.0);
  EXPECT_EQ(b[3], 0.0);
  EXPECT_EQ(b[4], 0.0);
  b.resize(1000);  // grows: reallocated, still on a line, prefix kept
  EXPECT_TRUE(on_line(b.data()));
  EXPECT_EQ(b[0], 1.0);
  EXPECT_EQ(b[2], 3.0);
  for (std::size_t i = 3; i < 1000; ++i) ASSERT_EQ(b[i], 0.0) << i;
}

TEST(AlignedBuffer, MovesLeaveTheSourceEmpty) {
  AlignedBuffer a(10);
  a[3] = 4.0;
  const double* storage = a.data();
  AlignedBuffer b(std::move(a));
  EXPECT_EQ(b.data(), storage);
  EXPECT_EQ(b.size(), 10u);
  EXPECT_EQ(b[3], 4.0);
  EXPECT_EQ(a.size(), 0u);  // NOLINT(bugprone-use-after-move): the state after a move is the point
  EXPECT_EQ(a.data(), nullptr);
  AlignedBuffer c(2);
  c = std::move(b);
  EXPECT_EQ(c.data(), storage);
  EXPECT_EQ(c.size(), 10u);
  EXPECT_EQ(b.size(), 0u);  // NOLINT(bugprone-use-after-move)
  a.resize(3);  // a moved-from buffer is usable again
  EXPECT_EQ(a.size(), 3u);
  EXPECT_EQ(a[2], 0.0);
}

TEST(AlignedBuffer, AssignFillsEveryValue) {
  AlignedBuffer b(4);
  b[1] = 7.0;
  b.assign(6, 2.5);
  ASSERT_EQ(b.size(), 6u);
  for (std::size_t i = 0; i < 6; ++i) EXPECT_EQ(b[i], 2.5);
  b.assign(2, 0.0);
  EXPECT_EQ(b.size(), 2u);
  EXPECT_EQ(b[0], 0.0);
  EXPECT_EQ(b[1], 0.0);
}

}  // namespace
