// The emulated CUDA runtime (tests/emu) that lets the CUDA backend's tests run without a
// GPU: its barriers, shared memory, launch checks and memory checks must behave as a
// GPU's do, or the tests built on it prove nothing. Also the CUDA backend against the
// limits the emulator enforces beyond a small test's reach (the copy pitch, pinned memory).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <cub/block/block_reduce.cuh>
#include <cuda_runtime.h>
#include <omp.h>

#include "core/cuda_primitives.hpp"
#include "core/prepared_params.hpp"
#include "cpu/cpu_primitives.hpp"
#include "cuem/options.hpp"
#include "engine/primitives.hpp"
#include "test_util.hpp"

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

// Static shared memory: each thread records its element before anyone writes it, then
// the block writes its index there. Every block must read the fill pattern: neither a
// static's initial zeros nor what the previous block left.
__global__ void static_shared_kernel(unsigned* first) {
  __shared__ unsigned values[64];
  const unsigned t = threadIdx.x;
  first[blockIdx.x * blockDim.x + t] = values[t];
  __syncthreads();
  values[t] = blockIdx.x + 1;
}

// The same in a template (whose statics the compiler emits as unique global symbols) with
// two objects, in floating point: unwritten values are NaN.
template <typename T>
__global__ void static_shared_template_kernel(T* first) {
  __shared__ T a[32];
  __shared__ T b[3];
  const unsigned t = threadIdx.x;
  first[blockIdx.x * 2 * blockDim.x + t] = a[t];
  first[(blockIdx.x * 2 + 1) * blockDim.x + t] = b[t % 3];
  __syncthreads();
  a[t] = T(1);
  if (t < 3) b[t] = T(2);
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

TEST(EmulatedRuntime, StaticSharedMemoryStartsFilledInEveryBlock) {
  EXPECT_EQ(cuem::emu::static_shared_bytes(reinterpret_cast<const void*>(&static_shared_kernel)),
            64 * sizeof(unsigned));
  const unsigned blocks = 3, threads = 64;
  unsigned* d = device_alloc<unsigned>(blocks * threads);
  CUEM_LAUNCH(static_shared_kernel, blocks, threads, 0, nullptr)(d);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  std::vector<unsigned> h(blocks * threads, 0);
  ASSERT_EQ(cudaMemcpyAsync(h.data(), d, h.size() * sizeof(unsigned), cudaMemcpyDeviceToHost), cudaSuccess);
  for (unsigned i = 0; i < h.size(); ++i)
    EXPECT_EQ(h[i], 0xffffffffu) << "block " << i / threads << ", thread " << i % threads;
  EXPECT_EQ(cudaFree(d), cudaSuccess);
}

TEST(EmulatedRuntime, StaticSharedMemoryOfATemplateKernelStartsFilledInEveryBlock) {
  const auto* kernel = reinterpret_cast<const void*>(&static_shared_template_kernel<float>);
  EXPECT_EQ(cuem::emu::static_shared_bytes(kernel), (32 + 3) * sizeof(float));
  const unsigned blocks = 2, threads = 32;
  float* d = device_alloc<float>(blocks * 2 * threads);
  CUEM_LAUNCH(static_shared_template_kernel<float>, blocks, threads, 0, nullptr)(d);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  std::vector<float> h(blocks * 2 * threads, 0.0f);
  ASSERT_EQ(cudaMemcpyAsync(h.data(), d, h.size() * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
  for (std::size_t i = 0; i < h.size(); ++i) {
    std::uint32_t bits = 0;
    std::memcpy(&bits, &h[i], sizeof bits);
    EXPECT_EQ(bits, 0xffffffffu) << "value " << i;
    EXPECT_TRUE(std::isnan(h[i])) << "value " << i;
  }
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

// cudaMemcpy2D* refuses a pitch above cudaDeviceProp::memPitch (2^31 - 1 bytes on
// current GPUs) with cudaErrorInvalidPitchValue, whatever else the copy is.
TEST(EmulatedRuntime, RefusesPitchesAboveTheDeviceLimit) {
  constexpr std::size_t kLimit = 2147483647;
  cudaDeviceProp prop{};
  ASSERT_EQ(cudaGetDeviceProperties(&prop, 0), cudaSuccess);
  EXPECT_EQ(prop.memPitch, kLimit);
  char* d = device_alloc<char>(256);
  std::vector<char> h(256, 0);
  for (int i = 0; i < 256; ++i) h[i] = static_cast<char>(i);
  ASSERT_EQ(cudaMemcpyAsync(d, h.data(), 256, cudaMemcpyHostToDevice), cudaSuccess);
  // One row, so that the pitch is the only thing out of range.
  EXPECT_EQ(cudaMemcpy2DAsync(h.data(), 16, d, kLimit + 1, 16, 1, cudaMemcpyDeviceToHost), cudaErrorInvalidPitchValue);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidPitchValue);
  EXPECT_EQ(cudaMemcpy2DAsync(h.data(), kLimit + 1, d, 16, 16, 1, cudaMemcpyDeviceToHost), cudaErrorInvalidPitchValue);
  (void)cudaGetLastError();
  EXPECT_EQ(cudaMemcpy2DAsync(h.data(), 16, d, kLimit, 16, 1, cudaMemcpyDeviceToHost), cudaSuccess);
  {
    const cuem::emu::MaxPitchScope low(64);
    ASSERT_EQ(cudaGetDeviceProperties(&prop, 0), cudaSuccess);
    EXPECT_EQ(prop.memPitch, 64u);
    EXPECT_EQ(cudaMemcpy2DAsync(h.data(), 65, d, 64, 8, 2, cudaMemcpyDeviceToHost), cudaErrorInvalidPitchValue);
    EXPECT_EQ(cudaMemcpy2DAsync(h.data(), 8, d, 65, 8, 2, cudaMemcpyDeviceToHost), cudaErrorInvalidPitchValue);
    (void)cudaGetLastError();
    std::vector<char> rows(16, 0);
    ASSERT_EQ(cudaMemcpy2DAsync(rows.data(), 8, d, 64, 8, 2, cudaMemcpyDeviceToHost), cudaSuccess);
    for (int r = 0; r < 2; ++r)
      for (int c = 0; c < 8; ++c) EXPECT_EQ(rows[r * 8 + c], static_cast<char>(r * 64 + c)) << r << " " << c;
  }
  EXPECT_EQ(cuem::emu::max_pitch(), kLimit);  // the scope restored it
  EXPECT_EQ(cudaFree(d), cudaSuccess);
}

// A pool of the emulated device 0 with the given release threshold.
cudaMemPool_t make_pool(unsigned long long threshold) {
  cudaMemPoolProps props{};
  props.allocType = cudaMemAllocationTypePinned;
  props.location.type = cudaMemLocationTypeDevice;
  props.location.id = 0;
  cudaMemPool_t pool = nullptr;
  EXPECT_EQ(cudaMemPoolCreate(&pool, &props), cudaSuccess);
  EXPECT_EQ(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold), cudaSuccess);
  return pool;
}

unsigned long long pool_attribute(cudaMemPool_t pool, cudaMemPoolAttr attr) {
  unsigned long long v = 0;
  EXPECT_EQ(cudaMemPoolGetAttribute(pool, attr, &v), cudaSuccess);
  return v;
}

std::size_t device_free_bytes() {
  std::size_t free_b = 0, total_b = 0;
  EXPECT_EQ(cudaMemGetInfo(&free_b, &total_b), cudaSuccess);
  return free_b;
}

TEST(EmulatedRuntime, PoolsCacheFreedBlocksUpToTheirThreshold) {
  cudaStream_t s = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
  const std::size_t free_before = device_free_bytes();
  const cuem::emu::AllocationCounts c0 = cuem::emu::allocation_counts();
  cudaMemPool_t pool = make_pool(~0ull);  // keep everything
  void* a = nullptr;
  ASSERT_EQ(cudaMallocFromPoolAsync(&a, 1000, pool, s), cudaSuccess);
  EXPECT_EQ(pool_attribute(pool, cudaMemPoolAttrUsedMemCurrent), 1024u);
  EXPECT_EQ(device_free_bytes(), free_before - 1024);
  ASSERT_EQ(cudaFreeAsync(a, s), cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(s), cudaSuccess);
  // Freed and synchronised, still held by the pool: the device's memory is not back.
  EXPECT_EQ(pool_attribute(pool, cudaMemPoolAttrUsedMemCurrent), 0u);
  EXPECT_EQ(pool_attribute(pool, cudaMemPoolAttrReservedMemCurrent), 1024u);
  EXPECT_EQ(device_free_bytes(), free_before - 1024);
  void* b = nullptr;
  ASSERT_EQ(cudaMallocFromPoolAsync(&b, 900, pool, s), cudaSuccess);
  EXPECT_EQ(b, a);  // the cached block, reused
  const cuem::emu::AllocationCounts c1 = cuem::emu::allocation_counts();
  EXPECT_EQ(c1.pool_allocations - c0.pool_allocations, 2u);
  EXPECT_EQ(c1.pool_growths - c0.pool_growths, 1u);
  EXPECT_EQ(c1.device_mallocs, c0.device_mallocs);
  ASSERT_EQ(cudaFreeAsync(b, s), cudaSuccess);
  // Trimming, or a threshold below what is cached, hands the memory back.
  ASSERT_EQ(cudaMemPoolTrimTo(pool, 0), cudaSuccess);
  EXPECT_EQ(device_free_bytes(), free_before);
  ASSERT_EQ(cudaMallocFromPoolAsync(&b, 900, pool, s), cudaSuccess);
  ASSERT_EQ(cudaFreeAsync(b, s), cudaSuccess);
  unsigned long long zero = 0;
  ASSERT_EQ(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &zero), cudaSuccess);
  EXPECT_EQ(device_free_bytes(), free_before - 1024);  // until a synchronisation
  ASSERT_EQ(cudaStreamSynchronize(s), cudaSuccess);
  EXPECT_EQ(device_free_bytes(), free_before);
  EXPECT_EQ(cuem::emu::allocation_counts().pool_growths - c0.pool_growths, 2u);
  EXPECT_EQ(cudaMemPoolDestroy(pool), cudaSuccess);
  EXPECT_EQ(cudaStreamDestroy(s), cudaSuccess);
}

TEST(EmulatedRuntime, CountsCudaMallocApartFromPoolAllocations) {
  const cuem::emu::AllocationCounts c0 = cuem::emu::allocation_counts();
  void* d = nullptr;
  ASSERT_EQ(cudaMalloc(&d, 64), cudaSuccess);
  void* h = nullptr;
  ASSERT_EQ(cudaHostAlloc(&h, 64, cudaHostAllocDefault), cudaSuccess);  // pinned: not counted
  void* p = nullptr;
  ASSERT_EQ(cudaMallocAsync(&p, 64, nullptr), cudaSuccess);  // the device's default pool
  const cuem::emu::AllocationCounts c1 = cuem::emu::allocation_counts();
  EXPECT_EQ(c1.device_mallocs - c0.device_mallocs, 1u);
  EXPECT_EQ(c1.pool_allocations - c0.pool_allocations, 1u);
  EXPECT_EQ(cudaFree(d), cudaSuccess);
  EXPECT_EQ(cudaFreeHost(h), cudaSuccess);
  EXPECT_EQ(cudaFreeAsync(p, nullptr), cudaSuccess);
  cudaMemPool_t def = nullptr;
  ASSERT_EQ(cudaDeviceGetDefaultMemPool(&def, 0), cudaSuccess);
  EXPECT_EQ(cudaMemPoolTrimTo(def, 0), cudaSuccess);
  EXPECT_EQ(cudaMemPoolDestroy(def), cudaErrorInvalidValue);  // a device's default pool stays
  (void)cudaGetLastError();
}

TEST(EmulatedRuntime, RefusesMisusesOfStreamOrderedMemory) {
  cudaStream_t s = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
  cudaMemPool_t pool = make_pool(~0ull);
  char* p = nullptr;
  ASSERT_EQ(cudaMallocFromPoolAsync(reinterpret_cast<void**>(&p), 100, pool, s), cudaSuccess);
  std::vector<char> h(200, 1);
  EXPECT_EQ(cudaMemcpyAsync(p, h.data(), 100, cudaMemcpyHostToDevice, s), cudaSuccess);
  // The requested size, not the 256-byte block, bounds a copy.
  EXPECT_EQ(cudaMemcpyAsync(p, h.data(), 101, cudaMemcpyHostToDevice, s), cudaErrorInvalidValue);
  EXPECT_EQ(cudaFree(p), cudaErrorInvalidValue);  // pool memory goes back with cudaFreeAsync
  // A pool with live memory is not destroyed.
  EXPECT_EQ(cudaMemPoolDestroy(pool), cudaErrorInvalidValue);
  (void)cudaGetLastError();
  ASSERT_EQ(cudaFreeAsync(p, s), cudaSuccess);
  EXPECT_EQ(cudaFreeAsync(p, s), cudaErrorInvalidValue);  // twice
  (void)cudaGetLastError();
  // Use after free: the block is the pool's again, not the program's.
  EXPECT_EQ(cudaMemcpyAsync(p, h.data(), 10, cudaMemcpyHostToDevice, s), cudaErrorInvalidMemcpyDirection);
  EXPECT_EQ(cudaMemsetAsync(p, 0, 10, s), cudaErrorInvalidValue);
  (void)cudaGetLastError();
  // Memory the pool did not give.
  void* d = nullptr;
  ASSERT_EQ(cudaMalloc(&d, 64), cudaSuccess);
  EXPECT_EQ(cudaFreeAsync(d, s), cudaErrorInvalidValue);
  EXPECT_EQ(cudaFreeAsync(h.data(), s), cudaErrorInvalidValue);
  (void)cudaGetLastError();
  EXPECT_EQ(cudaFree(d), cudaSuccess);
  // What is free plus the pool's cached block: served once the pool gives the block back.
  EXPECT_EQ(pool_attribute(pool, cudaMemPoolAttrReservedMemCurrent), 256u);
  void* big = nullptr;
  const std::size_t all = device_free_bytes() + 256;
  ASSERT_EQ(cudaMallocFromPoolAsync(&big, all, pool, s), cudaSuccess);
  EXPECT_EQ(pool_attribute(pool, cudaMemPoolAttrReservedMemCurrent), all);
  ASSERT_EQ(cudaFreeAsync(big, s), cudaSuccess);
  ASSERT_EQ(cudaMemPoolTrimTo(pool, 0), cudaSuccess);
  // More than the device has fails as cudaMalloc does.
  std::size_t free_b = 0, total_b = 0;
  ASSERT_EQ(cudaMemGetInfo(&free_b, &total_b), cudaSuccess);
  EXPECT_EQ(cudaMallocFromPoolAsync(&big, total_b + 1, pool, s), cudaErrorMemoryAllocation);
  (void)cudaGetLastError();
  EXPECT_EQ(pool_attribute(pool, cudaMemPoolAttrReservedMemCurrent), 0u);
  EXPECT_EQ(cudaMemPoolDestroy(pool), cudaSuccess);
  void* after = nullptr;
  EXPECT_EQ(cudaMallocFromPoolAsync(&after, 8, pool, s), cudaErrorInvalidValue);  // a destroyed pool
  (void)cudaGetLastError();
  EXPECT_EQ(cudaStreamDestroy(s), cudaSuccess);
}

TEST(EmulatedRuntime, CountsPinnedMemoryAndItsPeak) {
  const std::size_t before = cuem::emu::pinned_bytes();
  cuem::emu::reset_peak_pinned_bytes();
  EXPECT_EQ(cuem::emu::peak_pinned_bytes(), before);
  void* a = nullptr;
  void* b = nullptr;
  ASSERT_EQ(cudaHostAlloc(&a, 1000, cudaHostAllocDefault), cudaSuccess);
  ASSERT_EQ(cudaHostAlloc(&b, 500, cudaHostAllocDefault), cudaSuccess);
  EXPECT_EQ(cuem::emu::pinned_bytes(), before + 1500);
  EXPECT_EQ(cudaFreeHost(a), cudaSuccess);
  EXPECT_EQ(cuem::emu::pinned_bytes(), before + 500);
  EXPECT_EQ(cuem::emu::peak_pinned_bytes(), before + 1500);
  void* c = nullptr;
  ASSERT_EQ(cudaMalloc(&c, 4000), cudaSuccess);  // device memory is not pinned memory
  EXPECT_EQ(cuem::emu::peak_pinned_bytes(), before + 1500);
  cuem::emu::reset_peak_pinned_bytes();
  EXPECT_EQ(cuem::emu::peak_pinned_bytes(), before + 500);
  EXPECT_EQ(cudaFreeHost(b), cudaSuccess);
  EXPECT_EQ(cudaFree(c), cudaSuccess);
  EXPECT_EQ(cuem::emu::pinned_bytes(), before);
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

// ---- the CUDA backend against those limits ---------------------------------------------

using cuem::CovarianceType;
using cuem::Precision;

bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}

// The chunk size a backend reports in its description ("chunks of C points").
std::size_t chunk_points(const std::string& description) {
  const std::string key = "chunks of ";
  const std::size_t at = description.find(key);
  return at == std::string::npos ? 0 : std::stoull(description.substr(at + key.size()));
}

// predict_proba and score_samples return the responsibilities of a chunk of C points;
// once C x sizeof(S) exceeds the device's pitch limit a pitched copy of them is refused
// (on a GPU from about 536M float32 points a chunk). The limit is lowered here to 4 KiB,
// far below one chunk's row, and the results must still equal the float64 CPU path's.
TEST(EmulatedBackend, PredictProbaWorksWhereAChunkRowExceedsThePitchLimit) {
  const cuem::emu::MaxPitchScope low(4096);
  for (Precision p : {Precision::float32, Precision::float64}) {
    SCOPED_TRACE(cuem::to_string(p));
    const int KK = 5, D = 3;
    const cuem_test::Mixture mix = cuem_test::make_mixture(CovarianceType::full, KK, D, 3.0, 311);
    const cuem_test::Dataset ds = cuem_test::sample_mixture(mix, 20011, 312);
    const cuem::PreparedParams params = cuem::prepare(cuem_test::model_from_mixture(mix, CovarianceType::full));
    const std::size_t begin = 7, end = ds.n, n = end - begin, K = KK;
    std::vector<double> lp_cpu(n), lp_gpu(n, std::nan("")), r_cpu(n * K), r_gpu(n * K, std::nan(""));
    cuem::CpuPrimitives cpu(ds.view());
    cpu.posteriors(params, begin, end, lp_cpu.data(), r_cpu.data());
    const auto gpu = cuem::cuda::make_primitives(ds.view(), {}, {0, p, 0});
    gpu->posteriors(params, begin, end, lp_gpu.data(), r_gpu.data());
    const std::size_t row_bytes = chunk_points(gpu->description()) * (p == Precision::float32 ? 4 : 8);
    ASSERT_GT(row_bytes, cuem::emu::max_pitch()) << gpu->description();
    const double tol = p == Precision::float32 ? 1e-5 : 1e-12;
    for (std::size_t i = 0; i < n; ++i) {
      ASSERT_NEAR(lp_gpu[i], lp_cpu[i], tol * (std::abs(lp_cpu[i]) + 1)) << "point " << begin + i;
      for (std::size_t k = 0; k < K; ++k)
        ASSERT_NEAR(r_gpu[i * K + k], r_cpu[i * K + k], 10 * tol) << "point " << begin + i << ", k " << k;
    }
  }
}

// Streaming (data beyond the device memory limit) passes the data through two pinned
// staging buffers of 8 MiB, converting them as it goes, rather than pinning a converted
// copy of the whole data set (or of two chunks, which may fill most of the device), and
// gives bitwise the resident backend's results, pass after pass.
TEST(EmulatedBackend, StreamingPinsTwoStagingBuffersNotTheData) {
  for (Precision p : {Precision::float32, Precision::float64}) {
    SCOPED_TRACE(cuem::to_string(p));
    const std::size_t S = p == Precision::float32 ? 4 : 8;
    const int K = 4, D = 64;
    const cuem_test::Mixture mix = cuem_test::make_mixture(CovarianceType::diag, K, D, 3.0, 321);
    const cuem_test::Dataset ds = cuem_test::sample_mixture(mix, 300007, 322);
    const cuem::PreparedParams params = cuem::prepare(cuem_test::model_from_mixture(mix, CovarianceType::diag));
    const auto resident = cuem::cuda::make_primitives(ds.view(), {}, {0, p, 0});
    const cuem::SufficientStats want = resident->gaussian_estep(params);
    std::vector<double> lp_want(ds.n);
    resident->posteriors(params, 0, ds.n, lp_want.data(), nullptr);

    cuem::emu::reset_peak_pinned_bytes();
    const std::size_t pinned_before = cuem::emu::pinned_bytes();
    // 40 MiB of device memory: chunks of tens of thousands of points, several MiB each.
    const auto streamed = cuem::cuda::make_primitives(ds.view(), {}, {0, p, std::size_t{40} << 20});
    const cuem::SufficientStats got = streamed->gaussian_estep(params);
    const cuem::SufficientStats again = streamed->gaussian_estep(params);  // the staging buffers reused
    std::vector<double> lp_got(ds.n, std::nan(""));
    streamed->posteriors(params, 0, ds.n, lp_got.data(), nullptr);
    const std::size_t peak = cuem::emu::peak_pinned_bytes() - pinned_before;

    ASSERT_NE(streamed->description().find("streamed"), std::string::npos) << streamed->description();
    const std::size_t chunk = chunk_points(streamed->description());
    // Two staging buffers, the results of one chunk (K + 1 values a point) and small
    // parameter buffers.
    const std::size_t bound = 2 * (std::size_t{8} << 20) + (K + 1) * chunk * S + (std::size_t{256} << 10);
    ASSERT_GT(2 * chunk * D * S, bound) << "two chunks of staging must break the bound, chunk " << chunk;
    ASSERT_GT(ds.n * D * S, 2 * bound) << "the data must dwarf the bound";
    EXPECT_LE(peak, bound) << "chunk " << chunk;
    EXPECT_GE(peak, 2 * (std::size_t{8} << 20)) << "chunk " << chunk;

    for (const cuem::SufficientStats* st : {&got, &again}) {
      EXPECT_TRUE(same_bits(st->nk, want.nk));
      EXPECT_TRUE(same_bits(st->s1, want.s1));
      EXPECT_TRUE(same_bits(st->s2, want.s2));
      EXPECT_EQ(st->log_likelihood, want.log_likelihood);
    }
    EXPECT_TRUE(same_bits(lp_got, lp_want));
  }
}

// The number of threads in this process (Linux: one entry per thread in /proc/self/task).
std::size_t process_threads() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/task")) ++n;
  return n;
}

