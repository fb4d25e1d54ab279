#pragma once
// Owners of device memory, pinned host memory, streams and events: move-only RAII types
// whose destructors never throw. Allocation failures are DeviceErrors that say how much
// was asked for, so a user knows which option to change.
#include <cuda_runtime.h>

#include <cstddef>
#include <limits>
#include <cstdio>
#include <string>
#include <type_traits>
#include <utility>

#include "cuda_check.cuh"

namespace cuem::cuda {

inline std::string format_bytes(std::size_t bytes) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return buf;
}

/// count * size with an overflow check.
inline std::size_t checked_bytes(std::size_t count, std::size_t size) {
  if (size != 0 && count > std::numeric_limits<std::size_t>::max() / size)
    throw DeviceError("a device buffer size overflows size_t");
  return count * size;
}

/// Device memory (cudaMalloc): where an allocation fails, the message says how much was
/// asked and what is free.
struct DeviceMemory {
  static cudaError_t allocate(void** p, std::size_t bytes) { return cudaMalloc(p, bytes); }
  static cudaError_t release(void* p) { return cudaFree(p); }
  static std::string failure(std::size_t bytes, cudaError_t) {
    std::size_t free_b = 0, total_b = 0;
    (void)cudaMemGetInfo(&free_b, &total_b);
    (void)cudaGetLastError();
    return "out of device memory: asked for " + format_bytes(bytes) + " with " + format_bytes(free_b) +
           " free of " + format_bytes(total_b) +
           ". Lower the device memory limit (device_memory_limit / --device-memory) so that cuem streams the "
           "data in smaller chunks, or use fewer components.";
  }
};

/// Page-locked host memory (cudaHostAlloc): the source of asynchronous copies that
/// overlap kernels.
struct PinnedMemory {
  static cudaError_t allocate(void** p, std::size_t bytes) { return cudaHostAlloc(p, bytes, cudaHostAllocDefault); }
  static cudaError_t release(void* p) { return cudaFreeHost(p); }
  static std::string failure(std::size_t bytes, cudaError_t err) {
    return "could not pin " + format_bytes(bytes) + " of host memory for streaming (" + cudaGetErrorName(err) +
           "). Lower the device memory limit or free host memory.";
  }
};

/// `count` elements of T in the memory `Memory` names; move-only, freed on destruction.
template <typename T, typename Memory>
class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(std::size_t count) : count_(count) {
    if (count == 0) return;
    const std::size_t bytes = checked_bytes(count, sizeof(T));
    void* p = nullptr;
    const cudaError_t err = Memory::allocate(&p, bytes);
    if (err != cudaSuccess) {
      (void)cudaGetLastError();
      throw DeviceError(Memory::failure(bytes, err));
    }
    ptr_ = static_cast<T*>(p);
  }
  ~Buffer() { release(); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  Buffer(Buffer&& other) noexcept
      : ptr_(std::exchange(other.ptr_, nullptr)), count_(std::exchange(other.count_, 0)) {}
  Buffer& operator=(Buffer&& other) noexcept {
    if (this != &other) {
      release();
      ptr_ = std::exchange(other.ptr_, nullptr);
      count_ = std::exchange(other.count_, 0);
    }
    return *this;
  }

  T* data() const noexcept { return ptr_; }
  std::size_t size() const noexcept { return ptr_ ? count_ : 0; }
  std::size_t bytes() const noexcept { return size() * sizeof(T); }

 private:
  void release() noexcept {
    if (ptr_) CUEM_CUDA_CHECK_NOTHROW(Memory::release(ptr_));
    ptr_ = nullptr;
    count_ = 0;
  }
  T* ptr_ = nullptr;
  std::size_t count_ = 0;
};

template <typename T>
using DeviceBuffer = Buffer<T, DeviceMemory>;
template <typename T>
using PinnedBuffer = Buffer<T, PinnedMemory>;

/// `count` elements of T from a stream-ordered pool (cudaMallocFromPoolAsync): allocated
/// and freed in the order of `stream`, so a freed block returns to the pool once the
/// work queued before the free is done, and the next allocation of that size takes it
/// without a cudaMalloc. Work on other streams that reads a buffer must be waited for
/// (an event, or a synchronisation) before the buffer is dropped. Without a pool (a
/// device that has none) it is cudaMalloc and cudaFree. Move-only.
template <typename T>
class PoolBuffer {
 public:
  PoolBuffer() = default;
  PoolBuffer(std::size_t count, cudaMemPool_t pool, cudaStream_t stream) : count_(count), stream_(stream) {
    if (count == 0) return;
    const std::size_t bytes = checked_bytes(count, sizeof(T));
    void* p = nullptr;
    const cudaError_t err = pool ? cudaMallocFromPoolAsync(&p, bytes, pool, stream) : cudaMalloc(&p, bytes);
    if (err != cudaSuccess) {
      (void)cudaGetLastError();
      throw DeviceError(DeviceMemory::failure(bytes, err));
    }
    ptr_ = static_cast<T*>(p);
    from_pool_ = pool != nullptr;
  }
  ~PoolBuffer() { release(); }
  PoolBuffer(const PoolBuffer&) = delete;
  PoolBuffer& operator=(const PoolBuffer&) = delete;
  PoolBuffer(PoolBuffer&& other) noexcept
      : ptr_(std::exchange(other.ptr_, nullptr)),
        count_(std::exchange(other.count_, 0)),
        stream_(other.stream_),
        from_pool_(other.from_pool_) {}
  PoolBuffer& operator=(PoolBuffer&& other) noexcept {
    if (this != &other) {
      release();
      ptr_ = std::exchange(other.ptr_, nullptr);
      count_ = std::exchange(other.count_, 0);
      stream_ = other.stream_;
      from_pool_ = other.from_pool_;
    }
    return *this;
  }

