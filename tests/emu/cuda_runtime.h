#pragma once
// An emulated CUDA runtime: just enough of the runtime API, the kernel language and the
// launch syntax (CUEM_LAUNCH) for cuem's kernels and CUDA backend to compile with a host
// C++ compiler and run on the CPU. It exists so that the kernels' logic (indexing,
// barriers, shared memory, launch configurations, the host side's copies and budgets) is
// tested on every machine, CI included, where no GPU is. It says nothing about speed, and
// it runs the threads of a block as fibers that switch only at __syncthreads, so a race
// between threads goes unseen (compute-sanitizer's racecheck on a GPU covers that).
//
// What it checks that a GPU would also refuse (or hang on): a __syncthreads that the
// block's waiting threads reach at different calls (a barrier in divergent code), launch
// configurations (threads per block, grid extents, dynamic shared memory over 48 KiB),
// copies whose direction does not match their pointers or that run past an allocation,
// pitched copies whose pitch exceeds the device's limit (memPitch), unknown pointers to
// cudaFree, allocations beyond the emulated device's memory. Device memory, and shared
// memory (dynamic and static) at the start of every block, are filled with 0xff bytes
// (NaN in float and double), so reading what was never written shows.
//
// Settings (environment): CUEM_EMU_DEVICES (default 1), CUEM_EMU_MEMORY (bytes per
// device, default 1 GiB), CUEM_EMU_NO_POOLS=1 (a device without stream-ordered pools:
// cudaDevAttrMemoryPoolsSupported is 0 and the pool calls return cudaErrorNotSupported). Test hooks (below): the pitch limit, pinned-memory counters.
#include <cmath>
#include <cstddef>
#include <math.h>
#include <tuple>
#include <utility>

#define CUEM_EMULATED_DEVICE 1

// ---- the kernel language --------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
// Static shared memory: one object for all threads of the emulated block (blocks run
// one at a time, and launches are serialised). The runtime finds a kernel's static
// objects by name in the executable's symbol table and fills them before each block.
#define __shared__ static
#define __align__(n) alignas(n)

// The vector types the kernels load through (alignment as CUDA's).
struct alignas(16) float4 {
  float x, y, z, w;
};
struct alignas(16) double2 {
  double x, y;
};

struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
};

// Plain globals (launches are serialised): extern thread_local ones would go through
// TLS wrapper functions, which GCC 12 miscompiles under UBSan's null checks.
extern uint3 threadIdx;
extern uint3 blockIdx;
extern dim3 blockDim;
extern dim3 gridDim;

namespace cuem::emu {
/// Waits until every thread of the block that has not returned arrives, and checks that
/// they all arrive at this same call (file and line: a compiler may duplicate one call).
void syncthreads_at(const char* file, int line);
}  // namespace cuem::emu
#define __syncthreads() ::cuem::emu::syncthreads_at(__FILE__, __LINE__)

// ---- the runtime API ------------------------------------------------------------------
enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidPitchValue = 12,
  cudaErrorInvalidDevicePointer = 17,
  cudaErrorInvalidMemcpyDirection = 21,
  cudaErrorInsufficientDriver = 35,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidDevice = 101,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorNotSupported = 801,
};
enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};
struct CUstream_st;
struct CUevent_st;
using cudaStream_t = CUstream_st*;
using cudaEvent_t = CUevent_st*;

inline constexpr unsigned cudaStreamDefault = 0;
inline constexpr unsigned cudaStreamNonBlocking = 1;
inline constexpr unsigned cudaEventDefault = 0;
inline constexpr unsigned cudaEventDisableTiming = 2;
inline constexpr unsigned cudaHostAllocDefault = 0;

struct cudaDeviceProp {
  char name[256];
  std::size_t totalGlobalMem;
  std::size_t sharedMemPerBlock;
  int major;
  int minor;
  int multiProcessorCount;
  int maxThreadsPerBlock;
  std::size_t memPitch;  // the largest pitch cudaMemcpy2D* accepts
};

