// Host linear algebra of the M-step, checked through identities it must satisfy.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "core/linalg.hpp"
#include "test_util.hpp"

namespace {

// Eigenvalues between 0.1 and 10: well enough conditioned for the 1e-8 identities.
std::vector<double> random_spd(int D, unsigned seed) {
  cuem_test::Rng rng(seed);
  return cuem_test::random_spd(rng, D, 0.1, 10.0);
}

class Linalg : public ::testing::TestWithParam<int> {};

TEST_P(Linalg, PrecisionCholeskyInvertsTheCovariance) {
  const int D = GetParam();
  const std::vector<double> S = random_spd(D, 7u + D);
  std::vector<double> P(D * D);
  ASSERT_LT(cuem::linalg::precision_cholesky_from_covariance(S.data(), P.data(), D), 0);
  // Upper triangular, and S (P P^T) = I.
  for (int i = 0; i < D; ++i)
    for (int j = 0; j < i; ++j) EXPECT_EQ(P[i * D + j], 0.0);
  double worst = 0.0;
  for (int i = 0; i < D; ++i)
    for (int j = 0; j < D; ++j) {
      double s = 0.0;
      for (int p = 0; p < D; ++p) {
        double prec_pj = 0.0;
        for (int q = 0; q < D; ++q) prec_pj += P[p * D + q] * P[j * D + q];
        s += S[i * D + p] * prec_pj;
      }
      worst = std::max(worst, std::abs(s - (i == j ? 1.0 : 0.0)));
    }
  EXPECT_LT(worst, 1e-8) << "D=" << D;
}

TEST_P(Linalg, SpdInverseRoundTrips) {
  const int D = GetParam();
  const std::vector<double> S = random_spd(D, 99u + D);
  std::vector<double> inv(D * D), back(D * D);
  ASSERT_LT(cuem::linalg::spd_inverse(S.data(), inv.data(), D), 0);
  ASSERT_LT(cuem::linalg::spd_inverse(inv.data(), back.data(), D), 0);
  for (int i = 0; i < D * D; ++i) EXPECT_NEAR(back[i], S[i], 1e-7 * (1.0 + std::abs(S[i])));
}

INSTANTIATE_TEST_SUITE_P(Dims, Linalg, ::testing::Values(1, 2, 5, 16, 64));

TEST(LinalgFailure, NamesTheFirstBadPivot) {
  // Rank one in its leading 2 x 2 block: pivot 1 is zero.
  std::vector<double> S{1, 1, 0, 1, 1, 0, 0, 0, 1};
  EXPECT_EQ(cuem::linalg::cholesky_lower(S.data(), 3), 1);
  std::vector<double> N{-1.0};
  EXPECT_EQ(cuem::linalg::cholesky_lower(N.data(), 1), 0);
}

TEST(LinalgLogDet, IsSumOfLogDiagonal) {
  const std::vector<double> P{2.0, 5.0, 0.0, 0.5};
  EXPECT_NEAR(cuem::linalg::log_det_triangular(P.data(), 2), std::log(1.0), 1e-15);
}

}  // namespace
