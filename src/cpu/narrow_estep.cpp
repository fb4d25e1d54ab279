#include "cpu/narrow_estep.hpp"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <vector>

#include "core/data_access.hpp"
#include "cpu/cpu_primitives.hpp"

namespace cuem::cpu {

namespace {

// The 8 lane partials of one value, added in a fixed order.
constexpr std::size_t kCacheLine = 64;

double lane_sum(const double* a) {
  return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

// Asks for rows [begin, begin + rows) ahead of their transposition. The kernel's work on a
// block is short next to a cache line's trip from memory, and the hardware prefetcher
// starts afresh at each page, so without this the transposition waits on every line.
// Always inlined: GCC takes a function that only prefetches for one without side effects
// and drops its calls.
template <typename T>
inline __attribute__((always_inline)) void prefetch_block(const T* base, std::size_t stride, int D, std::size_t begin, int rows) {
  const std::size_t row_bytes = stride * sizeof(T);
  const char* first = reinterpret_cast<const char*>(base + begin * stride);
  if (row_bytes <= 2 * kCacheLine) {  // dense enough: every line of the span
    const char* last = reinterpret_cast<const char*>(base + (begin + rows - 1) * stride + D);
    for (const char* a = first; a < last; a += kCacheLine) __builtin_prefetch(a);
  } else {
    for (int r = 0; r < rows; ++r) __builtin_prefetch(first + r * row_bytes);
  }
}

}  // namespace

SufficientStats narrow_estep(DataView X, const NarrowParams& p, WeightView w, const std::function<void()>& poll) {
  const int K = p.K, D = p.D;
  const bool full = p.type == CovarianceType::full || p.type == CovarianceType::tied;
  const int S = narrow_stats_per_component(p.type, D);
  const std::size_t values = static_cast<std::size_t>(K) * S + 1;  // then the log-likelihood
  const std::size_t n = X.n_rows;
  const std::size_t units = (n + kNarrowUnitRows - 1) / kNarrowUnitRows;
  std::vector<double> partial(units * values);
  std::atomic<bool> stop{false};
  std::exception_ptr error;
  std::mutex error_mutex;
  const int n_threads = worth_threads(n, K, D) ? omp_get_max_threads() : 1;

#pragma omp parallel num_threads(n_threads)
  {
    std::vector<double> xt(static_cast<std::size_t>(D) * kNarrowRows);
    std::vector<double> g(static_cast<std::size_t>(K) * kNarrowRows);
    std::vector<double> acc(values * 8);
    std::vector<double> wb(kNarrowRows);
#pragma omp for schedule(dynamic, 1)
    for (std::ptrdiff_t u = 0; u < static_cast<std::ptrdiff_t>(units); ++u) {
      if (stop.load(std::memory_order_relaxed)) continue;
      if (poll && omp_get_thread_num() == 0) {  // the caller's thread: Python polls signals there
        try {
          poll();
        } catch (...) {
          const std::lock_guard<std::mutex> lock(error_mutex);
          if (!error) error = std::current_exception();
          stop.store(true, std::memory_order_relaxed);
          continue;
        }
      }
      std::fill(acc.begin(), acc.end(), 0.0);
      const std::size_t begin = static_cast<std::size_t>(u) * kNarrowUnitRows;
      const std::size_t end = std::min(n, begin + kNarrowUnitRows);
      for (std::size_t b = begin; b < end; b += kNarrowRows) {
        const int rows = static_cast<int>(std::min<std::size_t>(kNarrowRows, end - b));
        const std::size_t next = b + static_cast<std::size_t>(rows);
        const int next_rows = static_cast<int>(std::min<std::size_t>(kNarrowRows, end - std::min(end, next)));
        visit_rows(X, [&](const auto* base) {
          narrow_transpose(base + b * X.row_stride, X.row_stride, D, rows, xt.data());
          if (next_rows > 0) prefetch_block(base, X.row_stride, D, next, next_rows);
        });
        // The lanes' weights: the points' (1 without weights), 0 past the rows.
        if (w.empty())
          std::fill(wb.begin(), wb.begin() + rows, 1.0);
        else
          std::copy(w.data + b, w.data + b + rows, wb.begin());
        std::fill(wb.begin() + rows, wb.end(), 0.0);
        narrow_block(p, xt.data(), rows, wb.data(), g.data(), acc.data());
      }
      double* out = partial.data() + static_cast<std::size_t>(u) * values;
      for (std::size_t v = 0; v < values; ++v) out[v] = lane_sum(acc.data() + v * 8);
    }
  }
  if (error) std::rethrow_exception(error);

  std::vector<double> total(values, 0.0);
  for (std::size_t u = 0; u < units; ++u) {
    const double* part = partial.data() + u * values;
    for (std::size_t v = 0; v < values; ++v) total[v] += part[v];
  }
  SufficientStats s = SufficientStats::zeros(p.type, K, D, std::vector<double>(p.shift, p.shift + static_cast<std::size_t>(K) * D));
  const std::size_t uD = static_cast<std::size_t>(D);
  for (int k = 0; k < K; ++k) {
    const double* t = total.data() + static_cast<std::size_t>(k) * S;
    const std::size_t uk = static_cast<std::size_t>(k);
    s.nk[uk] = t[0];
    for (std::size_t d = 0; d < uD; ++d) s.s1[uk * uD + d] = t[1 + d];
    const double* t2 = t + 1 + D;
    if (full) {
      // Tied: the components' scatters summed in k order.
      double* s2 = s.s2.data() + (p.type == CovarianceType::full ? uk * uD * uD : 0);
      for (std::size_t i = 0; i < uD; ++i)
        for (std::size_t j = i; j < uD; ++j) s2[i * uD + j] += *t2++;
    } else {
      for (std::size_t d = 0; d < uD; ++d) s.s2[uk * uD + d] = t2[d];
    }
  }
  s.log_likelihood = total[values - 1];
  s.n_points = n;
  s.weight = static_cast<double>(n);
  if (!w.empty()) {
    s.weight = 0.0;
    for (std::size_t i = 0; i < n; ++i) s.weight += w.data[i];
  }
  return s;
}

}  // namespace cuem::cpu
