#include "cpu/wide_kernels.hpp"

#include <type_traits>

#include "core/point_math.hpp"
#include "cpu/lane_normalise.hpp"
#include "cpu/simd.hpp"

namespace cuem::cpu {

namespace {

using namespace simd;


CUEM_INLINE v8d finish_log_joint(double constant, int D, v8d q) {
  const v8d dl = splat(static_cast<double>(D) * math::kLog2Pi);
  return constant - splat(0.5) * (dl + q);
}

// Log joints of NV groups of 8 points for every component into g (K x R), diagonal or
// spherical factors: each point by cpu_kernels.cpp's log_joints_diag / _spherical sequence.
template <int R, int NV, bool spherical>
CUEM_INLINE void log_joints_diag(const NarrowParams& p, const double* xt, double* g) {
  const int D = p.D;
  for (int k = 0; k < p.K; ++k) {
    const double* mu = p.means + static_cast<std::ptrdiff_t>(k) * D;
    v8d q[NV];
    for (int v = 0; v < NV; ++v) q[v] = splat(0.0);
    if constexpr (spherical) {
      for (int d = 0; d < D; ++d)
        for (int v = 0; v < NV; ++v) {
          const v8d y = load(xt + d * R + v * 8) - mu[d];
          q[v] += y * y;
        }
      const double pp = p.factors[k] * p.factors[k];
      for (int v = 0; v < NV; ++v) q[v] = q[v] * pp;
    } else {
      const double* f = p.factors + static_cast<std::ptrdiff_t>(k) * D;
      for (int d = 0; d < D; ++d)
        for (int v = 0; v < NV; ++v) {
          const v8d s = (load(xt + d * R + v * 8) - mu[d]) * f[d];
          q[v] += s * s;
        }
    }
    for (int v = 0; v < NV; ++v) store(g + k * R + v * 8, finish_log_joint(p.constants[k], D, q[v]));
  }
}

// The same for full (and tied) factors, D known: cpu_kernels.cpp's log_joints_full
// sequence (columns of P^T (x - mu) in blocks of 4, each summed over rows 0..jb+3 in
// order, their squares added in column order) without its products by P's zeros: the
// lower half of each diagonal 4 x 4 block and the padding columns past D. Those add
// y * 0 to a finite sum, so the values are the same bits.
template <int R, int D>
CUEM_INLINE void log_joints_full(const NarrowParams& p, const double* xt, int nv, double* g) {
  constexpr int Dp = pad4(D);
  for (int k = 0; k < p.K; ++k) {  // component outer: its factor stays in L1 for the block
    const double* mu = p.means + static_cast<std::ptrdiff_t>(k) * D;
    const double* P = p.factors + static_cast<std::ptrdiff_t>(k) * D * Dp;
    for (int v = 0; v < nv; ++v) {
      v8d y[D];
#pragma GCC unroll 16
      for (int d = 0; d < D; ++d) y[d] = load(xt + d * R + v * 8) - mu[d];
      v8d q = splat(0.0);
#pragma GCC unroll 4
      for (int jb = 0; jb < Dp; jb += 4) {
        v8d a[4] = {splat(0.0), splat(0.0), splat(0.0), splat(0.0)};
#pragma GCC unroll 16
        for (int i = 0; i < jb; ++i) {
          const double* pr = P + i * Dp + jb;
#pragma GCC unroll 4
          for (int j = 0; j < 4; ++j)
            if (jb + j < D) a[j] += y[i] * pr[j];
        }
#pragma GCC unroll 4
        for (int r = 0; r < 4; ++r) {
          const double* pr = P + (jb + r) * Dp + jb;
#pragma GCC unroll 4
          for (int j = r; j < 4; ++j)
            if (jb + j < D) a[j] += y[jb + r] * pr[j];
        }
#pragma GCC unroll 4
        for (int j = 0; j < 4; ++j)
          if (jb + j < D) q += a[j] * a[j];
      }
      store(g + k * R + v * 8, finish_log_joint(p.constants[k], D, q));
    }
  }
}

// Exponentials and normalisation of the log joints in g (lane_normalise.hpp); the
// block's w log p(x) lane partials added to acc_ll.
template <int R>
CUEM_INLINE void normalise_block(int K, int nv, const double* w, double* g, double* f, double* acc_ll) {
  alignas(64) double mx[R];
  v8d unexplained = splat(0.0);
  v8d ll = load(acc_ll);
  const auto exponentials = [&](int v, v8d& m, v8d& sum) CUEM_INLINE_LAMBDA {
    double* gv = g + v * 8;
    m = load(gv);
    for (int k = 1; k < K; ++k) m = vmax(load(gv + k * R), m);
    sum = splat(0.0);
    for (int k = 0; k < K; ++k) {
      const v8d e = exp_nonpositive(load(gv + k * R) - m);
      store(gv + k * R, e);
      sum += e;
    }
  };
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
  store(acc_ll, ll);
  bool any_unexplained = false;
  for (int l = 0; l < 8; ++l) any_unexplained = any_unexplained || unexplained[l] != 0.0;
  if (any_unexplained) share_unexplained<R>(mx, g, K, nv);
}

// Component k's weights of the block's groups, g x f, and the groups with a weight above
// p.negligible in order; the weights of the groups left out are added to *skipped. The
// weights are not negative, so with negligible 0 the groups left out are those of exact
// zeros, which would add nothing. A NaN keeps its group (the comparison fails).
template <int R>
CUEM_INLINE int weighted_groups(const double* gk, const double* f, int nv, double negligible, v8d* gw, int* list,
                                v8d* skipped) {
  const v8d limit = splat(negligible);
  const v8d zero = splat(0.0);
  v8d sk = *skipped;
  int n = 0;
  for (int v = 0; v < nv; ++v) {
    const v8d x = load(gk + v * 8) * load(f + v * 8);
    // Lanes above the limit (or NaN) as all-ones masks; any of them keeps the group.
    v8l above = ~(x <= limit);
    above = above | __builtin_shuffle(above, v8l{4, 5, 6, 7, 0, 1, 2, 3});
    above = above | __builtin_shuffle(above, v8l{2, 3, 0, 1, 6, 7, 4, 5});
    above = above | __builtin_shuffle(above, v8l{1, 0, 3, 2, 5, 4, 7, 6});
    const bool keep = above[0] != 0;
    gw[n] = x;
    list[n] = v;
    sk += keep ? zero : x;
    n += keep ? 1 : 0;
  }
  *skipped = sk;
  return n;
}

// Diagonal statistics in lanes: N_k, S1_k, S2_k (diagonal) about the shift.
template <int R>
CUEM_INLINE void stats_diag(const NarrowParams& p, const double* xt, int nv, const double* g, const double* f,
                            double* acc) {
  const int K = p.K, D = p.D;
  const int S = 1 + 2 * D;
  double* skipped = acc + (static_cast<std::ptrdiff_t>(K) * S + 1) * 8;
  for (int k = 0; k < K; ++k) {
    v8d gw[R / 8];
    int list[R / 8];
    v8d sk = load(skipped + k * 8);
    const int n = weighted_groups<R>(g + k * R, f, nv, p.negligible, gw, list, &sk);
    store(skipped + k * 8, sk);
    if (n == 0) continue;
    double* a = acc + static_cast<std::ptrdiff_t>(k) * S * 8;
    v8d nk = load(a);
    for (int t = 0; t < n; ++t) nk += gw[t];
    store(a, nk);
    const double* c = p.shift + static_cast<std::ptrdiff_t>(k) * D;
    for (int d = 0; d < D; ++d) {
      v8d s1 = load(a + (1 + d) * 8), s2 = load(a + (1 + D + d) * 8);
      const double* xd = xt + d * R;
      for (int t = 0; t < n; ++t) {
        const v8d y = load(xd + list[t] * 8) - c[d];
        const v8d gy = gw[t] * y;
        s1 += gy;
        s2 += gy * y;
      }
      store(a + (1 + d) * 8, s1);
      store(a + (1 + D + d) * 8, s2);
    }
  }
}

// Full statistics in lanes, D known: the shifted rows y and gy = g y of the groups kept
// (weighted_groups: a group whose 8 weights are all negligible is left out) go to scratch
// (pad4(D) rows, of which D are written), then S2's upper triangle in 4 x 4 tiles with
// their partials in registers.
template <int R, int D>
CUEM_INLINE void stats_full(const NarrowParams& p, const double* xt, int nv, const double* g, const double* f,
                            double* scratch, double* acc) {
  constexpr int Dp = pad4(D);
  constexpr int S = 1 + D + Dp * Dp;
  double* ys = scratch;              // Dp x R
  double* gys = scratch + Dp * R;    // Dp x R
  double* skipped = acc + (static_cast<std::ptrdiff_t>(p.K) * S + 1) * 8;
  for (int k = 0; k < p.K; ++k) {
    v8d gw[R / 8];
    int list[R / 8];
    v8d sk = load(skipped + k * 8);
    const int n = weighted_groups<R>(g + k * R, f, nv, p.negligible, gw, list, &sk);
    store(skipped + k * 8, sk);
    if (n == 0) continue;
    double* a = acc + static_cast<std::ptrdiff_t>(k) * S * 8;
    const double* c = p.shift + static_cast<std::ptrdiff_t>(k) * D;
    v8d nk = load(a);
    for (int t = 0; t < n; ++t) nk += gw[t];
    store(a, nk);
    for (int d = 0; d < D; ++d) {
      v8d s1 = load(a + (1 + d) * 8);
      for (int t = 0; t < n; ++t) {
        const v8d y = load(xt + d * R + list[t] * 8) - c[d];
        const v8d gy = gw[t] * y;
        store(ys + d * R + t * 8, y);
        store(gys + d * R + t * 8, gy);
        s1 += gy;
      }
      store(a + (1 + d) * 8, s1);
    }
    // S2's upper triangle: the tiles on and above the diagonal, and in a diagonal tile
    // its upper half only (the rest is never read).
    double* s2 = a + (1 + D) * 8;  // Dp x Dp values, 8 lanes each
#pragma GCC unroll 4
    for (int ib = 0; ib < Dp; ib += 4)
#pragma GCC unroll 4
      for (int jb = ib; jb < Dp; jb += 4) {
        const auto kept = [&](int i, int j) CUEM_INLINE_LAMBDA {
          return ib + i < D && jb + j < D && (jb != ib || j >= i);
        };
        v8d c4[4][4];
        for (int i = 0; i < 4; ++i)
          for (int j = 0; j < 4; ++j)
            if (kept(i, j)) c4[i][j] = load(s2 + ((ib + i) * Dp + jb + j) * 8);
        for (int t = 0; t < n; ++t) {
          v8d gi[4], yj[4];
          for (int i = 0; i < 4; ++i)
            if (ib + i < D) gi[i] = load(gys + (ib + i) * R + t * 8);
          for (int j = 0; j < 4; ++j)
            if (jb + j < D) yj[j] = load(ys + (jb + j) * R + t * 8);
          for (int i = 0; i < 4; ++i)
            for (int j = 0; j < 4; ++j)
              if (kept(i, j)) c4[i][j] += gi[i] * yj[j];
        }
        for (int i = 0; i < 4; ++i)
          for (int j = 0; j < 4; ++j)
            if (kept(i, j)) store(s2 + ((ib + i) * Dp + jb + j) * 8, c4[i][j]);
      }
  }
}

template <int D>
CUEM_INLINE void full_block(const NarrowParams& p, const double* xt, int rows, const double* w, double* g,
                            double* scratch, double* acc) {
  constexpr int R = kWideFullRows;
  const int nv = (rows + 7) / 8;
  constexpr int S = 1 + D + pad4(D) * pad4(D);
  log_joints_full<R, D>(p, xt, nv, g);
  alignas(64) double f[R];
  normalise_block<R>(p.K, nv, w, g, f, acc + static_cast<std::ptrdiff_t>(p.K) * S * 8);
  stats_full<R, D>(p, xt, nv, g, f, scratch, acc);
}

template <bool spherical>
CUEM_INLINE void diag_block(const NarrowParams& p, const double* xt, int rows, const double* w, double* g,
                            double* acc) {
  constexpr int R = kWideDiagRows;
  static_assert(R == 64, "the cases below cover 1 to 8 groups");
  const int nv = (rows + 7) / 8;
  const int S = 1 + 2 * p.D;
  switch (nv) {
    case 8: log_joints_diag<R, 8, spherical>(p, xt, g); break;
    case 7: log_joints_diag<R, 7, spherical>(p, xt, g); break;
    case 6: log_joints_diag<R, 6, spherical>(p, xt, g); break;
    case 5: log_joints_diag<R, 5, spherical>(p, xt, g); break;
    case 4: log_joints_diag<R, 4, spherical>(p, xt, g); break;
    case 3: log_joints_diag<R, 3, spherical>(p, xt, g); break;
    case 2: log_joints_diag<R, 2, spherical>(p, xt, g); break;
    default: log_joints_diag<R, 1, spherical>(p, xt, g); break;
  }
  alignas(64) double f[R];
  normalise_block<R>(p.K, nv, w, g, f, acc + static_cast<std::ptrdiff_t>(p.K) * S * 8);
  stats_diag<R>(p, xt, nv, g, f, acc);
}

template <typename T>
CUEM_INLINE void transpose_any(const T* x, std::size_t stride, int D, int rows, int R, double* xt) {
  const int lanes = (rows + 7) / 8 * 8;
  for (int r = 0; r < lanes; ++r) {
    const T* row = x + static_cast<std::size_t>(r < rows ? r : 0) * stride;
    for (int d = 0; d < D; ++d) xt[d * R + r] = static_cast<double>(row[d]);
  }
}

// Eight rows of eight float64 values into eight columns (simd.hpp's transpose8x8), stored
// R apart: the bulk of a float64 block's transposition.
CUEM_INLINE void transpose8x8(const double* const* row, int d0, int R, double* out) {
  v8d a[8];
  for (int r = 0; r < 8; ++r) a[r] = load(row[r] + d0);
  v8d c[8];
  simd::transpose8x8(a, c);
  for (int j = 0; j < 8; ++j) store(out + j * R, c[j]);
}

CUEM_INLINE void transpose_double(const double* x, std::size_t stride, int D, int rows, int R, double* xt) {
  const int lanes = (rows + 7) / 8 * 8;
  const int wide = D / 8 * 8;
  for (int r0 = 0; r0 < lanes; r0 += 8) {
    const double* row[8];
    for (int r = 0; r < 8; ++r) row[r] = x + static_cast<std::size_t>(r0 + r < rows ? r0 + r : 0) * stride;
    for (int d0 = 0; d0 < wide; d0 += 8) transpose8x8(row, d0, R, xt + d0 * R + r0);
    for (int r = 0; r < 8; ++r)
      for (int d = wide; d < D; ++d) xt[d * R + r0 + r] = row[r][d];
  }
}

}  // namespace

CUEM_CLONES
void wide_transpose(const double* x, std::size_t stride, int D, int rows, int R, double* xt) {
  transpose_double(x, stride, D, rows, R, xt);
}

CUEM_CLONES
void wide_transpose(const float* x, std::size_t stride, int D, int rows, int R, double* xt) {
  transpose_any(x, stride, D, rows, R, xt);
}

CUEM_CLONES
void wide_block(const NarrowParams& p, const double* xt, int rows, const double* w, double* g, double* scratch,
                double* acc) {
  switch (p.type) {
    case CovarianceType::full:
    case CovarianceType::tied:
      switch (p.D) {
        case 5: full_block<5>(p, xt, rows, w, g, scratch, acc); break;
        case 6: full_block<6>(p, xt, rows, w, g, scratch, acc); break;
        case 7: full_block<7>(p, xt, rows, w, g, scratch, acc); break;
        case 8: full_block<8>(p, xt, rows, w, g, scratch, acc); break;
        case 9: full_block<9>(p, xt, rows, w, g, scratch, acc); break;
        case 10: full_block<10>(p, xt, rows, w, g, scratch, acc); break;
        case 11: full_block<11>(p, xt, rows, w, g, scratch, acc); break;
        case 12: full_block<12>(p, xt, rows, w, g, scratch, acc); break;
        case 13: full_block<13>(p, xt, rows, w, g, scratch, acc); break;
        case 14: full_block<14>(p, xt, rows, w, g, scratch, acc); break;
        case 15: full_block<15>(p, xt, rows, w, g, scratch, acc); break;
        case 16: full_block<16>(p, xt, rows, w, g, scratch, acc); break;
        default: break;  // wide_applies rules it out
      }
      break;
    case CovarianceType::diag: diag_block<false>(p, xt, rows, w, g, acc); break;
    case CovarianceType::spherical: diag_block<true>(p, xt, rows, w, g, acc); break;
  }
}

}  // namespace cuem::cpu
