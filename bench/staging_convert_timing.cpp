// Host throughput of converting one streaming run (a staging buffer's worth of rows, as
// the CUDA backend does on every streamed pass): the single-threaded loop the backend
// used before, against kernels/host_threads.hpp's pool. Standalone, not part of the build:
//   g++ -O2 -std=c++17 -pthread -I kernels bench/staging_convert_timing.cpp -o /tmp/convert_timing
//   /tmp/convert_timing [threads] [D] [repeats]
// Prints GB/s of staged (converted) bytes, the rate to compare with the host-to-device link.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "host_threads.hpp"

namespace {

constexpr std::size_t kStagingBytes = std::size_t{8} << 20;  // as cuda_primitives.cu

template <typename S, typename T>
void convert_serial(const T* src, std::size_t D, const double* origin, std::size_t begin, std::size_t count, S* dst) {
  for (std::size_t i = 0; i < count; ++i)
    for (std::size_t d = 0; d < D; ++d)
      dst[i * D + d] = static_cast<S>(static_cast<double>(src[(begin + i) * D + d]) - origin[d]);
}

// Best of `repeats` passes over all runs of N rows (the data larger than the caches, as
// a streamed data set is), in GB/s of S written.
template <typename S, typename T, typename F>
double best_rate(std::size_t N, std::size_t D, int repeats, F&& convert) {
  std::vector<T> src(N * D);
  for (std::size_t i = 0; i < src.size(); ++i) src[i] = static_cast<T>(static_cast<double>(i % 977) * 0.25);
  std::vector<double> origin(D, 1.5);
  const std::size_t rows = std::max<std::size_t>(1, kStagingBytes / (D * sizeof(S)));
  std::vector<S> staging(2 * rows * D);
  double best = 1e300;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    int turn = 0;
    for (std::size_t b = 0; b < N; b += rows, turn ^= 1)
      convert(src.data(), D, origin.data(), b, std::min(rows, N - b), staging.data() + turn * rows * D);
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return static_cast<double>(N * D * sizeof(S)) / best / 1e9;
}

template <typename S, typename T>
void report(const char* name, int threads, std::size_t D, int repeats) {
  const std::size_t N = (std::size_t{256} << 20) / (D * sizeof(T));  // 256 MiB of source
  cuem::cuda::HostThreads pool(threads);
  const double one = best_rate<S, T>(N, D, repeats, [](auto... a) { convert_serial(a...); });
  const double many = best_rate<S, T>(
      N, D, repeats, [&](auto src, auto cols, auto... a) { cuem::cuda::convert_rows(pool, src, cols, cols, a...); });
  const double one_pool = [&] {
    cuem::cuda::HostThreads single(1);
    return best_rate<S, T>(N, D, repeats, [&](auto src, auto cols, auto... a) {
      return cuem::cuda::convert_rows(single, src, cols, cols, a...);
    });
  }();
  std::printf("%-18s D %4zu: serial loop %6.2f GB/s, pool of 1 %6.2f GB/s, pool of %d %6.2f GB/s (x%.2f)\n", name, D,
              one, one_pool, threads, many, many / one);
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : static_cast<int>(std::thread::hardware_concurrency());
  const std::size_t D = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 32;
  const int repeats = argc > 3 ? std::atoi(argv[3]) : 5;
  std::printf("one run: %zu MiB staged; %d threads; hardware_concurrency %u\n", kStagingBytes >> 20, threads,
              std::thread::hardware_concurrency());
  report<float, double>("float64 -> float32", threads, D, repeats);
  report<float, float>("float32 -> float32", threads, D, repeats);
  report<double, double>("float64 -> float64", threads, D, repeats);
  return 0;
}
