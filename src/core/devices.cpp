#include "cuem/devices.hpp"

#if defined(CUEM_HAVE_CUDA)
#include "core/cuda_devices.hpp"
#endif

namespace cuem {

std::vector<CudaDevice> cuda_devices(std::string* reason) {
#if defined(CUEM_HAVE_CUDA)
  return cuda::list_devices(reason);
#else
  if (reason) *reason = "this cuem was built without CUDA";
  return {};
#endif
}

}  // namespace cuem
