#pragma once
// Sizing the E-step's large per-frame arrays (T x K doubles: hundreds of MiB for one long
// sequence). Their first touch, not their arithmetic, dominated a short fit's first E-step:
// std::vector's resize zero-fills on the calling thread, faulting the pages in 4 KiB at a
// time. Here a fresh allocation is advised to the kernel as huge pages (Linux transparent
// huge pages, in either mode) before it is touched, and several arrays can grow on two
// threads at once. The contents follow std::vector::resize, so no result depends on this.
#include <cstddef>
#include <vector>

namespace cuem::engine {

/// v.resize(n): the first min(n, size()) elements kept, the rest zero. Where v must
/// reallocate, the new storage is advised as huge pages before its first touch.
void resize_large(std::vector<double>& v, std::size_t n);

/// An array and the size it needs.
struct ArraySize {
  std::vector<double>* v;
  std::size_t n;
};

/// resize_large of each array; with two_threads and more than one array to reallocate, the
/// reallocations are split over two threads by bytes (each array on one thread).
void resize_large(const std::vector<ArraySize>& arrays, bool two_threads);

}  // namespace cuem::engine
