#pragma once
// The CUDA primitives as the host code sees them: a factory behind plain C++ declarations
// (defined in kernels/cuda_primitives.cu; present only in builds with CUDA).
#include <cstddef>
#include <memory>

#include "cuem/data_view.hpp"
#include "cuem/options.hpp"
#include "engine/primitives.hpp"

namespace cuem::cuda {

struct BackendOptions {
  int device = 0;
  Precision precision = Precision::float32;
  /// Bytes of device memory the primitives may use; 0 means 80% of what is free.
  std::size_t memory_limit = 0;
};

/// A device's streams and stream-ordered memory pool, kept across calls by a Resources
/// (kernels/device_context.cuh). Opaque here.
class DeviceContext;

/// The context of CUDA device `device`; the pool keeps up to `cache_limit` bytes of
/// freed memory for reuse (0: all of it, until the context goes). Throws DeviceError
/// when the device cannot be used.
std::shared_ptr<DeviceContext> make_device_context(int device, std::size_t cache_limit);

/// The primitives on CUDA device `options.device` for the data X and weights w (which
/// must outlive them), with the kernel choices of `tuning`, on `context` (its device
/// must be options.device) or, without one, on a context of their own that goes with
/// them. Throws DeviceError when the device cannot be used.
std::unique_ptr<Primitives> make_primitives(DataView X, WeightView w, const BackendOptions& options,
                                            const CudaTuning& tuning = {},
                                            std::shared_ptr<DeviceContext> context = nullptr);

}  // namespace cuem::cuda