cudaError_t cudaGetDeviceCount(int* count);
enum cudaDeviceAttr { cudaDevAttrMemoryPoolsSupported = 115 };
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device);
cudaError_t cudaDriverGetVersion(int* version);   // 13000: the emulated driver is CUDA 13.0's
cudaError_t cudaRuntimeGetVersion(int* version);  // 13000
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaMemGetInfo(std::size_t* free_bytes, std::size_t* total_bytes);
cudaError_t cudaMalloc(void** p, std::size_t bytes);
cudaError_t cudaFree(void* p);
cudaError_t cudaHostAlloc(void** p, std::size_t bytes, unsigned flags);
cudaError_t cudaFreeHost(void* p);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream = nullptr);
cudaError_t cudaMemcpy2DAsync(void* dst, std::size_t dst_pitch, const void* src, std::size_t src_pitch,
                              std::size_t width, std::size_t height, cudaMemcpyKind kind,
                              cudaStream_t stream = nullptr);
cudaError_t cudaMemcpy(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemsetAsync(void* p, int value, std::size_t bytes, cudaStream_t stream = nullptr);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned flags);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned flags);
cudaError_t cudaEventDestroy(cudaEvent_t e);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t e);
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
const char* cudaGetErrorName(cudaError_t err);
const char* cudaGetErrorString(cudaError_t err);

// Stream-ordered allocation (cudaMallocAsync pools). Emulated as a cache per pool: a
// freed block stays with its pool (counted as the device's used memory, as a real pool
// holds it) until a synchronisation finds the pool above its release threshold, a trim,
// the pool's destruction, or an allocation that would not fit otherwise. A block
// reserved from the device is a "growth" (tests count them); a cached one is reused.
// Stricter than CUDA, to catch cuem's own mistakes: cudaFree of pool memory,
// cudaFreeAsync of cudaMalloc memory, and destroying a pool with live allocations are
// errors. A freed block leaves the allocation table, so a copy or memset into it fails.
struct CUmemPoolHandle_st;
using cudaMemPool_t = CUmemPoolHandle_st*;
enum cudaMemAllocationType { cudaMemAllocationTypeInvalid = 0, cudaMemAllocationTypePinned = 1 };
enum cudaMemAllocationHandleType { cudaMemHandleTypeNone = 0 };
enum cudaMemLocationType { cudaMemLocationTypeInvalid = 0, cudaMemLocationTypeDevice = 1 };
struct cudaMemLocation {
  cudaMemLocationType type;
  int id;
};
struct cudaMemPoolProps {
  cudaMemAllocationType allocType;
  cudaMemAllocationHandleType handleTypes;
  cudaMemLocation location;
  void* win32SecurityAttributes;
  std::size_t maxSize;
  unsigned short usage;
  unsigned char reserved[54];
};
enum cudaMemPoolAttr {
  cudaMemPoolAttrReleaseThreshold = 4,
  cudaMemPoolAttrReservedMemCurrent = 5,
  cudaMemPoolAttrUsedMemCurrent = 7,
};
cudaError_t cudaMemPoolCreate(cudaMemPool_t* pool, const cudaMemPoolProps* props);
cudaError_t cudaMemPoolDestroy(cudaMemPool_t pool);
cudaError_t cudaDeviceGetDefaultMemPool(cudaMemPool_t* pool, int device);
cudaError_t cudaMemPoolSetAttribute(cudaMemPool_t pool, cudaMemPoolAttr attr, void* value);
cudaError_t cudaMemPoolGetAttribute(cudaMemPool_t pool, cudaMemPoolAttr attr, void* value);
cudaError_t cudaMemPoolTrimTo(cudaMemPool_t pool, std::size_t min_bytes_to_keep);
cudaError_t cudaMallocFromPoolAsync(void** p, std::size_t bytes, cudaMemPool_t pool, cudaStream_t stream);
cudaError_t cudaMallocAsync(void** p, std::size_t bytes, cudaStream_t stream);
cudaError_t cudaFreeAsync(void* p, cudaStream_t stream);
template <typename T>
cudaError_t cudaMalloc(T** p, std::size_t bytes) {
  return cudaMalloc(reinterpret_cast<void**>(p), bytes);
}

// ---- launches -------------------------------------------------------------------------
namespace cuem::emu {

struct LaunchConfig {
  dim3 grid;
  dim3 block;
  std::size_t shared_bytes;
  cudaStream_t stream;
  const void* kernel;  // its static __shared__ objects are filled before each block
};

/// Runs body once per thread of every block of the grid (a configuration a GPU would
/// refuse sets the launch error instead, and runs nothing).
void run_grid(const LaunchConfig& config, void (*body)(void*), void* context);

/// This block's dynamic shared memory (the launch's shared_bytes).
unsigned char* dynamic_shared();

/// The order in which blocks, and the threads of a block between barriers, run. A GPU
/// promises no order; a kernel whose results change with it has a race (two threads or
/// blocks writing one place, or reading what another writes without a barrier).
enum class Schedule { forward, reverse };
void set_schedule(Schedule s);
Schedule schedule();

/// Sets a schedule for a scope.
class ScheduleScope {
 public:
  explicit ScheduleScope(Schedule s) : previous_(schedule()) { set_schedule(s); }
  ~ScheduleScope() { set_schedule(previous_); }
  ScheduleScope(const ScheduleScope&) = delete;
  ScheduleScope& operator=(const ScheduleScope&) = delete;

