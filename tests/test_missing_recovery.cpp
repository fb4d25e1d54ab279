// Missing data (MissingPolicy::marginalize): a fit recovers a known mixture from data with
// entries masked at random, its error shrinks with N, its imputation beats column means,
// and a mask that depends on the missing value itself (MNAR) biases it, as docs/MISSING.md
// warns. Data without a single complete row fit for every init method and covariance type.
//
// Standard errors. The clusters are far apart (separation 10, variances 0.5..2), so the
// fit is close to the per-cluster maximum-likelihood estimates. For the mean of column j
// of component k, the observed entries of that column in the cluster's n_kj rows alone
// give an unbiased estimate under MCAR with standard error sqrt(S_jj / n_kj); the MLE uses
// the other columns as well and is at least as precise (asymptotically), so
//   se(mu_kj) = sqrt(S_jj / n_kj), n_kj = observed entries of column j in cluster k's rows.
// For a weight, sqrt(w (1 - w) / N_eff) with N_eff = N (1 - p_max): a row that misses
// entries is classified less surely, and counting such rows as absent bounds the loss.
// Tolerances are 5 standard errors; with ~30 comparisons per case a miss by chance has odds
// below 1e-5. Seeds are fixed and printed.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <ostream>
#include <string>
#include <vector>

#include "cuem/fit.hpp"
#include "cuem/missing.hpp"
#include "missing_test_util.hpp"
#include "test_util.hpp"

