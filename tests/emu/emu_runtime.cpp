// The emulated CUDA runtime (see cuda_runtime.h here): memory as tracked host
// allocations, streams and events as handles (every call completes before it returns),
// and kernels run block after block, each block's threads as fibers that
// switch only at __syncthreads, in thread order: deterministic, one host thread.
#include "cuda_runtime.h"

#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define CUEM_EMU_ASAN 1
#endif

uint3 threadIdx{0, 0, 0};
uint3 blockIdx{0, 0, 0};
dim3 blockDim{1, 1, 1};
dim3 gridDim{1, 1, 1};

namespace cuem::emu {
namespace {

constexpr unsigned char kFill = 0xff;  // NaN in float and double: unwritten memory shows
constexpr std::size_t kMaxSharedBytes = 48 * 1024;
constexpr std::size_t kStackBytes = 256 * 1024;

std::size_t env_size(const char* name, std::size_t fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const unsigned long long x = std::strtoull(v, &end, 10);
  return end && *end == '\0' ? static_cast<std::size_t>(x) : fallback;
}
int device_count() { return static_cast<int>(env_size("CUEM_EMU_DEVICES", 1)); }
std::size_t device_memory() { return env_size("CUEM_EMU_MEMORY", std::size_t{1} << 30); }
bool pools_supported() { return env_size("CUEM_EMU_NO_POOLS", 0) == 0; }

// ---- memory ---------------------------------------------------------------------------
}  // namespace
}  // namespace cuem::emu

// A stream-ordered pool: its live blocks are in the allocation table, its freed ones in
// `cached`, and both count as the device's used memory until the pool releases them.
struct CUmemPoolHandle_st {
  CUmemPoolHandle_st(int d, bool default_pool) : device(d), is_default(default_pool) {}
  int device;
  bool is_default;
  unsigned long long release_threshold = 0;  // CUDA's default: release at every synchronisation
  std::size_t reserved = 0;                   // bytes of live and cached blocks
  std::size_t used = 0;                       // bytes of live blocks
  std::multimap<std::size_t, void*> cached;   // freed blocks by capacity
};

