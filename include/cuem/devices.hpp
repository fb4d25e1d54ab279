#pragma once
// The CUDA devices this build of cuem can use.
#include <cstddef>
#include <string>
#include <vector>

namespace cuem {

struct CudaDevice {
  int index = 0;             ///< the N of device 'cuda:N'
  std::string name;
  int compute_major = 0;     ///< compute capability
  int compute_minor = 0;
  std::size_t total_memory = 0;  ///< bytes
  std::size_t free_memory = 0;   ///< bytes, when listed
};

/// The usable CUDA devices; empty on a machine without a GPU or driver, or in a build
/// without CUDA, and then `reason` (when given) says why. Never throws for a missing GPU.
std::vector<CudaDevice> cuda_devices(std::string* reason = nullptr);

}  // namespace cuem