 private:
  Schedule previous_;
};

/// Reports a misuse the hardware would fault on (or that CUB leaves undefined) and aborts.
[[noreturn]] void fail(const char* what);

/// Launches so far in this process; tests read it to see that kernels ran.
unsigned long long launch_count();

/// Launches so far of the kernels whose mangled name contains `fragment` (a kernel's
/// name, or with its template arguments: "tiled_diag_stats_kernelIfLi2E"), so that a
/// test can see which of two kernels for the same values a choice ran; 0 in a stripped
/// executable.
unsigned long long launches_named(const char* fragment);

/// Bytes copied from host to device memory so far in this process (tests read it to see
/// what was uploaded, and how often).
std::size_t host_to_device_bytes();

/// Bytes of static __shared__ objects the runtime found for a kernel (and fills before
/// each of its blocks); 0 where it found none.
std::size_t static_shared_bytes(const void* kernel);

/// The pitch limit of cudaMemcpy2D* (cudaDeviceProp::memPitch): 2^31 - 1 bytes, as on
/// current GPUs. Tests lower it to reach the limit without allocating gigabytes.
std::size_t max_pitch();
void set_max_pitch(std::size_t bytes);

/// Sets the pitch limit for a scope.
class MaxPitchScope {
 public:
  explicit MaxPitchScope(std::size_t bytes) : previous_(max_pitch()) { set_max_pitch(bytes); }
  ~MaxPitchScope() { set_max_pitch(previous_); }
  MaxPitchScope(const MaxPitchScope&) = delete;
  MaxPitchScope& operator=(const MaxPitchScope&) = delete;

 private:
  std::size_t previous_;
};

/// Device allocations so far in this process: cudaMalloc calls, pool allocations
/// (cudaMallocFromPoolAsync, cudaMallocAsync), and those pool allocations that reserved
/// new device memory rather than reusing a freed block their pool had cached.
struct AllocationCounts {
  unsigned long long device_mallocs = 0;
  unsigned long long pool_allocations = 0;
  unsigned long long pool_growths = 0;
};
AllocationCounts allocation_counts();
/// Pinned host memory (cudaHostAlloc) held now, and the most held at once since the last
/// reset_peak_pinned_bytes (which sets the peak to what is held now).
std::size_t pinned_bytes();
std::size_t peak_pinned_bytes();
void reset_peak_pinned_bytes();

template <typename... P>
class Launch {
 public:
  Launch(void (*kernel)(P...), LaunchConfig config) : kernel_(kernel), config_(config) {}
  // Arguments are converted to the parameter types once, as a launch copies them; every
  // emulated thread gets its own copy.
  template <typename... A>
  void operator()(A&&... args) const {
    struct Context {
      void (*kernel)(P...);
      std::tuple<P...> args;
    } context{kernel_, std::tuple<P...>(std::forward<A>(args)...)};
    LaunchConfig config = config_;
    config.kernel = reinterpret_cast<const void*>(kernel_);
    run_grid(
        config,
        [](void* c) {
          auto* ctx = static_cast<Context*>(c);
          std::apply(ctx->kernel, ctx->args);
        },
        &context);
  }

 private:
  void (*kernel_)(P...);
  LaunchConfig config_;
};

template <typename... P>
Launch<P...> launch(void (*kernel)(P...), dim3 grid, dim3 block, std::size_t shared_bytes, cudaStream_t stream) {
  return Launch<P...>(kernel, LaunchConfig{grid, block, shared_bytes, stream, nullptr});
}

}  // namespace cuem::emu

#define CUEM_LAUNCH(kernel, grid, block, shared_bytes, stream) \
  ::cuem::emu::launch(kernel, dim3(grid), dim3(block), shared_bytes, stream)
#define CUEM_DYNAMIC_SHARED(name) unsigned char* name = ::cuem::emu::dynamic_shared()
