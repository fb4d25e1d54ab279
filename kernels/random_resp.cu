// The 'random' initialisation's responsibilities (random_resp.hpp): one thread a point.
// The draws are recomputed in the second loop rather than kept: K is unbounded, and a
// draw is a few integer multiplies.
#include <cuda_runtime.h>

#include "core/rng.hpp"
#include "cuda_check.cuh"
#include "device_memory.cuh"
#include "random_resp.hpp"

namespace cuem::cuda {
namespace {

constexpr int kRandomThreads = 256;

template <typename S>
__global__ void __launch_bounds__(kRandomThreads)
    random_resp_kernel(std::uint64_t seed, int K, std::size_t first, std::size_t n, S* __restrict__ resp,
                       std::size_t stride) {
  const std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const std::uint64_t base = static_cast<std::uint64_t>(first + i) * static_cast<std::uint64_t>(K);
  double sum = 0.0;
  for (int k = 0; k < K; ++k) sum += rng::uniform(seed, rng::kRandomResp, base + k);
  for (int k = 0; k < K; ++k)
    resp[static_cast<std::size_t>(k) * stride + i] = static_cast<S>(rng::uniform(seed, rng::kRandomResp, base + k) / sum);
}

template <typename S>
void random_resp(std::uint64_t seed, int K, std::size_t first, std::size_t n, S* resp, std::size_t stride,
                 cudaStream_t stream) {
  if (n == 0) return;
  const auto blocks = checked_cast<unsigned>((n + kRandomThreads - 1) / kRandomThreads, "random responsibility blocks");
  CUEM_LAUNCH((random_resp_kernel<S>), blocks, kRandomThreads, 0, stream)(seed, K, first, n, resp, stride);
  CUEM_CUDA_CHECK_LAUNCH();
}

}  // namespace

void launch_random_resp(std::uint64_t seed, int K, std::size_t first, std::size_t n, float* resp,
                        std::size_t resp_stride, cudaStream_t stream) {
  random_resp(seed, K, first, n, resp, resp_stride, stream);
}

void launch_random_resp(std::uint64_t seed, int K, std::size_t first, std::size_t n, double* resp,
                        std::size_t resp_stride, cudaStream_t stream) {
  random_resp(seed, K, first, n, resp, resp_stride, stream);
}

}  // namespace cuem::cuda
