#include "cpu/kmeans_kernels.hpp"

#include <limits>
#include <type_traits>

#include "cpu/simd.hpp"

namespace cuem::cpu {

namespace {

using namespace simd;

// Dimension d of 8 rows from r (lanes past `rows` repeat row 0) as float64.
template <typename T>
CUEM_INLINE v8d column(const T* x, std::size_t stride, int rows, int r, int d) {
  v8d v;
  for (int l = 0; l < 8; ++l) v[l] = static_cast<double>(x[static_cast<std::size_t>(r + l < rows ? r + l : 0) * stride + d]);
  return v;
}

// The 8 rows from r, dimensions 0..dc-1 (dc = min(D, kMaxD)), transposed into xt: float64
// rows eight whole dimensions at a time where all 8 rows exist (loads of consecutive
// values, then shuffles), the rest a value at a time.
constexpr int kMaxD = 64;

template <typename T>
CUEM_INLINE void transpose8(const T* x, std::size_t stride, int D, int rows, int r, v8d* xt) {
  const int dc = D < kMaxD ? D : kMaxD;
  int d = 0;
  if constexpr (std::is_same_v<T, double>) {
    if (r + 8 <= rows) {
      for (; d + 8 <= dc; d += 8) {
        v8d a[8];
        for (int l = 0; l < 8; ++l) a[l] = load(x + static_cast<std::size_t>(r + l) * stride + d);
        transpose8x8(a, xt + d);
      }
    }
  }
  for (; d < dc; ++d) xt[d] = column(x, stride, rows, r, d);
}

// Prefetches the 8 rows from r + 16 (the kernels below are bound by reading the rows when
// their centres are few).
template <typename T>
CUEM_INLINE void prefetch_ahead(const T* x, std::size_t stride, int rows, int r) {
  if (r + 24 > rows) return;
  const char* ahead = reinterpret_cast<const char*>(x + static_cast<std::size_t>(r + 16) * stride);
  const std::size_t bytes = 8 * stride * sizeof(T);
  for (std::size_t b = 0; b < bytes; b += 64) __builtin_prefetch(ahead + b);
}

// The squared distances of the 8 rows from r (xt: their transposed dimensions) to each of n
// centres, four centres a sweep over the dimensions (four independent chains) and the rest
// one a sweep: f(t, s) receives centre t's distances, in centre order.
template <typename T, typename F>
CUEM_INLINE void distances8(const T* x, std::size_t stride, int D, int rows, int r, const v8d* xt, const double* c,
                            int n, F&& f) {
  const auto x_d = [&](int d) CUEM_INLINE_LAMBDA { return d < kMaxD ? xt[d] : column(x, stride, rows, r, d); };
  int t = 0;
  for (; t + 4 <= n; t += 4) {
    const double* c0 = c + static_cast<std::size_t>(t) * D;
    const double* c1 = c0 + D;
    const double* c2 = c1 + D;
    const double* c3 = c2 + D;
    v8d s0 = splat(0.0), s1 = s0, s2 = s0, s3 = s0;
    for (int d = 0; d < D; ++d) {
      const v8d xv = x_d(d);
      const v8d t0 = xv - c0[d], t1 = xv - c1[d], t2 = xv - c2[d], t3 = xv - c3[d];
      s0 += t0 * t0;
      s1 += t1 * t1;
      s2 += t2 * t2;
      s3 += t3 * t3;
    }
    f(t, s0);
    f(t + 1, s1);
    f(t + 2, s2);
    f(t + 3, s3);
  }
  for (; t < n; ++t) {
    const double* c0 = c + static_cast<std::size_t>(t) * D;
    v8d s0 = splat(0.0);
    for (int d = 0; d < D; ++d) {
      const v8d t0 = x_d(d) - c0[d];
      s0 += t0 * t0;
    }
    f(t, s0);
  }
}

template <typename T>
CUEM_INLINE void dist_sq_multi_impl(const T* x, std::size_t stride, int D, int rows, const double* c, int n,
                                    double* out, std::size_t out_stride) {
  v8d xt[kMaxD];
  for (int r = 0; r < rows; r += 8) {
    prefetch_ahead(x, stride, rows, r);
    transpose8(x, stride, D, rows, r, xt);
    distances8(x, stride, D, rows, r, xt, c, n, [&](int t, v8d s) CUEM_INLINE_LAMBDA {
      double* o = out + static_cast<std::size_t>(t) * out_stride + r;
      for (int l = 0; l < 8 && r + l < rows; ++l) o[l] = s[l];
    });
  }
}

// In centre order, strictly smaller wins: the first of equal distances keeps its label.
template <typename T>
CUEM_INLINE void nearest_impl(const T* x, std::size_t stride, int D, int rows, const double* centers, int K,
                              int* labels, double* dist) {
  v8d xt[kMaxD];
  for (int r = 0; r < rows; r += 8) {
    prefetch_ahead(x, stride, rows, r);
    transpose8(x, stride, D, rows, r, xt);
    v8d best = splat(std::numeric_limits<double>::infinity());
    v8d best_k = splat(0.0);
    distances8(x, stride, D, rows, r, xt, centers, K, [&](int k, v8d s) CUEM_INLINE_LAMBDA {
      best_k = s < best ? splat(k) : best_k;
      best = s < best ? s : best;
    });
    for (int l = 0; l < 8 && r + l < rows; ++l) {
      labels[r + l] = static_cast<int>(best_k[l]);
      if (dist) dist[r + l] = best[l];
    }
  }
}

}  // namespace

CUEM_CLONES
void dist_sq_rows_multi(const double* x, std::size_t stride, int D, int rows, const double* c, int n, double* out,
                        std::size_t out_stride) {
  dist_sq_multi_impl(x, stride, D, rows, c, n, out, out_stride);
}

CUEM_CLONES
void dist_sq_rows_multi(const float* x, std::size_t stride, int D, int rows, const double* c, int n, double* out,
                        std::size_t out_stride) {
  dist_sq_multi_impl(x, stride, D, rows, c, n, out, out_stride);
}

CUEM_CLONES
void nearest_rows(const double* x, std::size_t stride, int D, int rows, const double* centers, int K, int* labels,
                  double* dist) {
  nearest_impl(x, stride, D, rows, centers, K, labels, dist);
}

CUEM_CLONES
void nearest_rows(const float* x, std::size_t stride, int D, int rows, const double* centers, int K, int* labels,
                  double* dist) {
  nearest_impl(x, stride, D, rows, centers, K, labels, dist);
}

}  // namespace cuem::cpu