namespace cuem::emu {
namespace {

struct Allocation {
  std::size_t bytes;
  int device;                            // -1: pinned host memory
  CUmemPoolHandle_st* pool = nullptr;    // stream-ordered memory: its pool
  std::size_t capacity = 0;              // pool memory: the block's size
};

std::mutex g_memory_mutex;
std::map<std::uintptr_t, Allocation> g_allocations;  // by start address
std::map<int, std::size_t> g_device_used;
std::size_t g_pinned_used = 0;
std::size_t g_pinned_peak = 0;
std::set<const void*> g_handles;  // live streams and events
std::set<CUmemPoolHandle_st*> g_pools;                 // live pools, the default ones included
std::map<int, std::unique_ptr<CUmemPoolHandle_st>> g_default_pools;  // by device, made at first use
std::atomic<unsigned long long> g_device_mallocs{0};
std::atomic<unsigned long long> g_pool_allocations{0};
std::atomic<unsigned long long> g_pool_growths{0};
std::atomic<std::size_t> g_max_pitch{2147483647};  // every current GPU's memPitch

thread_local int t_device = 0;
thread_local cudaError_t t_last_error = cudaSuccess;

cudaError_t fail_call(cudaError_t err, const std::string& why) {
  std::fprintf(stderr, "cuem emulated device: %s\n", why.c_str());
  t_last_error = err;
  return err;
}

// Where [p, p + bytes) lies: in one device allocation (its device), pinned memory (-1) or
// memory the runtime did not allocate (-2). A range that starts in an allocation and runs
// past its end is an error (-3).
constexpr int kUnknown = -2;
constexpr int kOverrun = -3;
int locate(const void* p, std::size_t bytes) {
  std::lock_guard<std::mutex> lock(g_memory_mutex);
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  auto it = g_allocations.upper_bound(a);
  if (it == g_allocations.begin()) return kUnknown;
  --it;
  if (a >= it->first + it->second.bytes) return kUnknown;
  if (a + bytes > it->first + it->second.bytes) return kOverrun;
  return it->second.device;
}

cudaError_t allocate(void** p, std::size_t bytes, int device) {
  if (!p) return fail_call(cudaErrorInvalidValue, "allocation with a null result pointer");
  const std::size_t rounded = (bytes + 255) / 256 * 256;
  {
    std::lock_guard<std::mutex> lock(g_memory_mutex);
    if (device >= 0 && g_device_used[device] + rounded > device_memory())
      return fail_call(cudaErrorMemoryAllocation, "cudaMalloc of " + std::to_string(bytes) +
                                                      " bytes exceeds the emulated device memory");
  }
  // Exactly `bytes` (at least 1), 256-byte aligned like cudaMalloc: under AddressSanitizer
  // a kernel reading or writing one element past an allocation is caught.
  void* q = nullptr;
  if (posix_memalign(&q, 256, bytes == 0 ? 1 : bytes) != 0 || !q)
    return fail_call(cudaErrorMemoryAllocation, "host allocation failed");
  std::memset(q, kFill, bytes == 0 ? 1 : bytes);
  std::lock_guard<std::mutex> lock(g_memory_mutex);
  g_allocations[reinterpret_cast<std::uintptr_t>(q)] = {bytes, device};
  if (device >= 0) {
    g_device_used[device] += rounded;
  } else {
    g_pinned_used += bytes;
    g_pinned_peak = std::max(g_pinned_peak, g_pinned_used);
  }
  *p = q;
  return cudaSuccess;
}

cudaError_t release(void* p, bool device, const char* call) {
  if (!p) return cudaSuccess;
  std::unique_lock<std::mutex> lock(g_memory_mutex);
  const auto it = g_allocations.find(reinterpret_cast<std::uintptr_t>(p));
  if (it == g_allocations.end() || (it->second.device >= 0) != device) {
    lock.unlock();
    return fail_call(cudaErrorInvalidValue, std::string(call) + " of a pointer it did not allocate");
  }
  if (it->second.pool) {
    lock.unlock();
    return fail_call(cudaErrorInvalidValue, std::string(call) + " of stream-ordered pool memory (use cudaFreeAsync)");
  }
  if (device)
    g_device_used[it->second.device] -= (it->second.bytes + 255) / 256 * 256;
  else
    g_pinned_used -= it->second.bytes;
  g_allocations.erase(it);
  lock.unlock();
  std::free(p);
  return cudaSuccess;
}

// Releases cached blocks of `pool`, the largest first, until it holds at most `keep`
// bytes or has no cached block left. The caller holds g_memory_mutex.
void trim_locked(CUmemPoolHandle_st* pool, std::size_t keep) {
  while (pool->reserved > keep && !pool->cached.empty()) {
    const auto last = std::prev(pool->cached.end());
    g_device_used[pool->device] -= last->first;
    pool->reserved -= last->first;
    std::free(last->second);
    pool->cached.erase(last);
  }
}

// A synchronisation: every pool above its release threshold gives memory back.
void release_above_thresholds() {
  std::lock_guard<std::mutex> lock(g_memory_mutex);
  for (CUmemPoolHandle_st* pool : g_pools)
    trim_locked(pool, static_cast<std::size_t>(std::min<unsigned long long>(pool->release_threshold, SIZE_MAX)));
}

bool live_pool(CUmemPoolHandle_st* pool) {
  std::lock_guard<std::mutex> lock(g_memory_mutex);
  return g_pools.count(pool) != 0;
}

bool live_handle(const void* h) {
  if (!h) return true;  // the default stream
  std::lock_guard<std::mutex> lock(g_memory_mutex);
  return g_handles.count(h) != 0;
}

// ---- fibers ---------------------------------------------------------------------------
// A context switch: on x86-64 a few instructions that save the callee-saved registers
// and the stack pointer (swapcontext would also save the signal mask, a system call per
// switch, which made the emulation system-bound); elsewhere ucontext.
#if defined(__x86_64__)
extern "C" void cuem_emu_switch(void** save_sp, void* load_sp);
asm(R"(
  .pushsection .text
  .globl cuem_emu_switch
  .type cuem_emu_switch, @function
cuem_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size cuem_emu_switch, .-cuem_emu_switch
  .popsection
)");

struct Context {
  void* sp = nullptr;
};
inline void switch_context(Context* from, Context* to) { cuem_emu_switch(&from->sp, to->sp); }
// A new context "returns" into entry on a fresh 16-byte aligned stack, as if called.
void make_context(Context* c, char* stack, std::size_t bytes, void (*entry)()) {
  auto top = (reinterpret_cast<std::uintptr_t>(stack) + bytes) & ~std::uintptr_t{15};
  auto* slot = reinterpret_cast<std::uintptr_t*>(top);
  *--slot = 0;                                          // entry's (never used) return address
  *--slot = reinterpret_cast<std::uintptr_t>(entry);    // popped by ret
  for (int r = 0; r < 6; ++r) *--slot = 0;              // rbp rbx r12 r13 r14 r15
  --slot;                                               // mxcsr and x87 control word:
  std::uint32_t mxcsr = 0;                              // the creator's
  std::uint16_t fpcw = 0;
  asm volatile("stmxcsr %0" : "=m"(mxcsr));
  asm volatile("fnstcw %0" : "=m"(fpcw));
  std::memcpy(reinterpret_cast<char*>(slot), &mxcsr, 4);
  std::memcpy(reinterpret_cast<char*>(slot) + 4, &fpcw, 2);
  c->sp = slot;
}
#else
struct Context {
  ucontext_t uc;
};
inline void switch_context(Context* from, Context* to) { swapcontext(&from->uc, &to->uc); }
void make_context(Context* c, char* stack, std::size_t bytes, void (*entry)()) {
  getcontext(&c->uc);
  c->uc.uc_stack.ss_sp = stack;
  c->uc.uc_stack.ss_size = bytes;
  c->uc.uc_link = nullptr;
  makecontext(&c->uc, entry, 0);
}
#endif

// ---- static shared memory ------------------------------------------------------------
// `__shared__` is `static` here, so a kernel's static shared objects are function-local
// statics: zero once, and whatever the last block left for the next. A GPU's shared
// memory holds no such promise, so each block starts with them filled, as dynamic shared
// memory is. They are found by name in the executable's symbol table: the local static
// `name` of the function mangled _Z<encoding> is the object _ZZ<encoding>E<name>.
struct Span {
  unsigned char* p;
  std::size_t bytes;
};

class StaticShared {
 public:
  // The static objects declared in the function at `fn` (none where the executable has
  // no symbol table, or `fn` is not a function in it).
  const std::vector<Span>& objects_of(const void* fn) {
    const auto cached = cache_.find(fn);
    if (cached != cache_.end()) return cached->second;
    if (!loaded_) load();
    std::vector<Span>& out = cache_[fn];
    const auto f = functions_.find(reinterpret_cast<std::uintptr_t>(fn));
    if (f == functions_.end()) return out;
    const std::string prefix = "_ZZ" + f->second.substr(2) + "E";
    auto it = std::lower_bound(statics_.begin(), statics_.end(), prefix,
                               [](const auto& entry, const std::string& key) { return entry.first < key; });
    for (; it != statics_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) out.push_back(it->second);
    return out;
  }

