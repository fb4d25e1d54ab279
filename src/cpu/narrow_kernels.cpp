#include "cpu/narrow_kernels.hpp"

#include <cmath>

#include "core/point_math.hpp"
#include "cpu/cpu_kernels.hpp"
#include "cpu/simd.hpp"

namespace cuem::cpu {

namespace {

using namespace simd;

enum Kind { kFull, kDiag, kSpherical };

// One component's log joint for 8 points, by the same sequence of operations as
// cpu_kernels.cpp's log joints, so a point's value is the same on either path.
template <int D, Kind kind>
CUEM_INLINE v8d log_joint(const v8d* x, const double* mu, const double* factor, double constant) {
  v8d q = splat(0.0);
  if constexpr (kind == kFull) {
    constexpr int Dp = pad4(D);
    v8d y[D];
    for (int d = 0; d < D; ++d) y[d] = x[d] - mu[d];
    for (int j = 0; j < D; ++j) {
      v8d z = splat(0.0);
      for (int i = 0; i <= j; ++i) z += y[i] * factor[i * Dp + j];
      q += z * z;
    }
  } else if constexpr (kind == kDiag) {
    for (int d = 0; d < D; ++d) {
      const v8d s = (x[d] - mu[d]) * factor[d];
      q += s * s;
    }
  } else {
    for (int d = 0; d < D; ++d) {
      const v8d y = x[d] - mu[d];
      q += y * y;
    }
    q = q * (splat(factor[0]) * splat(factor[0]));
  }
  const v8d dl = splat(static_cast<double>(D) * math::kLog2Pi);
  return splat(constant) - splat(0.5) * (dl + q);
}

template <int D, Kind kind>
CUEM_INLINE void narrow_impl(const NarrowParams& p, const double* xt, int rows, const double* w, double* g,
                             double* acc) {
  constexpr int T = kind == kFull ? D * (D + 1) / 2 : D;
  constexpr int S = 1 + D + T;
  const int K = p.K;
  const int fstride = kind == kFull ? D * pad4(D) : kind == kDiag ? D : 1;
  const int nv = (rows + 7) / 8;
  const v8d even_share = splat(1.0 / K);

  // Responsibilities of the block, component-major in g, and the log-likelihood.
  v8d ll = load(acc + static_cast<std::ptrdiff_t>(K) * S * 8);
  for (int v = 0; v < nv; ++v) {
    v8d x[D];
    for (int d = 0; d < D; ++d) x[d] = load(xt + d * kNarrowRows + v * 8);
    double* gv = g + v * 8;
    v8d m = splat(0.0);
    for (int k = 0; k < K; ++k) {
      const v8d lj = log_joint<D, kind>(x, p.means + static_cast<std::ptrdiff_t>(k) * D,
                                        p.factors + static_cast<std::ptrdiff_t>(k) * fstride, p.constants[k]);
      store(gv + k * kNarrowRows, lj);
      m = k == 0 ? lj : vmax(lj, m);
    }
    v8d sum = splat(0.0);
    for (int k = 0; k < K; ++k) {
      const v8d e = exp_nonpositive(load(gv + k * kNarrowRows) - m);
      store(gv + k * kNarrowRows, e);
      sum += e;
    }
    // A point without a finite maximum (-inf or NaN): its sum is meaningless, its log p(x)
    // is the maximum. (m - m == 0 tests finiteness; GCC 12 lowers `m > -inf` here lane by
    // lane with branches.)
    const v8d safe = m - m == splat(0.0) ? sum : splat(1.0);
    const v8d inv = splat(1.0) / safe;
    const v8d lp = m + log_positive(safe);
    const v8d wv = load(w + v * 8);
    for (int k = 0; k < K; ++k) {
      const v8d gk = m - m == splat(0.0) ? load(gv + k * kNarrowRows) * inv : even_share;
      store(gv + k * kNarrowRows, gk * wv);
    }
    ll += wv != splat(0.0) ? wv * lp : splat(0.0);
  }
  store(acc + static_cast<std::ptrdiff_t>(K) * S * 8, ll);

  // The statistics, one component at a time with its partials in registers.
  for (int k = 0; k < K; ++k) {
    const double* c = p.shift + static_cast<std::ptrdiff_t>(k) * D;
    double* a = acc + static_cast<std::ptrdiff_t>(k) * S * 8;
    v8d nk = load(a);
    v8d s1[D], s2[T];
    for (int d = 0; d < D; ++d) s1[d] = load(a + (1 + d) * 8);
    for (int t = 0; t < T; ++t) s2[t] = load(a + (1 + D + t) * 8);
    const double* gk = g + k * kNarrowRows;
    for (int v = 0; v < nv; ++v) {
      const v8d gw = load(gk + v * 8);
      v8d y[D], gy[D];
      for (int d = 0; d < D; ++d) {
        y[d] = load(xt + d * kNarrowRows + v * 8) - c[d];
        gy[d] = gw * y[d];
        s1[d] += gy[d];
      }
      nk += gw;
      if constexpr (kind == kFull) {
        int t = 0;
        for (int i = 0; i < D; ++i)
          for (int j = i; j < D; ++j) s2[t++] += gy[i] * y[j];
      } else {
        for (int d = 0; d < D; ++d) s2[d] += gy[d] * y[d];
      }
    }
    store(a, nk);
    for (int d = 0; d < D; ++d) store(a + (1 + d) * 8, s1[d]);
    for (int t = 0; t < T; ++t) store(a + (1 + D + t) * 8, s2[t]);
  }
}

template <Kind kind>
CUEM_INLINE void narrow_dispatch(const NarrowParams& p, const double* xt, int rows, const double* w, double* g,
                                 double* acc) {
  switch (p.D) {
    case 1: narrow_impl<1, kind>(p, xt, rows, w, g, acc); break;
    case 2: narrow_impl<2, kind>(p, xt, rows, w, g, acc); break;
    case 3: narrow_impl<3, kind>(p, xt, rows, w, g, acc); break;
    case 4: narrow_impl<4, kind>(p, xt, rows, w, g, acc); break;
    default:
      if constexpr (kind != kFull) {
        switch (p.D) {
          case 5: narrow_impl<5, kind>(p, xt, rows, w, g, acc); break;
          case 6: narrow_impl<6, kind>(p, xt, rows, w, g, acc); break;
          case 7: narrow_impl<7, kind>(p, xt, rows, w, g, acc); break;
          case 8: narrow_impl<8, kind>(p, xt, rows, w, g, acc); break;
          default: break;  // narrow_applies rules it out
        }
      }
      break;
  }
}

}  // namespace

CUEM_CLONES
void narrow_block(const NarrowParams& p, const double* xt, int rows, const double* w, double* g, double* acc) {
  switch (p.type) {
    case CovarianceType::full:
    case CovarianceType::tied: narrow_dispatch<kFull>(p, xt, rows, w, g, acc); break;
    case CovarianceType::diag: narrow_dispatch<kDiag>(p, xt, rows, w, g, acc); break;
    case CovarianceType::spherical: narrow_dispatch<kSpherical>(p, xt, rows, w, g, acc); break;
  }
}

}  // namespace cuem::cpu
