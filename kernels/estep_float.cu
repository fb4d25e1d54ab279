// float32 instantiations of the E-step kernels.
#include "estep_dispatch.cuh"

namespace cuem::cuda {

void launch_posteriors(const ComponentParams<float>& p, const float* X, std::size_t n, float* resp,
                       std::size_t resp_stride, float* log_prob, const CudaTuning& tuning,
                       cudaStream_t stream) {
  detail::posteriors(p, X, n, resp, resp_stride, log_prob, tuning, stream);
}

void launch_segment_stats(int K, int D, const float* X, std::size_t n, const float* shift, const float* resp,
                          std::size_t resp_stride, const float* log_prob, const unsigned* entries, int M,
                          double* partials, std::size_t L, const CudaTuning& tuning, cudaStream_t stream) {
  detail::segment_stats(K, D, X, n, shift, resp, static_cast<const float*>(nullptr), resp_stride, log_prob, entries, M,
                        partials, L, tuning, stream);
}

void launch_estep(const ComponentParams<float>& p, const float* X, std::size_t n, float* resp, std::size_t resp_stride,
                  float* log_prob, float* norm, const unsigned* entries, int M, double* partials, std::size_t L,
                  const CudaTuning& tuning, cudaStream_t stream) {
  detail::estep(p, X, n, resp, resp_stride, log_prob, norm, entries, M, partials, L, tuning, stream);
}

bool launch_fused_estep(const ComponentParams<float>& p, const float* X, std::size_t n, double* partials, std::size_t L,
                        const CudaTuning& tuning, cudaStream_t stream) {
  return detail::fused_estep(p, X, n, partials, L, tuning, stream);
}

}  // namespace cuem::cuda
