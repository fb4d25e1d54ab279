// Invariances and edge cases of a fit on the float64 CPU path, each checked against values
// known without the library (plain loops, analytic values, or a second fit whose relation
// to the first is exact in exact arithmetic):
//   - the order of the rows does not matter;
//   - permuting the starting components permutes the result;
//   - a component that collapses onto one point keeps variance reg_covar, without NaN;
//   - N = K: every point its own component;
//   - a constant column gets variance reg_covar and leaves the other columns alone;
//   - an offset of 1e8 changes only the means;
//   - a zero in weights_init empties that component from the first E-step on.
// Starting parameters are given in full wherever two fits are compared, so that neither
// depends on an init method.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "cuem/fit.hpp"
#include "test_util.hpp"

namespace {

using cuem::CovarianceType;

constexpr double kEps = std::numeric_limits<double>::epsilon();

std::string type_name(const testing::TestParamInfo<CovarianceType>& info) {
  return cuem::to_string(info.param);
}

// Gives the fit every starting parameter of `start` (weights, means, precisions).
void start_from(cuem::FitOptions& opt, const cuem::Model& start) {
  opt.n_components = start.n_components;
  opt.covariance_type = start.covariance_type;
  opt.weights_init = start.weights;
  opt.means_init = start.means;
  opt.precisions_init = cuem_test::precisions_of(start);
}

// The true mixture's model with every mean moved by `delta`: a start EM must move from.
cuem::Model moved_start(const cuem_test::Mixture& mix, CovarianceType type, double delta) {
  cuem::Model m = cuem_test::model_from_mixture(mix, type);
  for (double& v : m.means) v += delta;
  return m;
}

// Entries of component c's covariance (and precision Cholesky) block, per layout; the
// tied matrix is shared, so it is the whole array for every c.
std::vector<double> component_block(const std::vector<double>& table, CovarianceType type, int c, int d) {
  std::size_t size = 0;
  switch (type) {
    case CovarianceType::full: size = static_cast<std::size_t>(d) * d; break;
    case CovarianceType::tied: return table;
    case CovarianceType::diag: size = static_cast<std::size_t>(d); break;
    case CovarianceType::spherical: size = 1; break;
  }
  return std::vector<double>(table.begin() + static_cast<std::ptrdiff_t>(c * size),
                             table.begin() + static_cast<std::ptrdiff_t>((c + 1) * size));
}

// Expects two models to agree to `rel` (covariances and precision factors relative to
// their largest entry, means relative to max(|value|, 1)), naming what differs.
void expect_same_model(const cuem::Model& got, const cuem::Model& want, double rel) {
  EXPECT_LT(cuem_test::max_rel_diff(got.weights, want.weights), rel) << "weights";
  EXPECT_LT(cuem_test::max_rel_diff(got.means, want.means), rel) << "means";
  EXPECT_LT(cuem_test::max_rel_diff(got.covariances, want.covariances, cuem_test::max_abs(want.covariances)), rel)
      << "covariances";
  EXPECT_LT(cuem_test::max_rel_diff(got.precisions_cholesky, want.precisions_cholesky,
                                    cuem_test::max_abs(want.precisions_cholesky)),
            rel)
      << "precisions_cholesky";
}

// ---- row order ---------------------------------------------------------------------------

// EM's statistics are sums over points, so a permutation of the rows changes only the
// order of the additions (rounding, ~1e-16 a step). A fit that drops, repeats or
// position-weights a row (a chunk tail, a block boundary) differs by far more.
class RowOrder : public testing::TestWithParam<CovarianceType> {};

TEST_P(RowOrder, PermutedRowsGiveTheSameModel) {
  const CovarianceType type = GetParam();
  const int k = 3, d = 3;
  SCOPED_TRACE("mixture seed 101, data seed 102, permutation seed 103");
  const cuem_test::Mixture mix = cuem_test::make_mixture(type, k, d, 4.0, 101);
  const cuem_test::Dataset ds = cuem_test::sample_mixture(mix, 1537, 102);  // not a multiple of any block

  std::vector<std::size_t> order(ds.n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  cuem_test::Rng rng(103);
  for (std::size_t i = ds.n - 1; i > 0; --i)  // Fisher-Yates
    std::swap(order[i], order[static_cast<std::size_t>(rng.uniform() * static_cast<double>(i + 1))]);
  cuem_test::Dataset permuted = ds;
  for (std::size_t i = 0; i < ds.n; ++i)
    std::copy(ds.row(order[i]), ds.row(order[i]) + d, permuted.x.begin() + static_cast<std::ptrdiff_t>(i * d));

  const cuem::Model start = moved_start(mix, type, 0.7);
  cuem::FitOptions opt;
  start_from(opt, start);
  opt.tol = 0;  // a fixed number of iterations: no convergence test near a threshold
  opt.max_iter = 30;
  const cuem::FitResult a = cuem::fit(ds.view(), opt);
  const cuem::FitResult b = cuem::fit(permuted.view(), opt);
  ASSERT_EQ(a.n_iter, b.n_iter);
  ASSERT_GT(cuem_test::max_rel_diff(a.model.means, start.means), 1e-2) << "the fit did not move: vacuous";
  expect_same_model(b.model, a.model, 1e-10);
  EXPECT_NEAR(b.lower_bound, a.lower_bound, 1e-10 * std::abs(a.lower_bound));
}

INSTANTIATE_TEST_SUITE_P(AllTypes, RowOrder, testing::ValuesIn(cuem_test::all_covariance_types()), type_name);

// ---- component order ---------------------------------------------------------------------

// Starting component j of the second fit is starting component perm[j] of the first
// (weight, mean and precision together). EM treats components alike, so fitted component
// j must be the first fit's perm[j], with the same values.
class ComponentOrder : public testing::TestWithParam<CovarianceType> {};

TEST_P(ComponentOrder, PermutingTheStartPermutesTheResult) {
  const CovarianceType type = GetParam();
  const int k = 4, d = 2;
  const std::vector<int> perm = {2, 0, 3, 1};
  SCOPED_TRACE("mixture seed 111, data seed 112");
  const cuem_test::Mixture mix = cuem_test::make_mixture(type, k, d, 3.0, 111);
  const cuem_test::Dataset ds = cuem_test::sample_mixture(mix, 1200, 112);
  const cuem::Model start = moved_start(mix, type, 0.5);

  cuem_test::Mixture shuffled = mix;  // the start, permuted
  const std::size_t dd = static_cast<std::size_t>(d) * d;
  for (int j = 0; j < k; ++j) {
    shuffled.weights[j] = mix.weights[perm[j]];
    for (int i = 0; i < d; ++i) shuffled.means[j * d + i] = mix.means[perm[j] * d + i] + 0.5;
    std::copy(mix.covariances.begin() + static_cast<std::ptrdiff_t>(perm[j] * dd),
              mix.covariances.begin() + static_cast<std::ptrdiff_t>((perm[j] + 1) * dd),
              shuffled.covariances.begin() + static_cast<std::ptrdiff_t>(j * dd));
  }
  const cuem::Model start_permuted = cuem_test::model_from_mixture(shuffled, type);

  cuem::FitOptions opt;
  opt.tol = 0;
  opt.max_iter = 25;
  start_from(opt, start);
  const cuem::FitResult a = cuem::fit(ds.view(), opt);
  start_from(opt, start_permuted);
  const cuem::FitResult b = cuem::fit(ds.view(), opt);
  ASSERT_EQ(a.n_iter, b.n_iter);
  ASSERT_GT(cuem_test::max_rel_diff(a.model.means, start.means), 1e-2) << "the fit did not move: vacuous";

  const double scale_cov = cuem_test::max_abs(a.model.covariances);
  const double scale_prec = cuem_test::max_abs(a.model.precisions_cholesky);
  for (int j = 0; j < k; ++j) {
    SCOPED_TRACE("fitted component " + std::to_string(j) + " against " + std::to_string(perm[j]));
    EXPECT_NEAR(b.model.weights[j], a.model.weights[perm[j]], 1e-10);
    for (int i = 0; i < d; ++i)
      EXPECT_NEAR(b.model.means[j * d + i], a.model.means[perm[j] * d + i],
                  1e-10 * std::max(1.0, std::abs(a.model.means[perm[j] * d + i])));
    EXPECT_LT(cuem_test::max_rel_diff(component_block(b.model.covariances, type, j, d),
                                      component_block(a.model.covariances, type, perm[j], d), scale_cov),
              1e-10);
    EXPECT_LT(cuem_test::max_rel_diff(component_block(b.model.precisions_cholesky, type, j, d),
                                      component_block(a.model.precisions_cholesky, type, perm[j], d), scale_prec),
              1e-10);
  }
  EXPECT_NEAR(b.lower_bound, a.lower_bound, 1e-12 * std::abs(a.lower_bound));
}

INSTANTIATE_TEST_SUITE_P(AllTypes, ComponentOrder, testing::ValuesIn(cuem_test::all_covariance_types()), type_name);

// ---- a component collapsing onto one point ------------------------------------------------

// One far outlier with its own starting mean near it: from the first E-step on it is the
// only point of its component (the blob's density there is exp(-2000) = 0 in float64),
// so that component's mean is the point, its covariance reg_covar * I and its weight 1/N,
// while the other component is the blob's sample mean and covariance (+ reg_covar),
// weight (N - 1) / N. The lower bound is finite: the outlier's density is large, not
// infinite. Per-component covariance types only (a tied covariance cannot collapse).
class Collapse : public testing::TestWithParam<CovarianceType> {};

TEST_P(Collapse, OnePointComponentHasVarianceRegCovar) {
  const CovarianceType type = GetParam();
  const int d = 3;
  const std::size_t n_blob = 299, n = n_blob + 1;
  SCOPED_TRACE("blob seed 121");
  cuem_test::Rng rng(121);
  std::vector<double> x;
  for (std::size_t p = 0; p < n_blob * d; ++p) x.push_back(rng.normal());
  const std::vector<double> outlier = {40.0, -40.0, 40.0};
  x.insert(x.end(), outlier.begin(), outlier.end());
  const cuem::DataView view(x.data(), n, d);

  cuem_test::Mixture start_mix;
  start_mix.k = 2;
  start_mix.d = d;
  start_mix.weights = {0.9, 0.1};
  start_mix.means = {0.2, -0.1, 0.3, 40.5, -39.5, 40.5};
  const cuem_test::Matrix eye = cuem_test::identity(d);
  start_mix.covariances = eye;
  start_mix.covariances.insert(start_mix.covariances.end(), eye.begin(), eye.end());

  cuem::FitOptions opt;
  start_from(opt, cuem_test::model_from_mixture(start_mix, type));
  opt.tol = 0;
  opt.max_iter = 5;
  const double reg = opt.reg_covar;
  const cuem::FitResult r = cuem::fit(view, opt);
  const cuem::Model& m = r.model;

  EXPECT_TRUE(cuem_test::all_finite(m));
  EXPECT_TRUE(std::isfinite(r.lower_bound));
  EXPECT_TRUE(cuem_test::all_finite(cuem::predict_proba(m, view)));
  EXPECT_TRUE(cuem_test::all_finite(cuem::score_samples(m, view)));
  EXPECT_EQ(r.n_decreases, 0);

  // The collapsed component.
  EXPECT_NEAR(m.weights[1], 1.0 / n, 1e-12);
  for (int i = 0; i < d; ++i) EXPECT_NEAR(m.means[d + i], outlier[i], 1e-12) << "dim " << i;
  const cuem_test::Matrix cov1 = cuem_test::full_covariance(m, 1);
  for (int i = 0; i < d; ++i)
    for (int j = 0; j < d; ++j)
      EXPECT_NEAR(cov1[i * d + j], i == j ? reg : 0.0, 1e-9 * reg) << "covariance (" << i << ", " << j << ")";

  // The blob's component: its sample moments, by a plain two-pass loop.
  cuem_test::Matrix mean, cov;
  cuem_test::weighted_moments(x.data(), n_blob, d, {}, mean, cov);
  EXPECT_NEAR(m.weights[0], static_cast<double>(n_blob) / n, 1e-12);
  for (int i = 0; i < d; ++i) EXPECT_NEAR(m.means[i], mean[i], 1e-12) << "dim " << i;
  const cuem_test::Matrix cov0 = cuem_test::full_covariance(m, 0);
  for (int i = 0; i < d; ++i) {
    if (type == CovarianceType::full) {
      for (int j = 0; j < d; ++j)
        EXPECT_NEAR(cov0[i * d + j], cov[i * d + j] + (i == j ? reg : 0.0), 1e-12) << "(" << i << ", " << j << ")";
    } else if (type == CovarianceType::diag) {
      EXPECT_NEAR(cov0[i * d + i], cov[i * d + i] + reg, 1e-12) << "dim " << i;
    } else {
      EXPECT_NEAR(cov0[i * d + i], (cov[0] + cov[d + 1] + cov[2 * d + 2]) / d + reg, 1e-12) << "dim " << i;
    }
  }

  // Both components are fixed points from the second iteration on, so the lower bound
  // (the log-likelihood before the last M-step) is the final model's, here by hand: the
  // outlier contributes log(1/N) - D/2 log(2 pi reg_covar).
  const double outlier_ll = std::log(1.0 / n) - 0.5 * d * std::log(2.0 * cuem_test::kPi * reg);
  const std::vector<double> ll = cuem_test::log_likelihoods(m, view);
  EXPECT_NEAR(ll[n - 1], outlier_ll, 1e-9 * std::abs(outlier_ll));
  const double mean_ll = std::accumulate(ll.begin(), ll.end(), 0.0) / static_cast<double>(n);
  EXPECT_NEAR(r.lower_bound, mean_ll, 1e-10 * std::abs(mean_ll));
}

INSTANTIATE_TEST_SUITE_P(PerComponent, Collapse,
                         testing::Values(CovarianceType::full, CovarianceType::diag, CovarianceType::spherical),
                         type_name);

// ---- N = K --------------------------------------------------------------------------------

// As many components as points: k-means gives each point its own cluster, and EM keeps
// it so (another point's density at distance >= 0.1 under variance 1e-6 is exp(-5000) = 0).
// Every mean is a point, every covariance reg_covar * I (tied: the pooled scatter is zero),
// every weight 1/N, and the lower bound is -log N - D/2 log(2 pi reg_covar).
class EveryPointItsOwnComponent : public testing::TestWithParam<CovarianceType> {};

TEST_P(EveryPointItsOwnComponent, MeansArePointsCovariancesRegCovar) {
  const CovarianceType type = GetParam();
  const int d = 2, n = 7;
  SCOPED_TRACE("points seed 131, fit seed 4");
  cuem_test::Rng rng(131);
  std::vector<double> x(static_cast<std::size_t>(n) * d);
  for (double& v : x) v = 5.0 * rng.normal();
  for (int p = 0; p < n; ++p)  // precondition of the argument above
    for (int q = 0; q < p; ++q)
      ASSERT_GT(std::hypot(x[p * d] - x[q * d], x[p * d + 1] - x[q * d + 1]), 0.1) << "points " << p << ", " << q;
  const cuem::DataView view(x.data(), n, d);

  cuem::FitOptions opt;
  opt.n_components = n;
  opt.covariance_type = type;
  opt.seed = 4;
  const double reg = opt.reg_covar;
  const cuem::FitResult r = cuem::fit(view, opt);
  const cuem::Model& m = r.model;
  ASSERT_TRUE(cuem_test::all_finite(m));

  std::vector<bool> used(n, false);
  for (int c = 0; c < n; ++c) {
    SCOPED_TRACE("component " + std::to_string(c));
    int point = -1;
    for (int p = 0; p < n && point < 0; ++p)
      if (std::abs(m.means[c * d] - x[p * d]) <= 1e-12 * 5 && std::abs(m.means[c * d + 1] - x[p * d + 1]) <= 1e-12 * 5)
        point = p;
    ASSERT_GE(point, 0) << "mean (" << m.means[c * d] << ", " << m.means[c * d + 1] << ") is no data point";
    EXPECT_FALSE(used[point]) << "point " << point << " is the mean of two components";
    used[point] = true;
    EXPECT_NEAR(m.weights[c], 1.0 / n, 1e-14);
    const cuem_test::Matrix cov = cuem_test::full_covariance(m, c);
    for (int i = 0; i < d; ++i)
      for (int j = 0; j < d; ++j) EXPECT_NEAR(cov[i * d + j], i == j ? reg : 0.0, 1e-9 * reg) << i << ", " << j;
  }
  const double want = -std::log(static_cast<double>(n)) - 0.5 * d * std::log(2.0 * cuem_test::kPi * reg);
  EXPECT_NEAR(r.lower_bound, want, 1e-10 * std::abs(want));
}

INSTANTIATE_TEST_SUITE_P(FullAndTied, EveryPointItsOwnComponent,
                         testing::Values(CovarianceType::full, CovarianceType::tied), type_name);

// ---- a constant column ------------------------------------------------------------------

// Column 1 of the data is the constant 7.25; columns 0 and 2 are a two-component mixture.
// Started with mean 7.25 in that column for every component, the column's sums about the
// mean are exactly zero: its fitted variance is reg_covar and its covariances with the
// other columns zero. Its log-density is the same for every component, so the
// responsibilities, hence the other columns' parameters, equal those of a fit of the
// data without the column, and the lower bound differs by log N(0 | 0, reg_covar).
class ConstantColumn : public testing::TestWithParam<CovarianceType> {};

TEST_P(ConstantColumn, VarianceIsRegCovarAndOtherColumnsUnaffected) {
  const CovarianceType type = GetParam();
  const int k = 2;
  const double constant = 7.25;
  SCOPED_TRACE("mixture seed 141, data seed 142, fit seed 5");
  const cuem_test::Mixture mix = cuem_test::make_mixture(type, k, 2, 3.0, 141);
  const cuem_test::Dataset narrow = cuem_test::sample_mixture(mix, 800, 142);
  std::vector<double> wide;
  for (std::size_t p = 0; p < narrow.n; ++p) wide.insert(wide.end(), {narrow.row(p)[0], constant, narrow.row(p)[1]});
  const cuem::DataView wide_view(wide.data(), narrow.n, 3);

  // The same start in three columns: the constant column's mean 7.25, variance 1,
  // uncorrelated with the others.
  const cuem::Model start2 = moved_start(mix, type, 0.6);
  cuem_test::Mixture mix3;
  mix3.k = k;
  mix3.d = 3;
  mix3.weights = mix.weights;
  for (int c = 0; c < k; ++c) {
    mix3.means.insert(mix3.means.end(), {start2.means[c * 2], constant, start2.means[c * 2 + 1]});
    const cuem_test::Matrix s = mix.covariance(c);
    mix3.covariances.insert(mix3.covariances.end(), {s[0], 0, s[1], 0, 1, 0, s[2], 0, s[3]});
  }
  const cuem::Model start3 = cuem_test::model_from_mixture(mix3, type);

  cuem::FitOptions opt;
  opt.tol = 0;
  opt.max_iter = 20;
  const double reg = opt.reg_covar;
  start_from(opt, start2);
  const cuem::FitResult a = cuem::fit(narrow.view(), opt);
  start_from(opt, start3);
  const cuem::FitResult b = cuem::fit(wide_view, opt);
  ASSERT_EQ(a.n_iter, b.n_iter);
  ASSERT_GT(cuem_test::max_rel_diff(a.model.means, start2.means), 1e-2) << "the fit did not move: vacuous";

  const int n_cov = type == CovarianceType::tied ? 1 : k;
  for (int c = 0; c < n_cov; ++c) {
    SCOPED_TRACE("component " + std::to_string(c));
    const cuem_test::Matrix cov3 = cuem_test::full_covariance(b.model, c);
    const cuem_test::Matrix cov2 = cuem_test::full_covariance(a.model, c);
    EXPECT_NEAR(cov3[1 * 3 + 1], reg, 4 * kEps * reg) << "the constant column's variance";
    for (int i : {0, 2}) {
      EXPECT_EQ(cov3[i * 3 + 1], 0.0);
      EXPECT_EQ(cov3[1 * 3 + i], 0.0);
    }
    const int cols[2] = {0, 2};
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 2; ++j)
        EXPECT_NEAR(cov3[cols[i] * 3 + cols[j]], cov2[i * 2 + j], 1e-10 * cuem_test::max_abs(cov2)) << i << ", " << j;
  }
  for (int c = 0; c < k; ++c) {
    EXPECT_NEAR(b.model.weights[c], a.model.weights[c], 1e-12);
    EXPECT_EQ(b.model.means[c * 3 + 1], constant);
    EXPECT_NEAR(b.model.means[c * 3], a.model.means[c * 2], 1e-10 * std::max(1.0, std::abs(a.model.means[c * 2])));
    EXPECT_NEAR(b.model.means[c * 3 + 2], a.model.means[c * 2 + 1],
                1e-10 * std::max(1.0, std::abs(a.model.means[c * 2 + 1])));
  }
  const double column_ll = -0.5 * std::log(2.0 * cuem_test::kPi * reg);
  EXPECT_NEAR(b.lower_bound, a.lower_bound + column_ll, 1e-10 * std::abs(a.lower_bound));

  // From the init method instead (k-means from the seed): the column's centres are 7.25 to
  // rounding, so its variance is reg_covar to rounding as well.
  cuem::FitOptions plain;
  plain.n_components = k;
  plain.covariance_type = type;
  plain.seed = 5;
  const cuem::FitResult c = cuem::fit(wide_view, plain);
  for (int comp = 0; comp < n_cov; ++comp)
    EXPECT_NEAR(cuem_test::full_covariance(c.model, comp)[1 * 3 + 1], reg, 4 * kEps * reg) << "component " << comp;
  for (int comp = 0; comp < k; ++comp) EXPECT_NEAR(c.model.means[comp * 3 + 1], constant, 4 * kEps * constant);
}

INSTANTIATE_TEST_SUITE_P(PerFeature, ConstantColumn,
                         testing::Values(CovarianceType::full, CovarianceType::tied, CovarianceType::diag),
                         type_name);

// ---- an offset of 1e8 -------------------------------------------------------------------

// Data 1e8 + unit-spread blobs against the same blobs about zero. The centred copy is made
// from the offset data (y - 1e8 is exact for y in [5e7, 2e8], Sterbenz), and the starting
// means are multiples of 2^-20, so both fits see exactly the same points and start and
// differ only by the rounding of quantities near 1e8: a mean there is held to
// ulp(1e8) = 2^-26 ~ 1.5e-8, so the fitted means may differ by that rounding (tolerance
// 2 ulp, 3e-8), and an E-step that uses such a mean moves x - mu by up to half an ulp,
// ~1e-8 against the unit spread, and the responsibilities and covariances with it
// (tolerance 1e-7 relative for weights, covariances and the lower bound). Sums formed
// about zero instead of about the current means (E[x x^T] - mu mu^T at 1e16, where the
// ulp is 2) miss the unit covariances entirely.
class Offset1e8 : public testing::TestWithParam<CovarianceType> {};

TEST_P(Offset1e8, OnlyTheMeansMove) {
  const CovarianceType type = GetParam();
  const int k = 3, d = 2;
  const double offset = 1e8;
  SCOPED_TRACE("mixture seed 151, data seed 152");
  const cuem_test::Mixture mix = cuem_test::make_mixture(type, k, d, 5.0, 151);
  const cuem_test::Dataset raw = cuem_test::sample_mixture(mix, 3001, 152);
  cuem_test::Dataset shifted = raw, centred = raw;
  for (std::size_t i = 0; i < raw.x.size(); ++i) {
    shifted.x[i] = raw.x[i] + offset;
    centred.x[i] = shifted.x[i] - offset;
  }

  cuem::Model start = moved_start(mix, type, 0.4);
  for (double& v : start.means) v = std::ldexp(std::round(std::ldexp(v, 20)), -20);
  cuem::Model start_shifted = start;
  for (double& v : start_shifted.means) v += offset;  // exact: multiples of 2^-20 below 2^27

  cuem::FitOptions opt;
  opt.tol = 0;
  opt.max_iter = 40;
  start_from(opt, start);
  const cuem::FitResult a = cuem::fit(centred.view(), opt);
  start_from(opt, start_shifted);
  const cuem::FitResult b = cuem::fit(shifted.view(), opt);
  ASSERT_EQ(a.n_iter, b.n_iter);
  ASSERT_GT(cuem_test::max_rel_diff(a.model.means, start.means), 1e-2) << "the fit did not move: vacuous";

  double worst_mean = 0;
  for (std::size_t i = 0; i < a.model.means.size(); ++i)
    worst_mean = std::max(worst_mean, std::abs((b.model.means[i] - offset) - a.model.means[i]));
  EXPECT_LT(worst_mean, 2 * std::ldexp(1.0, -26));
  EXPECT_LT(cuem_test::max_rel_diff(b.model.weights, a.model.weights), 1e-7);
  EXPECT_LT(cuem_test::max_rel_diff(b.model.covariances, a.model.covariances, cuem_test::max_abs(a.model.covariances)),
            1e-7);
  EXPECT_NEAR(b.lower_bound, a.lower_bound, 1e-7 * std::abs(a.lower_bound));
}

INSTANTIATE_TEST_SUITE_P(AllTypes, Offset1e8, testing::ValuesIn(cuem_test::all_covariance_types()), type_name);

// ---- a zero in weights_init ---------------------------------------------------------------

// scikit-learn 1.9 accepts weights_init with zeros (numpy warns of log(0) and goes on): the
// zero-weight component has log-weight -inf, so it takes no responsibility in the first
// E-step even with its mean among the points. With a covariance of its own it is empty
// from then on: weight 10 eps / N (the guard on N_k; scikit-learn's value too), covariance
// reg_covar * I, and its mean stays where it started (README: cuem keeps an empty
// component's mean; scikit-learn moves it to the origin). The live components follow the
// fit with that component left out, iteration by iteration, whatever the type.
class ZeroInitialWeight : public testing::TestWithParam<CovarianceType> {};

TEST_P(ZeroInitialWeight, ComponentIsEmptyAndTheRestFitAsWithout) {
  const CovarianceType type = GetParam();
  const int d = 2;
  const std::size_t n = 400;
  SCOPED_TRACE("mixture seed 161, data seed 162");
  const cuem_test::Mixture mix = cuem_test::make_mixture(type, 2, d, 8.0, 161);
  const cuem_test::Dataset ds = cuem_test::sample_mixture(mix, n, 162);

  cuem_test::Mixture two = mix;  // the start without the third component
  two.weights = {0.5, 0.5};
  for (double& v : two.means) v += 0.3;
  const cuem::Model start2 = cuem_test::model_from_mixture(two, type);

  // The third component sits inside the first blob, but no point within 0.02 of it (so that
  // even as an empty component of variance reg_covar its responsibilities stay below
  // exp(-200)).
  cuem_test::Mixture three = two;
  three.k = 3;
  three.weights = {0.5, 0.5, 0.0};
  const double dead_mean[2] = {mix.means[0] + 0.25, mix.means[1] - 0.25};
  three.means.insert(three.means.end(), dead_mean, dead_mean + 2);
  const cuem_test::Matrix third_cov = type == CovarianceType::tied ? mix.covariance(0) : cuem_test::identity(d);
  three.covariances.insert(three.covariances.end(), third_cov.begin(), third_cov.end());
  for (std::size_t p = 0; p < n; ++p)
    ASSERT_GT(std::hypot(ds.row(p)[0] - dead_mean[0], ds.row(p)[1] - dead_mean[1]), 0.02) << "point " << p;
  const cuem::Model start3 = cuem_test::model_from_mixture(three, type);

  cuem::FitOptions opt;
  opt.tol = 0;
  opt.max_iter = 15;
  const double reg = opt.reg_covar;
  start_from(opt, start2);
  const cuem::FitResult a = cuem::fit(ds.view(), opt);
  start_from(opt, start3);
  cuem::FitResult b;
  ASSERT_NO_THROW(b = cuem::fit(ds.view(), opt));
  ASSERT_EQ(a.n_iter, b.n_iter);
  EXPECT_TRUE(cuem_test::all_finite(b.model));
  EXPECT_EQ(b.n_decreases, 0);

  const double guard_weight = 10 * kEps / static_cast<double>(n);
  if (type == CovarianceType::tied) {
    // The shared covariance does not shrink with the component, so from the second E-step
    // on the nearby points give it responsibilities of the order of its weight, ~1e-17:
    // the weight stays within a few hundred guards and the mean drifts among the points.
    EXPECT_GT(b.model.weights[2], 0.0);
    EXPECT_LT(b.model.weights[2], 1000 * guard_weight);
  } else {
    EXPECT_NEAR(b.model.weights[2], guard_weight, 1e-6 * guard_weight);
    EXPECT_EQ(b.model.means[4], dead_mean[0]);
    EXPECT_EQ(b.model.means[5], dead_mean[1]);
    const cuem_test::Matrix cov = cuem_test::full_covariance(b.model, 2);
    for (int i = 0; i < d; ++i)
      for (int j = 0; j < d; ++j) EXPECT_NEAR(cov[i * d + j], i == j ? reg : 0.0, 1e-9 * reg) << i << ", " << j;
  }

  // The live components and the shared parts, against the fit without the component.
  for (int c = 0; c < 2; ++c) {
    SCOPED_TRACE("component " + std::to_string(c));
    EXPECT_NEAR(b.model.weights[c], a.model.weights[c], 1e-12);
    for (int i = 0; i < d; ++i)
      EXPECT_NEAR(b.model.means[c * d + i], a.model.means[c * d + i],
                  1e-10 * std::max(1.0, std::abs(a.model.means[c * d + i])));
    EXPECT_LT(cuem_test::max_rel_diff(component_block(b.model.covariances, type, c, d),
                                      component_block(a.model.covariances, type, c, d),
                                      cuem_test::max_abs(a.model.covariances)),
              1e-10);
  }
  ASSERT_EQ(a.trace.size(), b.trace.size());
  for (std::size_t i = 0; i < a.trace.size(); ++i)
    EXPECT_NEAR(b.trace[i].mean_log_likelihood, a.trace[i].mean_log_likelihood,
                1e-12 * std::abs(a.trace[i].mean_log_likelihood))
        << "iteration " << i + 1;
}

INSTANTIATE_TEST_SUITE_P(AllTypes, ZeroInitialWeight, testing::ValuesIn(cuem_test::all_covariance_types()),
                         type_name);

}  // namespace
