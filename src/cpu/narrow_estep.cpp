#include "cpu/narrow_estep.hpp"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <vector>

#include "core/data_access.hpp"
#include "cpu/aligned_buffer.hpp"
#include "cpu/cpu_primitives.hpp"
#include "cpu/wide_kernels.hpp"

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

// The narrow pass (narrow_kernels.hpp): S2 packed as the upper triangle row by row.
struct NarrowLanes {
  static int rows(CovarianceType) { return kNarrowRows; }
  static int stats_per_component(CovarianceType type, int D) { return narrow_stats_per_component(type, D); }
  static std::size_t scratch(CovarianceType, int) { return 0; }
  static int upper(int D, int i, int j) { return i * D - i * (i - 1) / 2 + (j - i); }
  template <typename T>
  static void transpose(const T* x, std::size_t stride, int D, int rows, int, double* xt) {
    narrow_transpose(x, stride, D, rows, xt);
  }
  static void block(const NarrowParams& p, const double* xt, int rows, const double* w, double* g, double*,
                    double* acc) {
    narrow_block(p, xt, rows, w, g, acc);
  }
};

// The wide pass (wide_kernels.hpp): S2 as a pad4(D) square.
struct WideLanes {
  static int rows(CovarianceType type) { return wide_rows(type); }
  static int stats_per_component(CovarianceType type, int D) { return wide_stats_per_component(type, D); }
  static std::size_t scratch(CovarianceType type, int D) { return wide_scratch(type, D); }
  static int upper(int D, int i, int j) { return i * pad4(D) + j; }
  template <typename T>
  static void transpose(const T* x, std::size_t stride, int D, int rows, int R, double* xt) {
    wide_transpose(x, stride, D, rows, R, xt);
  }
  static void block(const NarrowParams& p, const double* xt, int rows, const double* w, double* g,
                    double* scratch, double* acc) {
    wide_block(p, xt, rows, w, g, scratch, acc);
  }
};

