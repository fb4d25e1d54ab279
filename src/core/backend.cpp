#include "core/backend.hpp"

#include <string>

#include "cpu/cpu_backend.hpp"
#include "cuem/errors.hpp"
#if defined(CUEM_HAVE_CUDA)
#include "core/cuda_devices.hpp"
#endif

namespace cuem {

void Backend::poll_interrupt() const {
  if (interrupted_ && interrupted_()) throw Interrupted("the fit was interrupted");
}

std::unique_ptr<Backend> make_backend(DataView X, const Device& device, int /*n_threads*/) {
  switch (device.kind) {
    case DeviceKind::cpu:
    case DeviceKind::automatic:  // the CPU is the only E-step backend in this version
      return std::make_unique<CpuBackend>(X);
    case DeviceKind::cuda: {
#if defined(CUEM_HAVE_CUDA)
      std::string reason;
      const auto devices = cuda::list_devices(&reason);
      if (devices.empty())
        throw DeviceError("device 'cuda' was requested but no CUDA device is usable (" + reason +
                          "). Use device 'cpu' or 'auto'.");
      if (device.index < 0 || device.index >= static_cast<int>(devices.size()))
        throw DeviceError("device 'cuda:" + std::to_string(device.index) + "' does not exist: " +
                          std::to_string(devices.size()) + " CUDA device(s) found.");
      throw DeviceError("this version of cuem has no CUDA E-step yet; use device 'cpu' or 'auto'.");
#else
      throw DeviceError("this cuem was built without CUDA; use device 'cpu' or 'auto', or rebuild "
                        "with -DCUEM_WITH_CUDA=ON on a machine with nvcc.");
#endif
    }
  }
  throw InvalidArgument("unknown device kind");
}

}  // namespace cuem
