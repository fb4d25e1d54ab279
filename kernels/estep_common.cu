// The E-step pieces that do not depend on the arithmetic type: the statistics layout and
// the fixed-order accumulation of segment partials.
#include "cuda_check.cuh"
#include "device_memory.cuh"
#include "estep_policy.cuh"

namespace cuem::cuda {
namespace {

__global__ void accumulate_segments_kernel(const double* __restrict__ partials, std::size_t n_segments,
                                           std::size_t L, double* __restrict__ total) {
  const std::size_t j = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= L) return;
  double acc = total[j];
  for (std::size_t s = 0; s < n_segments; ++s) acc += partials[s * L + j];
  total[j] = acc;
}

}  // namespace

std::vector<unsigned> stats_entries(CovarianceType type, int D) {
  const auto pack = [](int a, int b) { return static_cast<unsigned>(a) | (static_cast<unsigned>(b) << 16); };
  std::vector<unsigned> e;
  e.push_back(pack(D, D));
  for (int i = 0; i < D; ++i) e.push_back(pack(i, D));
  if (type == CovarianceType::full || type == CovarianceType::tied) {
    for (int i = 0; i < D; ++i)
      for (int j = i; j < D; ++j) e.push_back(pack(i, j));
  } else {
    for (int d = 0; d < D; ++d) e.push_back(pack(d, d));
  }
  return e;
}

int max_stats_dim(std::size_t element_bytes) noexcept {
  // One staged point (D + 2 values) and the group-reduction buffer in 48 KiB.
  const std::size_t room = 48 * 1024 - detail::kStatsThreads * sizeof(double);
  return static_cast<int>(std::min<std::size_t>(room / element_bytes - 2, 65534));
}

std::size_t deferred_norm_rows(CovarianceType type, int K, int D, std::size_t element_bytes,
                               const CudaTuning& tuning) {
  return element_bytes == sizeof(float) ? detail::deferred_norm_rows<float>(type, K, D, tuning)
                                        : detail::deferred_norm_rows<double>(type, K, D, tuning);
}

void launch_accumulate_segments(const double* partials, std::size_t n_segments, std::size_t L, double* total,
                                cudaStream_t stream) {
  if (n_segments == 0 || L == 0) return;
  constexpr int threads = 256;
  const auto blocks = checked_cast<unsigned>((L + threads - 1) / threads, "accumulate blocks");
  CUEM_LAUNCH(accumulate_segments_kernel, blocks, threads, 0, stream)(partials, n_segments, L, total);
  CUEM_CUDA_CHECK_LAUNCH();
}

}  // namespace cuem::cuda
