// float32 instantiations of the k-means kernels.
#include "kmeans.cuh"

namespace cuem::cuda {

void launch_closest(const float* X, std::size_t n, int D, const float* c_hi, const float* c_lo, float* closest,
                    ClosestMode mode, double* block_sums, std::size_t first_block, cudaStream_t stream) {
  detail::closest(X, n, D, c_hi, c_lo, closest, mode, block_sums, first_block, stream);
}

void launch_hard_assign(const float* X, std::size_t n, int D, int K, const float* c_hi, const float* c_lo, int* labels,
                        float* dist, float* resp, std::size_t resp_stride, const CudaTuning& tuning,
                       cudaStream_t stream) {
  detail::hard_assign(X, n, D, K, c_hi, c_lo, labels, dist, resp, resp_stride, tuning, stream);
}

}  // namespace cuem::cuda