  // The mangled name of the function at `fn` ("" where there is no symbol table).
  std::string name_of(const void* fn) {
    if (!loaded_) load();
    const auto f = functions_.find(reinterpret_cast<std::uintptr_t>(fn));
    return f == functions_.end() ? std::string() : f->second;
  }

 private:
  void load() {
    loaded_ = true;
    // The executable's load address (position-independent executables are relocated).
    std::uintptr_t bias = 0;
    dl_iterate_phdr(
        [](dl_phdr_info* info, std::size_t, void* out) {
          *static_cast<std::uintptr_t*>(out) = info->dlpi_addr;
          return 1;  // the first object is the executable
        },
        &bias);
    const int fd = open("/proc/self/exe", O_RDONLY);
    if (fd < 0) return;
    struct stat st {};
    void* map = fstat(fd, &st) == 0 ? mmap(nullptr, static_cast<std::size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0)
                                    : MAP_FAILED;
    close(fd);
    if (map == MAP_FAILED) return;
    const auto* base = static_cast<const unsigned char*>(map);
    const std::size_t size = static_cast<std::size_t>(st.st_size);
    const auto* eh = reinterpret_cast<const Elf64_Ehdr*>(base);
    const bool elf64 = size >= sizeof(Elf64_Ehdr) && std::memcmp(eh->e_ident, ELFMAG, SELFMAG) == 0 &&
                       eh->e_ident[EI_CLASS] == ELFCLASS64 && eh->e_shoff + eh->e_shnum * sizeof(Elf64_Shdr) <= size;
    if (elf64) {
      const auto* sh = reinterpret_cast<const Elf64_Shdr*>(base + eh->e_shoff);
      for (unsigned i = 0; i < eh->e_shnum; ++i) {
        if (sh[i].sh_type != SHT_SYMTAB || sh[i].sh_link >= eh->e_shnum) continue;
        const Elf64_Shdr& strtab = sh[sh[i].sh_link];
        if (sh[i].sh_offset + sh[i].sh_size > size || strtab.sh_offset + strtab.sh_size > size) continue;
        const auto* syms = reinterpret_cast<const Elf64_Sym*>(base + sh[i].sh_offset);
        const char* names = reinterpret_cast<const char*>(base + strtab.sh_offset);
        for (std::size_t j = 0; j < sh[i].sh_size / sizeof(Elf64_Sym); ++j) {
          const Elf64_Sym& sym = syms[j];
          if (sym.st_value == 0 || sym.st_name >= strtab.sh_size) continue;
          const char* name = names + sym.st_name;
          if (std::strncmp(name, "_Z", 2) != 0) continue;
          const std::uintptr_t address = bias + sym.st_value;
          if (ELF64_ST_TYPE(sym.st_info) == STT_FUNC)
            functions_.emplace(address, name);
          else if (ELF64_ST_TYPE(sym.st_info) == STT_OBJECT && sym.st_size > 0 && std::strncmp(name, "_ZZ", 3) == 0)
            statics_.emplace_back(name, Span{reinterpret_cast<unsigned char*>(address), sym.st_size});
        }
      }
    }
    munmap(map, size);
    std::sort(statics_.begin(), statics_.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
  }

  bool loaded_ = false;
  std::map<std::uintptr_t, std::string> functions_;      // mangled names by address
  std::vector<std::pair<std::string, Span>> statics_;    // function-local statics, by name
  std::map<const void*, std::vector<Span>> cache_;       // by kernel
};

enum class State { runnable, waiting, done };

struct Fiber {
  Context context;
  State state = State::runnable;
  const char* barrier_file = nullptr;  // the __syncthreads call this thread waits at
  int barrier_line = 0;
  uint3 index{0, 0, 0};
  char* stack = nullptr;
#if defined(CUEM_EMU_ASAN)
  void* fake_stack = nullptr;
#endif
};

struct Block {
  std::vector<Fiber> fibers;
  Fiber* current = nullptr;
  Context scheduler;
  void (*body)(void*) = nullptr;
  void* context = nullptr;
  std::vector<unsigned char> shared;
  const std::vector<Span>* statics = nullptr;  // the kernel's static __shared__ objects
#if defined(CUEM_EMU_ASAN)
  const void* scheduler_bottom = nullptr;
  std::size_t scheduler_size = 0;
#endif
};

thread_local Block* t_block = nullptr;
thread_local std::vector<std::unique_ptr<char[]>> t_stacks;  // reused across launches
std::mutex g_launch_mutex;                                   // static __shared__ objects are global
unsigned long long g_launches = 0;
std::map<const void*, unsigned long long> g_kernel_launches;  // by kernel, under g_launch_mutex
std::atomic<std::size_t> g_host_to_device_bytes{0};
StaticShared g_static_shared;  // under g_launch_mutex
std::atomic<Schedule> g_schedule{Schedule::forward};

void switch_to_scheduler(Block* b, Fiber* f, bool dying) {
#if defined(CUEM_EMU_ASAN)
  __sanitizer_start_switch_fiber(dying ? nullptr : &f->fake_stack, b->scheduler_bottom, b->scheduler_size);
#else
  (void)dying;
#endif
  switch_context(&f->context, &b->scheduler);
#if defined(CUEM_EMU_ASAN)
  __sanitizer_finish_switch_fiber(f->fake_stack, nullptr, nullptr);
#endif
}

void fiber_main() {
  Block* b = t_block;
#if defined(CUEM_EMU_ASAN)
  __sanitizer_finish_switch_fiber(nullptr, &b->scheduler_bottom, &b->scheduler_size);
#endif
  b->body(b->context);
  b->current->state = State::done;
  switch_to_scheduler(b, b->current, true);
}

void run_fiber(Block* b, Fiber* f) {
  b->current = f;
  threadIdx = f->index;
#if defined(CUEM_EMU_ASAN)
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(&fake, f->stack, kStackBytes);
#endif
  switch_context(&b->scheduler, &f->context);
#if defined(CUEM_EMU_ASAN)
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
}

void run_block(Block& b) {
  for (Fiber& f : b.fibers) {
    f.state = State::runnable;
    make_context(&f.context, f.stack, kStackBytes, fiber_main);
  }
  std::fill(b.shared.begin(), b.shared.end(), kFill);
  for (const Span& s : *b.statics) std::memset(s.p, kFill, s.bytes);
  const std::size_t n = b.fibers.size();
  const bool reverse = g_schedule.load() == Schedule::reverse;
  std::size_t left = n;
  while (left > 0) {
    for (std::size_t i = 0; i < n; ++i) {
      Fiber& f = b.fibers[reverse ? n - 1 - i : i];
      if (f.state != State::runnable) continue;
      run_fiber(&b, &f);
      if (f.state == State::done) --left;
    }
    // Every thread has returned or waits at a barrier: release it. All must wait at the
    // same __syncthreads: a barrier in code that only some threads reach (a condition
    // that differs within the block) hangs a GPU or corrupts its shared memory.
    const Fiber* first = nullptr;
    for (Fiber& f : b.fibers) {
      if (f.state != State::waiting) continue;
      if (first && (f.barrier_line != first->barrier_line || std::strcmp(f.barrier_file, first->barrier_file) != 0)) {
        char what[1024];
        std::snprintf(what, sizeof what,
                      "threads (%u, %u, %u) and (%u, %u, %u) of block (%u, %u, %u) wait at different "
                      "__syncthreads calls (%s:%d and %s:%d): a barrier in divergent code",
                      first->index.x, first->index.y, first->index.z, f.index.x, f.index.y, f.index.z, blockIdx.x,
                      blockIdx.y, blockIdx.z, first->barrier_file, first->barrier_line, f.barrier_file,
                      f.barrier_line);
        fail(what);
      }
      if (!first) first = &f;
      f.state = State::runnable;
    }
  }
}

bool valid_config(const LaunchConfig& c) {
  const unsigned long long threads = 1ull * c.block.x * c.block.y * c.block.z;
  return threads > 0 && threads <= 1024 && c.block.z <= 64 && c.grid.x > 0 && c.grid.y > 0 && c.grid.z > 0 &&
         c.grid.x <= 0x7fffffffu && c.grid.y <= 65535 && c.grid.z <= 65535;
}

}  // namespace

void set_schedule(Schedule s) { g_schedule.store(s); }
Schedule schedule() { return g_schedule.load(); }

void fail(const char* what) {
  std::fprintf(stderr, "cuem emulated device: %s\n", what);
  std::abort();
}

unsigned char* dynamic_shared() {
  if (!t_block) fail("dynamic shared memory outside a kernel");
  return t_block->shared.data();
}

std::size_t host_to_device_bytes() { return g_host_to_device_bytes.load(); }

unsigned long long launch_count() {
  std::lock_guard<std::mutex> lock(g_launch_mutex);
  return g_launches;
}

unsigned long long launches_named(const char* fragment) {
  std::lock_guard<std::mutex> lock(g_launch_mutex);
  unsigned long long total = 0;
  for (const auto& [kernel, count] : g_kernel_launches)
    if (g_static_shared.name_of(kernel).find(fragment) != std::string::npos) total += count;
  return total;
}

std::size_t static_shared_bytes(const void* kernel) {
  std::lock_guard<std::mutex> lock(g_launch_mutex);
  std::size_t total = 0;
  for (const Span& s : g_static_shared.objects_of(kernel)) total += s.bytes;
  return total;
}

std::size_t max_pitch() { return g_max_pitch.load(); }
void set_max_pitch(std::size_t bytes) { g_max_pitch.store(bytes); }

std::size_t pinned_bytes() {
  std::lock_guard<std::mutex> lock(g_memory_mutex);
  return g_pinned_used;
}
std::size_t peak_pinned_bytes() {
  std::lock_guard<std::mutex> lock(g_memory_mutex);
  return g_pinned_peak;
}
AllocationCounts allocation_counts() {
  return {g_device_mallocs.load(), g_pool_allocations.load(), g_pool_growths.load()};
}
void reset_peak_pinned_bytes() {
  std::lock_guard<std::mutex> lock(g_memory_mutex);
  g_pinned_peak = g_pinned_used;
}

void run_grid(const LaunchConfig& config, void (*body)(void*), void* context) {
  if (device_count() == 0) {
    t_last_error = cudaErrorNoDevice;
    return;
  }
  if (!valid_config(config)) {
    fail_call(cudaErrorInvalidConfiguration, "launch configuration out of range (grid " +
                                                 std::to_string(config.grid.x) + "x" + std::to_string(config.grid.y) +
                                                 "x" + std::to_string(config.grid.z) + ", block " +
                                                 std::to_string(config.block.x) + "x" +
                                                 std::to_string(config.block.y) + "x" +
                                                 std::to_string(config.block.z) + ")");
    return;
  }
  if (config.shared_bytes > kMaxSharedBytes) {
    fail_call(cudaErrorInvalidValue, "a launch asks for " + std::to_string(config.shared_bytes) +
                                         " bytes of dynamic shared memory (at most 48 KiB without opting in)");
    return;
  }
  if (!live_handle(config.stream)) {
    fail_call(cudaErrorInvalidResourceHandle, "a launch on a stream that does not exist");
    return;
  }
  std::lock_guard<std::mutex> lock(g_launch_mutex);
  ++g_launches;
  ++g_kernel_launches[config.kernel];
  if (t_block) fail("a kernel launched from inside a kernel");
  const unsigned threads = config.block.x * config.block.y * config.block.z;
  while (t_stacks.size() < threads) t_stacks.emplace_back(new char[kStackBytes]);
  Block b;
  b.fibers.resize(threads);
  for (unsigned t = 0; t < threads; ++t) {
    Fiber& f = b.fibers[t];
    f.stack = t_stacks[t].get();
    f.index = {t % config.block.x, (t / config.block.x) % config.block.y, t / (config.block.x * config.block.y)};
  }
  b.body = body;
  b.context = context;
  b.shared.resize(config.shared_bytes);
  b.statics = &g_static_shared.objects_of(config.kernel);
  blockDim = config.block;
  gridDim = config.grid;
  t_block = &b;
  const unsigned long long blocks = 1ull * config.grid.x * config.grid.y * config.grid.z;
  const bool reverse = g_schedule.load() == Schedule::reverse;
  for (unsigned long long i = 0; i < blocks; ++i) {
    const unsigned long long j = reverse ? blocks - 1 - i : i;
    blockIdx = {static_cast<unsigned>(j % config.grid.x), static_cast<unsigned>(j / config.grid.x % config.grid.y),
                static_cast<unsigned>(j / (1ull * config.grid.x * config.grid.y))};
    run_block(b);
  }
  t_block = nullptr;
}

}  // namespace cuem::emu

using cuem::emu::fail_call;

void cuem::emu::syncthreads_at(const char* file, int line) {
  Block* b = t_block;
  if (!b || !b->current) fail("__syncthreads outside a kernel");
  b->current->state = State::waiting;
  b->current->barrier_file = file;
  b->current->barrier_line = line;
  switch_to_scheduler(b, b->current, false);
}

// ---- the runtime API --------------------------------------------------------------------

cudaError_t cudaGetDeviceCount(int* count) {
  if (!count) return fail_call(cudaErrorInvalidValue, "cudaGetDeviceCount(nullptr)");
  *count = cuem::emu::device_count();
  if (*count == 0) return cuem::emu::t_last_error = cudaErrorNoDevice;
  return cudaSuccess;
}

cudaError_t cudaDriverGetVersion(int* version) {
  if (!version) return fail_call(cudaErrorInvalidValue, "cudaDriverGetVersion(nullptr)");
  *version = 13000;
  return cudaSuccess;
}

cudaError_t cudaRuntimeGetVersion(int* version) {
  if (!version) return fail_call(cudaErrorInvalidValue, "cudaRuntimeGetVersion(nullptr)");
  *version = 13000;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (!prop || device < 0 || device >= cuem::emu::device_count())
    return fail_call(cudaErrorInvalidDevice, "cudaGetDeviceProperties of a device that does not exist");
  *prop = cudaDeviceProp{};
  std::snprintf(prop->name, sizeof prop->name, "cuem emulated device %d", device);
  prop->totalGlobalMem = cuem::emu::device_memory();
  prop->sharedMemPerBlock = cuem::emu::kMaxSharedBytes;
  prop->major = 8;
  prop->minor = 0;
  prop->multiProcessorCount = 4;
  prop->maxThreadsPerBlock = 1024;
  prop->memPitch = cuem::emu::max_pitch();
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
  if (device < 0 || device >= cuem::emu::device_count())
    return fail_call(cudaErrorInvalidDevice, "cudaSetDevice(" + std::to_string(device) + ")");
  cuem::emu::t_device = device;
  return cudaSuccess;
}

cudaError_t cudaGetDevice(int* device) {
  if (!device) return fail_call(cudaErrorInvalidValue, "cudaGetDevice(nullptr)");
  *device = cuem::emu::t_device;
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize() {
  cuem::emu::release_above_thresholds();
  return cudaSuccess;
}

cudaError_t cudaMemGetInfo(std::size_t* free_bytes, std::size_t* total_bytes) {
  if (!free_bytes || !total_bytes) return fail_call(cudaErrorInvalidValue, "cudaMemGetInfo(nullptr)");
  std::lock_guard<std::mutex> lock(cuem::emu::g_memory_mutex);
  *total_bytes = cuem::emu::device_memory();
  *free_bytes = *total_bytes - cuem::emu::g_device_used[cuem::emu::t_device];
  return cudaSuccess;
}

cudaError_t cudaMalloc(void** p, std::size_t bytes) {
  ++cuem::emu::g_device_mallocs;
  return cuem::emu::allocate(p, bytes, cuem::emu::t_device);
}
cudaError_t cudaFree(void* p) { return cuem::emu::release(p, true, "cudaFree"); }
cudaError_t cudaHostAlloc(void** p, std::size_t bytes, unsigned) { return cuem::emu::allocate(p, bytes, -1); }
cudaError_t cudaFreeHost(void* p) { return cuem::emu::release(p, false, "cudaFreeHost"); }

cudaError_t cudaMemcpyAsync(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind, cudaStream_t stream) {
  using namespace cuem::emu;
  if (bytes == 0) return cudaSuccess;
  if (!dst || !src) return fail_call(cudaErrorInvalidValue, "cudaMemcpyAsync with a null pointer");
  if (!live_handle(stream)) return fail_call(cudaErrorInvalidResourceHandle, "cudaMemcpyAsync on a dead stream");
  const int to = locate(dst, bytes);
  const int from = locate(src, bytes);
  if (to == kOverrun || from == kOverrun)
    return fail_call(cudaErrorInvalidValue, "cudaMemcpyAsync of " + std::to_string(bytes) +
                                                " bytes runs past the end of an allocation");
  const bool to_device = to >= 0, from_device = from >= 0;
  const bool ok = kind == cudaMemcpyDefault || (kind == cudaMemcpyHostToDevice && to_device && !from_device) ||
                  (kind == cudaMemcpyDeviceToHost && !to_device && from_device) ||
                  (kind == cudaMemcpyDeviceToDevice && to_device && from_device) ||
                  (kind == cudaMemcpyHostToHost && !to_device && !from_device);
  if (!ok)
    return fail_call(cudaErrorInvalidMemcpyDirection, "cudaMemcpyAsync kind " + std::to_string(kind) +
                                                          " does not match its pointers (destination " +
                                                          (to_device ? "device" : "host") + ", source " +
                                                          (from_device ? "device" : "host") + ")");
  if (to_device && !from_device) g_host_to_device_bytes += bytes;
  std::memmove(dst, src, bytes);
  return cudaSuccess;
}

// Row by row, after checking the whole pitched extent of both sides against their
// allocations (the last row need only be width bytes long).
cudaError_t cudaMemcpy2DAsync(void* dst, std::size_t dst_pitch, const void* src, std::size_t src_pitch,
                              std::size_t width, std::size_t height, cudaMemcpyKind kind, cudaStream_t stream) {
  // "Returns an error if dpitch or spitch is greater than the maximum allowed" (the
  // runtime's documentation): memPitch, 2^31 - 1 bytes on current GPUs.
  if (dst_pitch > cuem::emu::max_pitch() || src_pitch > cuem::emu::max_pitch())
    return fail_call(cudaErrorInvalidPitchValue, "cudaMemcpy2DAsync with a pitch of " +
                                                     std::to_string(std::max(dst_pitch, src_pitch)) +
                                                     " bytes, above the device's limit (memPitch, " +
                                                     std::to_string(cuem::emu::max_pitch()) + ")");
  if (width == 0 || height == 0) return cudaSuccess;
  if (width > dst_pitch || width > src_pitch)
    return fail_call(cudaErrorInvalidPitchValue, "cudaMemcpy2DAsync with a width wider than a pitch");
  const cudaError_t whole =
      cudaMemcpyAsync(dst, src, 0, kind, stream);  // handles only; the extents follow
  if (whole != cudaSuccess) return whole;
  const std::size_t dst_extent = dst_pitch * (height - 1) + width;
  const std::size_t src_extent = src_pitch * (height - 1) + width;
  using namespace cuem::emu;
  if (locate(dst, dst_extent) == kOverrun || locate(src, src_extent) == kOverrun)
    return fail_call(cudaErrorInvalidValue, "cudaMemcpy2DAsync runs past the end of an allocation");
  for (std::size_t r = 0; r < height; ++r) {
    const cudaError_t err = cudaMemcpyAsync(static_cast<char*>(dst) + r * dst_pitch,
                                            static_cast<const char*>(src) + r * src_pitch, width, kind, stream);
    if (err != cudaSuccess) return err;
  }
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind) {
  return cudaMemcpyAsync(dst, src, bytes, kind, nullptr);
}

cudaError_t cudaMemsetAsync(void* p, int value, std::size_t bytes, cudaStream_t stream) {
  using namespace cuem::emu;
  if (bytes == 0) return cudaSuccess;
  if (!live_handle(stream)) return fail_call(cudaErrorInvalidResourceHandle, "cudaMemsetAsync on a dead stream");
  if (locate(p, bytes) < 0)
    return fail_call(cudaErrorInvalidValue, "cudaMemsetAsync outside a device allocation");
  std::memset(p, value, bytes);
  return cudaSuccess;
}

struct CUstream_st {
  unsigned flags;
};
struct CUevent_st {
  unsigned flags;
};

namespace {
template <typename H>
cudaError_t create_handle(H** h, unsigned flags) {
  if (!h) return fail_call(cudaErrorInvalidValue, "handle creation with a null result pointer");
  *h = new H{flags};
  std::lock_guard<std::mutex> lock(cuem::emu::g_memory_mutex);
  cuem::emu::g_handles.insert(*h);
  return cudaSuccess;
}
template <typename H>
cudaError_t destroy_handle(H* h) {
  {
    std::lock_guard<std::mutex> lock(cuem::emu::g_memory_mutex);
    if (!h || cuem::emu::g_handles.erase(h) == 0)
      return fail_call(cudaErrorInvalidResourceHandle, "destroying a stream or event that does not exist");
  }
  delete h;
  return cudaSuccess;
}
cudaError_t check_handle(const void* h) {
  return cuem::emu::live_handle(h) ? cudaSuccess
                                   : fail_call(cudaErrorInvalidResourceHandle, "a stream or event that does not exist");
}
}  // namespace

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned flags) { return create_handle(s, flags); }
cudaError_t cudaStreamDestroy(cudaStream_t s) { return destroy_handle(s); }
cudaError_t cudaStreamSynchronize(cudaStream_t s) {
  const cudaError_t err = check_handle(s);
  if (err == cudaSuccess) cuem::emu::release_above_thresholds();
  return err;
}
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned) {
  if (!e) return fail_call(cudaErrorInvalidResourceHandle, "cudaStreamWaitEvent on a null event");
  const cudaError_t err = check_handle(s);
  return err != cudaSuccess ? err : check_handle(e);
}
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned flags) { return create_handle(e, flags); }
cudaError_t cudaEventDestroy(cudaEvent_t e) { return destroy_handle(e); }
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
  if (!e) return fail_call(cudaErrorInvalidResourceHandle, "cudaEventRecord on a null event");
  const cudaError_t err = check_handle(e);
  return err != cudaSuccess ? err : check_handle(s);
}
cudaError_t cudaEventSynchronize(cudaEvent_t e) {
  if (!e) return fail_call(cudaErrorInvalidResourceHandle, "cudaEventSynchronize on a null event");
  const cudaError_t err = check_handle(e);
  if (err == cudaSuccess) cuem::emu::release_above_thresholds();
  return err;
}