namespace {

using cuem::CovarianceType;
using cuem_test::Matrix;

enum class Mechanism { mcar, mar };

struct Case {
  int k;
  int d;
  Mechanism mechanism;
  double p;  // MCAR: every entry's probability; MAR: the high rate (the low one is p / 8)
};

std::string case_label(const Case& c) {
  return "K" + std::to_string(c.k) + "_D" + std::to_string(c.d) + (c.mechanism == Mechanism::mcar ? "_MCAR" : "_MAR") +
         std::to_string(static_cast<int>(c.p * 100 + 0.5));
}

std::string case_name(const testing::TestParamInfo<Case>& info) { return case_label(info.param); }

// gtest prints parameters in failure messages; without this it dumps the struct's bytes.
void PrintTo(const Case& c, std::ostream* os) { *os << case_label(c); }

struct Masked {
  cuem_test::Dataset complete;  // the values before masking (and the true labels)
  std::vector<double> x;        // with NaN
};

// Mask `ds` per the case; MAR masks columns >= 1 by whether column 0 is above its mean.
Masked masked(const cuem_test::Dataset& ds, const Case& c, std::uint64_t seed) {
  Masked m{ds, ds.x};
  if (c.mechanism == Mechanism::mcar) {
    cuem_test::mask_mcar(m.x, c.p, seed);
  } else {
    const double threshold = cuem_test::observed_column_mean(ds.x, ds.n, ds.d, 0);
    cuem_test::mask_mar(m.x, ds.n, ds.d, threshold, c.p / 8, c.p, seed);
  }
  return m;
}

cuem::FitOptions fit_options(int k, CovarianceType type = CovarianceType::full) {
  cuem::FitOptions opt;
  opt.n_components = k;
  opt.covariance_type = type;
  opt.missing = cuem::MissingPolicy::marginalize;
  opt.tol = 1e-7;
  opt.max_iter = 1000;
  opt.n_init = 3;  // guards against an unlucky seeding, which is not under test
  opt.seed = 5;
  return opt;
}

// Mean over the components and columns of |fitted - true| / sd: the standardised error.
double standardised_mean_error(const cuem::Model& m, const cuem_test::Mixture& mix) {
  const std::vector<int> perm = cuem_test::best_permutation(m.means, mix.means, mix.k, mix.d);
  double s = 0;
  for (int t = 0; t < mix.k; ++t)
    for (int j = 0; j < mix.d; ++j) {
      const double sd = std::sqrt(mix.covariance(t)[j * mix.d + j]);
      s += std::abs(m.means[perm[t] * mix.d + j] - mix.mean(t)[j]) / sd;
    }
  return s / (mix.k * mix.d);
}

class MissingRecovery : public testing::TestWithParam<Case> {};

TEST_P(MissingRecovery, MeansAndWeightsWithinStandardErrors) {
  const Case& c = GetParam();
  const std::uint64_t mix_seed = 40 + c.k * 10 + c.d, data_seed = 41, mask_seed = 42;
  SCOPED_TRACE("mixture seed " + std::to_string(mix_seed) + ", data seed 41, mask seed 42, fit seed 5");
  const cuem_test::Mixture mix = cuem_test::make_mixture(CovarianceType::full, c.k, c.d, 10.0, mix_seed);
  const std::size_t n = 20000;
  const Masked data = masked(cuem_test::sample_mixture(mix, n, data_seed), c, mask_seed);
  const double missing_fraction = static_cast<double>(cuem_test::count_missing(data.x)) / (n * c.d);
  if (c.mechanism == Mechanism::mcar) {
    EXPECT_NEAR(missing_fraction, c.p, 0.01);
  } else {
    EXPECT_GT(missing_fraction, c.p / 4);
  }

  const cuem::FitResult r = cuem::fit(cuem::DataView(data.x.data(), n, c.d), fit_options(c.k));
  EXPECT_TRUE(r.converged);
  EXPECT_EQ(r.n_decreases, 0);
  const cuem::Model& m = r.model;
  const std::vector<int> perm = cuem_test::best_permutation(m.means, mix.means, c.k, c.d);
  for (int t = 0; t < c.k; ++t) {
    SCOPED_TRACE("true component " + std::to_string(t) + " matched to fitted " + std::to_string(perm[t]));
    const int f = perm[t];
    const double w = mix.weights[t];
    EXPECT_NEAR(m.weights[f], w, 5 * std::sqrt(w * (1 - w) / (n * (1 - c.p))));
    const Matrix s = mix.covariance(t);
    for (int j = 0; j < c.d; ++j) {
      std::size_t n_kj = 0;  // observed entries of column j in the cluster's rows
      for (std::size_t i = 0; i < n; ++i)
        n_kj += data.complete.labels[i] == t && !std::isnan(data.x[i * c.d + j]) ? 1 : 0;
      ASSERT_GT(n_kj, 100u);
      const double se = std::sqrt(s[j * c.d + j] / static_cast<double>(n_kj));
      EXPECT_NEAR(m.means[f * c.d + j], mix.mean(t)[j], 5 * se) << "column " << j;
    }
  }
}

// The standardised error of the means at N = 20000 is below that at N = 2000 by a clear
// factor: sampling error goes as 1/sqrt(N) (a ratio of sqrt(10) = 3.2 expected); the test
// asks for 1.5, which an average over K D ~ 12 absolute errors meets with a wide margin.
TEST_P(MissingRecovery, ErrorShrinksWithN) {
  const Case& c = GetParam();
  const std::uint64_t mix_seed = 40 + c.k * 10 + c.d;
  SCOPED_TRACE("mixture seed " + std::to_string(mix_seed) + ", data seeds 51 and 52, mask seeds 53 and 54");
  const cuem_test::Mixture mix = cuem_test::make_mixture(CovarianceType::full, c.k, c.d, 10.0, mix_seed);
  double err[2];
  const std::size_t sizes[2] = {2000, 20000};
  for (int i = 0; i < 2; ++i) {
    const Masked data = masked(cuem_test::sample_mixture(mix, sizes[i], 51 + i), c, 53 + i);
    const cuem::FitResult r = cuem::fit(cuem::DataView(data.x.data(), sizes[i], c.d), fit_options(c.k));
    err[i] = standardised_mean_error(r.model, mix);
  }
  EXPECT_LT(err[1], err[0] / 1.5) << "N=2000: " << err[0] << ", N=20000: " << err[1];
  EXPECT_LT(err[0], 0.15) << "the small fit is already off";
}

// Imputation by the mixture (sum_k P(k | x_o) E[x_m | x_o, k]) against the column means
// of the observed entries, on the masked entries whose true values are known. The
// clusters are 10 apart with unit-scale spread, so the column means miss by the
// between-cluster spread (RMSE of several units) while the mixture misses by about the
// conditional spread (about 1): the test asks the mixture's RMSE to be at most half the
// column means'. It also asks the reported variances to be of the size of the errors.
TEST_P(MissingRecovery, ImputationBeatsColumnMeans) {
  const Case& c = GetParam();
  const std::uint64_t mix_seed = 40 + c.k * 10 + c.d;
  SCOPED_TRACE("mixture seed " + std::to_string(mix_seed) + ", data seed 61, mask seed 62");
  const cuem_test::Mixture mix = cuem_test::make_mixture(CovarianceType::full, c.k, c.d, 10.0, mix_seed);
  const std::size_t n = 5000;
  const Masked data = masked(cuem_test::sample_mixture(mix, n, 61), c, 62);
  const cuem::DataView X(data.x.data(), n, c.d);
  const cuem::FitResult r = cuem::fit(X, fit_options(c.k));
  const cuem::Imputation imp = cuem::impute(r.model, X, true);
  ASSERT_EQ(imp.X.size(), n * c.d);
  ASSERT_EQ(imp.variance.size(), n * c.d);
  std::vector<double> col_mean(c.d);
  for (int j = 0; j < c.d; ++j) col_mean[j] = cuem_test::observed_column_mean(data.x, n, c.d, j);
  double se_mix = 0, se_col = 0, sum_var = 0;
  std::size_t count = 0;
  for (std::size_t i = 0; i < n * c.d; ++i) {
    if (!std::isnan(data.x[i])) continue;
    const double truth = data.complete.x[i];
    se_mix += (imp.X[i] - truth) * (imp.X[i] - truth);
    se_col += (col_mean[i % c.d] - truth) * (col_mean[i % c.d] - truth);
    sum_var += imp.variance[i];
    ++count;
  }
  ASSERT_GT(count, 200u);
  const double rmse_mix = std::sqrt(se_mix / count), rmse_col = std::sqrt(se_col / count);
  const double rms_sd = std::sqrt(sum_var / count);
  EXPECT_LT(rmse_mix, 0.5 * rmse_col) << "mixture " << rmse_mix << ", column means " << rmse_col;
  // The mean predicted variance matches the mean squared error (to 15%, for ~1000+ entries).
  EXPECT_NEAR(rms_sd, rmse_mix, 0.15 * rmse_mix) << "predicted sd " << rms_sd << ", rmse " << rmse_mix;
}

std::vector<Case> recovery_cases() {
  std::vector<Case> out;
  for (double p : {0.10, 0.25, 0.40}) {
    out.push_back({3, 4, Mechanism::mcar, p});
    out.push_back({2, 3, Mechanism::mcar, p});
  }
  out.push_back({3, 5, Mechanism::mcar, 0.25});
  out.push_back({3, 4, Mechanism::mar, 0.5});
  out.push_back({2, 3, Mechanism::mar, 0.5});
  return out;
}

INSTANTIATE_TEST_SUITE_P(Masks, MissingRecovery, testing::ValuesIn(recovery_cases()), case_name);

// ---- MNAR: the documented failure ------------------------------------------------------

// docs/MISSING.md warns that marginalising assumes the mask does not depend on the missing
// value. Here column 1 of a two-component mixture is missing with probability 0.8 where it
// exceeds its mean and 0.05 elsewhere; the mixture's mean of column 1 (sum_k pi_k mu_k1)
// comes out low by far more than its standard error, sqrt(Var(x_1) / n_observed). The same
// data masked at random (MAR on column 0 at the same rate) give an estimate within
// 4 standard errors: the bias is the mechanism's, not the estimator's.
TEST(MissingNotAtRandom, LargeValuesMissingBiasTheMeanLow) {
  SCOPED_TRACE("mixture seed 71, data seed 72, mask seed 73");
  const int k = 2, d = 3, col = 1;
  const std::size_t n = 20000;
  // Overlapping clusters (separation 2): the other columns say little about column 1's
  // value, as in data where the mechanism matters.
  const cuem_test::Mixture mix = cuem_test::make_mixture(CovarianceType::full, k, d, 2.0, 71);
  const cuem_test::Dataset ds = cuem_test::sample_mixture(mix, n, 72);
  double true_mean = 0, true_var = 0;  // of column 1 under the true mixture
  for (int c = 0; c < k; ++c) true_mean += mix.weights[c] * mix.mean(c)[col];
  for (int c = 0; c < k; ++c) {
    const double dev = mix.mean(c)[col] - true_mean;
    true_var += mix.weights[c] * (mix.covariance(c)[col * d + col] + dev * dev);
  }
  auto fitted_mean = [&](const std::vector<double>& x) {
    const cuem::FitResult r = cuem::fit(cuem::DataView(x.data(), n, d), fit_options(k));
    double mean = 0;
    for (int c = 0; c < k; ++c) mean += r.model.weights[c] * r.model.means[c * d + col];
    return mean;
  };
  const double threshold = cuem_test::observed_column_mean(ds.x, n, d, col);

  std::vector<double> mnar = ds.x;
  cuem_test::mask_mnar(mnar, n, d, col, threshold, 0.05, 0.8, 73);
  const std::size_t observed = n - cuem_test::count_missing(mnar);
  const double se = std::sqrt(true_var / static_cast<double>(observed));
  const double biased = fitted_mean(mnar);
  EXPECT_LT(biased, true_mean - 3 * se) << "MNAR: fitted " << biased << ", truth " << true_mean << ", se " << se;

  // MAR control: column 1 missing at about the same rate, driven by observed column 0.
  std::vector<double> mar = ds.x;
  const double t0 = cuem_test::observed_column_mean(ds.x, n, d, 0);
  cuem_test::Rng rng(74);
  for (std::size_t i = 0; i < n; ++i)
    if (rng.uniform() < (ds.x[i * d] > t0 ? 0.8 : 0.05)) mar[i * d + col] = cuem_test::kMissing;
  const std::size_t observed_mar = n - cuem_test::count_missing(mar);
  const double se_mar = std::sqrt(true_var / static_cast<double>(observed_mar));
  const double unbiased = fitted_mean(mar);
  EXPECT_NEAR(unbiased, true_mean, 4 * se_mar) << "MAR control";
}

// ---- no complete row ---------------------------------------------------------------------

struct NoCompleteCase {
  cuem::InitMethod init;
  CovarianceType type;
};

void PrintTo(const NoCompleteCase& c, std::ostream* os) {
  *os << cuem::to_string(c.init) << " " << cuem::to_string(c.type);
}

class NoCompleteRow : public testing::TestWithParam<NoCompleteCase> {};

// Every row misses exactly one entry: k-means and the point-seeded starts work on the
// column-mean-filled copy, and EM runs from there without failing, with a bound that
// never falls, for every init method and covariance type.
TEST_P(NoCompleteRow, FitsForEveryInitAndType) {
  const NoCompleteCase& c = GetParam();
  SCOPED_TRACE("mixture seed 81, data seed 82, mask seed 83, fit seed 5");
  const int k = 3, d = 4;
  const std::size_t n = 1500;
  const cuem_test::Mixture mix = cuem_test::make_mixture(CovarianceType::full, k, d, 10.0, 81);
  std::vector<double> x = cuem_test::sample_mixture(mix, n, 82).x;
  cuem_test::mask_one_per_row(x, n, d, 83);
  ASSERT_EQ(cuem_test::count_missing(x), n);
  cuem::FitOptions opt = fit_options(k, c.type);
  opt.init = c.init;
  opt.tol = 1e-4;
  opt.max_iter = 300;
  cuem::FitResult r;
  ASSERT_NO_THROW(r = cuem::fit(cuem::DataView(x.data(), n, d), opt));
  EXPECT_TRUE(cuem_test::all_finite(r.model));
  EXPECT_EQ(r.n_decreases, 0);
  EXPECT_EQ(r.missing.incomplete_rows, n);
  EXPECT_EQ(r.missing.missing_entries, n);
  EXPECT_EQ(r.missing.empty_rows, 0u);
  EXPECT_EQ(r.missing.n_patterns, static_cast<std::size_t>(d));
  EXPECT_NEAR(std::accumulate(r.model.weights.begin(), r.model.weights.end(), 0.0), 1.0, 1e-12);
  EXPECT_TRUE(std::isfinite(r.lower_bound));
  const auto first = std::find_if(r.trace.begin(), r.trace.end(),
                                  [&](const cuem::TracePoint& t) { return t.init == r.best_init; });
  ASSERT_NE(first, r.trace.end());
  EXPECT_GT(r.lower_bound, first->mean_log_likelihood) << "EM did not move from its start";
  // k-means on separated clusters finds them (each mean within 0.5 of a true one; with
  // 500 points a cluster the standard error is ~0.05). The other starts may stop in a
  // local optimum, which is no property of missing data, so only k-means is held to it.
  if (c.init != cuem::InitMethod::kmeans) return;
  const std::vector<int> perm = cuem_test::best_permutation(r.model.means, mix.means, k, d);
  for (int t = 0; t < k; ++t)
    for (int j = 0; j < d; ++j)
      EXPECT_NEAR(r.model.means[perm[t] * d + j], mix.mean(t)[j], 0.5) << "component " << t << " column " << j;
}

std::vector<NoCompleteCase> no_complete_cases() {
  std::vector<NoCompleteCase> out;
  for (cuem::InitMethod m : {cuem::InitMethod::kmeans, cuem::InitMethod::kmeans_plusplus, cuem::InitMethod::random,
                             cuem::InitMethod::random_from_data})
    for (CovarianceType t : cuem_test::all_covariance_types()) out.push_back({m, t});
  return out;
}

INSTANTIATE_TEST_SUITE_P(AllInitsAndTypes, NoCompleteRow, testing::ValuesIn(no_complete_cases()),
                         [](const testing::TestParamInfo<NoCompleteCase>& info) {
                           const char* init = "";
                           switch (info.param.init) {
                             case cuem::InitMethod::kmeans: init = "kmeans"; break;
                             case cuem::InitMethod::kmeans_plusplus: init = "kmeans_plusplus"; break;
                             case cuem::InitMethod::random: init = "random"; break;
                             case cuem::InitMethod::random_from_data: init = "random_from_data"; break;
                           }
                           return std::string(init) + "_" + cuem::to_string(info.param.type);
                         });

}  // namespace