// One pass; `skipped` receives the K weights left out (the values after the log-likelihood).
// With `given` (kGiven: the narrow pass only), the rows' weights are given (N x K) and
// only the statistics are formed.
template <typename Lanes, bool kGiven = false>
SufficientStats lanes_pass(DataView X, const NarrowParams& p, WeightView w, const std::function<void()>& poll,
                           std::vector<double>& skipped, const double* given = nullptr) {
  const int block_rows = Lanes::rows(p.type);  // divides kNarrowUnitRows
  const int K = p.K, D = p.D;
  const bool full = p.type == CovarianceType::full || p.type == CovarianceType::tied;
  const int S = Lanes::stats_per_component(p.type, D);
  // Then the log-likelihood and the K weights skipped.
  const std::size_t values = static_cast<std::size_t>(K) * S + 1 + static_cast<std::size_t>(K);
  const std::size_t n = X.n_rows;
  const std::size_t units = (n + kNarrowUnitRows - 1) / kNarrowUnitRows;
  std::vector<double> partial(units * values);
  std::atomic<bool> stop{false};
  std::exception_ptr error;
  std::mutex error_mutex;
  const int n_threads = worth_threads(n, K, D) ? omp_get_max_threads() : 1;

#pragma omp parallel num_threads(n_threads)
  {
    AlignedBuffer xt(static_cast<std::size_t>(D) * block_rows);
    AlignedBuffer g(static_cast<std::size_t>(K) * block_rows);
    AlignedBuffer scratch(Lanes::scratch(p.type, D));
    AlignedBuffer acc(values * 8);
    AlignedBuffer wb(kGiven ? 0 : block_rows);  // the given weights carry the points' weights
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
      for (std::size_t b = begin; b < end; b += block_rows) {
        const int rows = static_cast<int>(std::min<std::size_t>(block_rows, end - b));
        const std::size_t next = b + static_cast<std::size_t>(rows);
        const int next_rows = static_cast<int>(std::min<std::size_t>(block_rows, end - std::min(end, next)));
        visit_rows(X, [&](const auto* base) {
          Lanes::transpose(base + b * X.row_stride, X.row_stride, D, rows, block_rows, xt.data());
          if (next_rows > 0) prefetch_block(base, X.row_stride, D, next, next_rows);
        });
        if constexpr (kGiven) {
          // The given weights component-major (times the points' weights), 0 past the rows.
          const std::size_t uK = static_cast<std::size_t>(K);
          const int lanes = (rows + 7) / 8 * 8;
          for (int k = 0; k < K; ++k) {
            double* gk = g.data() + static_cast<std::size_t>(k) * block_rows;
            const double* src = given + b * uK + static_cast<std::size_t>(k);
            for (int r = 0; r < rows; ++r) gk[r] = src[static_cast<std::size_t>(r) * uK];
            if (!w.empty())
              for (int r = 0; r < rows; ++r) gk[r] *= w.data[b + static_cast<std::size_t>(r)];
            for (int r = rows; r < lanes; ++r) gk[r] = 0.0;
          }
          narrow_given_block(p, xt.data(), rows, g.data(), acc.data());
        } else {
          // The lanes' weights: the points' (1 without weights), 0 past the rows.
          if (w.empty())
            std::fill(wb.begin(), wb.begin() + rows, 1.0);
          else
            std::copy(w.data + b, w.data + b + rows, wb.begin());
          std::fill(wb.begin() + rows, wb.end(), 0.0);
          Lanes::block(p, xt.data(), rows, wb.data(), g.data(), scratch.data(), acc.data());
        }
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
        for (std::size_t j = i; j < uD; ++j) s2[i * uD + j] += t2[Lanes::upper(D, static_cast<int>(i), static_cast<int>(j))];
    } else {
      for (std::size_t d = 0; d < uD; ++d) s.s2[uk * uD + d] = t2[d];
    }
  }
  s.log_likelihood = total[static_cast<std::size_t>(K) * S];
  skipped.assign(total.end() - K, total.end());
  s.n_points = n;
  s.weight = static_cast<double>(n);
  if (!w.empty()) {
    s.weight = 0.0;
    for (std::size_t i = 0; i < n; ++i) s.weight += w.data[i];
  }
  return s;
}

}  // namespace

bool lanes_applies(CovarianceType type, int D) noexcept { return narrow_applies(type, D) || wide_applies(type, D); }

SufficientStats lanes_given_stats(DataView X, CovarianceType type, int K, const double* shift, const double* g,
                                  WeightView w, const std::function<void()>& poll) {
  const NarrowParams p{type, K, static_cast<int>(X.n_cols), nullptr, nullptr, nullptr, shift};
  std::vector<double> left_out;
  return lanes_pass<NarrowLanes, true>(X, p, w, poll, left_out, g);
}

SufficientStats lanes_estep(DataView X, const NarrowParams& p, WeightView w, const std::function<void()>& poll,
                            double tolerance, std::vector<double>* skipped) {
  std::vector<double> left_out;
  if (narrow_applies(p.type, p.D)) {
    SufficientStats s = lanes_pass<NarrowLanes>(X, p, w, poll, left_out);
    if (skipped) skipped->assign(static_cast<std::size_t>(p.K), 0.0);
    return s;
  }
  SufficientStats s = lanes_pass<WideLanes>(X, p, w, poll, left_out);
  bool safe = true;
  for (int k = 0; k < p.K; ++k) {
    const std::size_t uk = static_cast<std::size_t>(k);
    safe = safe && !(left_out[uk] > tolerance * s.nk[uk]);
  }
  if (!safe) {  // a component's kept weight is not large enough beside what was left out
    NarrowParams exact = p;
    exact.negligible = 0.0;
    s = lanes_pass<WideLanes>(X, exact, w, poll, left_out);
  }
  if (skipped) *skipped = left_out;
  return s;
}

}  // namespace cuem::cpu
