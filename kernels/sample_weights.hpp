#pragma once
// Launchers of the sample-weight kernels (kernels/sample_weights.cu). With point weights
// w_n every sum over points is weighted (DESIGN.md's notation):
//   N_k = sum w_n g_nk,  S1_k = sum w_n g_nk y,  S2_k = sum w_n g_nk y y^T,
//   log-likelihood = sum w_n lp_n,  k-means potential = sum w_n min_c ||x_n - c||^2.
// The statistics kernels stay as they are: a weighted pass scales a chunk's
// responsibilities and log-likelihoods before they sum them (so w_n g_nk is rounded to S
// once, where the statistics kernels round their products anyway). Unweighted passes
// launch none of these, so their sums are those of the unweighted kernels, bit for bit.
#include <cuda_runtime_api.h>

#include <cstddef>

#include "kmeans.hpp"

namespace cuem::cuda {

/// For the n points of a chunk: resp[k * resp_stride + i] *= w[i] for k < K (resp may be
/// null), and log_prob[i] = w[i] * log_prob[i], or 0 where w[i] == 0 (log_prob may be
/// null): a dropped point adds nothing, where 0 * -inf would make the sum NaN. Serves the
/// E-step (posteriors), the initialisations' responsibilities and Lloyd's one-hot rows
/// (with the distances in log_prob, so that the inertia is sum w_n d_n).
void launch_scale_rows(const float* w, std::size_t n, int K, float* resp, std::size_t resp_stride, float* log_prob,
                       cudaStream_t stream);
void launch_scale_rows(const double* w, std::size_t n, int K, double* resp, std::size_t resp_stride,
                       double* log_prob, cudaStream_t stream);

/// launch_closest with weighted block sums: the values v_i as `mode` says, unweighted
/// (launch_closest's), and block_sums[first_block + b] = the sum of w_i v_i over block b
/// (float64, fixed order). w holds the chunk's n weights.
void launch_weighted_closest(const float* X, const float* w, std::size_t n, int D, const float* c_hi,
                             const float* c_lo, float* closest, ClosestMode mode, double* block_sums,
                             std::size_t first_block, cudaStream_t stream);
void launch_weighted_closest(const double* X, const double* w, std::size_t n, int D, const double* c_hi,
                             const double* c_lo, double* closest, ClosestMode mode, double* block_sums,
                             std::size_t first_block, cudaStream_t stream);

}  // namespace cuem::cuda
