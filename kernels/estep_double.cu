// float64 instantiations of the E-step kernels.
#include "estep_dispatch.cuh"

namespace cuem::cuda {

void launch_posteriors(const ComponentParams<double>& p, const double* X, std::size_t n, double* resp,
                       std::size_t resp_stride, double* log_prob, const CudaTuning& tuning,
                       cudaStream_t stream) {
  detail::posteriors(p, X, n, resp, resp_stride, log_prob, tuning, stream);
}

void launch_segment_stats(int K, int D, const double* X, std::size_t n, const double* shift, const double* resp,
                          std::size_t resp_stride, const double* log_prob, const unsigned* entries, int M,
                          double* partials, std::size_t L, const CudaTuning& tuning, cudaStream_t stream) {
  detail::segment_stats(K, D, X, n, shift, resp, static_cast<const double*>(nullptr), resp_stride, log_prob, entries, M,
                        partials, L, tuning, stream);
}

void launch_estep(const ComponentParams<double>& p, const double* X, std::size_t n, double* resp, std::size_t resp_stride,
                  double* log_prob, double* norm, const unsigned* entries, int M, double* partials, std::size_t L,
                  const CudaTuning& tuning, cudaStream_t stream) {
  detail::estep(p, X, n, resp, resp_stride, log_prob, norm, entries, M, partials, L, tuning, stream);
}

bool launch_fused_estep(const ComponentParams<double>& p, const double* X, std::size_t n, double* partials,
                        std::size_t L, const CudaTuning& tuning, cudaStream_t stream) {
  return detail::fused_estep(p, X, n, partials, L, tuning, stream);
}

}  // namespace cuem::cuda
