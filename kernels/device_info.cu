// Device discovery that reads "no driver" or "no device" as an empty list, never a crash.
#include <cuda_runtime.h>

#include <string>

#include "core/cuda_devices.hpp"
#include "device_memory.cuh"

namespace cuem::cuda {
namespace {

std::string cuda_version(int v) { return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10); }

// Why no device can be used, in a user's words where the runtime's are misleading: with
// no driver at all, the runtime says the driver is "insufficient".
std::string no_device_reason(cudaError_t err) {
  const std::string raw = std::string(cudaGetErrorName(err)) + ": " + cudaGetErrorString(err);
  if (err != cudaErrorInsufficientDriver) return raw;
  int driver = 0, runtime = 0;
  (void)cudaDriverGetVersion(&driver);
  (void)cudaRuntimeGetVersion(&runtime);
  (void)cudaGetLastError();
  if (driver == 0) return "no NVIDIA driver is installed";
  if (driver >= runtime) return raw;
  return "the NVIDIA driver supports CUDA up to " + cuda_version(driver) + ", and this build needs " +
         cuda_version(runtime) + ": update the driver";
}

}  // namespace

std::vector<DeviceInfo> list_devices(std::string* reason) {
  std::vector<DeviceInfo> out;
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    if (reason) *reason = no_device_reason(err);
    return out;
  }
  if (count == 0 && reason) *reason = "no CUDA device found";
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) {
      (void)cudaGetLastError();
      continue;
    }
    DeviceInfo info;
    info.index = i;
    info.name = prop.name;
    info.compute_major = prop.major;
    info.compute_minor = prop.minor;
    info.total_memory = prop.totalGlobalMem;
    int previous = 0;
    if (cudaGetDevice(&previous) == cudaSuccess && cudaSetDevice(i) == cudaSuccess) {
      std::size_t free_b = 0, total_b = 0;
      if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess) info.free_memory = free_b;
      (void)cudaSetDevice(previous);
    }
    (void)cudaGetLastError();
    out.push_back(info);
  }
  return out;
}

}  // namespace cuem::cuda
