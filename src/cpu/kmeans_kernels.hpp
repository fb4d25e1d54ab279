#pragma once
// Vector kernels of the CPU k-means: squared distances with every vector lane a point,
// compiled once per instruction-set level like cpu_kernels.hpp (simd.hpp). A point's
// distance to a centre sums its dimensions in order, in its own lane, so it does not
// depend on the block or the thread.
#include <cstddef>

namespace cuem::cpu {

/// out[t * out_stride + r] = ||x_r - c_t||^2 for the `rows` rows at x (`stride` values
/// apart, D values each) and the n centres c (n x D); each value the same bits whatever n
/// and t, every row read once for all n.
void dist_sq_rows_multi(const double* x, std::size_t stride, int D, int rows, const double* c, int n, double* out,
                        std::size_t out_stride);
void dist_sq_rows_multi(const float* x, std::size_t stride, int D, int rows, const double* c, int n, double* out,
                        std::size_t out_stride);

/// For each of the `rows` rows: the nearest of the K centres (K x D; the first of equals)
/// in labels and its squared distance in dist.
void nearest_rows(const double* x, std::size_t stride, int D, int rows, const double* centers, int K, int* labels,
                  double* dist);
void nearest_rows(const float* x, std::size_t stride, int D, int rows, const double* centers, int K, int* labels,
                  double* dist);

}  // namespace cuem::cpu
