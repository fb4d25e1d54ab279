// A direct use of the shared per-point math on the device: one thread per (point,
// component) evaluates log pi_k + log N(x_n | mu_k, Sigma_k) for full covariances. Tests
// compare it with the host evaluation of the same functions.
#include <cuda_runtime.h>

#include <cstddef>

#include "core/point_math.hpp"
#include "cuda_check.cuh"
#include "device_checks.hpp"

namespace cuem::cuda {
namespace {

__global__ void log_joint_full_kernel(const double* X, int n, int D, int K, const double* log_weights,
                                      const double* means, const double* prec_chol, const double* log_det,
                                      double* out) {
  const long long idx = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= static_cast<long long>(n) * K) return;
  const int i = static_cast<int>(idx / K);
  const int k = static_cast<int>(idx % K);
  const std::size_t DD = static_cast<std::size_t>(D) * D;
  const double maha = math::mahalanobis_sq_full(X + static_cast<std::size_t>(i) * D,
                                                means + static_cast<std::size_t>(k) * D,
                                                prec_chol + k * DD, D);
  out[idx] = math::log_joint(log_weights[k], log_det[k], maha, D);
}

// Owns one device allocation for the duration of the check.
class DeviceBuffer {
 public:
  explicit DeviceBuffer(std::size_t count) { CUEM_CUDA_CHECK(cudaMalloc(&ptr_, count * sizeof(double))); }
  ~DeviceBuffer() { (void)cudaFree(ptr_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& other) noexcept : ptr_(other.ptr_) { other.ptr_ = nullptr; }
  DeviceBuffer& operator=(DeviceBuffer&&) = delete;
  double* get() const { return ptr_; }

 private:
  double* ptr_ = nullptr;
};

DeviceBuffer upload(const double* host, std::size_t count, cudaStream_t stream) {
  DeviceBuffer b(count);
  CUEM_CUDA_CHECK(cudaMemcpyAsync(b.get(), host, count * sizeof(double), cudaMemcpyHostToDevice, stream));
  return b;
}

}  // namespace

void log_joint_full_on_device(int device, const double* X, int n, int D, int K, const double* log_weights,
                              const double* means, const double* prec_chol, const double* log_det,
                              double* out) {
  CUEM_CUDA_CHECK(cudaSetDevice(device));
  cudaStream_t stream = nullptr;
  CUEM_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  struct StreamGuard {
    cudaStream_t s;
    ~StreamGuard() { (void)cudaStreamDestroy(s); }
  } guard{stream};
  const std::size_t nk = static_cast<std::size_t>(n) * K;
  const std::size_t DD = static_cast<std::size_t>(D) * D;
  DeviceBuffer dX = upload(X, static_cast<std::size_t>(n) * D, stream);
  DeviceBuffer dw = upload(log_weights, K, stream);
  DeviceBuffer dm = upload(means, static_cast<std::size_t>(K) * D, stream);
  DeviceBuffer dp = upload(prec_chol, K * DD, stream);
  DeviceBuffer dl = upload(log_det, K, stream);
  DeviceBuffer dout(nk);
  const int threads = 128;
  const auto blocks = static_cast<unsigned>((nk + threads - 1) / threads);
  CUEM_LAUNCH(log_joint_full_kernel, blocks, threads, 0, stream)(dX.get(), n, D, K, dw.get(), dm.get(), dp.get(),
                                                        dl.get(), dout.get());
  CUEM_CUDA_CHECK_LAUNCH();
  CUEM_CUDA_CHECK(cudaMemcpyAsync(out, dout.get(), nk * sizeof(double), cudaMemcpyDeviceToHost, stream));
  CUEM_CUDA_CHECK(cudaStreamSynchronize(stream));
}

}  // namespace cuem::cuda
