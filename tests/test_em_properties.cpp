// Properties every fit must have, whatever the data: EM never lowers the likelihood;
// results are a function of (data, options, seed) alone, bit for bit; a constant offset
// of the data changes nothing but the means; restarts keep the best.
#include <limits>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "cuem/errors.hpp"
#include "cuem/fit.hpp"
#include "test_util.hpp"

namespace {

using cuem::CovarianceType;
using cuem::InitMethod;

// ---- monotone log-likelihood over a grid of shapes ----------------------------------

// One test per (covariance type, D); inside, every K in {1, 2, 3, 5, 8, 16, 32}, both
// k-means and random starts, and three seeds: ~1000 fits, ~4 s in Release, ~30 s under
// ASan.
struct GridCase {
  CovarianceType type;
  int d;
};

std::string grid_name(const testing::TestParamInfo<GridCase>& info) {
  return std::string(cuem::to_string(info.param.type)) + "_D" + std::to_string(info.param.d);
}

// Points per fit: 4 per component, and 2 (D + 1) per covariance matrix so that most full
// and tied fits have non-singular scatter; full fits are capped at N K D^2 <= 2e7 to stay
// cheap, so the largest (K = 32, D = 64) hold ~5 points per component and lean on
// reg_covar, a case EM must survive too.
std::size_t grid_n(CovarianceType type, int k, int d) {
  const std::size_t kk = static_cast<std::size_t>(k), dd = static_cast<std::size_t>(d);
  std::size_t n = std::max<std::size_t>(64, 4 * kk);
  if (type == CovarianceType::full) n = std::max(n, kk * 2 * (dd + 1));
  if (type == CovarianceType::tied) n = std::max(n, 2 * (dd + 1));
  if (type == CovarianceType::full) n = std::min(n, std::max(kk, static_cast<std::size_t>(2e7 / (kk * dd * dd))));
  return n;
}

class MonotoneTrace : public testing::TestWithParam<GridCase> {};

TEST_P(MonotoneTrace, NeverDecreases) {
  const CovarianceType type = GetParam().type;
  const int d = GetParam().d;
  for (int k : {1, 2, 3, 5, 8, 16, 32}) {
    for (InitMethod init : {InitMethod::kmeans, InitMethod::random}) {
      for (std::uint64_t rep = 0; rep < 3; ++rep) {
        const std::uint64_t seed = 1 + rep + 10u * static_cast<std::uint64_t>(k) + 1000u * static_cast<std::uint64_t>(d);
        const std::size_t n = grid_n(type, k, d);
        SCOPED_TRACE("K " + std::to_string(k) + ", N " + std::to_string(n) + ", init " + cuem::to_string(init) +
                     ", seed " + std::to_string(seed));
        // Means about 3 sds apart whatever D (make_mixture's box grows with sqrt(D)), so
        // the clusters overlap and EM has work to do for many iterations.
        const cuem_test::Mixture mix = cuem_test::make_mixture(type, k, d, 4.0 / std::sqrt(d), seed);
        const cuem_test::Dataset ds = cuem_test::sample_mixture(mix, n, seed + 1000);

        cuem::FitOptions opt;
        opt.n_components = k;
        opt.covariance_type = type;
        opt.init = init;
        opt.seed = seed;
        opt.tol = 1e-8;
        opt.max_iter = 30;
        // Fits this small gain nothing from threads, and OpenMP barriers spinning against
        // other test processes (ctest -j) cost them 20x; thread independence is tested
        // below (Determinism.ThreadCountDoesNotMatter).
        opt.n_threads = 1;
        const cuem::FitResult r = cuem::fit(ds.view(), opt);

        EXPECT_EQ(r.n_decreases, 0) << "max_decrease " << r.max_decrease;
        ASSERT_FALSE(r.trace.empty());
        EXPECT_EQ(r.trace.size(), static_cast<std::size_t>(r.n_iter));  // n_init = 1
        for (std::size_t i = 0; i < r.trace.size(); ++i) {
          const double ll = r.trace[i].mean_log_likelihood;
          ASSERT_TRUE(std::isfinite(ll)) << "iteration " << r.trace[i].iteration;
          if (i == 0) continue;
          const double prev = r.trace[i - 1].mean_log_likelihood;
          EXPECT_GE(ll, prev - 1e-9 * std::max(1.0, std::abs(prev)))
              << "iteration " << r.trace[i].iteration << " fell from " << prev << " to " << ll;
        }
        EXPECT_TRUE(cuem_test::all_finite(r.model));
      }
    }
  }
}

std::vector<GridCase> grid_cases() {
  std::vector<GridCase> cases;
  for (CovarianceType type : cuem_test::all_covariance_types())
    for (int d : {1, 2, 3, 8, 16, 64}) cases.push_back({type, d});
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Grid, MonotoneTrace, testing::ValuesIn(grid_cases()), grid_name);

// ---- determinism ---------------------------------------------------------------------

std::string type_name(const testing::TestParamInfo<CovarianceType>& info) {
  return cuem::to_string(info.param);
}

class Determinism : public testing::TestWithParam<CovarianceType> {
 protected:
  cuem_test::Dataset data() const {
    const cuem_test::Mixture mix = cuem_test::make_mixture(GetParam(), 5, 3, 4.0, 77);
    return cuem_test::sample_mixture(mix, 5000, 78);
  }
  cuem::FitOptions options(std::uint64_t seed) const {
    cuem::FitOptions opt;
    opt.n_components = 5;
    opt.covariance_type = GetParam();
    opt.n_init = 2;
    opt.max_iter = 40;
    opt.tol = 1e-6;
    opt.seed = seed;
    return opt;
  }
};

TEST_P(Determinism, SameSeedIsBitwiseIdentical) {
  SCOPED_TRACE("data seed 77/78, fit seed 9");
  const cuem_test::Dataset ds = data();
  for (InitMethod init : {InitMethod::kmeans, InitMethod::kmeans_plusplus, InitMethod::random,
                          InitMethod::random_from_data}) {
    SCOPED_TRACE(cuem::to_string(init));
    cuem::FitOptions opt = options(9);
    opt.init = init;
    const cuem::FitResult a = cuem::fit(ds.view(), opt);
    const cuem::FitResult b = cuem::fit(ds.view(), opt);
    // Exact equality is the point here: the reductions have a fixed order.
    EXPECT_TRUE(a.model.weights == b.model.weights);
    EXPECT_TRUE(a.model.means == b.model.means);
    EXPECT_TRUE(a.model.covariances == b.model.covariances);
    EXPECT_TRUE(a.model.precisions_cholesky == b.model.precisions_cholesky);
    EXPECT_EQ(a.lower_bound, b.lower_bound);
    EXPECT_EQ(a.n_iter, b.n_iter);
    EXPECT_EQ(a.best_init, b.best_init);
    ASSERT_EQ(a.trace.size(), b.trace.size());
    for (std::size_t i = 0; i < a.trace.size(); ++i)
      EXPECT_EQ(a.trace[i].mean_log_likelihood, b.trace[i].mean_log_likelihood) << "trace entry " << i;
  }
}

TEST_P(Determinism, DifferentSeedsGiveDifferentInits) {
  const cuem_test::Dataset ds = data();
  cuem::FitOptions opt = options(0);
  opt.init = InitMethod::random;
  opt.n_init = 1;
  opt.max_iter = 1;
  std::set<double> first_ll;
  for (std::uint64_t seed = 0; seed < 4; ++seed) {
    opt.seed = seed;
    const cuem::FitResult r = cuem::fit(ds.view(), opt);
    ASSERT_FALSE(r.trace.empty());
    first_ll.insert(r.trace.front().mean_log_likelihood);
  }
  // Random responsibilities from four seeds: four different starting likelihoods.
  EXPECT_EQ(first_ll.size(), 4u);
}

TEST_P(Determinism, ThreadCountDoesNotMatter) {
  SCOPED_TRACE("data seed 77/78, fit seed 4");
  const cuem_test::Dataset ds = data();
  cuem::FitOptions opt = options(4);
  opt.n_threads = 1;
  const cuem::FitResult one = cuem::fit(ds.view(), opt);
  opt.n_threads = 2;
  const cuem::FitResult two = cuem::fit(ds.view(), opt);
  EXPECT_EQ(one.n_iter, two.n_iter);
  EXPECT_EQ(one.best_init, two.best_init);
  EXPECT_NEAR(one.lower_bound, two.lower_bound, 1e-12 * std::abs(one.lower_bound));
  EXPECT_LT(cuem_test::max_rel_diff(one.model.weights, two.model.weights, 1e-300), 1e-12);
  EXPECT_LT(cuem_test::max_rel_diff(one.model.means, two.model.means), 1e-12);
  EXPECT_LT(cuem_test::max_rel_diff(one.model.covariances, two.model.covariances), 1e-12);
  EXPECT_LT(cuem_test::max_rel_diff(one.model.precisions_cholesky, two.model.precisions_cholesky), 1e-12);
}

INSTANTIATE_TEST_SUITE_P(AllTypes, Determinism, testing::ValuesIn(cuem_test::all_covariance_types()),
                         type_name);

// ---- offset data ---------------------------------------------------------------------

// The same points shifted by 1e4 in every coordinate. Adding the offset rounds each
// coordinate by up to 1e4 * 2^-53 ~ 1e-12, which bounds how closely the fits can agree;
// an implementation that forms E[x x^T] - mu mu^T about zero loses ~8 digits to the
// 1e8 squared offset and fails the covariance check by orders of magnitude.
class OffsetData : public testing::TestWithParam<CovarianceType> {};

TEST_P(OffsetData, FitsLikeCentredData) {
  const CovarianceType type = GetParam();
  const double offset = 1e4;
  SCOPED_TRACE("mixture seed 31, data seed 32, fit seed 1");
  const cuem_test::Mixture mix = cuem_test::make_mixture(type, 3, 4, 6.0, 31);
  const cuem_test::Dataset centred = cuem_test::sample_mixture(mix, 4000, 32);
  cuem_test::Dataset shifted = centred;
  for (double& v : shifted.x) v += offset;

  for (InitMethod init : {InitMethod::kmeans, InitMethod::random}) {
    SCOPED_TRACE(cuem::to_string(init));
    cuem::FitOptions opt;
    opt.n_components = 3;
    opt.covariance_type = type;
    opt.init = init;
    opt.seed = 1;
    opt.tol = 0;  // a fixed number of iterations: no convergence test near a threshold
    opt.max_iter = 40;
    const cuem::FitResult a = cuem::fit(centred.view(), opt);
    const cuem::FitResult b = cuem::fit(shifted.view(), opt);
    ASSERT_EQ(a.n_iter, b.n_iter);

    std::vector<double> means_back = b.model.means;
    for (double& v : means_back) v -= offset;
    EXPECT_LT(cuem_test::max_rel_diff(means_back, a.model.means), 1e-9);
    EXPECT_LT(cuem_test::max_rel_diff(b.model.weights, a.model.weights), 1e-9);
    EXPECT_LT(cuem_test::max_rel_diff(b.model.covariances, a.model.covariances,
                                      cuem_test::max_abs(a.model.covariances)),
              1e-8);
    EXPECT_NEAR(b.lower_bound, a.lower_bound, 1e-9 * std::abs(a.lower_bound));
  }
}

INSTANTIATE_TEST_SUITE_P(AllTypes, OffsetData, testing::ValuesIn(cuem_test::all_covariance_types()),
                         type_name);

// ---- restarts --------------------------------------------------------------------------

TEST(Restarts, KeepTheBestAndTraceEveryInit) {
  const std::uint64_t seed = 12;
  SCOPED_TRACE("mixture seed 41, data seed 42, fit seed " + std::to_string(seed));
  // Overlapping clusters and more components than clusters: restarts end in different
  // local optima.
  const cuem_test::Mixture mix = cuem_test::make_mixture(CovarianceType::full, 4, 2, 2.5, 41);
  const cuem_test::Dataset ds = cuem_test::sample_mixture(mix, 2000, 42);
  for (InitMethod init : {InitMethod::kmeans, InitMethod::random}) {
    SCOPED_TRACE(cuem::to_string(init));
    cuem::FitOptions opt;
    opt.n_components = 6;
    opt.init = init;
    opt.seed = seed;
    opt.max_iter = 60;
    const cuem::FitResult single = cuem::fit(ds.view(), opt);
    opt.n_init = 5;
    const cuem::FitResult multi = cuem::fit(ds.view(), opt);

    // The first restart is the n_init = 1 fit, bit for bit, so the best can only be as
    // good or better.
    ASSERT_LE(single.trace.size(), multi.trace.size());
    for (std::size_t i = 0; i < single.trace.size(); ++i) {
      EXPECT_EQ(multi.trace[i].init, 0);
      EXPECT_EQ(multi.trace[i].mean_log_likelihood, single.trace[i].mean_log_likelihood) << "iteration " << i + 1;
    }
    EXPECT_GE(multi.lower_bound, single.lower_bound);

    // Every restart is traced, in order, with iterations 1..n_i, and the winner is the
    // restart whose final lower bound is highest (the first of equals, as scikit-learn).
    std::vector<double> final_ll(opt.n_init, -std::numeric_limits<double>::infinity());
    std::vector<int> count(opt.n_init, 0);
    int prev_init = 0;
    for (const cuem::TracePoint& t : multi.trace) {
      ASSERT_GE(t.init, prev_init) << "restarts out of order";
      ASSERT_LT(t.init, opt.n_init);
      prev_init = t.init;
      EXPECT_EQ(t.iteration, ++count[t.init]);
      final_ll[t.init] = t.mean_log_likelihood;
    }
    for (int i = 0; i < opt.n_init; ++i) {
      EXPECT_GE(count[i], 1) << "restart " << i << " missing from the trace";
      EXPECT_LE(count[i], opt.max_iter);
    }
    // Not vacuous: the restarts ended in different places, so the choice mattered.
    EXPECT_GT(std::set<double>(final_ll.begin(), final_ll.end()).size(), 1u);
    const int best = static_cast<int>(std::max_element(final_ll.begin(), final_ll.end()) - final_ll.begin());
    EXPECT_EQ(multi.best_init, best);
    EXPECT_EQ(multi.lower_bound, final_ll[best]);
    EXPECT_EQ(multi.n_iter, count[best]);
  }
}

// ---- the iteration callback ------------------------------------------------------------

TEST(Callback, SeesEveryIterationAndCanStop) {
  const cuem_test::Mixture mix = cuem_test::make_mixture(CovarianceType::diag, 3, 2, 3.0, 51);
  const cuem_test::Dataset ds = cuem_test::sample_mixture(mix, 1000, 52);
  cuem::FitOptions opt;
  opt.n_components = 3;
  opt.covariance_type = CovarianceType::diag;
  opt.tol = 0;
  opt.max_iter = 50;
  std::vector<cuem::IterationInfo> seen;
  opt.on_iteration = [&seen](const cuem::IterationInfo& info) {
    seen.push_back(info);
    return info.iteration < 4;  // stop after the fourth
  };
  const cuem::FitResult r = cuem::fit(ds.view(), opt);
  EXPECT_FALSE(r.converged);
  EXPECT_EQ(r.n_iter, 4);
  ASSERT_EQ(seen.size(), 4u);
  ASSERT_EQ(r.trace.size(), 4u);
  EXPECT_TRUE(std::isinf(seen[0].change));
  for (std::size_t i = 0; i < seen.size(); ++i) {
    EXPECT_EQ(seen[i].iteration, static_cast<int>(i) + 1);
    EXPECT_EQ(seen[i].init, 0);
    EXPECT_EQ(seen[i].mean_log_likelihood, r.trace[i].mean_log_likelihood);
    if (i > 0) {
      EXPECT_NEAR(seen[i].change, seen[i].mean_log_likelihood - seen[i - 1].mean_log_likelihood, 1e-12);
    }
  }
  EXPECT_TRUE(cuem_test::all_finite(r.model));
}

}  // namespace

