// The fitted-model API against independent computations: posteriors, log-densities,
// information criteria, sampling and model validation, for every covariance type.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "cuem/errors.hpp"
#include "cuem/fit.hpp"
#include "test_util.hpp"

namespace {

using cuem::CovarianceType;
using cuem_test::Matrix;

std::string type_name(const testing::TestParamInfo<CovarianceType>& info) {
  return cuem::to_string(info.param);
}

constexpr int kK = 3;
constexpr int kD = 3;
constexpr const char* kModelApiSeeds = "mixture seed 61, data seeds 62 (train) / 63 (test), fit seed 64";

// A fitted model of each type on overlapping clusters (so posteriors are not all 0/1),
// and fresh points from the same mixture to evaluate it on.
class ModelApi : public testing::TestWithParam<CovarianceType> {
 protected:
  void SetUp() override {
    const cuem_test::Mixture mix = cuem_test::make_mixture(GetParam(), kK, kD, 3.0, 61);
    const cuem_test::Dataset train = cuem_test::sample_mixture(mix, 3000, 62);
    test_ = cuem_test::sample_mixture(mix, 1500, 63);
    cuem::FitOptions opt;
    opt.n_components = kK;
    opt.covariance_type = GetParam();
    opt.seed = 64;
    model_ = cuem::fit(train.view(), opt).model;
  }
  cuem::Model model_;
  cuem_test::Dataset test_;
};

TEST_P(ModelApi, ShapesAreScikitLearns) {
  SCOPED_TRACE(kModelApiSeeds);
  EXPECT_EQ(model_.covariance_type, GetParam());
  EXPECT_EQ(model_.n_components, kK);
  EXPECT_EQ(model_.n_features, kD);
  EXPECT_EQ(model_.weights.size(), static_cast<std::size_t>(kK));
  EXPECT_EQ(model_.means.size(), static_cast<std::size_t>(kK * kD));
  std::size_t cov_size = 0;
  switch (GetParam()) {
    case CovarianceType::full: cov_size = kK * kD * kD; break;
    case CovarianceType::tied: cov_size = kD * kD; break;
    case CovarianceType::diag: cov_size = kK * kD; break;
    case CovarianceType::spherical: cov_size = kK; break;
  }
  EXPECT_EQ(cuem::covariance_size(GetParam(), kK, kD), cov_size);
  EXPECT_EQ(model_.covariances.size(), cov_size);
  EXPECT_EQ(model_.precisions_cholesky.size(), cov_size);
  EXPECT_NEAR(std::accumulate(model_.weights.begin(), model_.weights.end(), 0.0), 1.0, 1e-12);
  EXPECT_NO_THROW(cuem::validate_model(model_));
}

// precisions_cholesky is scikit-learn's: full/tied an upper-triangular P with
// P P^T = Sigma^-1; diag/spherical 1/sqrt(variance).
TEST_P(ModelApi, PrecisionsCholeskyMatchCovariances) {
  SCOPED_TRACE(kModelApiSeeds);
  const CovarianceType type = GetParam();
  if (type == CovarianceType::diag || type == CovarianceType::spherical) {
    for (std::size_t i = 0; i < model_.covariances.size(); ++i)
      EXPECT_NEAR(model_.precisions_cholesky[i], 1.0 / std::sqrt(model_.covariances[i]),
                  1e-12 * model_.precisions_cholesky[i]);
    return;
  }
  const int n_mats = type == CovarianceType::full ? kK : 1;
  const std::size_t dd = kD * kD;
  for (int c = 0; c < n_mats; ++c) {
    const Matrix p(model_.precisions_cholesky.begin() + c * dd, model_.precisions_cholesky.begin() + (c + 1) * dd);
    const Matrix cov(model_.covariances.begin() + c * dd, model_.covariances.begin() + (c + 1) * dd);
    for (int i = 0; i < kD; ++i) {
      EXPECT_GT(p[i * kD + i], 0.0);
      for (int j = 0; j < i; ++j) EXPECT_EQ(p[i * kD + j], 0.0) << "not upper triangular at " << i << "," << j;
    }
    // Sigma (P P^T) = I.
    const Matrix prod = cuem_test::matmul(cov, cuem_test::matmul(p, cuem_test::transpose(p, kD), kD), kD);
    EXPECT_LT(cuem_test::max_rel_diff(prod, cuem_test::identity(kD)), 1e-10) << "component " << c;
  }
}

TEST_P(ModelApi, PredictProbaRowsAreDistributions) {
  SCOPED_TRACE(kModelApiSeeds);
  const std::vector<double> proba = cuem::predict_proba(model_, test_.view());
  ASSERT_EQ(proba.size(), test_.n * kK);
  int uncertain = 0;  // the test is vacuous if every row is one-hot
  for (std::size_t p = 0; p < test_.n; ++p) {
    double s = 0;
    for (int c = 0; c < kK; ++c) {
      const double v = proba[p * kK + c];
      EXPECT_GE(v, 0.0);
      EXPECT_LE(v, 1.0);
      s += v;
      uncertain += (v > 0.01 && v < 0.99);
    }
    EXPECT_NEAR(s, 1.0, 1e-12) << "row " << p;
  }
  EXPECT_GT(uncertain, 10);
}

TEST_P(ModelApi, PredictProbaMatchesIndependentPosteriors) {
  SCOPED_TRACE(kModelApiSeeds);
  const std::vector<double> proba = cuem::predict_proba(model_, test_.view());
  const std::vector<double> expected = cuem_test::responsibilities(model_, test_.view());
  ASSERT_EQ(proba.size(), expected.size());
  for (std::size_t i = 0; i < proba.size(); ++i)
    ASSERT_NEAR(proba[i], expected[i], 1e-10) << "row " << i / kK << ", component " << i % kK;
}

TEST_P(ModelApi, PredictIsArgmaxOfProba) {
  SCOPED_TRACE(kModelApiSeeds);
  const std::vector<int> labels = cuem::predict(model_, test_.view());
  const std::vector<double> proba = cuem::predict_proba(model_, test_.view());
  ASSERT_EQ(labels.size(), test_.n);
  std::vector<int> used(kK, 0);
  for (std::size_t p = 0; p < test_.n; ++p) {
    const auto row = proba.begin() + p * kK;
    const int argmax = static_cast<int>(std::max_element(row, row + kK) - row);
    ASSERT_EQ(labels[p], argmax) << "row " << p;
    ++used[labels[p]];
  }
  for (int c = 0; c < kK; ++c) EXPECT_GT(used[c], 0) << "component " << c << " never predicted";
}

TEST_P(ModelApi, ScoreSamplesMatchIndependentLogDensity) {
  SCOPED_TRACE(kModelApiSeeds);
  const std::vector<double> got = cuem::score_samples(model_, test_.view());
  const std::vector<double> expected = cuem_test::log_likelihoods(model_, test_.view());
  ASSERT_EQ(got.size(), test_.n);
  for (std::size_t p = 0; p < test_.n; ++p)
    ASSERT_NEAR(got[p], expected[p], 1e-10 * std::max(1.0, std::abs(expected[p]))) << "row " << p;
}

TEST_P(ModelApi, ScoreIsMeanOfScoreSamples) {
  SCOPED_TRACE(kModelApiSeeds);
  const std::vector<double> ss = cuem::score_samples(model_, test_.view());
  const double mean = std::accumulate(ss.begin(), ss.end(), 0.0) / static_cast<double>(ss.size());
  EXPECT_NEAR(cuem::score(model_, test_.view()), mean, 1e-12 * std::abs(mean));
}

TEST_P(ModelApi, InformationCriteriaFollowScikitLearn) {
  SCOPED_TRACE(kModelApiSeeds);
  double cov_params = 0;
  switch (GetParam()) {
    case CovarianceType::full: cov_params = kK * kD * (kD + 1) / 2.0; break;
    case CovarianceType::tied: cov_params = kD * (kD + 1) / 2.0; break;
    case CovarianceType::diag: cov_params = kK * kD; break;
    case CovarianceType::spherical: cov_params = kK; break;
  }
  const double n_params = cov_params + kK * kD + kK - 1;
  EXPECT_EQ(cuem::n_parameters(model_), n_params);

  const double n = static_cast<double>(test_.n);
  const double s = cuem_test::mean_log_likelihood(model_, test_.view());
  const double bic = -2 * s * n + n_params * std::log(n);
  const double aic = -2 * s * n + 2 * n_params;
  EXPECT_NEAR(cuem::bic(model_, test_.view()), bic, 1e-10 * std::abs(bic));
  EXPECT_NEAR(cuem::aic(model_, test_.view()), aic, 1e-10 * std::abs(aic));
}

TEST_P(ModelApi, WrongFeatureCountIsRejected) {
  SCOPED_TRACE(kModelApiSeeds);
  std::vector<double> x(10 * (kD + 1), 0.5);
  const cuem::DataView view(x.data(), 10, kD + 1);
  EXPECT_THROW(cuem::predict(model_, view), cuem::Error);
  EXPECT_THROW(cuem::score_samples(model_, view), cuem::Error);
}

INSTANTIATE_TEST_SUITE_P(AllTypes, ModelApi, testing::ValuesIn(cuem_test::all_covariance_types()), type_name);

// ---- sampling ------------------------------------------------------------------------

class Sampling : public testing::TestWithParam<CovarianceType> {};

// A hand-built model (never fitted) sampled 200000 times: label frequencies and the
// moments of each component's draws within 5 standard errors (with ~40 comparisons per
// type, a chance failure has odds ~1e-5): frequency sqrt(w (1 - w) / n); mean
// sqrt(S_ii / n_k); covariance sqrt((S_ii S_jj + S_ij^2) / n_k), which also holds the
// zero off-diagonals of diag and spherical models.
TEST_P(Sampling, DrawsHaveTheModelsMoments) {
  const CovarianceType type = GetParam();
  const std::uint64_t seed = 71;
  SCOPED_TRACE("sample seed " + std::to_string(seed));
  const cuem_test::Mixture mix = cuem_test::make_mixture(type, kK, kD, 4.0, 70);
  const cuem::Model model = cuem_test::model_from_mixture(mix, type);
  ASSERT_NO_THROW(cuem::validate_model(model));

  const std::size_t n = 200000;
  const cuem::Samples s = cuem::sample(model, n, seed);
  ASSERT_EQ(s.X.size(), n * kD);
  ASSERT_EQ(s.labels.size(), n);
  ASSERT_TRUE(cuem_test::all_finite(s.X));
  // Grouped by component, as scikit-learn returns them.
  EXPECT_TRUE(std::is_sorted(s.labels.begin(), s.labels.end()));

  for (int c = 0; c < kK; ++c) {
    SCOPED_TRACE("component " + std::to_string(c));
    std::vector<double> rows;
    for (std::size_t p = 0; p < n; ++p)
      if (s.labels[p] == c) rows.insert(rows.end(), s.X.begin() + p * kD, s.X.begin() + (p + 1) * kD);
    const double nk = static_cast<double>(rows.size() / kD);
    const double w = model.weights[c];
    EXPECT_NEAR(nk / n, w, 5 * std::sqrt(w * (1 - w) / n));
    ASSERT_GT(nk, 1000);
    Matrix mean, cov;
    cuem_test::weighted_moments(rows.data(), rows.size() / kD, kD, {}, mean, cov);
    const Matrix sigma = mix.covariance(c);
    for (int i = 0; i < kD; ++i) {
      EXPECT_NEAR(mean[i], mix.mean(c)[i], 5 * std::sqrt(sigma[i * kD + i] / nk)) << "dim " << i;
      for (int j = 0; j < kD; ++j) {
        const double se =
            std::sqrt((sigma[i * kD + i] * sigma[j * kD + j] + sigma[i * kD + j] * sigma[i * kD + j]) / nk);
        EXPECT_NEAR(cov[i * kD + j], sigma[i * kD + j], 5 * se) << "entry " << i << "," << j;
      }
    }
  }
}

TEST_P(Sampling, DeterministicPerSeed) {
  SCOPED_TRACE("mixture seed 72, sample seeds 1, 1, 2");
  const CovarianceType type = GetParam();
  const cuem_test::Mixture mix = cuem_test::make_mixture(type, kK, kD, 4.0, 72);
  const cuem::Model model = cuem_test::model_from_mixture(mix, type);
  const cuem::Samples a = cuem::sample(model, 5000, 1);
  const cuem::Samples b = cuem::sample(model, 5000, 1);
  const cuem::Samples c = cuem::sample(model, 5000, 2);
  EXPECT_TRUE(a.X == b.X);
  EXPECT_TRUE(a.labels == b.labels);
  EXPECT_FALSE(a.X == c.X);
}

TEST_P(Sampling, FittedModelRoundTrips) {
  SCOPED_TRACE("mixture seed 73, sample seed 74, fit seed 0");
  // Fitting the model's own draws gives back a model that scores them about as well:
  // sample() and fit() agree on what the parameters mean (e.g. covariance vs precision).
  const CovarianceType type = GetParam();
  const cuem_test::Mixture mix = cuem_test::make_mixture(type, kK, kD, 8.0, 73);
  const cuem::Model truth = cuem_test::model_from_mixture(mix, type);
  const cuem::Samples s = cuem::sample(truth, 20000, 74);
  const cuem::DataView view(s.X.data(), 20000, kD);
  cuem::FitOptions opt;
  opt.n_components = kK;
  opt.covariance_type = type;
  opt.n_init = 2;
  opt.tol = 1e-8;  // at the maximum, not within tol of it
  const cuem::Model fitted = cuem::fit(view, opt).model;
  // The MLE beats the truth on its own data, by about n_params / (2 N) ~ 5e-4 per point.
  const double gain = cuem::score(fitted, view) - cuem::score(truth, view);
  EXPECT_GE(gain, -1e-9);
  EXPECT_LT(gain, 0.01);
}

INSTANTIATE_TEST_SUITE_P(AllTypes, Sampling, testing::ValuesIn(cuem_test::all_covariance_types()), type_name);

// ---- validate_model --------------------------------------------------------------------

class Validate : public testing::TestWithParam<CovarianceType> {
 protected:
  cuem::Model good() const {
    return cuem_test::model_from_mixture(cuem_test::make_mixture(GetParam(), kK, kD, 4.0, 80), GetParam());
  }
};

TEST_P(Validate, AcceptsAGoodModel) { EXPECT_NO_THROW(cuem::validate_model(good())); }

TEST_P(Validate, RejectsWeightsOffTheSimplex) {
  cuem::Model m = good();
  m.weights[0] += 0.1;  // sums to 1.1
  EXPECT_THROW(cuem::validate_model(m), cuem::InvalidArgument);
  m = good();
  m.weights[0] += m.weights[1] + 0.1;  // sums to 1 with a negative weight
  m.weights[1] = -0.1;
  EXPECT_THROW(cuem::validate_model(m), cuem::InvalidArgument);
}

TEST_P(Validate, RejectsWrongSizes) {
  cuem::Model m = good();
  m.weights.pop_back();
  EXPECT_THROW(cuem::validate_model(m), cuem::InvalidArgument);
  m = good();
  m.means.pop_back();
  EXPECT_THROW(cuem::validate_model(m), cuem::InvalidArgument);
  m = good();
  m.covariances.push_back(1.0);
  EXPECT_THROW(cuem::validate_model(m), cuem::InvalidArgument);
  m = good();
  m.precisions_cholesky.pop_back();
  EXPECT_THROW(cuem::validate_model(m), cuem::InvalidArgument);
  m = good();
  m.n_features = kD + 1;
  EXPECT_THROW(cuem::validate_model(m), cuem::InvalidArgument);
  m = good();
  m.n_components = kK + 1;
  EXPECT_THROW(cuem::validate_model(m), cuem::InvalidArgument);
}

TEST_P(Validate, RejectsASingularComponent) {
  // Component 0's covariance and precision factor both zero: not positive definite
  // whichever of the two the check reads.
  cuem::Model m = good();
  const std::size_t per = m.covariances.size() / (GetParam() == CovarianceType::tied ? 1 : kK);
  std::fill(m.covariances.begin(), m.covariances.begin() + per, 0.0);
  std::fill(m.precisions_cholesky.begin(), m.precisions_cholesky.begin() + per, 0.0);
  EXPECT_THROW(cuem::validate_model(m), cuem::InvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(AllTypes, Validate, testing::ValuesIn(cuem_test::all_covariance_types()), type_name);

}  // namespace
