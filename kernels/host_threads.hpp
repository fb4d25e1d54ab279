#pragma once
// Host threads for the CUDA backend's element-wise host work (converting rows into the
// pinned staging buffers). Plain C++: nvcc compiles the backend's host code without
// OpenMP, so the backend keeps its own small pool.
#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

namespace cuem::cuda {

/// A fixed pool: the calling thread plus size() - 1 workers that persist between calls
/// (starting threads for every staging run would cost about as much as the run) and
/// sleep on a condition variable in between.
class HostThreads {
 public:
  explicit HostThreads(int threads) {
    for (int i = 1; i < std::max(1, threads); ++i) {
      try {
        workers_.emplace_back([this, i] { work(i); });
      } catch (const std::system_error&) {
        break;  // the host is out of threads: convert with those there are
      }
    }
  }

  ~HostThreads() {
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (std::thread& t : workers_) t.join();
  }

  HostThreads(const HostThreads&) = delete;
  HostThreads& operator=(const HostThreads&) = delete;

  int size() const noexcept { return static_cast<int>(workers_.size()) + 1; }

  /// Calls part(i) for i in [0, parts) (parts at most size()), part 0 on the calling
  /// thread, and returns when every call has returned. part must not throw.
  template <typename F>
  void run(int parts, F& part) {
    parts = std::clamp(parts, 1, size());
    if (parts == 1) {
      part(0);
      return;
    }
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      job_ = [](void* f, int i) { (*static_cast<F*>(f))(i); };
      job_arg_ = &part;
      parts_ = parts;
      pending_ = parts - 1;
      ++generation_;
    }
    wake_.notify_all();
    part(0);
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return pending_ == 0; });
  }

 private:
  void work(int index) {
    std::uint64_t seen = 0;
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      // A worker beyond this call's parts sits it out; run() does not wait for it.
      if (index >= parts_) continue;
      void (*const job)(void*, int) = job_;
      void* const arg = job_arg_;
      lock.unlock();
      job(arg, index);
      lock.lock();
      if (--pending_ == 0) done_.notify_one();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;  // a new call, or stop
  std::condition_variable done_;  // the last worker of a call finished
  void (*job_)(void*, int) = nullptr;
  void* job_arg_ = nullptr;
  int parts_ = 0;
  int pending_ = 0;
  std::uint64_t generation_ = 0;
  bool stop_ = false;
  std::vector<std::thread> workers_;
};

/// Values a thread converts at least: below that, waking it costs more than it saves.
constexpr std::size_t kMinValuesPerThread = std::size_t{1} << 16;

/// dst row i = S(src row (begin + i) - origin), in float64, for i in [0, count): rows of D
/// values (source rows start `stride` values apart, destination rows are packed), split into contiguous row ranges over the pool. Each value is converted
/// alone, so the result does not depend on the split.
template <typename S, typename T>
void convert_rows(HostThreads& pool, const T* src, std::size_t D, std::size_t stride, const double* origin,
                  std::size_t begin, std::size_t count, S* dst) {
  if (count == 0 || D == 0) return;
  const std::size_t by_work = std::max<std::size_t>(1, count * D / kMinValuesPerThread);
  const std::size_t want = std::min({static_cast<std::size_t>(pool.size()), by_work, count});
  const std::size_t per = (count + want - 1) / want;
  const int parts = static_cast<int>((count + per - 1) / per);  // no empty range
  auto part = [&](int p) {
    const std::size_t first = static_cast<std::size_t>(p) * per;
    const std::size_t last = std::min(count, first + per);
    const T* in = src + (begin + first) * stride;
    S* out = dst + first * D;
    for (std::size_t i = 0; i < last - first; ++i)
      for (std::size_t d = 0; d < D; ++d)
        out[i * D + d] = static_cast<S>(static_cast<double>(in[i * stride + d]) - origin[d]);
  };
  pool.run(parts, part);
}

}  // namespace cuem::cuda
