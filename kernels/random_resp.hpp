#pragma once
// The 'random' initialisation's responsibilities on the device (Backend::random_stats):
// for the point with global index g, r_gk = u_gk / sum_j u_gj with
// u_gk = rng::uniform(seed, kRandomResp, g K + k), formed in float64 exactly as the host
// forms them (src/init/initialize.cpp) and then rounded to the arithmetic type.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace cuem::cuda {

/// resp[k * resp_stride + i] = r_(first + i)k for the n points of a chunk whose first
/// point has global index `first`.
void launch_random_resp(std::uint64_t seed, int K, std::size_t first, std::size_t n, float* resp,
                        std::size_t resp_stride, cudaStream_t stream);
void launch_random_resp(std::uint64_t seed, int K, std::size_t first, std::size_t n, double* resp,
                        std::size_t resp_stride, cudaStream_t stream);

}  // namespace cuem::cuda
