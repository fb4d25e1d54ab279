#include "engine/primitives.hpp"

#include <string>

#include "cpu/cpu_primitives.hpp"
#include "cuem/errors.hpp"
#if defined(CUEM_HAVE_CUDA)
#include "core/cuda_devices.hpp"
#include "core/cuda_primitives.hpp"
#endif

namespace cuem {

SufficientStats Primitives::weighted_stats_rows(const Responsibilities&, CovarianceType, int, const std::vector<double>&,
                                               std::size_t, std::size_t) {
  throw Error(std::string("internal: the ") + name() + " backend has no statistics over a row range");
}

SufficientStats Primitives::gaussian_estep_rows(const PreparedParams&, std::size_t, std::size_t) {
  throw Error(std::string("internal: the ") + name() + " backend has no E-step over a row range");
}

void Primitives::closest_potentials(PointValues& v, const double* c, int n, double* potentials) {
  const std::size_t D = cols();
  for (int t = 0; t < n; ++t) potentials[t] = closest(v, c + static_cast<std::size_t>(t) * D, ClosestMode::potential);
}

double Primitives::closest_keep(PointValues& v, const double* c_t, int) {
  return closest(v, c_t, ClosestMode::update);
}

void Primitives::poll_interrupt() const {
  if (interrupted_ && interrupted_()) throw Interrupted("the fit was interrupted");
}

std::unique_ptr<Primitives> make_primitives(DataView X, WeightView w, const PrimitivesRequest& request,
                                            std::string* notice, std::shared_ptr<cuda::DeviceContext>* cuda_context) {
  const Device& device = request.device;
#if defined(CUEM_HAVE_CUDA)
  // The caller's context for CUDA device `index`, made now if it has none yet.
  const auto context_for = [&](int index) -> std::shared_ptr<cuda::DeviceContext> {
    if (!cuda_context) return nullptr;
    if (!*cuda_context) *cuda_context = cuda::make_device_context(index, request.device_memory_limit);
    return *cuda_context;
  };
#else
  (void)cuda_context;
#endif
  switch (device.kind) {
    case DeviceKind::cpu: return std::make_unique<CpuPrimitives>(X, w);
    case DeviceKind::automatic: {
#if defined(CUEM_HAVE_CUDA)
      std::string reason;
      if (!cuda::list_devices(&reason).empty())
        return cuda::make_primitives(X, w, {0, request.precision, request.device_memory_limit}, request.cuda_tuning,
                                     context_for(0));
      if (notice) *notice = "device 'auto': no usable CUDA device (" + reason + "), running on the CPU";
#else
      if (notice) *notice = "device 'auto': this cuem was built without CUDA, running on the CPU";
#endif
      return std::make_unique<CpuPrimitives>(X, w);
    }
    case DeviceKind::cuda: {
#if defined(CUEM_HAVE_CUDA)
      std::string reason;
      const auto devices = cuda::list_devices(&reason);
      if (devices.empty())
        throw DeviceError("device '" + std::string(device.index == 0 ? "cuda" : "cuda:" + std::to_string(device.index)) +
                          "' was requested but no CUDA device is usable (" + reason + "). Use device 'cpu' or 'auto'.");
      if (device.index < 0 || device.index >= static_cast<int>(devices.size()))
        throw DeviceError("device 'cuda:" + std::to_string(device.index) + "' does not exist: " +
                          std::to_string(devices.size()) + " CUDA device(s) found.");
      return cuda::make_primitives(X, w, {device.index, request.precision, request.device_memory_limit},
                                   request.cuda_tuning, context_for(device.index));
#else
      throw DeviceError("this cuem was built without CUDA; use device 'cpu' or 'auto', or rebuild "
                        "with -DCUEM_WITH_CUDA=ON on a machine with nvcc.");
#endif
    }
  }
  throw InvalidArgument("unknown device kind");
}

}  // namespace cuem
