#pragma once
// The normalisation shared by the lanes E-steps (narrow_kernels.cpp, wide_kernels.cpp),
// for kernel files only (simd.hpp). Each group of 8 points has two halves: its log
// joints, maximum and exponentials (the caller's), then its normalisation, whose two
// divisions are a long chain. The caller runs the second half of group v - 1 beside the
// first half of group v, so that chain overlaps independent work.
#include "cpu/simd.hpp"

namespace cuem::cpu {

/// Per block of R rows: g keeps the exponentials; a point's factor 1 / sum x w goes to f,
/// which the statistics apply as they read g; ll gathers w log p(x) per lane.
template <int R>
struct LaneNormaliser {
  double f[R];
  double mx[R];
  simd::v8d unexplained = simd::splat(0.0);
  simd::v8d ll;

  explicit LaneNormaliser(simd::v8d ll0) : ll(ll0) {}

  // Group v with maximum m and sum of exponentials sum. A point without a finite maximum
  // (-inf or NaN): its sum is meaningless, its log p(x) is the maximum, and its weight is
  // shared evenly (finish). (m - m == 0 tests finiteness; GCC 12 lowers `m > -inf` here
  // lane by lane with branches.)
  CUEM_INLINE void group(int v, simd::v8d m, simd::v8d sum, const double* w) {
    using namespace simd;
    const v8d finite_lanes = m - m;  // 0 where finite, NaN elsewhere
    const v8d safe = finite_lanes == splat(0.0) ? sum : splat(1.0);
    const v8d inv = splat(1.0) / safe;
    const v8d lp = m + log_positive(safe);
    const v8d wv = load(w + v * 8);
    store(f + v * 8, finite_lanes == splat(0.0) ? inv * wv : wv);
    store(mx + v * 8, m);
    unexplained = finite_lanes == splat(0.0) ? unexplained : splat(1.0);
    ll += wv != splat(0.0) ? wv * lp : splat(0.0);
  }

  // Rare: points no component explains take 1 / K of their weight from every component.
  CUEM_INLINE void finish(double* g, int K, int nv) {
    using namespace simd;
    bool any = false;
    for (int l = 0; l < 8; ++l) any = any || unexplained[l] != 0.0;
    if (!any) return;
    const v8d even_share = splat(1.0 / K);
    for (int v = 0; v < nv; ++v) {
      const v8d m = load(mx + v * 8);
      for (int k = 0; k < K; ++k) {
        double* gk = g + k * R + v * 8;
        store(gk, m - m == splat(0.0) ? load(gk) : even_share);
      }
    }
  }
};

}  // namespace cuem::cpu