// ---- stream-ordered pools ------------------------------------------------------------
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  using namespace cuem::emu;
  if (!value) return fail_call(cudaErrorInvalidValue, "cudaDeviceGetAttribute(nullptr)");
  if (device < 0 || device >= device_count())
    return fail_call(cudaErrorInvalidDevice, "cudaDeviceGetAttribute of a device that does not exist");
  if (attr != cudaDevAttrMemoryPoolsSupported)
    return fail_call(cudaErrorInvalidValue, "cudaDeviceGetAttribute: an attribute the emulator does not know");
  *value = pools_supported() ? 1 : 0;
  return cudaSuccess;
}

cudaError_t cudaMemPoolCreate(cudaMemPool_t* pool, const cudaMemPoolProps* props) {
  using namespace cuem::emu;
  if (!pools_supported()) return fail_call(cudaErrorNotSupported, "cudaMemPoolCreate: the device has no pools");
  if (!pool || !props) return fail_call(cudaErrorInvalidValue, "cudaMemPoolCreate(nullptr)");
  if (props->allocType != cudaMemAllocationTypePinned || props->location.type != cudaMemLocationTypeDevice)
    return fail_call(cudaErrorInvalidValue, "cudaMemPoolCreate: only pinned device-memory pools are emulated");
  if (props->location.id < 0 || props->location.id >= device_count())
    return fail_call(cudaErrorInvalidDevice, "cudaMemPoolCreate for a device that does not exist");
  auto* p = new CUmemPoolHandle_st(props->location.id, false);
  std::lock_guard<std::mutex> lock(g_memory_mutex);
  g_pools.insert(p);
  *pool = p;
  return cudaSuccess;
}

