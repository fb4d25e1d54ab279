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

}  // namespace cuem::cuda
