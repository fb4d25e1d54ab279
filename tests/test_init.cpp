// Initialisation: every method starts a fit that converges; k-means lands on the blobs;
// user-given parameters are used exactly as given (checked against an M-step computed
// in the test); every method is a function of its seed; the option names parse.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "cuem/errors.hpp"
#include "cuem/fit.hpp"
#include "cuem/options.hpp"
#include "core/m_step.hpp"
#include "cpu/cpu_primitives.hpp"
#include "init/initialize.hpp"
#include "init/kmeans.hpp"
#include "test_util.hpp"

namespace {

using cuem::CovarianceType;
using cuem::InitMethod;

const std::vector<InitMethod> kAllInits = {InitMethod::kmeans, InitMethod::kmeans_plusplus, InitMethod::random,
                                           InitMethod::random_from_data};

std::string init_name(const testing::TestParamInfo<InitMethod>& info) {
  switch (info.param) {
    case InitMethod::kmeans: return "kmeans";
    case InitMethod::kmeans_plusplus: return "kmeans_plusplus";
    case InitMethod::random: return "random";
    case InitMethod::random_from_data: return "random_from_data";
  }
  return "unknown";
}

std::string type_name(const testing::TestParamInfo<CovarianceType>& info) {
  return cuem::to_string(info.param);
}

// ---- every method converges ------------------------------------------------------------

class EveryMethod : public testing::TestWithParam<InitMethod> {};

TEST_P(EveryMethod, ConvergesToAValidModelOnSeparatedData) {
  const std::uint64_t seed = 5;
  SCOPED_TRACE("mixture seed 20, data seed 21, fit seed " + std::to_string(seed));
  const cuem_test::Mixture mix = cuem_test::make_mixture(CovarianceType::full, 3, 2, 12.0, 20);
  const cuem_test::Dataset ds = cuem_test::sample_mixture(mix, 3000, 21);
  for (CovarianceType type : cuem_test::all_covariance_types()) {
    SCOPED_TRACE(cuem::to_string(type));
    cuem::FitOptions opt;
    opt.n_components = 3;
    opt.covariance_type = type;
    opt.init = GetParam();
    opt.seed = seed;
    opt.max_iter = 500;  // random responsibilities start near-symmetric and take a while
    const cuem::FitResult r = cuem::fit(ds.view(), opt);
    EXPECT_TRUE(r.converged) << "n_iter " << r.n_iter;
    EXPECT_TRUE(cuem_test::all_finite(r.model));
    EXPECT_TRUE(std::isfinite(r.lower_bound));
    EXPECT_NO_THROW(cuem::validate_model(r.model));
    EXPECT_EQ(r.n_decreases, 0);
  }
}

TEST_P(EveryMethod, DeterministicPerSeed) {
  SCOPED_TRACE("mixture seed 22, data seed 23, fit seeds 0..3");
  // One broad blob and four components: no natural answer, so the seed decides.
  const cuem_test::Mixture mix = cuem_test::make_mixture(CovarianceType::full, 1, 3, 1.0, 22);
  const cuem_test::Dataset ds = cuem_test::sample_mixture(mix, 1000, 23);
  cuem::FitOptions opt;
  opt.n_components = 4;
  opt.init = GetParam();
  opt.max_iter = 5;
  opt.seed = 0;
  const cuem::FitResult a = cuem::fit(ds.view(), opt);
  const cuem::FitResult b = cuem::fit(ds.view(), opt);
  EXPECT_TRUE(a.model.weights == b.model.weights);
  EXPECT_TRUE(a.model.means == b.model.means);
  EXPECT_TRUE(a.model.covariances == b.model.covariances);
  EXPECT_TRUE(a.model.precisions_cholesky == b.model.precisions_cholesky);
  ASSERT_FALSE(a.trace.empty());
  ASSERT_FALSE(b.trace.empty());
  EXPECT_EQ(a.trace.front().mean_log_likelihood, b.trace.front().mean_log_likelihood);

  // The first log-likelihood is that of the initial parameters: another seed, another start.
  bool differs = false;
  for (std::uint64_t seed = 1; seed <= 3 && !differs; ++seed) {
    opt.seed = seed;
    const cuem::FitResult c = cuem::fit(ds.view(), opt);
    differs = c.trace.front().mean_log_likelihood != a.trace.front().mean_log_likelihood;
  }
  EXPECT_TRUE(differs) << "seeds 0..3 all gave the same initial parameters";
}

INSTANTIATE_TEST_SUITE_P(AllMethods, EveryMethod, testing::ValuesIn(kAllInits), init_name);

// Methods that seed from data points (k-means, k-means++, random_from_data) find the
// three blobs: every true mean has a fitted mean within 5 standard errors sqrt(S_ii / n_k).
class SeedingMethod : public testing::TestWithParam<InitMethod> {};

TEST_P(SeedingMethod, FindsTheBlobs) {
  const std::uint64_t seed = 6;
  SCOPED_TRACE("mixture seed 20, data seed 21, fit seed " + std::to_string(seed));
  const cuem_test::Mixture mix = cuem_test::make_mixture(CovarianceType::full, 3, 2, 12.0, 20);
  const cuem_test::Dataset ds = cuem_test::sample_mixture(mix, 3000, 21);
  cuem::FitOptions opt;
  opt.n_components = 3;
  opt.init = GetParam();
  opt.seed = seed;
  opt.n_init = 3;  // one unlucky draw of 3 points may share a blob; three restarts rarely all do
  const cuem::FitResult r = cuem::fit(ds.view(), opt);
  const std::vector<int> perm = cuem_test::best_permutation(r.model.means, mix.means, 3, 2);
  for (int t = 0; t < 3; ++t) {
    const double nk = mix.weights[t] * 3000;
    const cuem_test::Matrix s = mix.covariance(t);
    for (int i = 0; i < 2; ++i)
      EXPECT_NEAR(r.model.means[perm[t] * 2 + i], mix.means[t * 2 + i], 5 * std::sqrt(s[i * 2 + i] / nk))
          << "component " << t << " dim " << i;
  }
}

// Random responsibilities start every component near the global mean, from where EM
// may settle in a local optimum, so they are left out here.
INSTANTIATE_TEST_SUITE_P(FromDataPoints, SeedingMethod,
                         testing::Values(InitMethod::kmeans, InitMethod::kmeans_plusplus, InitMethod::random_from_data),
                         init_name);

// ---- k-means' tolerance scale -----------------------------------------------------------

// The mean over features of the population variance (numpy's X.var(axis=0).mean(), which
// scikit-learn's KMeans scales tol by), on a case computed by hand: columns {1, 2, 3, 4}
// (variance 1.25) and {10, 10, 10, 14} (variance 3).
TEST(KMeansTolerance, MeanFeatureVarianceByHand) {
  const std::vector<double> x{1, 10, 2, 10, 3, 10, 4, 14};
  const cuem::DataView X(x.data(), 4, 2);
  cuem::CpuPrimitives cpu(X);
  EXPECT_DOUBLE_EQ(cpu.mean_feature_variance(), (1.25 + 3.0) / 2);
}

// ---- k-means on duplicate points ------------------------------------------------------

// Two distinct points, repeated, for three components: k-means ends with an empty cluster,
// and the fit says so (scikit-learn warns "Number of distinct clusters found smaller than
// n_clusters"), once however many restarts meet it; separated data say nothing.
TEST(KMeansNotice, FewerDistinctClustersThanComponentsIsNoticed) {
  std::vector<double> x;
  for (int i = 0; i < 60; ++i) x.push_back(i % 2 ? 5.0 : -5.0);
  cuem::FitOptions opt;
  opt.n_components = 3;
  opt.n_init = 2;
  opt.max_iter = 5;
  const cuem::FitResult r = cuem::fit(cuem::DataView(x.data(), 60, 1), opt);
  ASSERT_EQ(r.notices.size(), 1u);
  EXPECT_NE(r.notices[0].find("2 distinct clusters for 3 components"), std::string::npos) << r.notices[0];

  const cuem_test::Mixture mix = cuem_test::make_mixture(CovarianceType::full, 3, 2, 12.0, 20);
  const cuem_test::Dataset ds = cuem_test::sample_mixture(mix, 600, 21);
  EXPECT_TRUE(cuem::fit(ds.view(), opt).notices.empty());
}

// ---- point-seeded starts without a pass over the data ----------------------------------

// k-means++ and random_from_data start from K data points. The starting model is built from
// those points alone; it must be bitwise the M-step of the two statistics passes over
// one-hot responsibilities that scikit-learn's definition implies (means first, then the
// scatter about them). Data with a negative zero, an offset and float32 storage included.
TEST(PointSeeded, KMeansPlusPlusIsTheOneHotMStepBitwise) {
  SCOPED_TRACE("mixture seed 26, data seed 27, fit seed 3");
  const int K = 5, D = 3;
  const cuem_test::Mixture mix = cuem_test::make_mixture(CovarianceType::full, K, D, 6.0, 26);
  cuem_test::Dataset ds = cuem_test::sample_mixture(mix, 700, 27);
  for (double& v : ds.x) v += 1e4;
  ds.x[0] = -0.0;
  std::vector<float> x32(ds.x.begin(), ds.x.end());
  const cuem::DataView views[] = {ds.view(), cuem::DataView(x32.data(), ds.n, static_cast<std::size_t>(D))};
  for (const cuem::DataView& X : views) {
    for (CovarianceType type : cuem_test::all_covariance_types()) {
      SCOPED_TRACE(cuem::to_string(type));
      cuem::FitOptions opt;
      opt.n_components = K;
      opt.covariance_type = type;
      opt.init = InitMethod::kmeans_plusplus;
      const cuem::Model got = cuem::initialize(X, opt, 3);

      const std::vector<std::size_t> index = cuem::kmeans_plusplus(X, K, 3);
      const cuem::ResponsibilityFn one_hot = [&](std::size_t begin, std::size_t count, double* resp, double*) {
        std::fill(resp, resp + count * K, 0.0);
        for (int k = 0; k < K; ++k)
          if (index[k] >= begin && index[k] < begin + count) resp[(index[k] - begin) * K + k] = 1.0;
      };
      const cuem::SufficientStats first =
          cuem::accumulate_stats(X, CovarianceType::diag, K, std::vector<double>(K * D, 0.0), one_hot, false);
      std::vector<double> means(K * D);
      for (int i = 0; i < K * D; ++i) means[i] = first.s1[i] / first.nk[i / D];
      const cuem::Model want =
          cuem::m_step(cuem::accumulate_stats(X, type, K, means, one_hot, false), opt.reg_covar);
      EXPECT_TRUE(got.weights == want.weights);
      EXPECT_TRUE(got.means == want.means);
      EXPECT_TRUE(got.covariances == want.covariances);
      EXPECT_TRUE(got.precisions_cholesky == want.precisions_cholesky);
    }
  }
}

// random_from_data: K distinct data rows as means, equal weights, reg_covar as the covariance.
TEST(PointSeeded, RandomFromDataIsKDistinctRows) {
  SCOPED_TRACE("mixture seed 28, data seed 29, fit seeds 0..4");
  const int K = 6, D = 2;
  const cuem_test::Mixture mix = cuem_test::make_mixture(CovarianceType::full, 3, D, 6.0, 28);
  const cuem_test::Dataset ds = cuem_test::sample_mixture(mix, 50, 29);
  for (std::uint64_t seed = 0; seed < 5; ++seed) {
    cuem::FitOptions opt;
    opt.n_components = K;
    opt.covariance_type = CovarianceType::diag;
    opt.init = InitMethod::random_from_data;
    opt.reg_covar = 1e-3;
    const cuem::Model m = cuem::initialize(ds.view(), opt, seed);
    std::vector<std::size_t> rows;
    for (int k = 0; k < K; ++k) {
      std::size_t found = ds.n;
      for (std::size_t i = 0; i < ds.n && found == ds.n; ++i)
        if (m.means[k * D] == ds.row(i)[0] && m.means[k * D + 1] == ds.row(i)[1]) found = i;
      ASSERT_LT(found, ds.n) << "mean " << k << " is not a data row";
      for (std::size_t r : rows) EXPECT_NE(r, found) << "row " << found << " seeds two components";
      rows.push_back(found);
      EXPECT_DOUBLE_EQ(m.weights[k], 1.0 / K);
      EXPECT_EQ(m.covariances[k * D], 1e-3);
      EXPECT_EQ(m.covariances[k * D + 1], 1e-3);
    }
  }
}

// ---- random responsibilities, against their distribution ----------------------------------

// 'random' draws a uniform u_nk per point and component and normalises each row. The draws
// cannot be seen directly, but on the data x_n = e_n (N points in D = N dimensions, one
// one-hot row each) the starting model gives them back: mean k is sum_n r_nk e_n / N_k,
// so r_nk = mean_k[n] N_k with N_k = weight_k N. The test checks what the draws must be
// without calling the library's generator: rows on the simplex; for K = 2, r_n0 =
// u_1 / (u_1 + u_2) has CDF r / (2 (1 - r)) below 1/2 and 1 - (1 - r) / (2 r) above
// (Kolmogorov-Smirnov against it); neighbouring points uncorrelated; one seed
// reproduces its draws, another seed gives others; and the starting model is the M-step
// of those responsibilities by the textbook formulas (cuem_test::m_step).
std::vector<double> one_hot_rows(int n) {
  std::vector<double> x(static_cast<std::size_t>(n) * n, 0.0);
  for (int i = 0; i < n; ++i) x[static_cast<std::size_t>(i) * n + i] = 1.0;
  return x;
}

// The responsibilities (N x K) a starting model on one_hot_rows(N) was made from.
std::vector<double> recovered_responsibilities(const cuem::Model& m, int n) {
  const int k = m.n_components;
  std::vector<double> r(static_cast<std::size_t>(n) * k);
  for (int c = 0; c < k; ++c)
    for (int i = 0; i < n; ++i) r[i * k + c] = m.means[static_cast<std::size_t>(c) * n + i] * m.weights[c] * n;
  return r;
}

cuem::Model random_start(cuem::DataView X, int k, CovarianceType type, std::uint64_t seed) {
  cuem::FitOptions opt;
  opt.n_components = k;
  opt.covariance_type = type;
  opt.init = InitMethod::random;
  opt.reg_covar = 1e-3;
  return cuem::initialize(X, opt, seed);
}

TEST(RandomInit, ResponsibilitiesAreNormalisedUniformDraws) {
  const int n = 1000, k = 2;
  SCOPED_TRACE("init seeds 11 and 12");
  const std::vector<double> x = one_hot_rows(n);
  const cuem::DataView X(x.data(), n, n);
  const std::vector<double> r = recovered_responsibilities(random_start(X, k, CovarianceType::diag, 11), n);

  std::vector<double> first(n);
  for (int i = 0; i < n; ++i) {
    ASSERT_NEAR(r[i * k] + r[i * k + 1], 1.0, 1e-12) << "row " << i;
    ASSERT_GT(r[i * k], 0.0) << "row " << i;
    ASSERT_LT(r[i * k], 1.0) << "row " << i;
    first[i] = r[i * k];
  }

  // Kolmogorov-Smirnov against the ratio's CDF; 2.23 / sqrt(N) is the 1e-4 level.
  std::vector<double> sorted = first;
  std::sort(sorted.begin(), sorted.end());
  const auto cdf = [](double v) { return v <= 0.5 ? v / (2 * (1 - v)) : 1 - (1 - v) / (2 * v); };
  double ks = 0;
  for (int i = 0; i < n; ++i)
    ks = std::max({ks, std::abs(cdf(sorted[i]) - static_cast<double>(i) / n),
                   std::abs(cdf(sorted[i]) - static_cast<double>(i + 1) / n)});
  EXPECT_LT(ks, 2.23 / std::sqrt(static_cast<double>(n))) << "KS statistic " << ks;

  // Neighbouring points are independent: lag-1 correlation within 4 standard errors of 0.
  const double mean = std::accumulate(first.begin(), first.end(), 0.0) / n;
  double cov01 = 0, var = 0;
  for (int i = 0; i < n; ++i) var += (first[i] - mean) * (first[i] - mean);
  for (int i = 0; i + 1 < n; ++i) cov01 += (first[i] - mean) * (first[i + 1] - mean);
  EXPECT_LT(std::abs(cov01 / var), 4 / std::sqrt(static_cast<double>(n))) << "lag-1 correlation";
  EXPECT_GT(var / n, 0.01) << "responsibilities hardly vary: not uniform draws";  // the ratio's variance is about 0.057

  // One seed reproduces its draws bitwise; another seed gives different, uncorrelated ones.
  EXPECT_TRUE(recovered_responsibilities(random_start(X, k, CovarianceType::diag, 11), n) == r);
  const std::vector<double> other = recovered_responsibilities(random_start(X, k, CovarianceType::diag, 12), n);
  int same = 0;
  double cross = 0;
  for (int i = 0; i < n; ++i) {
    same += std::abs(other[i * k] - r[i * k]) < 1e-9;
    cross += (other[i * k] - mean) * (first[i] - mean);
  }
  EXPECT_EQ(same, 0) << "seeds 11 and 12 share draws";
  EXPECT_LT(std::abs(cross / var), 4 / std::sqrt(static_cast<double>(n))) << "seeds 11 and 12 are correlated";
}

// Three components: every column's mean responsibility is 1/3 within 5 standard errors
// (the variance of u_1 / (u_1 + u_2 + u_3) is below 1/20).
TEST(RandomInit, ThreeComponentsShareTheMassEvenly) {
  const int n = 1000, k = 3;
  SCOPED_TRACE("init seed 13");
  const std::vector<double> x = one_hot_rows(n);
  const std::vector<double> r =
      recovered_responsibilities(random_start(cuem::DataView(x.data(), n, n), k, CovarianceType::spherical, 13), n);
  for (int c = 0; c < k; ++c) {
    double sum = 0;
    for (int i = 0; i < n; ++i) sum += r[i * k + c];
    EXPECT_NEAR(sum / n, 1.0 / 3, 5 * std::sqrt(0.05 / n)) << "component " << c;
  }
  for (int i = 0; i < n; ++i) ASSERT_NEAR(r[i * k] + r[i * k + 1] + r[i * k + 2], 1.0, 1e-12) << "row " << i;
}

// The starting model is the M-step of the drawn responsibilities, for every covariance
// type: the covariances (which the recovery does not use) by the textbook formulas.
class RandomInitMStep : public testing::TestWithParam<CovarianceType> {};

TEST_P(RandomInitMStep, StartIsTheMStepOfTheDraws) {
  const CovarianceType type = GetParam();
  const int n = 60, k = 3;
  SCOPED_TRACE("init seed 14");
  const std::vector<double> x = one_hot_rows(n);
  const cuem::DataView X(x.data(), n, n);
  const cuem::Model got = random_start(X, k, type, 14);
  const std::vector<double> r = recovered_responsibilities(got, n);
  for (int i = 0; i < n; ++i) ASSERT_NEAR(r[i * k] + r[i * k + 1] + r[i * k + 2], 1.0, 1e-12) << "row " << i;
  const cuem::Model want = cuem_test::m_step(X, r, k, type, 1e-3);
  EXPECT_LT(cuem_test::max_rel_diff(got.weights, want.weights), 1e-12);
  EXPECT_LT(cuem_test::max_rel_diff(got.means, want.means, cuem_test::max_abs(want.means)), 1e-12);
  EXPECT_LT(cuem_test::max_rel_diff(got.covariances, want.covariances, cuem_test::max_abs(want.covariances)), 1e-12);
  EXPECT_LT(cuem_test::max_rel_diff(got.precisions_cholesky, want.precisions_cholesky,
                                    cuem_test::max_abs(want.precisions_cholesky)),
            1e-10);
}

INSTANTIATE_TEST_SUITE_P(AllTypes, RandomInitMStep, testing::ValuesIn(cuem_test::all_covariance_types()), type_name);

// ---- k-means lands on the blobs before any EM ------------------------------------------

// With max_iter = 1 the fit is k-means' parameters, one E-step and one M-step. On blobs 20
// units apart k-means' hard labels are the true labels, so the means are the blob sample
// means (within 5 standard errors sqrt(S_ii / n_k) of the true centres), and the lower
// bound (the log-likelihood of k-means' parameters) is already the converged one.
TEST(KMeans, LandsOnBlobCentresBeforeEm) {
  const std::uint64_t seed = 8;
  SCOPED_TRACE("mixture seed 24, data seed 25, fit seed " + std::to_string(seed));
  const int k = 4, d = 3;
  const cuem_test::Mixture mix = cuem_test::make_mixture(CovarianceType::full, k, d, 20.0, 24);
  const cuem_test::Dataset ds = cuem_test::sample_mixture(mix, 4000, 25);
  cuem::FitOptions opt;
  opt.n_components = k;
  opt.init = InitMethod::kmeans;
  opt.seed = seed;
  opt.max_iter = 1;
  const cuem::FitResult one = cuem::fit(ds.view(), opt);
  EXPECT_EQ(one.n_iter, 1);
  EXPECT_FALSE(one.converged);  // the first change is against -inf
  ASSERT_EQ(one.trace.size(), 1u);

  const std::vector<int> perm = cuem_test::best_permutation(one.model.means, mix.means, k, d);
  for (int t = 0; t < k; ++t) {
    const double nk = mix.weights[t] * 4000;
    const cuem_test::Matrix s = mix.covariance(t);
    for (int i = 0; i < d; ++i)
      EXPECT_NEAR(one.model.means[perm[t] * d + i], mix.means[t * d + i], 5 * std::sqrt(s[i * d + i] / nk))
          << "component " << t << " dim " << i;
  }

  opt.max_iter = 100;
  const cuem::FitResult full = cuem::fit(ds.view(), opt);
  EXPECT_TRUE(full.converged);
  EXPECT_NEAR(one.lower_bound, full.lower_bound, 1e-6 * std::abs(full.lower_bound));
}

// ---- user-given parameters ---------------------------------------------------------------

// Starting parameters given in full (weights, means, precisions) and max_iter = 1: the
// fit's one E-step must use exactly them, so its lower bound is their mean
// log-likelihood and its model is the M-step of their responsibilities, both computed
// here by the textbook formulas, independently of the library.
class UserInit : public testing::TestWithParam<CovarianceType> {};

TEST_P(UserInit, OneIterationIsTheHandComputedMStep) {
  const CovarianceType type = GetParam();
  const int k = 3, d = 3;
  SCOPED_TRACE("mixture seeds 26/27, data seed 28");
  // Overlapping data, and starting parameters from a different mixture, so the
  // responsibilities are soft and the M-step moves everything.
  const cuem_test::Mixture data_mix = cuem_test::make_mixture(type, k, d, 3.0, 26);
  const cuem_test::Dataset ds = cuem_test::sample_mixture(data_mix, 2000, 28);
  const cuem::Model start = cuem_test::model_from_mixture(cuem_test::make_mixture(type, k, d, 3.0, 27), type);

  for (InitMethod init : {InitMethod::kmeans, InitMethod::random}) {  // both must be overridden
    SCOPED_TRACE(cuem::to_string(init));
    cuem::FitOptions opt;
    opt.n_components = k;
    opt.covariance_type = type;
    opt.init = init;
    opt.max_iter = 1;
    opt.reg_covar = 1e-3;  // visible in the comparison below
    opt.weights_init = start.weights;
    opt.means_init = start.means;
    opt.precisions_init = cuem_test::precisions_of(start);
    const cuem::FitResult r = cuem::fit(ds.view(), opt);
    ASSERT_EQ(r.n_iter, 1);

    const double ll = cuem_test::mean_log_likelihood(start, ds.view());
    EXPECT_NEAR(r.lower_bound, ll, 1e-10 * std::abs(ll));

    const cuem::Model expected =
        cuem_test::m_step(ds.view(), cuem_test::responsibilities(start, ds.view()), k, type, opt.reg_covar);
    const cuem::Model& got = r.model;
    EXPECT_LT(cuem_test::max_rel_diff(got.weights, expected.weights), 1e-10);
    EXPECT_LT(cuem_test::max_rel_diff(got.means, expected.means), 1e-10);
    EXPECT_LT(cuem_test::max_rel_diff(got.covariances, expected.covariances, cuem_test::max_abs(expected.covariances)),
              1e-10);
    EXPECT_LT(cuem_test::max_rel_diff(got.precisions_cholesky, expected.precisions_cholesky,
                                      cuem_test::max_abs(expected.precisions_cholesky)),
              1e-10);
  }
}

INSTANTIATE_TEST_SUITE_P(AllTypes, UserInit, testing::ValuesIn(cuem_test::all_covariance_types()), type_name);

// ---- names --------------------------------------------------------------------------------

TEST(Names, CovarianceTypesRoundTrip) {
  for (CovarianceType type : cuem_test::all_covariance_types())
    EXPECT_EQ(cuem::parse_covariance_type(cuem::to_string(type)), type);
  EXPECT_EQ(cuem::parse_covariance_type("full"), CovarianceType::full);
  EXPECT_EQ(cuem::parse_covariance_type("spherical"), CovarianceType::spherical);
  for (const char* junk : {"", "fulll", "diagonal-ish", "tie", "banana"})
    EXPECT_THROW(cuem::parse_covariance_type(junk), cuem::InvalidArgument) << "'" << junk << "'";
}

// With weights, means and precisions all given there is nothing for the init method to
// do: it is not run, so every method gives the same fit.
TEST(Init, AllParametersGivenSkipTheInitMethod) {
  const cuem_test::Mixture mix = cuem_test::make_mixture(CovarianceType::full, 3, 2, 4.0, 77);
  const cuem_test::Dataset ds = cuem_test::sample_mixture(mix, 3000, 78);
  const cuem::Model truth = cuem_test::model_from_mixture(mix, CovarianceType::full);
  cuem::FitOptions o;
  o.n_components = 3;
  o.weights_init = truth.weights;
  o.means_init = truth.means;
  o.precisions_init = cuem_test::precisions_of(truth);
  o.max_iter = 5;
  o.init = InitMethod::kmeans;
  const cuem::FitResult a = cuem::fit(ds.view(), o);
  for (InitMethod m : {InitMethod::random, InitMethod::kmeans_plusplus, InitMethod::random_from_data}) {
    o.init = m;
    const cuem::FitResult b = cuem::fit(ds.view(), o);
    EXPECT_EQ(b.model.means, a.model.means) << cuem::to_string(m);
    EXPECT_EQ(b.model.covariances, a.model.covariances) << cuem::to_string(m);
    EXPECT_EQ(b.lower_bound, a.lower_bound) << cuem::to_string(m);
  }
}

TEST(Names, InitMethodsRoundTrip) {
  for (InitMethod m : kAllInits) EXPECT_EQ(cuem::parse_init_method(cuem::to_string(m)), m);
  EXPECT_EQ(cuem::parse_init_method("kmeans"), InitMethod::kmeans);
  EXPECT_EQ(cuem::parse_init_method("k-means++"), InitMethod::kmeans_plusplus);
  EXPECT_EQ(cuem::parse_init_method("kmeans++"), InitMethod::kmeans_plusplus);
  EXPECT_EQ(cuem::parse_init_method("random"), InitMethod::random);
  EXPECT_EQ(cuem::parse_init_method("random_from_data"), InitMethod::random_from_data);
  for (const char* junk : {"", "k-means", "kmeans+", "randomly", "banana"})
    EXPECT_THROW(cuem::parse_init_method(junk), cuem::InvalidArgument) << "'" << junk << "'";
}

TEST(Names, DevicesParse) {
  cuem::Device dev = cuem::parse_device("cpu");
  EXPECT_EQ(dev.kind, cuem::DeviceKind::cpu);
  dev = cuem::parse_device("auto");
  EXPECT_EQ(dev.kind, cuem::DeviceKind::automatic);
  dev = cuem::parse_device("cuda");
  EXPECT_EQ(dev.kind, cuem::DeviceKind::cuda);
  EXPECT_EQ(dev.index, 0);
  dev = cuem::parse_device("cuda:3");
  EXPECT_EQ(dev.kind, cuem::DeviceKind::cuda);
  EXPECT_EQ(dev.index, 3);
  for (const char* junk : {"", "gpu", "cuda:", "cuda:x", "cuda:-1", "cuda:1x", "cpu:0x", "banana"})
    EXPECT_THROW(cuem::parse_device(junk), cuem::InvalidArgument) << "'" << junk << "'";
}

}  // namespace
