// k-means' relocation of empty clusters (scikit-learn's _relocate_empty_clusters) through
// lloyd_step_relocating, on the CPU primitives and, in builds with CUDA (the emulated device
// included), on the CUDA primitives in float32 and float64. Constructed cases whose answers
// are worked out by hand, and random data against a plain loop written here.
//
// Built twice: against the library (CPU; the CUDA cases skip with the reason) and against
// the emulated device (tests/emu).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "core/rng.hpp"
#include "cpu/cpu_primitives.hpp"
#include "cuem/data_view.hpp"
#include "cuem/devices.hpp"
#include "engine/primitives.hpp"
#include "init/kmeans.hpp"
#if defined(CUEM_HAVE_CUDA)
#include "core/cuda_primitives.hpp"
#endif

namespace {

using cuem::DataView;

enum class Kind { cpu, cuda_float32, cuda_float64 };

std::string kind_name(const testing::TestParamInfo<Kind>& info) {
  switch (info.param) {
    case Kind::cpu:
      return "cpu";
    case Kind::cuda_float32:
      return "cuda_float32";
    case Kind::cuda_float64:
      return "cuda_float64";
  }
  return "unknown";
}

// The backend of `kind` for X, or null with `why` set when it cannot run here.
std::unique_ptr<cuem::Primitives> make(Kind kind, DataView X, std::string* why) {
  if (kind == Kind::cpu) return std::make_unique<cuem::CpuPrimitives>(X);
#if defined(CUEM_HAVE_CUDA)
  std::string reason;
  if (cuem::cuda_devices(&reason).empty()) {
    *why = "no CUDA device: " + reason;
    return nullptr;
  }
  return cuem::cuda::make_primitives(X, {}, {0, kind == Kind::cuda_float32 ? cuem::Precision::float32 : cuem::Precision::float64, 0});
#else
  *why = "built without CUDA";
  return nullptr;
#endif
}

class Relocation : public testing::TestWithParam<Kind> {
 protected:
  // One relocating step from `centers` (K x D) on the parameter's backend.
  cuem::LloydStep step(const std::vector<double>& x, std::size_t D, const std::vector<double>& centers) {
    X_ = DataView(x.data(), x.size() / D, D);
    backend_ = make(GetParam(), X_, &why_);
    if (!backend_) return {};
    const int K = static_cast<int>(centers.size() / D);
    // The case must really empty a cluster: the plain step leaves one at its centre.
    const cuem::LloydStep plain = backend_->lloyd_step(centers, K);
    EXPECT_GT(std::count(plain.counts.begin(), plain.counts.end(), 0.0), 0) << "no cluster empties";
    return cuem::lloyd_step_relocating(*backend_, X_, centers, K);
  }
  // float32 arithmetic on the device rounds the means.
  double tol() const { return GetParam() == Kind::cuda_float32 ? 1e-5 : 1e-12; }

  DataView X_;
  std::unique_ptr<cuem::Primitives> backend_;
  std::string why_;  // why backend_ could not be made
};

// In the test body: a GTEST_SKIP in a helper would return from the helper only.
#define SKIP_UNLESS_RAN() \
  if (!backend_) GTEST_SKIP() << why_

void expect_near_all(const std::vector<double>& got, const std::vector<double>& want, double tol) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i)
    EXPECT_NEAR(got[i], want[i], tol * std::max(1.0, std::abs(want[i]))) << "entry " << i;
}

// Cluster 1 owns (10,1), (11,1) and the outlier (30,1); nothing is nearest to (100,1).
// The outlier is the point farthest from its centre (18^2): it becomes cluster 2's centre
// and cluster 1's mean is that of the other two.
TEST_P(Relocation, EmptyClusterMovesToTheFarthestPoint) {
  const std::vector<double> x = {0, 0, 1, 0, 2, 0, 10, 1, 11, 1, 30, 1};
  const cuem::LloydStep s = step(x, 2, {1, 0, 12, 1, 100, 1});
  SKIP_UNLESS_RAN();
  expect_near_all(s.centers, {1, 0, 10.5, 1, 30, 1}, tol());
  EXPECT_EQ(s.counts, (std::vector<double>{3, 2, 1}));
}

