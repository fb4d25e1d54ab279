// Device discovery and the shared math on a GPU. Everything here runs on any machine:
// without a device the GPU checks skip with the reason, and discovery must say "none"
// rather than crash (no driver reads as no device).
#include <gtest/gtest.h>

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
#include "cuem/version.hpp"
#if defined(CUEM_HAVE_CUDA)
#include "core/cuda_devices.hpp"
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

TEST(Device, SharedMathAgreesOnHostAndDevice) {
  std::string reason;
  if (cuem::cuda::list_devices(&reason).empty()) GTEST_SKIP() << "no CUDA device: " << reason;
  const int n = 1000, D = 7, K = 5;
  const unsigned seed = 2024;
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> z;
  std::vector<double> X(n * D), means(K * D), P(K * D * D), log_w(K), log_det(K);
  for (double& x : X) x = 2 * z(gen);
  for (double& m : means) m = z(gen);
  for (int k = 0; k < K; ++k) {
    cuem_test::Rng spd_rng(seed + k);
    const std::vector<double> S = cuem_test::random_spd(spd_rng, D, 0.5, 5.0);
    ASSERT_LT(cuem::linalg::precision_cholesky_from_covariance(S.data(), P.data() + k * D * D, D), 0);
    log_det[k] = cuem::linalg::log_det_triangular(P.data() + k * D * D, D);
    log_w[k] = std::log(1.0 / K);
  }
  std::vector<double> got(n * K, std::nan(""));
  cuem::cuda::log_joint_full_on_device(0, X.data(), n, D, K, log_w.data(), means.data(), P.data(), log_det.data(),
                                       got.data());
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < K; ++k) {
      const double want = cuem::math::log_joint(
          log_w[k], log_det[k],
          cuem::math::mahalanobis_sq_full(X.data() + i * D, means.data() + k * D, P.data() + k * D * D, D), D);
      ASSERT_NEAR(got[i * K + k], want, 1e-12 * std::max(1.0, std::abs(want))) << "first mismatch at point " << i
                                                                                 << ", component " << k;
    }
}
#else
TEST(Device, BuiltWithoutCuda) {
  EXPECT_FALSE(cuem::built_with_cuda());
  GTEST_SKIP() << "this build has no CUDA code (CUEM_WITH_CUDA=OFF or no nvcc)";
}
#endif

}  // namespace