// Streaming converts each run of rows on several host threads (the fit's thread count,
// which fit sets as OpenMP's), each a contiguous range of the run's rows. With thread
// counts that divide neither the runs nor the chunks, every point's log-likelihood must
// still match the float64 CPU path (a row converted twice, skipped or taken from the
// wrong place shows up there), and the results must be bitwise those of one thread.
TEST(EmulatedBackend, StreamedRunsAreConvertedByTheFitsThreads) {
  const int K = 3, D = 24;
  const cuem_test::Mixture mix = cuem_test::make_mixture(CovarianceType::diag, K, D, 3.0, 331);
  const cuem_test::Dataset ds = cuem_test::sample_mixture(mix, 100003, 332);
  const cuem::PreparedParams params = cuem::prepare(cuem_test::model_from_mixture(mix, CovarianceType::diag));
  std::vector<double> lp_cpu(ds.n);
  cuem::CpuPrimitives cpu(ds.view());
  cpu.posteriors(params, 0, ds.n, lp_cpu.data(), nullptr);
  ASSERT_TRUE(std::isfinite(lp_cpu[0]) && lp_cpu[0] != 0.0);

  // Counted once, here: a joined thread may linger in /proc for a moment.
  const std::size_t threads_before = process_threads();
  const int before = omp_get_max_threads();
  for (Precision p : {Precision::float32, Precision::float64}) {
    SCOPED_TRACE(cuem::to_string(p));
    std::vector<double> lp_one;
    cuem::SufficientStats st_one;
    for (int threads : {1, 3, 7}) {
      SCOPED_TRACE("threads " + std::to_string(threads));
      omp_set_num_threads(threads);
      // Device memory for chunks of 32768 points, each converted in one run of 786432
      // values (twelve threads' worth at the least the backend gives a thread).
      const std::size_t limit = (p == Precision::float32 ? std::size_t{8} : std::size_t{16}) << 20;
      const auto streamed = cuem::cuda::make_primitives(ds.view(), {}, {0, p, limit});
      std::vector<double> lp(ds.n, std::nan(""));
      streamed->posteriors(params, 0, ds.n, lp.data(), nullptr);
      const cuem::SufficientStats st = streamed->gaussian_estep(params);
      omp_set_num_threads(before);
      ASSERT_NE(streamed->description().find("streamed"), std::string::npos) << streamed->description();
      const std::size_t chunk = chunk_points(streamed->description());
      ASSERT_GT(ds.n, 3 * chunk) << streamed->description();
      if (threads > 1) {
        ASSERT_NE(chunk % static_cast<std::size_t>(threads), 0u) << "chunk " << chunk;
      }
      ASSERT_GE(chunk * D, static_cast<std::size_t>(threads) << 16) << "too little work to give every thread a part";
      EXPECT_EQ(process_threads() - threads_before, static_cast<std::size_t>(threads - 1))
          << "the backend's conversion threads beside the calling one";

      const double tol = p == Precision::float32 ? 1e-5 : 1e-12;
      for (std::size_t i = 0; i < ds.n; ++i)
        ASSERT_NEAR(lp[i], lp_cpu[i], tol * (std::abs(lp_cpu[i]) + 1)) << "point " << i;
      if (threads == 1) {
        lp_one = lp;
        st_one = st;
        continue;
      }
      EXPECT_TRUE(same_bits(lp, lp_one));
      EXPECT_TRUE(same_bits(st.nk, st_one.nk));
      EXPECT_TRUE(same_bits(st.s1, st_one.s1));
      EXPECT_TRUE(same_bits(st.s2, st_one.s2));
      EXPECT_EQ(st.log_likelihood, st_one.log_likelihood);
    }
  }
}

}  // namespace
