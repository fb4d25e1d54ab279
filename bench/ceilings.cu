// The card's ceilings, measured in the benchmark's own process: device-to-device copy
// bandwidth (bytes read + written per second) and cuBLAS SGEMM / DGEMM rates. Timed with
// CUDA events after a warm-up.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "ceilings.hpp"

namespace cuem::bench {
namespace {

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
}
void check(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) throw std::runtime_error(std::string(what) + ": cuBLAS status " + std::to_string(s));
}

// Milliseconds per call of f, best of `reps` after a warm-up, by CUDA events.
template <typename F>
float best_ms(F&& f, int reps) {
  cudaEvent_t a, b;
  check(cudaEventCreate(&a), "cudaEventCreate");
  check(cudaEventCreate(&b), "cudaEventCreate");
  f();
  check(cudaDeviceSynchronize(), "warm-up");
  float best = 1e30f;
  for (int r = 0; r < reps; ++r) {
    check(cudaEventRecord(a), "cudaEventRecord");
    f();
    check(cudaEventRecord(b), "cudaEventRecord");
    check(cudaEventSynchronize(b), "cudaEventSynchronize");
    float ms = 0;
    check(cudaEventElapsedTime(&ms, a, b), "cudaEventElapsedTime");
    best = ms < best ? ms : best;
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return best;
}

template <typename T>
double gemm_rate(cublasHandle_t h, int n) {
  T *A = nullptr, *B = nullptr, *C = nullptr;
  const std::size_t bytes = static_cast<std::size_t>(n) * n * sizeof(T);
  check(cudaMalloc(&A, bytes), "cudaMalloc");
  check(cudaMalloc(&B, bytes), "cudaMalloc");
  check(cudaMalloc(&C, bytes), "cudaMalloc");
  check(cudaMemset(A, 0, bytes), "cudaMemset");
  check(cudaMemset(B, 0, bytes), "cudaMemset");
  const T one = 1, zero = 0;
  const float ms = best_ms(
      [&] {
        if constexpr (sizeof(T) == 4)
          check(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, A, n, B, n, &zero, C, n), "cublasSgemm");
        else
          check(cublasDgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, A, n, B, n, &zero, C, n), "cublasDgemm");
      },
      5);
  cudaFree(A);
  cudaFree(B);
  cudaFree(C);
  return 2.0 * n * static_cast<double>(n) * n / (ms * 1e-3);
}

}  // namespace

Ceilings measure_ceilings(int device) {
  check(cudaSetDevice(device), "cudaSetDevice");
  Ceilings c;
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
  c.device = prop.name;
  const std::size_t bytes = std::size_t{1} << 30;
  void *src = nullptr, *dst = nullptr;
  check(cudaMalloc(&src, bytes), "cudaMalloc");
  check(cudaMalloc(&dst, bytes), "cudaMalloc");
  check(cudaMemset(src, 1, bytes), "cudaMemset");
  const float ms = best_ms([&] { check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice), "copy"); }, 10);
  c.copy_bytes_per_s = 2.0 * static_cast<double>(bytes) / (ms * 1e-3);
  cudaFree(src);
  cudaFree(dst);
  cublasHandle_t h;
  check(cublasCreate(&h), "cublasCreate");
  c.sgemm_flops_per_s = gemm_rate<float>(h, 8192);
  c.dgemm_flops_per_s = gemm_rate<double>(h, 8192);
  cublasDestroy(h);
  return c;
}

}  // namespace cuem::bench
