// EM gets the right answer where the answer is known: one component is the sample mean
// and covariance; well-separated synthetic mixtures are recovered within sampling error.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "cuem/fit.hpp"
#include "test_util.hpp"

namespace {

using cuem::CovarianceType;
using cuem_test::Matrix;

std::string type_name(const testing::TestParamInfo<CovarianceType>& info) {
  return cuem::to_string(info.param);
}

// The bookkeeping every fit must satisfy: n_iter within bounds, the trace of the best
// restart is n_iter long and ends at lower_bound (the mean log-likelihood of the last
// E-step, before the last M-step, as scikit-learn reports it).
void expect_consistent_result(const cuem::FitResult& r, const cuem::FitOptions& opt) {
  EXPECT_GE(r.n_iter, 1);
  EXPECT_LE(r.n_iter, opt.max_iter);
  EXPECT_GE(r.best_init, 0);
  EXPECT_LT(r.best_init, opt.n_init);
  EXPECT_EQ(r.n_decreases, 0) << "max_decrease " << r.max_decrease;
  int count = 0;
  double last = std::nan("");
  for (const cuem::TracePoint& t : r.trace) {
    if (t.init != r.best_init) continue;
    ++count;
    EXPECT_EQ(t.iteration, count);
    last = t.mean_log_likelihood;
  }
  EXPECT_EQ(count, r.n_iter);
  EXPECT_EQ(r.lower_bound, last);
  EXPECT_TRUE(std::isfinite(r.lower_bound));
}

// ---- one component: the answer is the sample moments --------------------------------

class SingleComponent : public testing::TestWithParam<CovarianceType> {};

TEST_P(SingleComponent, EqualsSampleMoments) {
  const CovarianceType type = GetParam();
  const int d = 4;
  const std::uint64_t seed = 11;
  SCOPED_TRACE("data seed " + std::to_string(seed));
  // Correlated data, not centred, so every term of the covariance matters.
  cuem_test::Mixture mix = cuem_test::make_mixture(CovarianceType::full, 1, d, 1.0, seed);
  mix.means = {3.0, -1.0, 0.5, 10.0};
  const cuem_test::Dataset ds = cuem_test::sample_mixture(mix, 1000, seed + 1);

  cuem::FitOptions opt;
  opt.n_components = 1;
  opt.covariance_type = type;
  opt.reg_covar = 1e-3;  // large enough that forgetting it, or adding it twice, shows
  opt.seed = 5;
  const cuem::FitResult r = cuem::fit(ds.view(), opt);
  expect_consistent_result(r, opt);
  EXPECT_TRUE(r.converged);

  const Matrix mean = cuem_test::sample_mean(ds.x.data(), ds.n, d);
  Matrix cov = cuem_test::biased_covariance(ds.x.data(), ds.n, d);
  Matrix expected;
  switch (type) {
    case CovarianceType::full:
    case CovarianceType::tied:
      for (int i = 0; i < d; ++i) cov[i * d + i] += opt.reg_covar;
      expected = cov;
      break;
    case CovarianceType::diag:
      for (int i = 0; i < d; ++i) expected.push_back(cov[i * d + i] + opt.reg_covar);
      break;
    case CovarianceType::spherical: {
      double s = 0;
      for (int i = 0; i < d; ++i) s += cov[i * d + i];
      expected.push_back(s / d + opt.reg_covar);
      break;
    }
  }

  const cuem::Model& m = r.model;
  EXPECT_EQ(m.covariance_type, type);
  EXPECT_EQ(m.n_components, 1);
  EXPECT_EQ(m.n_features, d);
  ASSERT_EQ(m.weights.size(), 1u);
  EXPECT_NEAR(m.weights[0], 1.0, 1e-15);
  EXPECT_LT(cuem_test::max_rel_diff(m.means, mean), 1e-10);
  ASSERT_EQ(m.covariances.size(), expected.size());
  // Relative to the largest entry: off-diagonal covariances can be near zero.
  EXPECT_LT(cuem_test::max_rel_diff(m.covariances, expected, cuem_test::max_abs(expected)), 1e-10);
  // With one component every M-step yields the same model, so the lower bound (taken
  // before the last M-step) is the returned model's own mean log-likelihood.
  EXPECT_NEAR(r.lower_bound, cuem_test::mean_log_likelihood(m, ds.view()),
              1e-10 * std::abs(r.lower_bound));
}

INSTANTIATE_TEST_SUITE_P(AllTypes, SingleComponent,
                         testing::ValuesIn(cuem_test::all_covariance_types()), type_name);

// ---- well-separated mixtures are recovered ------------------------------------------

struct RecoveryCase {
  CovarianceType type;
  int k;
  int d;
  std::size_t n;
};

std::string recovery_name(const testing::TestParamInfo<RecoveryCase>& info) {
  return std::string(cuem::to_string(info.param.type)) + "_K" + std::to_string(info.param.k) + "_D" +
         std::to_string(info.param.d);
}

class Recovery : public testing::TestWithParam<RecoveryCase> {};

// Tolerances are 5 standard errors of the maximum-likelihood estimate of a component
// with n_k = w_k N points (the clusters are >= 8 Mahalanobis units apart, so EM's
// estimates are within a negligible misassignment of the per-cluster sample moments):
//   weight  sqrt(w (1 - w) / N);  mean_i  sqrt(S_ii / n_k);
//   S_ij    sqrt((S_ii S_jj + S_ij^2) / n_k)  (Wishart), with N in place of n_k for tied;
//   spherical variance  v sqrt(2 / (n_k D)).
// With about 200 comparisons per case, a 5-sigma miss by chance has odds of about 1e-4.
TEST_P(Recovery, ParametersWithinSamplingError) {
  const RecoveryCase& c = GetParam();
  const std::uint64_t mix_seed = 100 + c.k * 10 + c.d, data_seed = 7, fit_seed = 3;
  SCOPED_TRACE("mixture seed " + std::to_string(mix_seed) + ", data seed " + std::to_string(data_seed) +
               ", fit seed " + std::to_string(fit_seed));
  const cuem_test::Mixture mix = cuem_test::make_mixture(c.type, c.k, c.d, 16.0, mix_seed);
  const cuem_test::Dataset ds = cuem_test::sample_mixture(mix, c.n, data_seed);

  cuem::FitOptions opt;
  opt.n_components = c.k;
  opt.covariance_type = c.type;
  opt.n_init = 3;  // guards against an unlucky k-means++ seeding, which is not under test
  opt.seed = fit_seed;
  const cuem::FitResult r = cuem::fit(ds.view(), opt);
  expect_consistent_result(r, opt);
  EXPECT_TRUE(r.converged);
  const cuem::Model& m = r.model;
  ASSERT_EQ(m.weights.size(), static_cast<std::size_t>(c.k));
  ASSERT_EQ(m.means.size(), static_cast<std::size_t>(c.k * c.d));
  ASSERT_EQ(m.covariances.size(), cuem::covariance_size(c.type, c.k, c.d));

  const std::vector<int> perm = cuem_test::best_permutation(m.means, mix.means, c.k, c.d);
  const double n = static_cast<double>(c.n);
  const int d = c.d;
  for (int t = 0; t < c.k; ++t) {
    SCOPED_TRACE("true component " + std::to_string(t) + " matched to fitted " + std::to_string(perm[t]));
    const int f = perm[t];
    const double w = mix.weights[t];
    const double nk = w * n;
    EXPECT_NEAR(m.weights[f], w, 5 * std::sqrt(w * (1 - w) / n));
    const Matrix s = mix.covariance(t);
    for (int i = 0; i < d; ++i)
      EXPECT_NEAR(m.means[f * d + i], mix.mean(t)[i], 5 * std::sqrt(s[i * d + i] / nk)) << "dim " << i;

    const Matrix fitted = cuem_test::full_covariance(m, f);
    const double n_cov = c.type == CovarianceType::tied ? n : nk;
    for (int i = 0; i < d; ++i) {
      for (int j = 0; j < d; ++j) {
        if (c.type == CovarianceType::diag && i != j) continue;
        if (c.type == CovarianceType::spherical && (i != j || i > 0)) continue;
        double se = std::sqrt((s[i * d + i] * s[j * d + j] + s[i * d + j] * s[i * d + j]) / n_cov);
        if (c.type == CovarianceType::spherical) se = s[0] * std::sqrt(2.0 / (nk * d));
        EXPECT_NEAR(fitted[i * d + j], s[i * d + j], 5 * se) << "entry " << i << "," << j;
      }
    }
  }
}

std::vector<RecoveryCase> recovery_cases() {
  std::vector<RecoveryCase> cases;
  for (CovarianceType type : cuem_test::all_covariance_types()) {
    cases.push_back({type, 3, 2, 20000});
    cases.push_back({type, 4, 5, 20000});
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(AllTypes, Recovery, testing::ValuesIn(recovery_cases()), recovery_name);

// ---- the one-dimensional textbook mixture ----------------------------------------------

// 0.4 N(-2, 0.8^2) + 0.6 N(3, 1.2^2), N = 50000. Standard errors of the MLE (the modes
// are 5 apart, ~2.5 pooled sigmas, so the overlap inflates them only a little):
//   weight sqrt(0.24 / N) = 0.0022; means 0.8 / sqrt(20000) = 0.0057 and
//   1.2 / sqrt(30000) = 0.0069; sigmas 0.8 / sqrt(40000) = 0.0040 and 1.2 / sqrt(60000) =
//   0.0049. Tolerances of 0.01 (weights) and 0.03 (means, sigmas) are >= 4 standard errors.
TEST(Textbook, OneDimensionalTwoComponents) {
  const std::uint64_t data_seed = 2024, fit_seed = 0;
  SCOPED_TRACE("data seed " + std::to_string(data_seed) + ", fit seed " + std::to_string(fit_seed));
  cuem_test::Mixture mix;
  mix.k = 2;
  mix.d = 1;
  mix.weights = {0.4, 0.6};
  mix.means = {-2.0, 3.0};
  mix.covariances = {0.8 * 0.8, 1.2 * 1.2};
  const cuem_test::Dataset ds = cuem_test::sample_mixture(mix, 50000, data_seed);

  for (CovarianceType type : cuem_test::all_covariance_types()) {
    // In one dimension every covariance type but tied is the same model.
    if (type == CovarianceType::tied) continue;
    SCOPED_TRACE(cuem::to_string(type));
    cuem::FitOptions opt;
    opt.n_components = 2;
    opt.covariance_type = type;
    opt.seed = fit_seed;
    const cuem::FitResult r = cuem::fit(ds.view(), opt);
    expect_consistent_result(r, opt);
    EXPECT_TRUE(r.converged);
    const cuem::Model& m = r.model;
    const int lo = m.means[0] < m.means[1] ? 0 : 1, hi = 1 - lo;
    EXPECT_NEAR(m.weights[lo], 0.4, 0.01);
    EXPECT_NEAR(m.weights[hi], 0.6, 0.01);
    EXPECT_NEAR(m.means[lo], -2.0, 0.03);
    EXPECT_NEAR(m.means[hi], 3.0, 0.03);
    EXPECT_NEAR(std::sqrt(m.covariances[lo]), 0.8, 0.03);
    EXPECT_NEAR(std::sqrt(m.covariances[hi]), 1.2, 0.03);
  }
}

// A feature whose spread is far below reg_covar is named in a notice (reg_covar swamps it
// and the components cannot be told apart along it); a constant feature, the case
// reg_covar exists for, and data at ordinary scales are not; reg_covar 0 names nothing.
TEST(Notices, FeaturesThatRegCovarSwampsAreNamed) {
  cuem_test::Mixture mix;
  mix.k = 2;
  mix.d = 1;
  mix.weights = {0.5, 0.5};
  mix.means = {-3.0, 3.0};
  mix.covariances = {1.0, 1.0};
  const cuem_test::Dataset ds = cuem_test::sample_mixture(mix, 2000, 7);
  const cuem_test::Dataset other = cuem_test::sample_mixture(mix, 2000, 8);
  std::vector<double> X, Y;  // features: ordinary, 1e-6 of another, constant 16 (Y: the first two)
  for (std::size_t i = 0; i < 2000; ++i) {
    const double v = ds.view().value(i, 0), w = 1e-6 * other.view().value(i, 0);
    X.insert(X.end(), {v, w, 16.0});
    Y.insert(Y.end(), {v, w});
  }
  const cuem::DataView view(X.data(), 2000, 3);
  for (CovarianceType type : cuem_test::all_covariance_types()) {
    SCOPED_TRACE(cuem::to_string(type));
    cuem::FitOptions opt;
    opt.n_components = 2;
    opt.covariance_type = type;
    const cuem::FitResult r = cuem::fit(view, opt);
    std::string swamped;
    for (const std::string& n : r.notices)
      if (n.find("too little") != std::string::npos) swamped = n;
    if (type == CovarianceType::spherical) {  // no per-feature variances to tell
      EXPECT_EQ(swamped, "");
      continue;
    }
    EXPECT_NE(swamped.find("feature 1 (0-based) varies too little"), std::string::npos) << swamped;
    EXPECT_NE(swamped.find("standardise the data or lower reg_covar"), std::string::npos) << swamped;
    opt.reg_covar = 0;  // (the constant feature would make the covariances singular)
    for (const std::string& n : cuem::fit(cuem::DataView(Y.data(), 2000, 2), opt).notices)
      EXPECT_EQ(n.find("too little"), std::string::npos) << n;
  }
  // Ordinary data and a constant feature: nothing to say.
  std::vector<double> plain;
  for (std::size_t i = 0; i < 2000; ++i) plain.insert(plain.end(), {ds.view().value(i, 0), 16.0});
  cuem::FitOptions opt;
  opt.n_components = 2;
  opt.covariance_type = CovarianceType::diag;
  EXPECT_TRUE(cuem::fit(cuem::DataView(plain.data(), 2000, 2), opt).notices.empty());
}

}  // namespace
