// Sufficient statistics as a monoid: re-centring to another shift is exact algebra, and
// merging sets taken about different shifts equals taking them about one.
#include <gtest/gtest.h>

// GCC 12 misreads std::vector's storage in test_util's make_mixture when it is inlined with
// constant sizes (a -Wfree-nonheap-object false positive).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wfree-nonheap-object"
#endif

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/sufficient_stats.hpp"
#include "cuem/errors.hpp"
#include "cpu/cpu_primitives.hpp"
#include "test_util.hpp"

namespace {

using cuem::CovarianceType;

// Soft responsibilities that depend only on the point's index and the component.
cuem::ResponsibilityFn soft(int K) {
  return [K](std::size_t begin, std::size_t count, double* resp, double*) {
    for (std::size_t b = 0; b < count; ++b) {
      double sum = 0;
      for (int k = 0; k < K; ++k)
        sum += resp[b * K + k] = 1.0 + std::sin(0.37 * static_cast<double>(begin + b) + 1.3 * k);
      for (int k = 0; k < K; ++k) resp[b * K + k] /= sum;
    }
  };
}

cuem::SufficientStats stats_about(cuem::DataView X, CovarianceType type, int K, const std::vector<double>& shift) {
  return cuem::accumulate_stats(X, type, K, shift, soft(K), false);
}

// Largest difference relative to the largest magnitude of the reference.
double worst(const std::vector<double>& got, const std::vector<double>& want) {
  if (got.size() != want.size()) return INFINITY;
  double diff = 0;
  for (std::size_t i = 0; i < got.size(); ++i) diff = std::max(diff, std::abs(got[i] - want[i]));
  return diff / std::max(cuem_test::max_abs(want), 1e-300);
}

class StatsMonoid : public testing::TestWithParam<CovarianceType> {};

TEST_P(StatsMonoid, RecentringEqualsTakingTheStatisticsAboutTheNewShift) {
  const CovarianceType type = GetParam();
  const int K = 3, D = 4;
  const cuem_test::Mixture mix = cuem_test::make_mixture(type, K, D, 3.0, 5);
  cuem_test::Dataset ds = cuem_test::sample_mixture(mix, 2001, 6);
  for (double& v : ds.x) v += 100.0;
  std::vector<double> a(mix.means), b(mix.means);
  for (std::size_t i = 0; i < a.size(); ++i) {
    a[i] += 100.0 + 0.5 * std::cos(static_cast<double>(i));
    b[i] += 99.0 - 0.25 * std::sin(static_cast<double>(i));
  }
  const cuem::SufficientStats about_a = stats_about(ds.view(), type, K, a);
  const cuem::SufficientStats about_b = stats_about(ds.view(), type, K, b);
  const cuem::SufficientStats moved = about_a.recentred(b);
  ASSERT_GT(cuem_test::max_abs(about_b.s2), 0.0);
  EXPECT_EQ(moved.shift, b);
  EXPECT_EQ(moved.nk, about_a.nk);
  EXPECT_LT(worst(moved.s1, about_b.s1), 1e-12);
  EXPECT_LT(worst(moved.s2, about_b.s2), 1e-12);
}

TEST_P(StatsMonoid, MergingAcrossShiftsEqualsOnePass) {
  const CovarianceType type = GetParam();
  const int K = 3, D = 4;
  const cuem_test::Mixture mix = cuem_test::make_mixture(type, K, D, 3.0, 7);
  const cuem_test::Dataset ds = cuem_test::sample_mixture(mix, 3000, 8);
  std::vector<double> a(mix.means), b(mix.means);
  for (double& v : b) v += 0.75;
  const std::size_t half = 1234;
  const cuem::DataView first(ds.x.data(), half, D);
  const cuem::DataView second(ds.x.data() + half * D, ds.n - half, D);
  // The second half's responsibilities are indexed from its own start: shift them.
  cuem::SufficientStats merged = stats_about(first, type, K, a);
  cuem::SufficientStats rest = cuem::accumulate_stats(
      second, type, K, b,
      [K, half](std::size_t begin, std::size_t count, double* resp, double* lp) { soft(K)(begin + half, count, resp, lp); },
      false);
  merged.merge(rest);
  const cuem::SufficientStats whole = stats_about(ds.view(), type, K, a);
  EXPECT_EQ(merged.shift, a);
  EXPECT_EQ(merged.n_points, ds.n);
  EXPECT_LT(worst(merged.nk, whole.nk), 1e-13);
  EXPECT_LT(worst(merged.s1, whole.s1), 1e-12);
  EXPECT_LT(worst(merged.s2, whole.s2), 1e-12);
}

INSTANTIATE_TEST_SUITE_P(AllTypes, StatsMonoid, testing::ValuesIn(cuem_test::all_covariance_types()),
                         [](const auto& info) { return std::string(cuem::to_string(info.param)); });

TEST(StatsMonoid, MergingDifferentShapesIsRefused) {
  const cuem::SufficientStats a = cuem::SufficientStats::zeros(CovarianceType::full, 2, 3, std::vector<double>(6, 0.0));
  const cuem::SufficientStats b = cuem::SufficientStats::zeros(CovarianceType::diag, 2, 3, std::vector<double>(6, 0.0));
  cuem::SufficientStats c = a;
  EXPECT_THROW(c.merge(b), cuem::Error);
}

}  // namespace
