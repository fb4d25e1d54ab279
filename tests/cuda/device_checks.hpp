#pragma once
// Test-only code on a CUDA device (tests/cuda/*.cu): built into the tests' own library,
// cuem_cuda_checks (or, on the emulated device, cuem_emu), never into the installed
// libcuem. Plain C++ declarations; no CUDA header is needed to use them.
#include <cstddef>

namespace cuem::cuda {

/// Evaluates log pi_k + log N(x_n | mu_k, Sigma_k) for n points and K full-covariance
/// components on device `device` with the shared per-point math (point_math.hpp), writing
/// n x K log joints. Used by tests to prove the device and host math agree. Throws
/// DeviceError on any CUDA failure.
void log_joint_full_on_device(int device, const double* X, int n, int D, int K, const double* log_weights,
                              const double* means, const double* prec_chol, const double* log_det,
                              double* out);

/// Device memory in use on `device`: total minus free as the runtime reports them. On the
/// emulated device that is exactly what this process holds; on a GPU it also counts the
/// context and other processes, so the leak tests compare it with itself after a warm-up
/// rather than with zero.
std::size_t device_bytes_in_use(int device);

}  // namespace cuem::cuda
