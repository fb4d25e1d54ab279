#include "engine/large_arrays.hpp"

#include <algorithm>
#include <cstdint>
#include <exception>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace cuem::engine {
namespace {

// The huge page size of x86-64 and arm64 (4 KiB base pages); a smaller array gains nothing.
constexpr std::uintptr_t kHugePage = std::uintptr_t{2} << 20;

// Advises the whole huge pages inside [p, p + bytes): a hint, so its failure changes nothing.
void advise_huge_pages(void* p, std::size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  const std::uintptr_t begin = (reinterpret_cast<std::uintptr_t>(p) + kHugePage - 1) & ~(kHugePage - 1);
  const std::uintptr_t end = (reinterpret_cast<std::uintptr_t>(p) + bytes) & ~(kHugePage - 1);
  if (begin < end) (void)madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#else
  (void)p;
  (void)bytes;
#endif
}

bool reallocates(const std::vector<double>& v, std::size_t n) { return n > v.capacity(); }

}  // namespace

void resize_large(std::vector<double>& v, std::size_t n) {
  if (!reallocates(v, n) || n * sizeof(double) < 2 * kHugePage) {
    v.resize(n);
    return;
  }
  std::vector<double> grown;
  grown.reserve(n);  // untouched until the copy and the fill below
  advise_huge_pages(grown.data(), n * sizeof(double));
  grown.assign(v.begin(), v.end());
  grown.resize(n);
  v.swap(grown);
}

void resize_large(const std::vector<ArraySize>& arrays, bool two_threads) {
  // Each array that reallocates goes to the thread with fewer bytes so far, largest first.
  std::vector<ArraySize> growing, group[2];
  for (const ArraySize& a : arrays) {
    if (reallocates(*a.v, a.n))
      growing.push_back(a);
    else
      a.v->resize(a.n);
  }
  std::sort(growing.begin(), growing.end(), [](const ArraySize& x, const ArraySize& y) { return x.n > y.n; });
  std::size_t bytes[2] = {0, 0};
  for (const ArraySize& a : growing) {
    const int g = bytes[1] < bytes[0] ? 1 : 0;
    group[g].push_back(a);
    bytes[g] += a.n;
  }
  std::exception_ptr error[2];
#pragma omp parallel num_threads(2) if (two_threads && growing.size() > 1)
  {
#pragma omp for schedule(static, 1)
    for (int g = 0; g < 2; ++g) {
      try {
        for (const ArraySize& a : group[g]) resize_large(*a.v, a.n);
      } catch (...) {
        error[g] = std::current_exception();
      }
    }
  }
  for (const std::exception_ptr& e : error)
    if (e) std::rethrow_exception(e);
}

}  // namespace cuem::engine
