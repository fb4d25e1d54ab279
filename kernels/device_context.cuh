#pragma once
// What a Resources keeps for one CUDA device across calls (docs/ARCHITECTURE.md): the
// ordinal, the compute and copy streams the primitives queue on, and a stream-ordered
// memory pool. Every primitives made on the context allocate their device buffers from
// the pool on its compute stream; a freed block stays cached in the pool (up to the
// release threshold) so that the next fit on the same Resources reuses it instead of
// calling cudaMalloc. The primitives hold it by shared_ptr, so it outlives every buffer
// drawn from it.
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>

#include "core/cuda_primitives.hpp"
#include "cuda_check.cuh"
#include "device_memory.cuh"

namespace cuem::cuda {

class DeviceContext {
 public:
  /// `cache_limit`: the bytes the pool may keep cached once freed (0: no limit, until
  /// the context goes). A pool of its own rather than the device's default, so that its
  /// threshold and its release on destruction concern cuem's memory alone.
  DeviceContext(int device, std::size_t cache_limit) : device_(device) {
    const ScopedDevice on(device_);
    compute_ = std::make_unique<Stream>();
    copy_ = std::make_unique<Stream>();
    allocated_ = std::make_unique<Event>();
    int pools = 0;
    CUEM_CUDA_CHECK(cudaDeviceGetAttribute(&pools, cudaDevAttrMemoryPoolsSupported, device_));
    if (!pools) return;  // buffers fall back to cudaMalloc (PoolBuffer)
    cudaMemPoolProps props{};
    props.allocType = cudaMemAllocationTypePinned;
    props.handleTypes = cudaMemHandleTypeNone;
    props.location.type = cudaMemLocationTypeDevice;
    props.location.id = device_;
    CUEM_CUDA_CHECK(cudaMemPoolCreate(&pool_, &props));
    // The default threshold (0) hands freed memory back at every synchronisation, and the
    // primitives synchronise between passes: without this each fit would reserve anew.
    unsigned long long threshold =
        cache_limit ? cache_limit : std::numeric_limits<unsigned long long>::max();
    const cudaError_t err = cudaMemPoolSetAttribute(pool_, cudaMemPoolAttrReleaseThreshold, &threshold);
    if (err != cudaSuccess) {
      CUEM_CUDA_CHECK_NOTHROW(cudaMemPoolDestroy(pool_));
      CUEM_CUDA_CHECK(err);
    }
  }

  ~DeviceContext() {
    const ScopedDeviceNoThrow on(device_);
    // The frees queued on the streams complete first; then the pool is empty and its
    // destruction returns every cached block to the device.
    CUEM_CUDA_CHECK_NOTHROW(cudaStreamSynchronize(compute_->get()));
    CUEM_CUDA_CHECK_NOTHROW(cudaStreamSynchronize(copy_->get()));
    if (pool_) CUEM_CUDA_CHECK_NOTHROW(cudaMemPoolDestroy(pool_));
    allocated_.reset();
    compute_.reset();
    copy_.reset();
  }
  DeviceContext(const DeviceContext&) = delete;
  DeviceContext& operator=(const DeviceContext&) = delete;

  int device() const noexcept { return device_; }
  Stream& compute() noexcept { return *compute_; }
  Stream& copy() noexcept { return *copy_; }
  /// Null where the device has no stream-ordered pools.
  cudaMemPool_t pool() const noexcept { return pool_; }

  /// Bytes the pool holds free for reuse: device memory that cudaMemGetInfo counts as
  /// used but that an allocation from this pool gets without growing it.
  std::size_t cached_bytes() const {
    if (!pool_) return 0;
    unsigned long long reserved = 0, used = 0;
    CUEM_CUDA_CHECK(cudaMemPoolGetAttribute(pool_, cudaMemPoolAttrReservedMemCurrent, &reserved));
    CUEM_CUDA_CHECK(cudaMemPoolGetAttribute(pool_, cudaMemPoolAttrUsedMemCurrent, &used));
    return reserved > used ? static_cast<std::size_t>(reserved - used) : 0;
  }

  /// Orders the copy stream's later work after the compute stream's work so far: a
  /// buffer allocated on the compute stream (perhaps a block freed there a moment ago)
  /// is the copy stream's to write only from then on.
  void copy_after_compute() {
    allocated_->record(compute_->get());
    CUEM_CUDA_CHECK(cudaStreamWaitEvent(copy_->get(), allocated_->get(), 0));
  }

  /// `count` elements of T from the pool, in the order of the compute stream.
  template <typename T>
  PoolBuffer<T> allocate(std::size_t count) {
    return PoolBuffer<T>(count, pool_, compute_->get());
  }

 private:
  int device_;
  std::unique_ptr<Stream> compute_;
  std::unique_ptr<Stream> copy_;
  std::unique_ptr<Event> allocated_;  // copy_after_compute's
  cudaMemPool_t pool_ = nullptr;
};

}  // namespace cuem::cuda
