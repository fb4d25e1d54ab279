#pragma once
// Plain C++ declarations of what the CUDA side offers the host code (defined in
// kernels/ when the library is built with CUDA). No CUDA header is needed to use them.
#include <string>
#include <vector>

#include "cuem/devices.hpp"

namespace cuem::cuda {

/// A device as the public API describes it (cuem/devices.hpp).
using DeviceInfo = CudaDevice;

/// The CUDA devices present. On a machine without a GPU or driver this is empty and
/// `reason` (if given) says why, e.g. the runtime's "insufficient driver" message; it never
/// throws and never aborts.
std::vector<DeviceInfo> list_devices(std::string* reason = nullptr);

/// Device and pinned host memory that cuem's buffers hold in this process, in bytes.
struct MemoryInUse {
  std::size_t device_bytes = 0;
  std::size_t pinned_bytes = 0;
};
MemoryInUse memory_in_use() noexcept;

/// Evaluates log pi_k + log N(x_n | mu_k, Sigma_k) for n points and K full-covariance
/// components on device `device` with the shared per-point math (point_math.hpp), writing
/// n x K log joints. Used by tests to prove the device and host math agree. Throws
/// DeviceError on any CUDA failure.
void log_joint_full_on_device(int device, const double* X, int n, int D, int K, const double* log_weights,
                              const double* means, const double* prec_chol, const double* log_det,
                              double* out);

}  // namespace cuem::cuda
