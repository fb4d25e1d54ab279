// The missing-data fit's own invariants (the independent reference, recovery and bad
// input are tests/test_missing_reference.cpp, _recovery.cpp and _errors.cpp): complete
// data fit bitwise as under MissingPolicy::error, the observed log-likelihood never
// falls, results do not depend on the thread count, rows with nothing observed are
// skipped exactly as if absent, data with no complete row fit, and placed data with
// missing entries behave as the plain calls.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "cuem/cuem.hpp"
#include "test_util.hpp"

namespace {

using cuem::CovarianceType;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string type_name(const testing::TestParamInfo<CovarianceType>& info) { return cuem::to_string(info.param); }

// 600 points of a 3-component mixture in D = 4, with entries missing completely at
// random with probability `rate` (seed 151).
struct MaskedData {
  cuem_test::Dataset data;
  std::vector<double> masked;
  explicit MaskedData(CovarianceType type, double rate, std::size_t n = 600) {
    data = cuem_test::sample_mixture(cuem_test::make_mixture(type, 3, 4, 3.0, 150), n, 151);
    masked = data.x;
    cuem_test::Rng rng(152);
    for (double& v : masked)
      if (rng.uniform() < rate) v = kNaN;
  }
  cuem::DataView complete() const { return {data.x.data(), data.n, 4}; }
  cuem::DataView view() const { return {masked.data(), data.n, 4}; }
};

cuem::FitOptions options(CovarianceType type) {
  cuem::FitOptions o;
  o.n_components = 3;
  o.covariance_type = type;
  o.missing = cuem::MissingPolicy::marginalize;
  o.tol = 1e-10;
  o.max_iter = 60;
  o.seed = 5;
  return o;
}

class MissingCore : public testing::TestWithParam<CovarianceType> {};

TEST_P(MissingCore, CompleteDataFitBitwiseAsWithoutThePolicy) {
  const MaskedData d(GetParam(), 0.0);
  cuem::FitOptions o = options(GetParam());
  const cuem::FitResult a = cuem::fit(d.complete(), o);
  o.missing = cuem::MissingPolicy::error;
  const cuem::FitResult b = cuem::fit(d.complete(), o);
  EXPECT_EQ(a.model.means, b.model.means);
  EXPECT_EQ(a.model.covariances, b.model.covariances);
  EXPECT_EQ(a.model.weights, b.model.weights);
  EXPECT_EQ(a.lower_bound, b.lower_bound);
  EXPECT_EQ(a.missing.missing_entries, 0u);
}

TEST_P(MissingCore, ObservedLikelihoodNeverFallsAndEndsAtTheScore) {
  const MaskedData d(GetParam(), 0.25);
  const cuem::FitResult r = cuem::fit(d.view(), options(GetParam()));
  ASSERT_GT(r.trace.size(), 3u);
  for (std::size_t i = 1; i < r.trace.size(); ++i)
    EXPECT_GE(r.trace[i].mean_log_likelihood, r.trace[i - 1].mean_log_likelihood - 1e-12) << "iteration " << i;
  EXPECT_EQ(r.n_decreases, 0);
  EXPECT_GT(r.missing.n_patterns, 4u);
  EXPECT_GT(r.missing.incomplete_rows, 300u);  // 1 - 0.75^4 of 600 rows
  // The bound is the score of the parameters before the last M-step; after it the score
  // can only be higher, by less than the last change.
  cuem::EvaluateOptions where;
  where.missing = cuem::MissingPolicy::marginalize;
  const double s = cuem::score(r.model, d.view(), where);
  EXPECT_GE(s, r.lower_bound - 1e-12);
  EXPECT_LT(s - r.lower_bound, 1e-6);
}

TEST_P(MissingCore, SameResultForAnyThreadCount) {
  const MaskedData d(GetParam(), 0.3, 5000);  // several blocks of rows
  cuem::FitOptions o = options(GetParam());
  o.max_iter = 5;
  o.n_threads = 1;
  const cuem::FitResult a = cuem::fit(d.view(), o);
  o.n_threads = 2;
  const cuem::FitResult b = cuem::fit(d.view(), o);
  o.n_threads = 3;
  const cuem::FitResult c = cuem::fit(d.view(), o);
  EXPECT_EQ(a.model.means, b.model.means);
  EXPECT_EQ(a.model.covariances, b.model.covariances);
  EXPECT_EQ(a.lower_bound, b.lower_bound);
  EXPECT_EQ(a.model.means, c.model.means);
  EXPECT_EQ(a.model.covariances, c.model.covariances);
}

TEST_P(MissingCore, RowsWithNothingObservedAreSkippedAsIfAbsent) {
  const MaskedData d(GetParam(), 0.2);
  std::vector<double> with_empty;
  const std::size_t n = d.data.n;
  for (std::size_t i = 0; i < n; ++i) {
    if (i % 100 == 7)
      for (int j = 0; j < 4; ++j) with_empty.push_back(kNaN);
    with_empty.insert(with_empty.end(), d.masked.begin() + static_cast<std::ptrdiff_t>(i * 4),
                      d.masked.begin() + static_cast<std::ptrdiff_t>(i * 4 + 4));
  }
  // Rows the mask emptied as well as the inserted ones.
  std::size_t empty_in_mask = 0;
  for (std::size_t i = 0; i < n; ++i) {
    bool all = true;
    for (int j = 0; j < 4; ++j) all = all && std::isnan(d.masked[i * 4 + j]);
    empty_in_mask += all;
  }
  const cuem::FitResult a = cuem::fit(d.view(), options(GetParam()));
  const cuem::FitResult b = cuem::fit(cuem::DataView(with_empty.data(), with_empty.size() / 4, 4), options(GetParam()));
  EXPECT_EQ(b.missing.empty_rows, empty_in_mask + 6);
  ASSERT_FALSE(b.missing.first_empty_rows.empty());
  EXPECT_TRUE(std::any_of(b.notices.begin(), b.notices.end(),
                          [](const std::string& s) { return s.find("every entry missing") != std::string::npos; }));
  // Skipped rows leave the regrouped data, and so the fit, unchanged.
  EXPECT_EQ(a.model.means, b.model.means);
  EXPECT_EQ(a.lower_bound, b.lower_bound);
  // Evaluated, such a row has the marginal of nothing: log p = 0, posteriors = weights.
  cuem::EvaluateOptions where;
  where.missing = cuem::MissingPolicy::marginalize;
  const cuem::DataView v(with_empty.data(), with_empty.size() / 4, 4);
  const std::vector<double> lp = cuem::score_samples(b.model, v, where);
  const std::vector<double> proba = cuem::predict_proba(b.model, v, where);
  EXPECT_EQ(lp[7], 0.0);
  for (int k = 0; k < 3; ++k) EXPECT_EQ(proba[7 * 3 + k], b.model.weights[static_cast<std::size_t>(k)]);
  // score averages over the rows with information only, as the fit's bound does.
  const double s = cuem::score(b.model, v, where);
  const double sa = cuem::score(a.model, d.view(), where);
  EXPECT_EQ(s, sa);
}

TEST_P(MissingCore, NoCompleteRowFitsFromEveryInit) {
  MaskedData d(GetParam(), 0.0);
  for (std::size_t i = 0; i < d.data.n; ++i) d.masked[i * 4 + i % 4] = kNaN;  // every row misses one entry
  for (cuem::InitMethod init : {cuem::InitMethod::kmeans, cuem::InitMethod::kmeans_plusplus, cuem::InitMethod::random,
                                cuem::InitMethod::random_from_data}) {
    cuem::FitOptions o = options(GetParam());
    o.init = init;
    const cuem::FitResult r = cuem::fit(d.view(), o);
    EXPECT_EQ(r.missing.incomplete_rows, d.data.n);
    EXPECT_EQ(r.missing.n_patterns, 4u);
    EXPECT_TRUE(cuem_test::all_finite(r.model)) << cuem::to_string(init);
    EXPECT_EQ(r.n_decreases, 0) << cuem::to_string(init);
  }
}

TEST_P(MissingCore, PlacedDataFitsAndEvaluatesAsThePlainCalls) {
  const MaskedData d(GetParam(), 0.2);
  const cuem::FitOptions o = options(GetParam());
  const cuem::FitResult plain = cuem::fit(d.view(), o);
  cuem::Resources cpu;
  cuem::PlacedData placed(cpu, d.view(), {}, cuem::MissingPolicy::marginalize);
  const cuem::FitResult r = cuem::fit(placed, o);
  EXPECT_EQ(r.model.means, plain.model.means);
  EXPECT_EQ(r.lower_bound, plain.lower_bound);
  cuem::EvaluateOptions where;
  where.missing = cuem::MissingPolicy::marginalize;
  EXPECT_EQ(cuem::score_samples(placed, r.model), cuem::score_samples(r.model, d.view(), where));
  EXPECT_EQ(cuem::predict(placed, r.model), cuem::predict(r.model, d.view(), where));
  EXPECT_EQ(cuem::criteria(placed, r.model).bic, cuem::criteria(r.model, d.view(), where).bic);
  // Without the policy the fit says what to do.
  cuem::FitOptions strict = o;
  strict.missing = cuem::MissingPolicy::error;
  EXPECT_THROW(cuem::fit(placed, strict), cuem::DataError);
  EXPECT_THROW(cuem::PlacedData(cpu, d.view()), cuem::DataError);
}

TEST_P(MissingCore, ImputeKeepsObservedEntriesAndFillsTheRest) {
  const MaskedData d(GetParam(), 0.2);
  const cuem::FitResult r = cuem::fit(d.view(), options(GetParam()));
  const cuem::Imputation imp = cuem::impute(r.model, d.view(), true);
  ASSERT_EQ(imp.X.size(), d.masked.size());
  ASSERT_EQ(imp.variance.size(), d.masked.size());
  for (std::size_t i = 0; i < d.masked.size(); ++i) {
    if (std::isnan(d.masked[i])) {
      EXPECT_TRUE(std::isfinite(imp.X[i]));
      EXPECT_GT(imp.variance[i], 0.0);
    } else {
      EXPECT_EQ(imp.X[i], d.masked[i]);
      EXPECT_EQ(imp.variance[i], 0.0);
    }
  }
}

TEST_P(MissingCore, Float32DataFitBitwiseAsTheirFloat64Values) {
  const MaskedData d(GetParam(), 0.2);
  std::vector<float> f(d.masked.size());
  std::vector<double> back(d.masked.size());
  for (std::size_t i = 0; i < f.size(); ++i) {
    f[i] = static_cast<float>(d.masked[i]);
    back[i] = static_cast<double>(f[i]);
  }
  const cuem::FitResult a = cuem::fit(cuem::DataView(f.data(), d.data.n, 4), options(GetParam()));
  const cuem::FitResult b = cuem::fit(cuem::DataView(back.data(), d.data.n, 4), options(GetParam()));
  EXPECT_EQ(a.model.means, b.model.means);
  EXPECT_EQ(a.model.covariances, b.model.covariances);
  EXPECT_EQ(a.lower_bound, b.lower_bound);
  EXPECT_EQ(a.missing.missing_entries, b.missing.missing_entries);
}

TEST_P(MissingCore, EveryRowItsOwnPattern) {
  // D = 14 with about 4 entries missing per row: 2000 rows in about 1500 patterns,
  // the case where the per-pattern factors are paid per row.
  constexpr int D = 14;
  const cuem_test::Dataset data = cuem_test::sample_mixture(cuem_test::make_mixture(GetParam(), 3, D, 3.0, 160), 2000, 161);
  std::vector<double> x = data.x;
  cuem_test::Rng rng(162);
  for (std::size_t i = 0; i < data.n; ++i)
    for (int j = 0; j < D; ++j)
      if (rng.uniform() < 0.3) x[i * D + static_cast<std::size_t>(j)] = kNaN;
  cuem::FitOptions o = options(GetParam());
  o.max_iter = 25;
  const cuem::FitResult r = cuem::fit(cuem::DataView(x.data(), data.n, D), o);
  EXPECT_GT(r.missing.n_patterns, 1400u);
  EXPECT_EQ(r.n_decreases, 0);
  EXPECT_TRUE(cuem_test::all_finite(r.model));
  // The components found are the true ones: every fitted mean within 0.5 of one.
  const cuem_test::Mixture truth = cuem_test::make_mixture(GetParam(), 3, D, 3.0, 160);
  const std::vector<int> match = cuem_test::best_permutation(r.model.means, truth.means, 3, D);
  for (int t = 0; t < 3; ++t)
    for (int j = 0; j < D; ++j)
      EXPECT_NEAR(r.model.means[static_cast<std::size_t>(match[t] * D + j)], truth.means[static_cast<std::size_t>(t * D + j)],
                  0.5);
}

INSTANTIATE_TEST_SUITE_P(AllTypes, MissingCore, testing::ValuesIn(cuem_test::all_covariance_types()), type_name);

}  // namespace
