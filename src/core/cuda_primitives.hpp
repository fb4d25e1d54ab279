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

/// The primitives on CUDA device `options.device` for the data X and weights w (which
/// must outlive them). Throws DeviceError when the device cannot be used.
std::unique_ptr<Primitives> make_primitives(DataView X, WeightView w, const BackendOptions& options);

}  // namespace cuem::cuda
