#include "cpu/narrow_kernels.hpp"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "core/point_math.hpp"
#include "cpu/cpu_kernels.hpp"
#include "cpu/lane_normalise.hpp"
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
    q = q * (factor[0] * factor[0]);
  }
  const v8d dl = splat(static_cast<double>(D) * math::kLog2Pi);
  return constant - splat(0.5) * (dl + q);
}

// The statistics of a block, one component at a time with its partials in registers:
// weights g (K x kNarrowRows) times the lanes' factors f where `scaled`, as given otherwise.
template <int D, Kind kind, bool scaled>
CUEM_INLINE void add_stats(const NarrowParams& p, const double* xt, int nv, const double* g, const double* f,
                           double* acc) {
  constexpr int T = kind == kFull ? D * (D + 1) / 2 : D;
  constexpr int S = 1 + D + T;
  for (int k = 0; k < p.K; ++k) {
    const double* c = p.shift + static_cast<std::ptrdiff_t>(k) * D;
    double* a = acc + static_cast<std::ptrdiff_t>(k) * S * 8;
    v8d nk = load(a);
    v8d s1[D], s2[T];
    for (int d = 0; d < D; ++d) s1[d] = load(a + (1 + d) * 8);
    for (int t = 0; t < T; ++t) s2[t] = load(a + (1 + D + t) * 8);
    const double* gk = g + k * kNarrowRows;
    for (int v = 0; v < nv; ++v) {
      v8d gw = load(gk + v * 8);
      if constexpr (scaled) gw = gw * load(f + v * 8);
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

template <int D, Kind kind>
CUEM_INLINE void narrow_impl(const NarrowParams& p, const double* xt, int rows, const double* w, double* g,
                             double* acc) {
  constexpr int T = kind == kFull ? D * (D + 1) / 2 : D;
  constexpr int S = 1 + D + T;
  const int K = p.K;
  const int fstride = kind == kFull ? D * pad4(D) : kind == kDiag ? D : 1;
  const int nv = (rows + 7) / 8;

  // Responsibilities of the block, component-major in g, and the log-likelihood
  // (lane_normalise.hpp: group v - 1 normalised beside group v's exponentials).
  const auto exponentials = [&](int v, v8d& m, v8d& sum) CUEM_INLINE_LAMBDA {
    v8d x[D];
    for (int d = 0; d < D; ++d) x[d] = load(xt + d * kNarrowRows + v * 8);
    double* gv = g + v * 8;
    for (int k = 0; k < K; ++k) {
      const v8d lj = log_joint<D, kind>(x, p.means + static_cast<std::ptrdiff_t>(k) * D,
                                        p.factors + static_cast<std::ptrdiff_t>(k) * fstride, p.constants[k]);
      store(gv + k * kNarrowRows, lj);
      m = k == 0 ? lj : vmax(lj, m);
    }
    sum = splat(0.0);
    for (int k = 0; k < K; ++k) {
      const v8d e = exp_nonpositive(load(gv + k * kNarrowRows) - m);
      store(gv + k * kNarrowRows, e);
      sum += e;
    }
  };
  double f[kNarrowRows], mx[kNarrowRows];
  v8d unexplained = splat(0.0);
  v8d ll = load(acc + static_cast<std::ptrdiff_t>(K) * S * 8);
  v8d m_prev = splat(0.0), sum_prev = splat(0.0);
  exponentials(0, m_prev, sum_prev);
  for (int v = 1; v < nv; ++v) {
    v8d m = splat(0.0), sum = splat(0.0);
    exponentials(v, m, sum);
    normalise_group(v - 1, m_prev, sum_prev, w, f, mx, unexplained, ll);
    m_prev = m;
    sum_prev = sum;
  }
  normalise_group(nv - 1, m_prev, sum_prev, w, f, mx, unexplained, ll);
  store(acc + static_cast<std::ptrdiff_t>(K) * S * 8, ll);
  bool any_unexplained = false;
  for (int l = 0; l < 8; ++l) any_unexplained = any_unexplained || unexplained[l] != 0.0;
  if (any_unexplained) share_unexplained<kNarrowRows>(mx, g, K, nv);

  add_stats<D, kind, true>(p, xt, nv, g, f, acc);
}

// The posteriors of a block as the general path defines them (cpu_kernels.hpp's
// exp_normalise_block and responsibilities_block: the same operations per point), every
// lane a point; resp written row by row, through 8 x 8 transposes where K is 8.
template <int D, Kind kind>
CUEM_INLINE void posteriors_impl(const NarrowParams& p, const double* xt, int rows, double* g, double* resp,
                                 double* log_prob) {
  const int K = p.K;
  const std::size_t uK = static_cast<std::size_t>(K);
  const int fstride = kind == kFull ? D * pad4(D) : kind == kDiag ? D : 1;
  const int nv = (rows + 7) / 8;
  for (int v = 0; v < nv; ++v) {
    v8d x[D];
    for (int d = 0; d < D; ++d) x[d] = load(xt + d * kNarrowRows + v * 8);
    v8d m = splat(0.0);
    for (int k = 0; k < K; ++k) {
      const v8d lj = log_joint<D, kind>(x, p.means + static_cast<std::ptrdiff_t>(k) * D,
                                        p.factors + static_cast<std::ptrdiff_t>(k) * fstride, p.constants[k]);
      store(g + k * 8, lj);
      m = k == 0 ? lj : vmax(lj, m);
    }
    v8d sum = splat(0.0);
    for (int k = 0; k < K; ++k) {
      const v8d e = exp_nonpositive(load(g + k * 8) - m);
      store(g + k * 8, e);
      sum += e;
    }
    // Points without a finite maximum: 1 / K each, log p(x) the maximum (m - m is 0 where
    // m is finite, NaN elsewhere).
    const v8d finite = m - m;
    const v8d safe = finite == splat(0.0) ? sum : splat(1.0);
    const v8d inv = splat(1.0) / safe;
    const v8d lp = m + log_positive(safe);
    const v8d even = splat(1.0 / K);
    const int lanes = std::min(8, rows - v * 8);
    double* out = resp + static_cast<std::size_t>(v) * 8 * uK;
    if (K == 8 && lanes == 8) {
      v8d col[8], row[8];
      for (int k = 0; k < 8; ++k) col[k] = finite == splat(0.0) ? load(g + k * 8) * inv : even;
      simd::transpose8x8(col, row);
      for (int r = 0; r < 8; ++r) store(out + r * 8, row[r]);
    } else {
      for (int k = 0; k < K; ++k) store(g + k * 8, finite == splat(0.0) ? load(g + k * 8) * inv : even);
      for (int r = 0; r < lanes; ++r)
        for (int k = 0; k < K; ++k) out[static_cast<std::size_t>(r) * uK + static_cast<std::size_t>(k)] = g[k * 8 + r];
    }
    if (log_prob) {
      double lps[8];
      store(lps, finite == splat(0.0) ? lp : m);
      for (int r = 0; r < lanes; ++r) log_prob[v * 8 + r] = lps[r];
    }
  }
}

// f(std::integral_constant<int, D>{}) for the narrow pass's D of this kind.
template <Kind kind, class F>
CUEM_INLINE void dispatch_d(int D, F&& f) {
  switch (D) {
    case 1: f(std::integral_constant<int, 1>{}); break;
    case 2: f(std::integral_constant<int, 2>{}); break;
    case 3: f(std::integral_constant<int, 3>{}); break;
    case 4: f(std::integral_constant<int, 4>{}); break;
    default:
      if constexpr (kind != kFull) {
        switch (D) {
          case 5: f(std::integral_constant<int, 5>{}); break;
          case 6: f(std::integral_constant<int, 6>{}); break;
          case 7: f(std::integral_constant<int, 7>{}); break;
          case 8: f(std::integral_constant<int, 8>{}); break;
          default: break;  // narrow_applies rules it out
        }
      }
      break;
  }
}

// f(std::integral_constant<Kind, kind>{}) for the covariance type.
template <class F>
CUEM_INLINE void dispatch_kind(CovarianceType type, F&& f) {
  switch (type) {
    case CovarianceType::full:
    case CovarianceType::tied: f(std::integral_constant<Kind, kFull>{}); break;
    case CovarianceType::diag: f(std::integral_constant<Kind, kDiag>{}); break;
    case CovarianceType::spherical: f(std::integral_constant<Kind, kSpherical>{}); break;
  }
}

// Rows [r0, r0 + 8) of dense float64 rows (stride D) as D vectors of 8 lanes: D whole
// vectors loaded and separated by shuffles where D divides the lanes evenly, lane by lane
// otherwise.
template <int D>
CUEM_INLINE void transpose8_dense(const double* x, double* xt) {
  if constexpr (D == 1) {
    store(xt, load(x));
  } else if constexpr (D == 2) {
    const v8d a = load(x), b = load(x + 8);
    store(xt, __builtin_shuffle(a, b, v8l{0, 2, 4, 6, 8, 10, 12, 14}));
    store(xt + kNarrowRows, __builtin_shuffle(a, b, v8l{1, 3, 5, 7, 9, 11, 13, 15}));
  } else if constexpr (D == 4) {
    const v8d a = load(x), b = load(x + 8), c = load(x + 16), e = load(x + 24);
    // a, b: rows 0-3 as (r0 d0..d3, r1 d0..d3); c, e: rows 4-7. First pair the rows'
    // dimensions 2 by 2, then separate them.
    const v8d ab02 = __builtin_shuffle(a, b, v8l{0, 2, 4, 6, 8, 10, 12, 14});  // r0d0 r0d2 r1d0 r1d2 r2d0 ...
    const v8d ab13 = __builtin_shuffle(a, b, v8l{1, 3, 5, 7, 9, 11, 13, 15});
    const v8d ce02 = __builtin_shuffle(c, e, v8l{0, 2, 4, 6, 8, 10, 12, 14});
    const v8d ce13 = __builtin_shuffle(c, e, v8l{1, 3, 5, 7, 9, 11, 13, 15});
    store(xt, __builtin_shuffle(ab02, ce02, v8l{0, 2, 4, 6, 8, 10, 12, 14}));
    store(xt + 2 * kNarrowRows, __builtin_shuffle(ab02, ce02, v8l{1, 3, 5, 7, 9, 11, 13, 15}));
    store(xt + kNarrowRows, __builtin_shuffle(ab13, ce13, v8l{0, 2, 4, 6, 8, 10, 12, 14}));
    store(xt + 3 * kNarrowRows, __builtin_shuffle(ab13, ce13, v8l{1, 3, 5, 7, 9, 11, 13, 15}));
  } else {
    for (int d = 0; d < D; ++d)
      store(xt + d * kNarrowRows, v8d{x[d], x[D + d], x[2 * D + d], x[3 * D + d], x[4 * D + d], x[5 * D + d],
                                      x[6 * D + d], x[7 * D + d]});
  }
}

template <int D, typename T>
CUEM_INLINE void transpose_impl(const T* x, std::size_t stride, int rows, double* xt) {
  int r = 0;
  if constexpr (std::is_same_v<T, double>) {
    if (stride == static_cast<std::size_t>(D))
      for (; r + 8 <= rows; r += 8) transpose8_dense<D>(x + static_cast<std::size_t>(r) * D, xt + r);
  }
  const int lanes = (rows + 7) / 8 * 8;
  for (; r < lanes; ++r) {
    const T* row = x + static_cast<std::size_t>(r < rows ? r : 0) * stride;
    for (int d = 0; d < D; ++d) xt[d * kNarrowRows + r] = static_cast<double>(row[d]);
  }
}

template <typename T>
CUEM_INLINE void transpose_dispatch(const T* x, std::size_t stride, int D, int rows, double* xt) {
  switch (D) {
    case 1: transpose_impl<1>(x, stride, rows, xt); break;
    case 2: transpose_impl<2>(x, stride, rows, xt); break;
    case 3: transpose_impl<3>(x, stride, rows, xt); break;
    case 4: transpose_impl<4>(x, stride, rows, xt); break;
    case 5: transpose_impl<5>(x, stride, rows, xt); break;
    case 6: transpose_impl<6>(x, stride, rows, xt); break;
    case 7: transpose_impl<7>(x, stride, rows, xt); break;
    case 8: transpose_impl<8>(x, stride, rows, xt); break;
    default: break;  // narrow_applies rules it out
  }
}

}  // namespace

CUEM_CLONES
void narrow_transpose(const double* x, std::size_t stride, int D, int rows, double* xt) {
  transpose_dispatch(x, stride, D, rows, xt);
}

CUEM_CLONES
void narrow_transpose(const float* x, std::size_t stride, int D, int rows, double* xt) {
  transpose_dispatch(x, stride, D, rows, xt);
}

CUEM_CLONES
void narrow_block(const NarrowParams& p, const double* xt, int rows, const double* w, double* g, double* acc) {
  dispatch_kind(p.type, [&](auto kind) CUEM_INLINE_LAMBDA {
    dispatch_d<decltype(kind)::value>(p.D, [&](auto d) CUEM_INLINE_LAMBDA {
      narrow_impl<decltype(d)::value, decltype(kind)::value>(p, xt, rows, w, g, acc);
    });
  });
}

CUEM_CLONES
void narrow_posteriors_block(const NarrowParams& p, const double* xt, int rows, double* g, double* resp,
                             double* log_prob) {
  const auto run = [&](auto kind) CUEM_INLINE_LAMBDA {
    dispatch_d<decltype(kind)::value>(p.D, [&](auto d) CUEM_INLINE_LAMBDA {
      posteriors_impl<decltype(d)::value, decltype(kind)::value>(p, xt, rows, g, resp, log_prob);
    });
  };
  if (p.type == CovarianceType::diag) run(std::integral_constant<Kind, kDiag>{});
  if (p.type == CovarianceType::spherical) run(std::integral_constant<Kind, kSpherical>{});
}

CUEM_CLONES
void narrow_given_block(const NarrowParams& p, const double* xt, int rows, const double* g, double* acc) {
  dispatch_kind(p.type, [&](auto kind) CUEM_INLINE_LAMBDA {
    dispatch_d<decltype(kind)::value>(p.D, [&](auto d) CUEM_INLINE_LAMBDA {
      add_stats<decltype(d)::value, decltype(kind)::value, false>(p, xt, (rows + 7) / 8, g, nullptr, acc);
    });
  });
}

}  // namespace cuem::cpu
