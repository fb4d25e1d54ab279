#pragma once
// Scratch for the vector kernels on 64-byte boundaries. std::vector<double> is aligned to
// 16 bytes only, and where malloc serves a buffer (its arena, or a fresh mapping) decides
// whether a buffer's 64-byte loads and stores each straddle two cache lines; a split
// store costs about twice an aligned one, so the same kernel ran at different speeds on
// different threads and in different runs.
#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <memory>
#include <new>
#include <utility>

namespace cuem::cpu {

class AlignedBuffer {
 public:
  static constexpr std::size_t kAlignment = 64;

  AlignedBuffer() = default;
  /// n doubles, zero-initialised.
  explicit AlignedBuffer(std::size_t n) : data_(allocate(n)), size_(n), capacity_(n) {
    std::fill(data_.get(), data_.get() + n, 0.0);
  }
  // Moves leave the source empty (a moved-from buffer must not report its old size).
  AlignedBuffer(AlignedBuffer&& o) noexcept
      : data_(std::move(o.data_)), size_(std::exchange(o.size_, 0)), capacity_(std::exchange(o.capacity_, 0)) {}
  AlignedBuffer& operator=(AlignedBuffer&& o) noexcept {
    data_ = std::move(o.data_);
    size_ = std::exchange(o.size_, 0);
    capacity_ = std::exchange(o.capacity_, 0);
    return *this;
  }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;

  /// n doubles: the first min(n, size()) kept, the rest zero; reallocates only to grow.
  void resize(std::size_t n) {
    if (n > capacity_) {
      std::unique_ptr<double[], Free> grown(allocate(n));
      std::copy(data_.get(), data_.get() + size_, grown.get());
      data_ = std::move(grown);
      capacity_ = n;
    }
    if (n > size_) std::fill(data_.get() + size_, data_.get() + n, 0.0);
    size_ = n;
  }
  /// n copies of value.
  void assign(std::size_t n, double value) {
    resize(n);
    std::fill(data_.get(), data_.get() + n, value);
  }

  double* data() noexcept { return data_.get(); }
  const double* data() const noexcept { return data_.get(); }
  double* begin() noexcept { return data_.get(); }
  double* end() noexcept { return data_.get() + size_; }
  std::size_t size() const noexcept { return size_; }
  double& operator[](std::size_t i) noexcept { return data_[i]; }
  const double& operator[](std::size_t i) const noexcept { return data_[i]; }

 private:
  struct Free {
    void operator()(double* p) const noexcept { std::free(p); }
  };
  static double* allocate(std::size_t n) {
    if (n == 0) return nullptr;
    const std::size_t bytes = (n * sizeof(double) + kAlignment - 1) / kAlignment * kAlignment;
    void* p = std::aligned_alloc(kAlignment, bytes);
    if (p == nullptr) throw std::bad_alloc();
    return static_cast<double*>(p);
  }
  std::unique_ptr<double[], Free> data_;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
};

}  // namespace cuem::cpu
