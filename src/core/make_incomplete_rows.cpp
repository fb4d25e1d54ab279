#include "core/make_incomplete_rows.hpp"

#include <cstring>

#if defined(CUEM_HAVE_CUDA)
#include "core/cuda_incomplete_rows.hpp"
#include "core/cuda_primitives.hpp"
#endif

namespace cuem {

std::unique_ptr<engine::IncompleteRows> make_incomplete_rows(const engine::MissingLayout& layout,
                                                             const PrimitivesRequest& request, const Primitives& on,
                                                             std::shared_ptr<cuda::DeviceContext>* context) {
#if defined(CUEM_HAVE_CUDA)
  if (std::strcmp(on.name(), "cuda") == 0) {
    PrimitivesRequest r = request;
    if (r.device.kind != DeviceKind::cuda) {  // 'auto' that found a device: make_primitives took cuda:0
      r.device.kind = DeviceKind::cuda;
      r.device.index = 0;
    }
    std::shared_ptr<cuda::DeviceContext> shared;
    if (context) {
      if (!*context) *context = cuda::make_device_context(r.device.index, r.device_memory_limit);
      shared = *context;
    }
    return make_cuda_incomplete_rows(layout, r, std::move(shared));
  }
#else
  (void)request;
  (void)on;
  (void)context;
#endif
  return engine::make_cpu_incomplete_rows(layout);
}

}  // namespace cuem
