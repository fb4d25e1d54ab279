// The emulated CUDA runtime (tests/emu) that lets the CUDA backend's tests run without a
// GPU: its barriers, shared memory, launch checks and memory checks must behave as a
// GPU's do, or the tests built on it prove nothing.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include <cub/block/block_reduce.cuh>
#include <cuda_runtime.h>

namespace {

// Each thread publishes its index, waits, and reads its neighbour's: wrong without a
// working barrier (the fibers run in thread order, so thread 0 would read unwritten memory).
__global__ void rotate_kernel(int* out) {
  __shared__ int values[64];
  const unsigned t = threadIdx.x;
  values[t] = static_cast<int>(t + 100 * blockIdx.x);
  __syncthreads();
  out[blockIdx.x * blockDim.x + t] = values[(t + 1) % blockDim.x];
}

// Dynamic shared memory: reads before writing see the fill pattern (0xff), in every block.
__global__ void dynamic_kernel(unsigned char* first, int n) {
  CUEM_DYNAMIC_SHARED(smem);
  if (threadIdx.x == 0) first[blockIdx.x] = smem[n - 1];
  __syncthreads();
  smem[threadIdx.x] = 7;
}

// Threads that return early do not hold the others at the barrier.
__global__ void early_return_kernel(int* out) {
  __shared__ int count[1];
  if (threadIdx.x == 0) count[0] = 0;
  __syncthreads();
  if (threadIdx.x % 2 == 1) return;
  count[0] += 1;  // fibers switch only at barriers: no race in the emulation
  __syncthreads();
  if (threadIdx.x == 0) out[0] = count[0];
}

// A barrier that half the threads reach by one branch and half by another: a GPU hangs
// or mixes the two; the emulation stops.
__global__ void divergent_barrier_kernel(int* out) {
  if (threadIdx.x < 16) {
    __syncthreads();
    out[threadIdx.x] = 1;
  } else {
    __syncthreads();
    out[threadIdx.x] = 2;
  }
}

__global__ void sum_kernel(const double* in, double* out) {
  using BlockReduce = cub::BlockReduce<double, 128, cub::BLOCK_REDUCE_RAKING>;
  __shared__ typename BlockReduce::TempStorage temp;
  const double total = BlockReduce(temp).Sum(in[blockIdx.x * 128 + threadIdx.x]);
  if (threadIdx.x == 0) out[blockIdx.x] = total;
}

template <typename T>
T* device_alloc(std::size_t n) {
  T* p = nullptr;
  EXPECT_EQ(cudaMalloc(&p, n * sizeof(T)), cudaSuccess);
  return p;
}

TEST(EmulatedRuntime, BarriersOrderSharedMemoryAcrossThreads) {
  int* d = device_alloc<int>(3 * 64);
  const unsigned long long before = cuem::emu::launch_count();
  CUEM_LAUNCH(rotate_kernel, 3, 64, 0, nullptr)(d);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  EXPECT_EQ(cuem::emu::launch_count(), before + 1);
  std::vector<int> h(3 * 64);
  ASSERT_EQ(cudaMemcpyAsync(h.data(), d, h.size() * sizeof(int), cudaMemcpyDeviceToHost), cudaSuccess);
  for (int b = 0; b < 3; ++b)
    for (int t = 0; t < 64; ++t) EXPECT_EQ(h[b * 64 + t], (t + 1) % 64 + 100 * b) << b << " " << t;
  EXPECT_EQ(cudaFree(d), cudaSuccess);
}

TEST(EmulatedRuntime, DynamicSharedMemoryStartsFilledInEveryBlock) {
  unsigned char* d = device_alloc<unsigned char>(4);
  CUEM_LAUNCH(dynamic_kernel, 4, 32, 100, nullptr)(d, 100);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  unsigned char h[4];
  ASSERT_EQ(cudaMemcpyAsync(h, d, 4, cudaMemcpyDeviceToHost), cudaSuccess);
  for (unsigned char v : h) EXPECT_EQ(v, 0xff);
  EXPECT_EQ(cudaFree(d), cudaSuccess);
}

TEST(EmulatedRuntime, ReturnedThreadsDoNotBlockABarrier) {
  int* d = device_alloc<int>(1);
  CUEM_LAUNCH(early_return_kernel, 1, 96, 0, nullptr)(d);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  int h = 0;
  ASSERT_EQ(cudaMemcpyAsync(&h, d, sizeof h, cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(h, 48);
  EXPECT_EQ(cudaFree(d), cudaSuccess);
}

TEST(EmulatedRuntimeDeathTest, StopsAtABarrierInDivergentCode) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  int* d = device_alloc<int>(32);
  EXPECT_DEATH(CUEM_LAUNCH(divergent_barrier_kernel, 1, 32, 0, nullptr)(d), "different __syncthreads");
  EXPECT_EQ(cudaFree(d), cudaSuccess);
}

TEST(EmulatedRuntime, BlockReduceSumsEveryThread) {
  std::vector<double> h(2 * 128);
  for (std::size_t i = 0; i < h.size(); ++i) h[i] = static_cast<double>(i);
  double* in = device_alloc<double>(h.size());
  double* out = device_alloc<double>(2);
  ASSERT_EQ(cudaMemcpyAsync(in, h.data(), h.size() * sizeof(double), cudaMemcpyHostToDevice), cudaSuccess);
  CUEM_LAUNCH(sum_kernel, 2, 128, 0, nullptr)(in, out);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  double s[2];
  ASSERT_EQ(cudaMemcpyAsync(s, out, sizeof s, cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(s[0], 127.0 * 128 / 2);
  EXPECT_EQ(s[1], (128.0 + 255) * 128 / 2);
  EXPECT_EQ(cudaFree(in), cudaSuccess);
  EXPECT_EQ(cudaFree(out), cudaSuccess);
}

TEST(EmulatedRuntime, RefusesLaunchesAGpuWouldRefuse) {
  int* d = device_alloc<int>(2048);
  const unsigned long long before = cuem::emu::launch_count();
  CUEM_LAUNCH(rotate_kernel, 1, 1025, 0, nullptr)(d);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);  // reading the error clears it
  CUEM_LAUNCH(rotate_kernel, dim3(1, 65536), 64, 0, nullptr)(d);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  CUEM_LAUNCH(dynamic_kernel, 1, 32, 48 * 1024 + 1, nullptr)(reinterpret_cast<unsigned char*>(d), 1);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidValue);
  EXPECT_EQ(cuem::emu::launch_count(), before);  // nothing ran
  EXPECT_EQ(cudaFree(d), cudaSuccess);
}

TEST(EmulatedRuntime, ChecksCopiesAgainstTheirAllocations) {
  char* d = device_alloc<char>(100);
  std::vector<char> h(200, 1);
  EXPECT_EQ(cudaMemcpyAsync(d, h.data(), 100, cudaMemcpyHostToDevice), cudaSuccess);
  EXPECT_EQ(cudaMemcpyAsync(d, h.data(), 101, cudaMemcpyHostToDevice), cudaErrorInvalidValue);  // past the end
  EXPECT_EQ(cudaMemcpyAsync(d + 50, h.data(), 51, cudaMemcpyHostToDevice), cudaErrorInvalidValue);
  EXPECT_EQ(cudaMemcpyAsync(h.data(), d, 10, cudaMemcpyHostToDevice), cudaErrorInvalidMemcpyDirection);
  EXPECT_EQ(cudaMemcpyAsync(d, h.data(), 10, cudaMemcpyDeviceToHost), cudaErrorInvalidMemcpyDirection);
  EXPECT_EQ(cudaMemsetAsync(h.data(), 0, 10), cudaErrorInvalidValue);  // host memory
  (void)cudaGetLastError();
  EXPECT_EQ(cudaFree(h.data()), cudaErrorInvalidValue);  // not a device allocation
  EXPECT_EQ(cudaFreeHost(d), cudaErrorInvalidValue);
  (void)cudaGetLastError();
  EXPECT_EQ(cudaFree(d), cudaSuccess);
  EXPECT_EQ(cudaFree(d), cudaErrorInvalidValue);  // twice
  (void)cudaGetLastError();
}

TEST(EmulatedRuntime, DeviceMemoryIsBoundedAndAccounted) {
  std::size_t free0 = 0, total = 0;
  ASSERT_EQ(cudaMemGetInfo(&free0, &total), cudaSuccess);
  EXPECT_LE(free0, total);
  void* p = nullptr;
  EXPECT_EQ(cudaMalloc(&p, total + 1), cudaErrorMemoryAllocation);
  (void)cudaGetLastError();
  ASSERT_EQ(cudaMalloc(&p, 1000), cudaSuccess);
  std::size_t free1 = 0;
  ASSERT_EQ(cudaMemGetInfo(&free1, &total), cudaSuccess);
  EXPECT_EQ(free0 - free1, 1024u);  // 256-byte granules
  unsigned char first = 0;
  ASSERT_EQ(cudaMemcpyAsync(&first, p, 1, cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(first, 0xff);  // never written: the fill pattern
  EXPECT_EQ(cudaFree(p), cudaSuccess);
  ASSERT_EQ(cudaMemGetInfo(&free1, &total), cudaSuccess);
  EXPECT_EQ(free1, free0);
}

TEST(EmulatedRuntime, StreamsAndEventsAreHandles) {
  cudaStream_t s = nullptr;
  cudaEvent_t e = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
  ASSERT_EQ(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), cudaSuccess);
  EXPECT_EQ(cudaEventRecord(e, s), cudaSuccess);
  EXPECT_EQ(cudaStreamWaitEvent(s, e, 0), cudaSuccess);
  EXPECT_EQ(cudaEventDestroy(e), cudaSuccess);
  EXPECT_EQ(cudaStreamDestroy(s), cudaSuccess);
  EXPECT_EQ(cudaStreamSynchronize(s), cudaErrorInvalidResourceHandle);  // destroyed
  (void)cudaGetLastError();
}

}  // namespace
