#include "cuem/devices.hpp"

#if defined(CUEM_HAVE_CUDA)
#include "core/cuda_devices.hpp"
#endif

namespace cuem {

std::vector<CudaDevice> cuda_devices(std::string* reason) {
  std::vector<CudaDevice> out;
#if defined(CUEM_HAVE_CUDA)
  for (const cuda::DeviceInfo& d : cuda::list_devices(reason))
    out.push_back({d.index, d.name, d.compute_major, d.compute_minor, d.total_memory, d.free_memory});
#else
  if (reason) *reason = "this cuem was built without CUDA";
#endif
  return out;
}

}  // namespace cuem
