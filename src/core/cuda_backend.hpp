#pragma once
// The CUDA backend as the host code sees it: a factory behind plain C++ declarations
// (defined in kernels/cuda_backend.cu; present only in builds with CUDA).
#include <cstddef>
#include <memory>

#include "core/backend.hpp"
#include "cuem/data_view.hpp"
#include "cuem/options.hpp"

namespace cuem::cuda {

struct BackendOptions {
  int device = 0;
  Precision precision = Precision::float32;
  /// Bytes of device memory the backend may use; 0 means 80% of what is free.
  std::size_t memory_limit = 0;
};

/// A backend on CUDA device `options.device` for the data X (which must outlive it).
/// Throws DeviceError when the device cannot be used.
std::unique_ptr<Backend> make_backend(DataView X, const BackendOptions& options);

}  // namespace cuem::cuda
