#pragma once
// The normalisation shared by the lanes E-steps (narrow_kernels.cpp, wide_kernels.cpp),
// for kernel files only (simd.hpp). Each group of 8 points has two halves: its log
// joints, maximum and exponentials (the caller's), then its normalisation, whose two
// divisions are a long chain. The caller runs the second half of group v - 1 beside the
// first half of group v, so that chain overlaps independent work.
#include "cpu/simd.hpp"

namespace cuem::cpu {

// Group v of 8 points with maximum m and sum of exponentials sum: the point's factor
// 1 / sum x w goes to f (the statistics apply it as they read g, which keeps the
// exponentials), m to mx, w log p(x) to the lane partials ll. A point without a finite
// maximum (-inf or NaN): its sum is meaningless, its log p(x) is the maximum, its lane of
// `unexplained` turns 1 and share_unexplained gives its weight out evenly. m - m is 0
// where m is finite and NaN elsewhere; compared with 0 in place it stays a mask register
// (GCC 12 lowers `m > -inf`, or a comparison kept in a variable, lane by lane with
// branches). The caller keeps f, mx, ll and unexplained as separate locals: in one
// object with arrays, the accumulators would go through memory at every store to g.
CUEM_INLINE void normalise_group(int v, simd::v8d m, simd::v8d sum, const double* w, double* f, double* mx,
                                 simd::v8d& unexplained, simd::v8d& ll) {
  using namespace simd;
  const v8d safe = m - m == splat(0.0) ? sum : splat(1.0);
  const v8d inv = splat(1.0) / safe;
  const v8d lp = m + log_positive(safe);
  const v8d wv = load(w + v * 8);
  store(f + v * 8, m - m == splat(0.0) ? inv * wv : wv);
  store(mx + v * 8, m);
  unexplained = m - m == splat(0.0) ? unexplained : splat(1.0);
  ll += wv != splat(0.0) ? wv * lp : splat(0.0);
}

// Rare: points no component explains take 1 / K of their weight from every component
// (g: K x R). The caller tests its `unexplained` lanes itself: subscripting the vector in
// here made GCC keep the whole block loop's vectors in memory.
template <int R>
CUEM_INLINE void share_unexplained(const double* mx, double* g, int K, int nv) {
  using namespace simd;
  const v8d even_share = splat(1.0 / K);
  for (int v = 0; v < nv; ++v) {
    const v8d m = load(mx + v * 8);
    for (int k = 0; k < K; ++k) {
      double* gk = g + k * R + v * 8;
      store(gk, m - m == splat(0.0) ? load(gk) : even_share);
    }
  }
}

}  // namespace cuem::cpu