  T* data() const noexcept { return ptr_; }
  std::size_t size() const noexcept { return ptr_ ? count_ : 0; }
  std::size_t bytes() const noexcept { return size() * sizeof(T); }

 private:
  void release() noexcept {
    if (ptr_) {
      CUEM_CUDA_CHECK_NOTHROW(from_pool_ ? cudaFreeAsync(ptr_, stream_) : cudaFree(ptr_));
    }
    ptr_ = nullptr;
    count_ = 0;
  }
  T* ptr_ = nullptr;
  std::size_t count_ = 0;
  cudaStream_t stream_ = nullptr;
  bool from_pool_ = false;
};

/// A non-blocking stream (never the legacy default stream).
class Stream {
 public:
  Stream() { CUEM_CUDA_CHECK(cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking)); }
  ~Stream() {
    if (s_) CUEM_CUDA_CHECK_NOTHROW(cudaStreamDestroy(s_));
  }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  Stream(Stream&& other) noexcept : s_(std::exchange(other.s_, nullptr)) {}
  Stream& operator=(Stream&&) = delete;
  cudaStream_t get() const noexcept { return s_; }
  void synchronize() const { CUEM_CUDA_CHECK(cudaStreamSynchronize(s_)); }

 private:
  cudaStream_t s_ = nullptr;
};

class Event {
 public:
  explicit Event(unsigned flags = cudaEventDisableTiming) { CUEM_CUDA_CHECK(cudaEventCreateWithFlags(&e_, flags)); }
  ~Event() {
    if (e_) CUEM_CUDA_CHECK_NOTHROW(cudaEventDestroy(e_));
  }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  Event(Event&& other) noexcept : e_(std::exchange(other.e_, nullptr)) {}
  Event& operator=(Event&&) = delete;
  cudaEvent_t get() const noexcept { return e_; }
  void record(cudaStream_t s) const { CUEM_CUDA_CHECK(cudaEventRecord(e_, s)); }
  void synchronize() const { CUEM_CUDA_CHECK(cudaEventSynchronize(e_)); }

 private:
  cudaEvent_t e_ = nullptr;
};

/// Makes `device` current for a scope and restores the previous one.
class ScopedDevice {
 public:
  explicit ScopedDevice(int device) {
    CUEM_CUDA_CHECK(cudaGetDevice(&previous_));
    CUEM_CUDA_CHECK(cudaSetDevice(device));
  }
  ~ScopedDevice() { CUEM_CUDA_CHECK_NOTHROW(cudaSetDevice(previous_)); }
  ScopedDevice(const ScopedDevice&) = delete;
  ScopedDevice& operator=(const ScopedDevice&) = delete;

 private:
  int previous_ = 0;
};

/// The same for destructors: failures are reported, never thrown.
class ScopedDeviceNoThrow {
 public:
  explicit ScopedDeviceNoThrow(int device) noexcept {
    restore_ = cudaGetDevice(&previous_) == cudaSuccess;
    if (!restore_) (void)cudaGetLastError();
    CUEM_CUDA_CHECK_NOTHROW(cudaSetDevice(device));
  }
  ~ScopedDeviceNoThrow() {
    if (restore_) CUEM_CUDA_CHECK_NOTHROW(cudaSetDevice(previous_));
  }
  ScopedDeviceNoThrow(const ScopedDeviceNoThrow&) = delete;
  ScopedDeviceNoThrow& operator=(const ScopedDeviceNoThrow&) = delete;

 private:
  int previous_ = 0;
  bool restore_ = false;
};

/// A host value narrowed for a kernel argument, with a check instead of a silent wrap.
template <typename To, typename From>
To checked_cast(From v, const char* what) {
  bool negative = false;
  if constexpr (std::is_signed_v<From>) negative = v < 0;
  if (negative || static_cast<unsigned long long>(v) > static_cast<unsigned long long>(std::numeric_limits<To>::max()))
    throw DeviceError(std::string("a launch parameter is out of range: ") + what + " = " + std::to_string(v));
  return static_cast<To>(v);
}

}  // namespace cuem::cuda
