// The shared per-point math against direct formulas: densities from covariances (not
// from the factors the functions use), logsumexp at extremes, statistic updates.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/linalg.hpp"
#include "core/point_math.hpp"
#include "test_util.hpp"

namespace {

using cuem::math::kLog2Pi;

// log N(x | mu, Sigma) by solving Sigma y = (x - mu) with Gaussian elimination and taking
// the determinant from the elimination: independent of the Cholesky path under test.
double log_normal_direct(const std::vector<double>& x, const std::vector<double>& mu, std::vector<double> S) {
  const int D = static_cast<int>(x.size());
  std::vector<double> r(D);
  for (int i = 0; i < D; ++i) r[i] = x[i] - mu[i];
  const std::vector<double> diff = r;
  double logdet = 0.0;
  for (int c = 0; c < D; ++c) {  // no pivoting needed: S is positive definite
    logdet += std::log(S[c * D + c]);
    for (int i = c + 1; i < D; ++i) {
      const double f = S[i * D + c] / S[c * D + c];
      for (int j = c; j < D; ++j) S[i * D + j] -= f * S[c * D + j];
      r[i] -= f * r[c];
    }
  }
  std::vector<double> y(D);
  for (int i = D - 1; i >= 0; --i) {
    double s = r[i];
    for (int j = i + 1; j < D; ++j) s -= S[i * D + j] * y[j];
    y[i] = s / S[i * D + i];
  }
  double maha = 0.0;
  for (int i = 0; i < D; ++i) maha += diff[i] * y[i];
  return -0.5 * (D * kLog2Pi + logdet + maha);
}

class FullDensity : public ::testing::TestWithParam<int> {};

TEST_P(FullDensity, MatchesDirectFormula) {
  const int D = GetParam();
  std::mt19937_64 gen(1234 + D);
  SCOPED_TRACE("seed " + std::to_string(1234 + D));
  std::normal_distribution<double> z;
  cuem_test::Rng spd_rng(99 + D);
  const std::vector<double> S = cuem_test::random_spd(spd_rng, D, 0.5, 5.0);
  std::vector<double> P(D * D);
  ASSERT_LT(cuem::linalg::precision_cholesky_from_covariance(S.data(), P.data(), D), 0);
  const double log_det = cuem::linalg::log_det_triangular(P.data(), D);
  for (int t = 0; t < 20; ++t) {
    std::vector<double> x(D), mu(D);
    for (int i = 0; i < D; ++i) {
      x[i] = 3 * z(gen);
      mu[i] = z(gen);
    }
    const double maha = cuem::math::mahalanobis_sq_full(x.data(), mu.data(), P.data(), D);
    const double got = cuem::math::log_joint(std::log(0.25), log_det, maha, D);
    const double want = std::log(0.25) + log_normal_direct(x, mu, S);
    EXPECT_NEAR(got, want, 1e-10 * std::max(1.0, std::abs(want))) << "D=" << D << " trial " << t;
    // The float32 path evaluates the same point to float32 input precision.
    std::vector<float> xf(x.begin(), x.end());
    std::vector<double> xr(xf.begin(), xf.end());
    EXPECT_DOUBLE_EQ(cuem::math::mahalanobis_sq_full(xf.data(), mu.data(), P.data(), D),
                     cuem::math::mahalanobis_sq_full(xr.data(), mu.data(), P.data(), D));
  }
}

INSTANTIATE_TEST_SUITE_P(Dims, FullDensity, ::testing::Values(1, 2, 3, 7, 16, 33));

TEST(PointMath, DiagAndSphericalAreFullWithDiagonalFactor) {
  const int D = 5;
  std::vector<double> x{0.5, -1.0, 2.0, 0.0, 3.5}, mu{0.1, 0.2, -0.3, 0.4, 1.0};
  std::vector<double> p{1.5, 0.5, 2.0, 1.0, 0.25};
  std::vector<double> P(D * D, 0.0);
  for (int i = 0; i < D; ++i) P[i * D + i] = p[i];
  EXPECT_NEAR(cuem::math::mahalanobis_sq_diag(x.data(), mu.data(), p.data(), D),
              cuem::math::mahalanobis_sq_full(x.data(), mu.data(), P.data(), D), 1e-14);
  std::vector<double> q(D, 0.7);
  EXPECT_NEAR(cuem::math::mahalanobis_sq_spherical(x.data(), mu.data(), 0.7, D),
              cuem::math::mahalanobis_sq_diag(x.data(), mu.data(), q.data(), D), 1e-14);
}

TEST(PointMath, LogsumexpIsStableAtExtremes) {
  const double big[] = {1000.0, 1000.0};
  EXPECT_NEAR(cuem::math::logsumexp(big, 2), 1000.0 + std::log(2.0), 1e-12);
  const double tiny[] = {-1000.0, -1001.0, -5000.0};
  EXPECT_NEAR(cuem::math::logsumexp(tiny, 3), -1000.0 + std::log1p(std::exp(-1.0)), 1e-12);
  const double with_inf[] = {-INFINITY, 2.0};
  EXPECT_DOUBLE_EQ(cuem::math::logsumexp(with_inf, 2), 2.0);
  const double all_inf[] = {-INFINITY, -INFINITY};
  EXPECT_EQ(cuem::math::logsumexp(all_inf, 2), -INFINITY);
}

TEST(PointMath, ResponsibilitiesSumToOne) {
  double v[] = {-1000.0, -1002.0, -999.5, -1500.0};
  const double want_lse = cuem::math::logsumexp(v, 4);
  EXPECT_NEAR(cuem::math::normalize_log_joints(v, 4), want_lse, 1e-12);
  double s = 0.0;
  for (double r : v) {
    EXPECT_GE(r, 0.0);
    s += r;
  }
  EXPECT_NEAR(s, 1.0, 1e-15);
  EXPECT_GT(v[2], v[0]);
  EXPECT_NEAR(v[0] / v[1], std::exp(2.0), 1e-12);
  double none[] = {-INFINITY, -INFINITY};
  EXPECT_EQ(cuem::math::normalize_log_joints(none, 2), -INFINITY);
  EXPECT_EQ(none[0], 0.5);
}

TEST(PointMath, ShiftedStatisticsGiveTheCentredScatter) {
  // Two points with weights; about any shift, S2 - S1 S1^T / N equals the scatter about
  // the weighted mean.
  const int D = 2;
  const double a[] = {1e4 + 1.0, 1e4 - 2.0}, b[] = {1e4 - 1.0, 1e4 + 3.0};
  const double c[] = {1e4, 1e4};
  double s1[2] = {0, 0}, s2[4] = {0, 0, 0, 0};
  cuem::math::add_point_full(s1, s2, a, c, 0.25, D);
  cuem::math::add_point_full(s1, s2, b, c, 0.75, D);
  const double n = 1.0;
  const double m0 = (0.25 * a[0] + 0.75 * b[0]), m1 = (0.25 * a[1] + 0.75 * b[1]);
  const double want01 = 0.25 * (a[0] - m0) * (a[1] - m1) + 0.75 * (b[0] - m0) * (b[1] - m1);
  EXPECT_NEAR(s2[0 * D + 1] - s1[0] * s1[1] / n, want01, 1e-12);
  EXPECT_NEAR(c[0] + s1[0] / n, m0, 1e-12);
  double d1[2] = {0, 0}, d2[2] = {0, 0};
  cuem::math::add_point_diag(d1, d2, a, c, 0.25, D);
  cuem::math::add_point_diag(d1, d2, b, c, 0.75, D);
  EXPECT_DOUBLE_EQ(d2[0], s2[0]);
  EXPECT_DOUBLE_EQ(d2[1], s2[3]);
}

}  // namespace