// Two empty clusters (0 and 2): the farthest point (30,1), 18^2 from its centre, goes to
// cluster 0, the next, (10,1) at 2^2, to cluster 2; both leave cluster 3.
TEST_P(Relocation, FarthestGoesToTheLowestNumberedEmptyCluster) {
  const std::vector<double> x = {0, 0, 1, 0, 2, 0, 10, 1, 11, 1, 30, 1};
  const cuem::LloydStep s = step(x, 2, {100, 1, 1, 0, -100, 5, 12, 1});
  SKIP_UNLESS_RAN();
  expect_near_all(s.centers, {30, 1, 1, 0, 10, 1, 11, 1}, tol());
  EXPECT_EQ(s.counts, (std::vector<double>{1, 3, 1, 1}));
}

// (-2,0) and (2,0) are equally far from their centre (0,0): the lower index moves.
TEST_P(Relocation, TiesGoToTheLowerPointIndex) {
  const std::vector<double> x = {-2, 0, 0, 0, 2, 0, 40, 40, 41, 40};
  const cuem::LloydStep s = step(x, 2, {0, 0, 40.5, 40, 500, -500});
  SKIP_UNLESS_RAN();
  expect_near_all(s.centers, {1, 0, 40.5, 40, -2, 0}, tol());
  EXPECT_EQ(s.counts, (std::vector<double>{2, 2, 1}));
}

// (20,0) is cluster 1's only point and 10^2 from its centre, the farthest: it moves to
// cluster 2, and cluster 1, now empty, keeps its centre (10,0).
TEST_P(Relocation, ADonorLeftEmptyKeepsItsCentre) {
  const std::vector<double> x = {0, 0, 1, 0, 2, 0, 20, 0};
  const cuem::LloydStep s = step(x, 2, {1, 0, 10, 0, 1000, 0});
  SKIP_UNLESS_RAN();
  expect_near_all(s.centers, {1, 0, 10, 0, 20, 0}, tol());
  EXPECT_EQ(s.counts, (std::vector<double>{3, 0, 1}));
}

// Random points, three centres on data points and three far off (empty), against the rule
// written as a plain loop: assign, order every point by (distance desc, index asc), move.
TEST_P(Relocation, MatchesAPlainLoopOnRandomData) {
  constexpr std::size_t N = 301, D = 3;
  constexpr int K = 6;
  std::vector<double> x(N * D);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = cuem::rng::normal(7, 99, i) + (i % D == 0 ? 3.0 * (i / D % 3) : 0);
  std::vector<double> centers(K * D);
  const std::size_t picks[3] = {5, 100, 250};
  for (int k = 0; k < 3; ++k)
    for (std::size_t d = 0; d < D; ++d) centers[k * D + d] = x[picks[k] * D + d];
  for (int k = 3; k < K; ++k)
    for (std::size_t d = 0; d < D; ++d) centers[k * D + d] = (k % 2 ? 1000.0 : -1000.0) * (d + 1);

  // The reference.
  std::vector<int> label(N);
  std::vector<double> dist(N);
  std::vector<double> sum(K * D, 0.0), count(K, 0.0);
  for (std::size_t i = 0; i < N; ++i) {
    dist[i] = INFINITY;
    for (int k = 0; k < K; ++k) {
      double s = 0;
      for (std::size_t d = 0; d < D; ++d) s += (x[i * D + d] - centers[k * D + d]) * (x[i * D + d] - centers[k * D + d]);
      if (s < dist[i]) dist[i] = s, label[i] = k;
    }
    count[label[i]] += 1;
    for (std::size_t d = 0; d < D; ++d) sum[label[i] * D + d] += x[i * D + d];
  }
  std::vector<std::size_t> order(N);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return dist[a] > dist[b]; });
  std::size_t next = 0;
  for (int k = 0; k < K; ++k) {
    if (count[k] != 0) continue;
    const std::size_t p = order[next++];
    count[label[p]] -= 1;
    count[k] = 1;
    for (std::size_t d = 0; d < D; ++d) {
      sum[label[p] * D + d] -= x[p * D + d];
      sum[k * D + d] = x[p * D + d];
    }
  }
  ASSERT_EQ(next, 3u);
  std::vector<double> want(K * D);
  for (int k = 0; k < K; ++k)
    for (std::size_t d = 0; d < D; ++d) want[k * D + d] = sum[k * D + d] / count[k];

  const cuem::LloydStep s = step(x, D, centers);
  SKIP_UNLESS_RAN();
  expect_near_all(s.centers, want, GetParam() == Kind::cuda_float32 ? 1e-5 : 1e-12);
  EXPECT_EQ(s.counts, count);
}

INSTANTIATE_TEST_SUITE_P(Backends, Relocation,
                         testing::Values(Kind::cpu, Kind::cuda_float32, Kind::cuda_float64), kind_name);

}  // namespace
