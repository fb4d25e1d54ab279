#pragma once
// One way to check every CUDA call: failures become cuem::DeviceError naming the call,
// the error and the place; the sticky error state is cleared first. Destructors use the
// no-throw form. Building with -DCUEM_CUDA_DEBUG_SYNC makes every launch check
// synchronise, so an asynchronous fault is reported at the kernel that caused it.
#include <cuda_runtime.h>

#include <cstdio>
#include <string>

#include "cuem/errors.hpp"

namespace cuem::cuda {

inline void throw_on_error(cudaError_t err, const char* call, const char* file, int line) {
  if (err == cudaSuccess) return;
  (void)cudaGetLastError();  // clear, so the next call does not inherit this failure
  std::string what = std::string("CUDA call ") + call + " failed: " + cudaGetErrorName(err) + " (" +
                     cudaGetErrorString(err) + ") at " + file + ":" + std::to_string(line);
  if (err == cudaErrorMemoryAllocation)
    what += ". Lower the device memory limit (device_memory_limit / --device-memory) so that cuem "
            "streams the data in smaller chunks, or use fewer components.";
  throw DeviceError(what);
}

/// For destructors: reports a failure on stderr instead of throwing.
inline void warn_on_error(cudaError_t err, const char* call, const char* file, int line) noexcept {
  if (err == cudaSuccess) return;
  (void)cudaGetLastError();
  std::fprintf(stderr, "cuem: warning: %s failed: %s at %s:%d\n", call, cudaGetErrorName(err), file, line);
}

inline void check_launch(const char* file, int line) {
  throw_on_error(cudaGetLastError(), "kernel launch", file, line);
#if defined(CUEM_CUDA_DEBUG_SYNC)
  throw_on_error(cudaDeviceSynchronize(), "kernel execution (debug sync)", file, line);
#endif
}

}  // namespace cuem::cuda

#define CUEM_CUDA_CHECK(call) ::cuem::cuda::throw_on_error((call), #call, __FILE__, __LINE__)
#define CUEM_CUDA_CHECK_NOTHROW(call) ::cuem::cuda::warn_on_error((call), #call, __FILE__, __LINE__)
/// After a launch: checks the launch itself (configuration errors).
#define CUEM_CUDA_CHECK_LAUNCH() ::cuem::cuda::check_launch(__FILE__, __LINE__)

// Launches and dynamic shared memory through macros, so that the emulated runtime
// (tests/emu, for testing the kernels on machines without a GPU) can stand in for the
// <<< >>> syntax a host compiler cannot read. A template kernel goes in parentheses:
// CUEM_LAUNCH((kernel<S, C>), grid, block, shared_bytes, stream)(arguments...).
#if !defined(CUEM_EMULATED_DEVICE)
#define CUEM_LAUNCH(kernel, grid, block, shared_bytes, stream) kernel<<<grid, block, shared_bytes, stream>>>
#define CUEM_DYNAMIC_SHARED(name) extern __shared__ __align__(16) unsigned char name[]
#endif
