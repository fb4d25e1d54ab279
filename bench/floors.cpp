// The machine's rates behind the CPU floors of scripts/compare_peers.py: vector FMA
// instructions per second, vector exps per second (the kernels' own exp) and the rate of
// reading memory, each with all threads. Prints one JSON object. A plain program, not a
// suite: each rate is the best of several timed rounds, so a busy machine lowers it less.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "cpu/simd.hpp"

namespace {

using cuem::cpu::simd::exp_nonpositive;
using cuem::cpu::simd::load;
using cuem::cpu::simd::splat;
using cuem::cpu::simd::store;
using cuem::cpu::simd::v8d;

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// 16 independent chains of a = a * b + c on 8-double vectors: `rounds` x 16 FMA instructions.
CUEM_CLONES
double fma_chains(long rounds, double seed) {
  v8d a[16];
  for (int j = 0; j < 16; ++j) a[j] = splat(seed + j);
  const v8d b = splat(0.999999), c = splat(1e-7);
  for (long r = 0; r < rounds; ++r)
    for (int j = 0; j < 16; ++j) a[j] = a[j] * b + c;
  v8d s = splat(0.0);
  for (int j = 0; j < 16; ++j) s += a[j];
  return s[0];
}

// exp of n values in place (n a multiple of 8), `rounds` times.
CUEM_CLONES
void exps(double* x, int n, int rounds) {
  for (int r = 0; r < rounds; ++r)
    for (int i = 0; i < n; i += 8) store(x + i, exp_nonpositive(load(x + i)) - splat(1.0));
}

CUEM_CLONES
double read_sum(const double* x, std::size_t n) {
  v8d s0 = splat(0.0), s1 = s0, s2 = s0, s3 = s0;
  for (std::size_t i = 0; i + 32 <= n; i += 32) {
    s0 += load(x + i);
    s1 += load(x + i + 8);
    s2 += load(x + i + 16);
    s3 += load(x + i + 24);
  }
  const v8d s = (s0 + s1) + (s2 + s3);
  return s[0] + s[7];
}

template <typename F>
double best_rate(double work, int tries, F f) {
  double best = 0.0;
  for (int t = 0; t < tries; ++t) {
    const double t0 = now();
    f();
    best = std::max(best, work / (now() - t0));
  }
  return best;
}

}  // namespace

int main() {
  const int threads = omp_get_max_threads();
  volatile double sink = 0.0;
  constexpr long kRounds = 20'000'000;
  const double fma = best_rate(16.0 * kRounds * threads, 5, [&] {
#pragma omp parallel
    {
      const double v = fma_chains(kRounds, omp_get_thread_num());
#pragma omp atomic
      sink += v;
    }
  });
  constexpr int kExpN = 4096, kExpRounds = 20000;
  const double exp_rate = best_rate(static_cast<double>(kExpN) * kExpRounds * threads, 5, [&] {
#pragma omp parallel
    {
      std::vector<double> x(kExpN);
      for (int i = 0; i < kExpN; ++i) x[i] = -static_cast<double>(i % 700) / 7.0;
      exps(x.data(), kExpN, kExpRounds);
#pragma omp atomic
      sink += x[1];
    }
  });
  const std::size_t n = std::size_t{1} << 27;  // 1 GiB of doubles
  std::vector<double> big(n, 1.0);
  const double bw = best_rate(static_cast<double>(n) * 8.0, 5, [&] {
    double total = 0.0;
#pragma omp parallel for reduction(+ : total) schedule(static)
    for (int part = 0; part < 64; ++part) total += read_sum(big.data() + n / 64 * part, n / 64);
    sink += total;
  });
  std::printf("{\"threads\": %d, \"fma_instructions_per_s\": %.6g, \"fma_flops_per_s\": %.6g, "
              "\"exp_per_s\": %.6g, \"read_bytes_per_s\": %.6g}\n",
              threads, fma, fma * 16.0, exp_rate, bw);
  return sink == 12345.678 ? 1 : 0;
}
