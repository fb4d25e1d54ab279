#include "cpu/kmeans_kernels.hpp"

#include <limits>

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

template <typename T>
CUEM_INLINE void dist_sq_impl(const T* x, std::size_t stride, int D, int rows, const double* c, double* out) {
  for (int r = 0; r < rows; r += 8) {
    v8d s = splat(0.0);
    for (int d = 0; d < D; ++d) {
      const v8d t = column(x, stride, rows, r, d) - c[d];
      s += t * t;
    }
    for (int l = 0; l < 8 && r + l < rows; ++l) out[r + l] = s[l];
  }
}

// Four centres per sweep over the dimensions (four independent chains), the rows'
// dimensions read once per sweep from a transposed copy.
template <typename T>
CUEM_INLINE void nearest_impl(const T* x, std::size_t stride, int D, int rows, const double* centers, int K,
                              int* labels, double* dist) {
  constexpr int kMaxD = 64;
  v8d xt[kMaxD];
  for (int r = 0; r < rows; r += 8) {
    const int dc = D < kMaxD ? D : kMaxD;
    for (int d = 0; d < dc; ++d) xt[d] = column(x, stride, rows, r, d);
    const auto x_d = [&](int d) CUEM_INLINE_LAMBDA { return d < kMaxD ? xt[d] : column(x, stride, rows, r, d); };
    v8d best = splat(std::numeric_limits<double>::infinity());
    v8d best_k = splat(0.0);
    int k = 0;
    for (; k + 4 <= K; k += 4) {
      const double* c0 = centers + static_cast<std::size_t>(k) * D;
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
      // In k order, strictly smaller wins: the first of equal distances keeps its label.
      best_k = s0 < best ? splat(k) : best_k;
      best = s0 < best ? s0 : best;
      best_k = s1 < best ? splat(k + 1) : best_k;
      best = s1 < best ? s1 : best;
      best_k = s2 < best ? splat(k + 2) : best_k;
      best = s2 < best ? s2 : best;
      best_k = s3 < best ? splat(k + 3) : best_k;
      best = s3 < best ? s3 : best;
    }
    for (; k < K; ++k) {
      const double* c0 = centers + static_cast<std::size_t>(k) * D;
      v8d s0 = splat(0.0);
      for (int d = 0; d < D; ++d) {
        const v8d t0 = x_d(d) - c0[d];
        s0 += t0 * t0;
      }
      best_k = s0 < best ? splat(k) : best_k;
      best = s0 < best ? s0 : best;
    }
    for (int l = 0; l < 8 && r + l < rows; ++l) {
      labels[r + l] = static_cast<int>(best_k[l]);
      if (dist) dist[r + l] = best[l];
    }
  }
}

}  // namespace

CUEM_CLONES
void dist_sq_rows(const double* x, std::size_t stride, int D, int rows, const double* c, double* out) {
  dist_sq_impl(x, stride, D, rows, c, out);
}

CUEM_CLONES
void dist_sq_rows(const float* x, std::size_t stride, int D, int rows, const double* c, double* out) {
  dist_sq_impl(x, stride, D, rows, c, out);
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
