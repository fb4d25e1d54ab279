#include "cpu/cpu_kernels.hpp"

#include <cmath>

#include "core/point_math.hpp"
#include "cpu/simd.hpp"

namespace cuem::cpu {

// The same test as the loader's resolver for the clones' "arch=" levels.
const char* kernel_level() noexcept {
#if defined(CUEM_HAVE_CLONES)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("x86-64-v4")) return "x86-64-v4 (AVX-512)";
  if (__builtin_cpu_supports("x86-64-v3")) return "x86-64-v3 (AVX2, FMA)";
  return "x86-64 baseline";
#else
  return "one portable build (no run-time choice)";
#endif
}

namespace {

using namespace simd;

CUEM_INLINE void finish_log_joint(double constant, int D, v8d m0, v8d m1, double* lj) {
  const v8d c = splat(constant);
  const v8d dl = splat(static_cast<double>(D) * math::kLog2Pi);
  store(lj, c - splat(0.5) * (dl + m0));
  store(lj + 8, c - splat(0.5) * (dl + m1));
}

}  // namespace

CUEM_CLONES
void log_joints_full(const double* xt, int D, int K, const double* means, const double* factors,
                     const double* constants, double* yt, double* lj) {
  const int Dp = pad4(D);
  for (int k = 0; k < K; ++k) {
    const double* mu = means + static_cast<std::size_t>(k) * D;
    const double* P = factors + static_cast<std::size_t>(k) * D * Dp;
    for (int i = 0; i < D; ++i) {
      store(yt + i * 16, load(xt + i * 16) - mu[i]);
      store(yt + i * 16 + 8, load(xt + i * 16 + 8) - mu[i]);
    }
    // Column block jb..jb+3 of P^T (x - mu) uses rows 0..jb+3 of P (zeros below the
    // diagonal); its squares join the sum in column order.
    v8d maha0 = splat(0.0), maha1 = splat(0.0);
    for (int jb = 0; jb < Dp; jb += 4) {
      v8d a00 = splat(0.0), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
      const int i_end = jb + 4 < D ? jb + 4 : D;
      for (int i = 0; i < i_end; ++i) {
        const v8d y0 = load(yt + i * 16), y1 = load(yt + i * 16 + 8);
        const double* pr = P + static_cast<std::size_t>(i) * Dp + jb;
        a00 += y0 * pr[0];
        a01 += y1 * pr[0];
        a10 += y0 * pr[1];
        a11 += y1 * pr[1];
        a20 += y0 * pr[2];
        a21 += y1 * pr[2];
        a30 += y0 * pr[3];
        a31 += y1 * pr[3];
      }
      maha0 += a00 * a00;
      maha1 += a01 * a01;
      maha0 += a10 * a10;
      maha1 += a11 * a11;
      maha0 += a20 * a20;
      maha1 += a21 * a21;
      maha0 += a30 * a30;
      maha1 += a31 * a31;
    }
    finish_log_joint(constants[k], D, maha0, maha1, lj + k * 16);
  }
}

void pack_full_panels(const double* factors, int D, int K, double* out) {
  const int Dp = pad4(D);
  for (int k = 0; k < K; ++k) {
    const double* P = factors + static_cast<std::size_t>(k) * D * Dp;
    for (int jb = 0; jb < Dp; jb += 4) {
      const int i_end = jb + 4 < D ? jb + 4 : D;
      for (int i = 0; i < i_end; ++i)
        for (int j = 0; j < 4; ++j) *out++ = P[static_cast<std::size_t>(i) * Dp + jb + j];
    }
  }
}

CUEM_CLONES
void log_joints_full32(const double* xt, int D, int K, const double* means, const double* panels,
                       const double* constants, double* yt, double* lj0, double* lj1) {
  const int Dp = pad4(D);
  const double* pr = panels;
  for (int k = 0; k < K; ++k) {
    const double* mu = means + static_cast<std::size_t>(k) * D;
    for (int i = 0; i < D; ++i)
      for (int v = 0; v < 4; ++v) store(yt + i * 32 + v * 8, load(xt + i * 32 + v * 8) - mu[i]);
    // log_joints_full's column blocks, with 16 partial sums (4 columns x 4 vectors) in
    // registers; each still sums rows 0..jb+3 in order, squares joining in column order.
    v8d m[4] = {splat(0.0), splat(0.0), splat(0.0), splat(0.0)};
    for (int jb = 0; jb < Dp; jb += 4) {
      v8d a[4][4];
      for (int j = 0; j < 4; ++j)
        for (int v = 0; v < 4; ++v) a[j][v] = splat(0.0);
      const int i_end = jb + 4 < D ? jb + 4 : D;
      for (int i = 0; i < i_end; ++i, pr += 4) {
        v8d y[4];
        for (int v = 0; v < 4; ++v) y[v] = load(yt + i * 32 + v * 8);
        for (int j = 0; j < 4; ++j) {
          const double b = pr[j];
          for (int v = 0; v < 4; ++v) a[j][v] += y[v] * b;
        }
      }
      for (int j = 0; j < 4; ++j)
        for (int v = 0; v < 4; ++v) m[v] += a[j][v] * a[j][v];
    }
    finish_log_joint(constants[k], D, m[0], m[1], lj0 + k * 16);
    finish_log_joint(constants[k], D, m[2], m[3], lj1 + k * 16);
  }
}

namespace {

// Component k's sum over dimensions of ((x - mu) f)^2 for the block's two row vectors.
struct DiagSums {
  v8d s0, s1;
};

}  // namespace

CUEM_CLONES
void log_joints_diag(const double* xt, int D, int K, const double* means, const double* factors,
                     const double* constants, double* lj) {
  // Two components per sweep over the dimensions: four independent FMA chains instead of
  // two, so the sums are not bound by the FMA latency. Each component's terms are added in
  // the same order either way.
  int k = 0;
  for (; k + 2 <= K; k += 2) {
    const double* mu_a = means + static_cast<std::size_t>(k) * D;
    const double* f_a = factors + static_cast<std::size_t>(k) * D;
    const double* mu_b = mu_a + D;
    const double* f_b = f_a + D;
    DiagSums a{splat(0.0), splat(0.0)}, b{splat(0.0), splat(0.0)};
    for (int d = 0; d < D; ++d) {
      const v8d x0 = load(xt + d * 16), x1 = load(xt + d * 16 + 8);
      const v8d ya0 = (x0 - mu_a[d]) * f_a[d], ya1 = (x1 - mu_a[d]) * f_a[d];
      const v8d yb0 = (x0 - mu_b[d]) * f_b[d], yb1 = (x1 - mu_b[d]) * f_b[d];
      a.s0 += ya0 * ya0;
      a.s1 += ya1 * ya1;
      b.s0 += yb0 * yb0;
      b.s1 += yb1 * yb1;
    }
    finish_log_joint(constants[k], D, a.s0, a.s1, lj + k * 16);
    finish_log_joint(constants[k + 1], D, b.s0, b.s1, lj + (k + 1) * 16);
  }
  for (; k < K; ++k) {
    const double* mu = means + static_cast<std::size_t>(k) * D;
    const double* f = factors + static_cast<std::size_t>(k) * D;
    v8d s0 = splat(0.0), s1 = s0;
    for (int d = 0; d < D; ++d) {
      const v8d y0 = (load(xt + d * 16) - mu[d]) * f[d], y1 = (load(xt + d * 16 + 8) - mu[d]) * f[d];
      s0 += y0 * y0;
      s1 += y1 * y1;
    }
    finish_log_joint(constants[k], D, s0, s1, lj + k * 16);
  }
}

CUEM_CLONES
void log_joints_spherical(const double* xt, int D, int K, const double* means, const double* factors,
                          const double* constants, double* lj) {
  for (int k = 0; k < K; ++k) {
    const double* mu = means + static_cast<std::size_t>(k) * D;
    v8d s0 = splat(0.0), s1 = s0;
    for (int d = 0; d < D; ++d) {
      const v8d y0 = load(xt + d * 16) - mu[d], y1 = load(xt + d * 16 + 8) - mu[d];
      s0 += y0 * y0;
      s1 += y1 * y1;
    }
    const v8d pp = splat(factors[k]) * splat(factors[k]);
    finish_log_joint(constants[k], D, s0 * pp, s1 * pp, lj + k * 16);
  }
}

CUEM_CLONES
void exp_normalise_block(const double* lj, int K, double* e, double* row_max, double* row_sum) {
  v8d m0 = load(lj), m1 = load(lj + 8);
  for (int k = 1; k < K; ++k) {
    m0 = vmax(load(lj + k * 16), m0);
    m1 = vmax(load(lj + k * 16 + 8), m1);
  }
  v8d s0 = splat(0.0), s1 = s0;
  for (int k = 0; k < K; ++k) {
    const v8d e0 = exp_nonpositive(load(lj + k * 16) - m0);
    const v8d e1 = exp_nonpositive(load(lj + k * 16 + 8) - m1);
    store(e + k * 16, e0);
    store(e + k * 16 + 8, e1);
    s0 += e0;
    s1 += e1;
  }
  store(row_max, m0);
  store(row_max + 8, m1);
  store(row_sum, s0);
  store(row_sum + 8, s1);
}

CUEM_CLONES
void responsibilities_block(const double* e, const double* row_max, const double* row_sum, int K, int rows,
                            double* resp, double* log_prob) {
  double inv[16], lp[16];
  for (int h = 0; h < 16; h += 8) {
    const v8d s = load(row_sum + h);
    // Rows without a finite maximum have a meaningless sum: keep the logarithm finite.
    const v8d safe = load(row_max + h) > splat(-INFINITY) ? s : splat(1.0);
    store(inv + h, splat(1.0) / safe);
    store(lp + h, load(row_max + h) + log_positive(safe));
  }
  for (int r = 0; r < rows; ++r) {
    double* v = resp + static_cast<std::size_t>(r) * K;
    if (!(row_max[r] > -INFINITY)) {  // no component can explain the point: share it evenly
      for (int k = 0; k < K; ++k) v[k] = 1.0 / K;
      lp[r] = row_max[r];
    } else {
      for (int k = 0; k < K; ++k) v[k] = e[k * 16 + r] * inv[r];
    }
    if (log_prob) log_prob[r] = lp[r];
  }
}

template <int D>
CUEM_INLINE void add_full_narrow_impl(const double* x, const int* index, const double* g, int n, const double* c,
                                      double* s1, double* s2) {
  const v8d cv = load(c);
  v8d a1 = load(s1);
  v8d acc[D];
  for (int i = 0; i < D; ++i) acc[i] = load(s2 + i * 8);
  for (int t = 0; t < n; ++t) {
    const v8d d = load(x + static_cast<std::size_t>(index[t]) * 8) - cv;
    const v8d wd = g[t] * d;
    a1 += wd;
    for (int i = 0; i < D; ++i) acc[i] += wd[i] * d;
  }
  store(s1, a1);
  for (int i = 0; i < D; ++i) store(s2 + i * 8, acc[i]);
}

CUEM_CLONES
void add_full_narrow(const double* x, const int* index, const double* g, int n, const double* c, int D, double* s1,
                     double* s2) {
  switch (D) {
    case 1: add_full_narrow_impl<1>(x, index, g, n, c, s1, s2); break;
    case 2: add_full_narrow_impl<2>(x, index, g, n, c, s1, s2); break;
    case 3: add_full_narrow_impl<3>(x, index, g, n, c, s1, s2); break;
    case 4: add_full_narrow_impl<4>(x, index, g, n, c, s1, s2); break;
    case 5: add_full_narrow_impl<5>(x, index, g, n, c, s1, s2); break;
    case 6: add_full_narrow_impl<6>(x, index, g, n, c, s1, s2); break;
    case 7: add_full_narrow_impl<7>(x, index, g, n, c, s1, s2); break;
    default: add_full_narrow_impl<8>(x, index, g, n, c, s1, s2); break;
  }
}

CUEM_CLONES
void gather_shifted(const double* x, const int* index, const double* g, int n, const double* c, int W, double* y,
                    double* a, double* s1) {
  // Column vectors outside, rows inside: S1's partial sum stays in a register instead of a
  // chain of stores and reloads through memory (the same additions in the same order).
  for (int v = 0; v < W; v += 8) {
    const v8d cv = load(c + v);
    v8d sum = s1 ? load(s1 + v) : splat(0.0);
    for (int t = 0; t < n; ++t) {
      const v8d d = load(x + static_cast<std::size_t>(index[t]) * W + v) - cv;
      const v8d wd = g[t] * d;
      store(y + static_cast<std::size_t>(t) * W + v, d);
      store(a + static_cast<std::size_t>(t) * W + v, wd);
      sum += wd;
    }
    if (s1) store(s1 + v, sum);
  }
}

CUEM_CLONES
void scatter_tiles(const double* a, const double* y, int n, int W, int tile_begin, int tile_end, double* s2) {
  for (int tile = tile_begin; tile < tile_end; ++tile) {
    const int i = tile * 4;
    double* r0 = s2 + static_cast<std::size_t>(i) * W;
    double* r1 = r0 + W;
    double* r2 = r1 + W;
    double* r3 = r2 + W;
    int j = i / 8 * 8;
    for (; j + 16 <= W; j += 16) {
      v8d c00 = load(r0 + j), c01 = load(r0 + j + 8), c10 = load(r1 + j), c11 = load(r1 + j + 8);
      v8d c20 = load(r2 + j), c21 = load(r2 + j + 8), c30 = load(r3 + j), c31 = load(r3 + j + 8);
      for (int t = 0; t < n; ++t) {
        const double* yt = y + static_cast<std::size_t>(t) * W + j;
        const double* at = a + static_cast<std::size_t>(t) * W + i;
        const v8d y0 = load(yt), y1 = load(yt + 8);
        c00 += at[0] * y0;
        c01 += at[0] * y1;
        c10 += at[1] * y0;
        c11 += at[1] * y1;
        c20 += at[2] * y0;
        c21 += at[2] * y1;
        c30 += at[3] * y0;
        c31 += at[3] * y1;
      }
      store(r0 + j, c00);
      store(r0 + j + 8, c01);
      store(r1 + j, c10);
      store(r1 + j + 8, c11);
      store(r2 + j, c20);
      store(r2 + j + 8, c21);
      store(r3 + j, c30);
      store(r3 + j + 8, c31);
    }
    if (j < W) {  // one last vector of columns
      v8d c0 = load(r0 + j), c1 = load(r1 + j), c2 = load(r2 + j), c3 = load(r3 + j);
      for (int t = 0; t < n; ++t) {
        const v8d y0 = load(y + static_cast<std::size_t>(t) * W + j);
        const double* at = a + static_cast<std::size_t>(t) * W + i;
        c0 += at[0] * y0;
        c1 += at[1] * y0;
        c2 += at[2] * y0;
        c3 += at[3] * y0;
      }
      store(r0 + j, c0);
      store(r1 + j, c1);
      store(r2 + j, c2);
      store(r3 + j, c3);
    }
  }
}

// add_diag for NV column vectors of 8 dimensions, all held in registers across the rows:
// 2 NV independent chains per row instead of two.
template <int NV>
CUEM_INLINE void add_diag_columns(const double* x, const int* index, const double* g, int n, const double* c, int W,
                                  double* s1, double* s2) {
  v8d cv[NV], a1[NV], a2[NV];
  for (int j = 0; j < NV; ++j) {
    cv[j] = load(c + 8 * j);
    a1[j] = load(s1 + 8 * j);
    a2[j] = load(s2 + 8 * j);
  }
  for (int t = 0; t < n; ++t) {
    const double* xr = x + static_cast<std::size_t>(index[t]) * W;
    for (int j = 0; j < NV; ++j) {
      const v8d d = load(xr + 8 * j) - cv[j];
      const v8d wd = g[t] * d;
      a1[j] += wd;
      a2[j] += wd * d;
    }
  }
  for (int j = 0; j < NV; ++j) {
    store(s1 + 8 * j, a1[j]);
    store(s2 + 8 * j, a2[j]);
  }
}

CUEM_CLONES
void add_diag(const double* x, const int* index, const double* g, int n, const double* c, int W, double* s1,
              double* s2) {
  for (int v = 0; v < W; v += 64) {
    switch ((W - v) / 8 < 8 ? (W - v) / 8 : 8) {
      case 1: add_diag_columns<1>(x + v, index, g, n, c + v, W, s1 + v, s2 + v); break;
      case 2: add_diag_columns<2>(x + v, index, g, n, c + v, W, s1 + v, s2 + v); break;
      case 3: add_diag_columns<3>(x + v, index, g, n, c + v, W, s1 + v, s2 + v); break;
      case 4: add_diag_columns<4>(x + v, index, g, n, c + v, W, s1 + v, s2 + v); break;
      case 5: add_diag_columns<5>(x + v, index, g, n, c + v, W, s1 + v, s2 + v); break;
      case 6: add_diag_columns<6>(x + v, index, g, n, c + v, W, s1 + v, s2 + v); break;
      case 7: add_diag_columns<7>(x + v, index, g, n, c + v, W, s1 + v, s2 + v); break;
      default: add_diag_columns<8>(x + v, index, g, n, c + v, W, s1 + v, s2 + v); break;
    }
  }
}

}  // namespace cuem::cpu