cudaError_t cudaMemPoolDestroy(cudaMemPool_t pool) {
  using namespace cuem::emu;
  std::lock_guard<std::mutex> lock(g_memory_mutex);
  if (g_pools.count(pool) == 0) return fail_call(cudaErrorInvalidValue, "cudaMemPoolDestroy of a pool that does not exist");
  if (pool->is_default) return fail_call(cudaErrorInvalidValue, "cudaMemPoolDestroy of a device's default pool");
  if (pool->used != 0)
    return fail_call(cudaErrorInvalidValue, "cudaMemPoolDestroy of a pool with " + std::to_string(pool->used) +
                                                " bytes still allocated (free them first)");
  trim_locked(pool, 0);
  g_pools.erase(pool);
  delete pool;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetDefaultMemPool(cudaMemPool_t* pool, int device) {
  using namespace cuem::emu;
  if (!pools_supported()) return fail_call(cudaErrorNotSupported, "cudaDeviceGetDefaultMemPool: the device has no pools");
  if (!pool) return fail_call(cudaErrorInvalidValue, "cudaDeviceGetDefaultMemPool(nullptr)");
  if (device < 0 || device >= device_count())
    return fail_call(cudaErrorInvalidDevice, "cudaDeviceGetDefaultMemPool of a device that does not exist");
  std::lock_guard<std::mutex> lock(g_memory_mutex);
  std::unique_ptr<CUmemPoolHandle_st>& p = g_default_pools[device];
  if (!p) {
    p = std::make_unique<CUmemPoolHandle_st>(device, true);
    g_pools.insert(p.get());
  }
  *pool = p.get();
  return cudaSuccess;
}

cudaError_t cudaMemPoolSetAttribute(cudaMemPool_t pool, cudaMemPoolAttr attr, void* value) {
  using namespace cuem::emu;
  if (!value || !live_pool(pool)) return fail_call(cudaErrorInvalidValue, "cudaMemPoolSetAttribute: no such pool");
  if (attr != cudaMemPoolAttrReleaseThreshold)
    return fail_call(cudaErrorInvalidValue, "cudaMemPoolSetAttribute: only the release threshold is settable here");
  std::lock_guard<std::mutex> lock(g_memory_mutex);
  pool->release_threshold = *static_cast<unsigned long long*>(value);
  return cudaSuccess;
}

cudaError_t cudaMemPoolGetAttribute(cudaMemPool_t pool, cudaMemPoolAttr attr, void* value) {
  using namespace cuem::emu;
  if (!value || !live_pool(pool)) return fail_call(cudaErrorInvalidValue, "cudaMemPoolGetAttribute: no such pool");
  std::lock_guard<std::mutex> lock(g_memory_mutex);
  auto* out = static_cast<unsigned long long*>(value);
  switch (attr) {
    case cudaMemPoolAttrReleaseThreshold: *out = pool->release_threshold; return cudaSuccess;
    case cudaMemPoolAttrReservedMemCurrent: *out = pool->reserved; return cudaSuccess;
    case cudaMemPoolAttrUsedMemCurrent: *out = pool->used; return cudaSuccess;
  }
  return fail_call(cudaErrorInvalidValue, "cudaMemPoolGetAttribute: an attribute the emulator does not keep");
}

cudaError_t cudaMemPoolTrimTo(cudaMemPool_t pool, std::size_t min_bytes_to_keep) {
  using namespace cuem::emu;
  std::lock_guard<std::mutex> lock(g_memory_mutex);
  if (g_pools.count(pool) == 0) return fail_call(cudaErrorInvalidValue, "cudaMemPoolTrimTo: no such pool");
  trim_locked(pool, min_bytes_to_keep);
  return cudaSuccess;
}

cudaError_t cudaMallocFromPoolAsync(void** p, std::size_t bytes, cudaMemPool_t pool, cudaStream_t stream) {
  using namespace cuem::emu;
  if (!p) return fail_call(cudaErrorInvalidValue, "cudaMallocFromPoolAsync with a null result pointer");
  if (!live_handle(stream)) return fail_call(cudaErrorInvalidResourceHandle, "cudaMallocFromPoolAsync on a dead stream");
  std::lock_guard<std::mutex> lock(g_memory_mutex);
  if (g_pools.count(pool) == 0) return fail_call(cudaErrorInvalidValue, "cudaMallocFromPoolAsync from no pool");
  ++g_pool_allocations;
  const std::size_t rounded = std::max<std::size_t>(256, (bytes + 255) / 256 * 256);
  void* q = nullptr;
  std::size_t capacity = 0;
  const auto fit = pool->cached.lower_bound(rounded);  // the smallest cached block that holds it
  if (fit != pool->cached.end()) {
    capacity = fit->first;
    q = fit->second;
    pool->cached.erase(fit);
  } else {
    // Like a real pool, give back what this pool has cached before failing.
    if (g_device_used[pool->device] + rounded > device_memory()) trim_locked(pool, 0);
    if (g_device_used[pool->device] + rounded > device_memory())
      return fail_call(cudaErrorMemoryAllocation, "cudaMallocFromPoolAsync of " + std::to_string(bytes) +
                                                      " bytes exceeds the emulated device memory");
    if (posix_memalign(&q, 256, rounded) != 0 || !q)
      return fail_call(cudaErrorMemoryAllocation, "host allocation failed");
    capacity = rounded;
    g_device_used[pool->device] += rounded;
    pool->reserved += rounded;
    ++g_pool_growths;
  }
  std::memset(q, kFill, capacity);
  pool->used += capacity;
  // The requested size, not the block's, so that a copy past it is caught as with cudaMalloc.
  g_allocations[reinterpret_cast<std::uintptr_t>(q)] = {bytes == 0 ? 1 : bytes, pool->device, pool, capacity};
  *p = q;
  return cudaSuccess;
}

cudaError_t cudaMallocAsync(void** p, std::size_t bytes, cudaStream_t stream) {
  cudaMemPool_t pool = nullptr;
  const cudaError_t err = cudaDeviceGetDefaultMemPool(&pool, cuem::emu::t_device);
  return err != cudaSuccess ? err : cudaMallocFromPoolAsync(p, bytes, pool, stream);
}

cudaError_t cudaFreeAsync(void* p, cudaStream_t stream) {
  using namespace cuem::emu;
  if (!p) return cudaSuccess;
  if (!live_handle(stream)) return fail_call(cudaErrorInvalidResourceHandle, "cudaFreeAsync on a dead stream");
  std::lock_guard<std::mutex> lock(g_memory_mutex);
  const auto it = g_allocations.find(reinterpret_cast<std::uintptr_t>(p));
  if (it == g_allocations.end())
    return fail_call(cudaErrorInvalidValue, "cudaFreeAsync of a pointer it did not allocate (or freed already)");
  if (!it->second.pool)
    return fail_call(cudaErrorInvalidValue, "cudaFreeAsync of memory that is not from a pool (cudaMalloc's or pinned)");
  CUmemPoolHandle_st* pool = it->second.pool;
  const std::size_t capacity = it->second.capacity;
  g_allocations.erase(it);
  // Freed memory reads as NaN again if a kernel still reads it.
  std::memset(p, kFill, capacity);
  pool->used -= capacity;
  pool->cached.emplace(capacity, p);
  return cudaSuccess;
}

cudaError_t cudaGetLastError() {
  const cudaError_t e = cuem::emu::t_last_error;
  cuem::emu::t_last_error = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() { return cuem::emu::t_last_error; }

const char* cudaGetErrorName(cudaError_t err) {
  switch (err) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidPitchValue: return "cudaErrorInvalidPitchValue";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorInsufficientDriver: return "cudaErrorInsufficientDriver";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotSupported: return "cudaErrorNotSupported";
  }
  return "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t err) {
  switch (err) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidPitchValue: return "invalid pitch argument";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorInsufficientDriver: return "CUDA driver version is insufficient for CUDA runtime version";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected (emulated)";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotSupported: return "operation not supported";
  }
  return "unknown error";
}
