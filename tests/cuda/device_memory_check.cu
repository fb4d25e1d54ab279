// Device memory in use, for the leak tests. The library's buffers keep no tally of their
// own: the tests ask the runtime.
#include <cuda_runtime.h>

#include <cstddef>

#include "device_checks.hpp"
#include "device_memory.cuh"

namespace cuem::cuda {

std::size_t device_bytes_in_use(int device) {
  const ScopedDevice on(device);
  std::size_t free_b = 0, total_b = 0;
  CUEM_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
  return total_b - free_b;
}

}  // namespace cuem::cuda