namespace {

// float32 data is read in place and every computation is float64, so a fit of a float32
// array must equal, bitwise, the fit of its exact float64 conversion: for every
// covariance type and init method, and for predict/score_samples/validation too.
TEST(Float32Input, BitwiseEqualToItsFloat64Conversion) {
  std::vector<float> xf(3000 * 3);
  for (std::size_t i = 0; i < xf.size(); ++i)
    xf[i] = static_cast<float>((i % 3) * 4.0 + std::sin(0.61 * static_cast<double>(i)) + 1e4 * (i % 3 == 2));
  const std::vector<double> xd(xf.begin(), xf.end());
  const cuem::DataView Xf(xf.data(), 3000, 3), Xd(xd.data(), 3000, 3);
  for (auto type : {cuem::CovarianceType::full, cuem::CovarianceType::tied, cuem::CovarianceType::diag,
                    cuem::CovarianceType::spherical})
    for (auto init : {cuem::InitMethod::kmeans, cuem::InitMethod::kmeans_plusplus, cuem::InitMethod::random,
                      cuem::InitMethod::random_from_data}) {
      SCOPED_TRACE(std::string(cuem::to_string(type)) + " " + cuem::to_string(init));
      cuem::FitOptions o;
      o.n_components = 3;
      o.covariance_type = type;
      o.init = init;
      o.seed = 11;
      const cuem::FitResult a = cuem::fit(Xf, o);
      const cuem::FitResult b = cuem::fit(Xd, o);
      EXPECT_EQ(a.model.weights, b.model.weights);
      EXPECT_EQ(a.model.means, b.model.means);
      EXPECT_EQ(a.model.covariances, b.model.covariances);
      EXPECT_EQ(a.lower_bound, b.lower_bound);
      EXPECT_EQ(a.n_iter, b.n_iter);
      EXPECT_EQ(cuem::score_samples(a.model, Xf), cuem::score_samples(a.model, Xd));
      EXPECT_EQ(cuem::predict(a.model, Xf), cuem::predict(a.model, Xd));
    }
  xf[7] = std::numeric_limits<float>::quiet_NaN();
  try {
    cuem::fit(Xf, cuem::FitOptions{});
    FAIL() << "NaN in float32 data must be rejected";
  } catch (const cuem::DataError& e) {
    EXPECT_NE(std::string(e.what()).find("row 2, column 1"), std::string::npos) << e.what();
  }
}

}  // namespace
