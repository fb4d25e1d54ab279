#pragma once
// Counter-based random numbers: the value for (seed, stream, counter) is a pure function,
// so results never depend on how many threads ask or in which order.
#include <cmath>
#include <cstdint>

// The uniform draws also run on a device (kernels/random_resp.cu draws the 'random'
// initialisation's responsibilities there, bitwise those of the host).
#if defined(__CUDACC__)
#define CUEM_RNG_HD __host__ __device__ inline
#else
#define CUEM_RNG_HD inline
#endif

namespace cuem::rng {

/// SplitMix64's finaliser: a bijective 64-bit mix with good avalanche.
CUEM_RNG_HD std::uint64_t mix(std::uint64_t z) {
  z += 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

CUEM_RNG_HD std::uint64_t hash(std::uint64_t seed, std::uint64_t stream, std::uint64_t counter) {
  return mix(mix(mix(seed) ^ stream) ^ counter);
}

/// Uniform in [0, 1) with 53 random bits.
CUEM_RNG_HD double uniform(std::uint64_t seed, std::uint64_t stream, std::uint64_t counter) {
  return static_cast<double>(hash(seed, stream, counter) >> 11) * 0x1.0p-53;
}

/// Uniform in (0, 1]: safe for log.
inline double uniform_open0(std::uint64_t seed, std::uint64_t stream, std::uint64_t counter) {
  return static_cast<double>((hash(seed, stream, counter) >> 11) + 1) * 0x1.0p-53;
}

/// Standard normal by Box-Muller, using counters 2c and 2c+1.
inline double normal(std::uint64_t seed, std::uint64_t stream, std::uint64_t counter) {
  const double u1 = uniform_open0(seed, stream, 2 * counter);
  const double u2 = uniform(seed, stream, 2 * counter + 1);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586476925286766559 * u2);
}

/// Streams used by the library, so no two uses of one seed overlap.
enum Stream : std::uint64_t {
  kInitSeed = 1,
  kKmeansPlusPlus = 2,
  kRandomResp = 3,
  kRandomFromData = 4,
  kSampleComponent = 5,
  kSampleNormal = 6,
};

}  // namespace cuem::rng
