// Device discovery and the shared math on a GPU. Everything here runs on any machine:
// without a device the GPU checks skip with the reason, and discovery must say "none"
// rather than crash (no driver reads as no device).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "core/linalg.hpp"
#include "core/point_math.hpp"
#include "test_util.hpp"
#include "cuem/devices.hpp"
#include "cuem/errors.hpp"
#include "cuem/fit.hpp"
#include "cuem/model.hpp"
#include "cuem/version.hpp"
#if defined(CUEM_HAVE_CUDA)
#include "core/cuda_devices.hpp"
#include "cuda/device_checks.hpp"
#endif

namespace {

TEST(Device, AutoFitsOnWhateverIsThere) {
  std::vector<double> X{0.0, 1.0, 2.0, 3.0, 10.0, 11.0};
  cuem::FitOptions o;
  o.n_components = 2;
  o.device = cuem::parse_device("auto");
  const cuem::FitResult r = cuem::fit(cuem::DataView(X.data(), 6, 1), o);
  EXPECT_TRUE(std::isfinite(r.lower_bound));
}

TEST(Device, PublicDeviceListSaysWhyItIsEmpty) {
  std::string reason;
  const std::vector<cuem::CudaDevice> devices = cuem::cuda_devices(&reason);
  if (devices.empty()) {
    EXPECT_FALSE(reason.empty());
    EXPECT_EQ(cuem::built_with_cuda(), reason.find("without CUDA") == std::string::npos) << reason;
  }
  for (std::size_t i = 0; i < devices.size(); ++i) {
    EXPECT_EQ(devices[i].index, static_cast<int>(i));
    EXPECT_FALSE(devices[i].name.empty());
    EXPECT_GT(devices[i].total_memory, 0u);
  }
}

// Five full-covariance components and 1000 points in 7 dimensions, with the inputs the
// shared math takes (log weights, means, precision factors P with Sigma^-1 = P P^T, log
// det P) and, as the oracle, the test's own log_joint: it factors the covariances itself
// and solves L y = x - mu, sharing no code with point_math.hpp.
struct LogJointProblem {
  static constexpr int n = 1000, D = 7, K = 5;
  static constexpr unsigned seed = 2024;
  std::vector<double> X, means, P, log_w, log_det;
  cuem::Model model;         // the same components, as the oracle takes them
  std::vector<double> want;  // n x K, from the oracle
};

LogJointProblem make_log_joint_problem() {
  LogJointProblem p;
  const int n = p.n, D = p.D, K = p.K;
  std::mt19937_64 gen(p.seed);
  std::normal_distribution<double> z;
  p.X.resize(n * D);
  p.means.resize(K * D);
  p.P.resize(K * D * D);
  p.log_w.resize(K);
  p.log_det.resize(K);
  for (double& x : p.X) x = 2 * z(gen);
  for (double& m : p.means) m = z(gen);
  p.model.covariance_type = cuem::CovarianceType::full;
  p.model.n_components = K;
  p.model.n_features = D;
  p.model.means = p.means;
  const double weights[K] = {0.1, 0.15, 0.2, 0.25, 0.3};  // unequal, so a weight mix-up shows
  for (int k = 0; k < K; ++k) {
    cuem_test::Rng spd_rng(p.seed + k);
    const std::vector<double> S = cuem_test::random_spd(spd_rng, D, 0.5, 5.0);
    p.model.covariances.insert(p.model.covariances.end(), S.begin(), S.end());
    EXPECT_LT(cuem::linalg::precision_cholesky_from_covariance(S.data(), p.P.data() + k * D * D, D), 0);
    p.log_det[k] = cuem::linalg::log_det_triangular(p.P.data() + k * D * D, D);
    p.log_w[k] = std::log(weights[k]);
    p.model.weights.push_back(weights[k]);
  }
  p.want = cuem_test::log_joint(p.model, cuem::DataView(p.X.data(), n, D));
  return p;
}

// The two computations round differently (a triangular solve against a product with the
// precision factor); values are O(10-100), so 1e-10 relative is ~1e6 ulp of slack for
// rounding and still far below any formula error.
void expect_matches_oracle(const LogJointProblem& p, const std::vector<double>& got) {
  ASSERT_EQ(got.size(), p.want.size());
  for (int i = 0; i < p.n; ++i)
    for (int k = 0; k < p.K; ++k) {
      const double want = p.want[i * p.K + k];
      ASSERT_NEAR(got[i * p.K + k], want, 1e-10 * std::max(1.0, std::abs(want)))
          << "first mismatch at point " << i << ", component " << k;
    }
}

// The host side of the shared math, against the oracle: the same check as on the device
// below, so a formula error in point_math.hpp fails here on every machine.
TEST(Device, SharedMathOnHostMatchesTheOracle) {
  SCOPED_TRACE("seed " + std::to_string(LogJointProblem::seed));
  const LogJointProblem p = make_log_joint_problem();
  const int D = p.D, K = p.K;
  std::vector<double> got(p.n * K, std::nan(""));
  for (int i = 0; i < p.n; ++i)
    for (int k = 0; k < K; ++k)
      got[i * K + k] = cuem::math::log_joint(
          p.log_w[k], p.log_det[k],
          cuem::math::mahalanobis_sq_full(p.X.data() + i * D, p.means.data() + k * D, p.P.data() + k * D * D, D), D);
  expect_matches_oracle(p, got);
}

#if defined(CUEM_HAVE_CUDA)
TEST(Device, DiscoveryNeverThrows) {
  std::string reason;
  const auto devices = cuem::cuda::list_devices(&reason);
  if (devices.empty()) {
    EXPECT_FALSE(reason.empty());
    GTEST_SKIP() << "no CUDA device: " << reason;
  }
  for (const auto& d : devices) {
    EXPECT_GT(d.total_memory, 0u);
    EXPECT_GE(d.compute_major, 5);
  }
}

// The device's log joints against the oracle (not against the host's point_math, which
// shares the device's formulas: a formula error would cancel).
TEST(Device, SharedMathOnDeviceMatchesTheOracle) {
  std::string reason;
  if (cuem::cuda::list_devices(&reason).empty()) GTEST_SKIP() << "no CUDA device: " << reason;
  SCOPED_TRACE("seed " + std::to_string(LogJointProblem::seed));
  const LogJointProblem p = make_log_joint_problem();
  std::vector<double> got(p.n * p.K, std::nan(""));
  cuem::cuda::log_joint_full_on_device(0, p.X.data(), p.n, p.D, p.K, p.log_w.data(), p.means.data(), p.P.data(),
                                       p.log_det.data(), got.data());
  expect_matches_oracle(p, got);
}
#else
TEST(Device, BuiltWithoutCuda) {
  EXPECT_FALSE(cuem::built_with_cuda());
  GTEST_SKIP() << "this build has no CUDA code (CUEM_WITH_CUDA=OFF or no nvcc)";
}
#endif

}  // namespace
