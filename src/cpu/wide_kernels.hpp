#pragma once
// The one-pass E-step of narrow_kernels.hpp for wider data: every vector lane a point
// through the log joints, the normalisation and the statistics, with no responsibilities
// matrix, no index lists and no per-chunk synchronisation. The statistics of 8 points
// at a time go to per-lane partial sums; a group of 8 points whose weights for a
// component are all at most NarrowParams::negligible is left out for it, and those weights
// are summed apart (narrow_estep.hpp decides whether leaving them out was safe).
//
// Compiled once per instruction-set level like cpu_kernels.hpp (simd.hpp).
#include <cstddef>

#include "cpu/cpu_kernels.hpp"
#include "cpu/narrow_kernels.hpp"
#include "cuem/covariance_type.hpp"

namespace cuem::cpu {

/// Rows per wide block: the transposed buffer holds D x wide_rows(type) doubles. Full
/// blocks are shorter: a block's rows, its log joints and its scatter's scratch then stay
/// in L1 beside the accumulators of the component at hand.
constexpr int kWideFullRows = 32;
constexpr int kWideDiagRows = 64;

constexpr int wide_rows(CovarianceType type) noexcept {
  return (type == CovarianceType::full || type == CovarianceType::tied) ? kWideFullRows : kWideDiagRows;
}

/// Whether the wide pass serves this shape (the narrow one takes precedence): full and
/// tied from 5 to 16 dimensions, diag and spherical from 9 to 64.
constexpr bool wide_applies(CovarianceType type, int D) noexcept {
  return (type == CovarianceType::full || type == CovarianceType::tied) ? D >= 5 && D <= 16 : D >= 9 && D <= 64;
}

/// Statistics per component in the wide layout: N_k, S1_k (D), then S2_k: for full and
/// tied a pad4(D) x pad4(D) square of which the upper triangle is meaningful, the diagonal
/// (D) otherwise.
constexpr int wide_stats_per_component(CovarianceType type, int D) noexcept {
  return 1 + D + ((type == CovarianceType::full || type == CovarianceType::tied) ? pad4(D) * pad4(D) : D);
}

/// Scratch doubles wide_block needs beside g.
constexpr std::size_t wide_scratch(CovarianceType type, int D) noexcept {
  return (type == CovarianceType::full || type == CovarianceType::tied)
             ? 2 * static_cast<std::size_t>(pad4(D)) * kWideFullRows
             : 0;
}

/// narrow_block's contract for a block of up to R = wide_rows(p.type) rows: xt is D x R,
/// g K x R, scratch wide_scratch(type, D) doubles, and acc holds the
/// K * wide_stats_per_component values, then the log-likelihood, then per component the
/// weight left out (above), 8 lane partials each.
/// The log joints are cpu_kernels.cpp's, by the same sequence of operations.
void wide_block(const NarrowParams& p, const double* xt, int rows, const double* w, double* g, double* scratch,
                double* acc);

/// narrow_transpose for blocks of R rows of any width.
void wide_transpose(const double* x, std::size_t stride, int D, int rows, int R, double* xt);
void wide_transpose(const float* x, std::size_t stride, int D, int rows, int R, double* xt);

}  // namespace cuem::cpu
