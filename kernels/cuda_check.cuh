#pragma once
// One way to check every CUDA call: failures become cuem::DeviceError naming the call,
// the error and the place; the sticky error state is cleared first.
#include <cuda_runtime.h>

#include <string>

#include "cuem/errors.hpp"

namespace cuem::cuda {

inline void throw_on_error(cudaError_t err, const char* call, const char* file, int line) {
  if (err == cudaSuccess) return;
  (void)cudaGetLastError();  // clear, so the next call does not inherit this failure
  std::string what = std::string("CUDA call ") + call + " failed: " + cudaGetErrorName(err) + " (" +
                     cudaGetErrorString(err) + ") at " + file + ":" + std::to_string(line);
  if (err == cudaErrorMemoryAllocation) what += ". Use a smaller chunk or fewer components.";
  throw DeviceError(what);
}

}  // namespace cuem::cuda

#define CUEM_CUDA_CHECK(call) ::cuem::cuda::throw_on_error((call), #call, __FILE__, __LINE__)
/// After a launch: checks the launch itself (configuration errors).
#define CUEM_CUDA_CHECK_LAUNCH() ::cuem::cuda::throw_on_error(cudaGetLastError(), "kernel launch", __FILE__, __LINE__)
