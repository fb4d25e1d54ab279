// Stepwise (online) EM (src/engine/stepwise_driver.hpp, include/cuem/online.hpp): with
// rho_t = 1/t the statistics are the running mean of the batches' statistics, each under
// its step's parameters (against a plain loop); on data from a known mixture the
// estimates approach batch EM's optimum for several kappa; the statistics API adds up and
// its M-step is EM's; bad input is a clear error that leaves the state as it was.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wfree-nonheap-object"  // as in test_squarem (make_mixture inlined)
#endif
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "core/online_stats.hpp"
#include "cpu/cpu_primitives.hpp"
#include "cuem/errors.hpp"
#include "cuem/fit.hpp"
#include "cuem/online.hpp"
#include "engine/gmm_model.hpp"
#include "engine/stepwise_driver.hpp"
#include "init/kmeans.hpp"
#include "test_util.hpp"

namespace {

using cuem::CovarianceType;

const char* type_name(CovarianceType t) { return cuem::to_string(t); }

// Raw moments per unit weight of one batch under a model, by the test's own densities:
// N_k, sum g x, sum g x x^T (full D x D per component), each divided by the batch size.
struct Moments {
  std::vector<double> nk, s1, s2;
};

Moments batch_moments(const cuem::Model& m, cuem::DataView x) {
  const std::vector<double> g = cuem_test::responsibilities(m, x);
  const std::size_t K = static_cast<std::size_t>(m.n_components), D = x.n_cols, n = x.n_rows;
  Moments r{std::vector<double>(K, 0.0), std::vector<double>(K * D, 0.0), std::vector<double>(K * D * D, 0.0)};
  for (std::size_t p = 0; p < n; ++p)
    for (std::size_t k = 0; k < K; ++k) {
      const double w = g[p * K + k] / static_cast<double>(n);
      r.nk[k] += w;
      for (std::size_t i = 0; i < D; ++i) {
        r.s1[k * D + i] += w * x.row(p)[i];
        for (std::size_t j = 0; j < D; ++j) r.s2[(k * D + i) * D + j] += w * x.row(p)[i] * x.row(p)[j];
      }
    }
  return r;
}

class StepwiseRunningMean : public testing::TestWithParam<CovarianceType> {};

// kappa = 1, t0 = 0: rho_t = 1/t, so s_t is the mean of the first t batches' statistics
// per unit weight, batch u's taken under the parameters after step u - 1.
TEST_P(StepwiseRunningMean, IsTheMeanOfTheBatchStatistics) {
  const CovarianceType type = GetParam();
  const int K = 3, D = 3;
  const cuem_test::Mixture mix = cuem_test::make_mixture(type, K, D, 2.5, 61);
  const cuem_test::Dataset ds = cuem_test::sample_mixture(mix, 1400, 62);
  cuem::FitOptions o;
  o.n_components = K;
  o.covariance_type = type;
  o.reg_covar = 1e-6;
  cuem::engine::StepwiseEM<cuem::engine::GaussianMixtureEM> em({1.0, 0.0});
  cuem::Model start = cuem_test::model_from_mixture(mix, type);
  for (double& v : start.means) v += 0.4;  // away from the truth, so the steps move
  em.start(start);
  Moments mean{std::vector<double>(K, 0.0), std::vector<double>(K * D, 0.0), std::vector<double>(K * D * D, 0.0)};
  const std::size_t batch = 200;
  int t = 0;
  for (std::size_t begin = 0; begin < ds.n; begin += batch, ++t) {
    const cuem::DataView X(ds.x.data() + begin * D, std::min(batch, ds.n - begin), D);
    const Moments b = batch_moments(em.params(), X);  // under this step's parameters
    const auto fold = [t](std::vector<double>& acc, const std::vector<double>& v) {
      for (std::size_t i = 0; i < acc.size(); ++i) acc[i] += (v[i] - acc[i]) / (t + 1);
    };
    fold(mean.nk, b.nk);
    fold(mean.s1, b.s1);
    fold(mean.s2, b.s2);
    cuem::CpuPrimitives prims(X);
    cuem::KMeansShared shared;
    cuem::engine::GaussianMixtureEM model(prims, X, o, shared);
    em.step(model);
    // The driver's statistics about 0 are raw moments.
    const cuem::SufficientStats s = em.stats().recentred(std::vector<double>(K * D, 0.0));
    ASSERT_EQ(em.steps(), t + 1);
    EXPECT_NEAR(s.weight, 1.0, 1e-15);
    for (int k = 0; k < K; ++k) {
      EXPECT_NEAR(s.nk[k], mean.nk[k], 1e-12) << "step " << t + 1 << " k " << k;
      for (int i = 0; i < D; ++i) {
        EXPECT_NEAR(s.s1[k * D + i], mean.s1[k * D + i], 1e-12 * (1 + std::abs(mean.s1[k * D + i])))
            << "step " << t + 1;
        for (int j = 0; j < D; ++j) {
          double expected = 0.0, got = 0.0;
          switch (type) {
            case CovarianceType::full:
              if (j < i) continue;
              expected = mean.s2[(k * D + i) * D + j];
              got = s.s2[(k * D + i) * D + j];
              break;
            case CovarianceType::tied:
              if (j < i || k > 0) continue;
              for (int c = 0; c < K; ++c) expected += mean.s2[(c * D + i) * D + j];
              got = s.s2[i * D + j];
              break;
            default:
              if (j != i) continue;
              expected = mean.s2[(k * D + i) * D + i];
              got = s.s2[k * D + i];
              break;
          }
          EXPECT_NEAR(got, expected, 1e-12 * (1 + std::abs(expected))) << "step " << t + 1 << " s2 " << k << i << j;
        }
      }
    }
  }
  EXPECT_EQ(em.stats().n_points, ds.n);
}

INSTANTIATE_TEST_SUITE_P(Types, StepwiseRunningMean, testing::ValuesIn(cuem_test::all_covariance_types()),
                         [](const auto& info) { return std::string(type_name(info.param)); });

// ---- convergence to batch EM's optimum ------------------------------------------------------

cuem::FitOptions cpu_options(CovarianceType type, int K) {
  cuem::FitOptions o;
  o.n_components = K;
  o.covariance_type = type;
  o.device = cuem::parse_device("cpu");
  o.precision = cuem::Precision::float64;
  o.seed = 5;
  return o;
}

// Epochs over shuffled batches of a well separated mixture. The online estimate averages
// about batch / rho_T points at the end, so its means sit within a few standard errors
// sigma / sqrt(w_k batch / rho_T) of the batch optimum's.
TEST(StepwiseConvergence, ApproachesBatchOptimumForSeveralKappa) {
  const int K = 3, D = 2;
  const cuem_test::Mixture mix = cuem_test::make_mixture(CovarianceType::full, K, D, 6.0, 71);
  const cuem_test::Dataset ds = cuem_test::sample_mixture(mix, 20000, 72);
  cuem::FitOptions o = cpu_options(CovarianceType::full, K);
  o.tol = 1e-10;
  o.max_iter = 1000;
  const cuem::FitResult batch = cuem::fit(ds.view(), o);
  ASSERT_TRUE(batch.converged);
  const double batch_score = cuem::score(batch.model, ds.view());
  const std::size_t B = 200;
  const int epochs = 6;
  for (const double kappa : {0.6, 0.8, 1.0}) {
    cuem::OnlineGaussianMixture online(o, {kappa, 0.0});
    std::vector<std::size_t> order(ds.n);
    std::iota(order.begin(), order.end(), std::size_t{0});
    cuem_test::Rng rng(73);
    std::vector<double> shuffled(ds.x.size());
    for (int e = 0; e < epochs; ++e) {
      for (std::size_t i = ds.n - 1; i > 0; --i)
        std::swap(order[i], order[static_cast<std::size_t>(rng.uniform() * static_cast<double>(i + 1))]);
      for (std::size_t i = 0; i < ds.n; ++i) std::copy_n(ds.row(order[i]), D, shuffled.data() + i * D);
      for (std::size_t begin = 0; begin < ds.n; begin += B)
        online.partial_fit(cuem::DataView(shuffled.data() + begin * D, B, D));
    }
    const double steps = static_cast<double>(online.n_steps());
    ASSERT_EQ(online.n_steps(), epochs * static_cast<long>(ds.n / B));
    const double rho_end = std::pow(steps, -kappa);
    const cuem::Model& m = online.model();
    const std::vector<int> perm = cuem_test::best_permutation(m.means, batch.model.means, K, D);
    double worst_z = 0.0;
    for (int k = 0; k < K; ++k) {
      const int f = perm[k];
      const double n_eff = batch.model.weights[k] * static_cast<double>(B) / rho_end;
      for (int i = 0; i < D; ++i) {
        const double sd = std::sqrt(batch.model.covariances[(k * D + i) * D + i]);
        worst_z = std::max(worst_z, std::abs(m.means[f * D + i] - batch.model.means[k * D + i]) / (sd / std::sqrt(n_eff)));
      }
      EXPECT_NEAR(m.weights[f], batch.model.weights[k], 5.0 * std::sqrt(batch.model.weights[k] * rho_end / B) + 1e-3);
    }
    const double online_score = cuem::score(m, ds.view());
    std::printf("kappa %.1f: %lld steps, largest mean error %.2f standard errors, score %.6f vs batch %.6f\n", kappa,
                static_cast<long long>(online.n_steps()), worst_z, online_score, batch_score);
    EXPECT_LT(worst_z, 5.0) << "kappa " << kappa;
    // Within 1e-3 nats per point of the batch optimum (which it cannot exceed).
    EXPECT_GT(online_score, batch_score - 1e-3) << "kappa " << kappa;
    EXPECT_LE(online_score, batch_score + 1e-9) << "kappa " << kappa;
  }
}

// ---- the statistics API -----------------------------------------------------------------

TEST(MixtureStatistics, PartsAddUpAndTheMStepIsEms) {
  for (const CovarianceType type : cuem_test::all_covariance_types()) {
    const cuem_test::Mixture mix = cuem_test::make_mixture(type, 3, 2, 2.0, 81);
    const cuem_test::Dataset ds = cuem_test::sample_mixture(mix, 900, 82);
    cuem::Model m = cuem_test::model_from_mixture(mix, type);
    for (double& v : m.means) v += 0.25;
    const cuem::DataView all = ds.view(), a(ds.x.data(), 400, 2), b(ds.x.data() + 800, 500, 2);
    cuem::MixtureStatistics sa = cuem::mixture_statistics(m, a), sb = cuem::mixture_statistics(m, b);
    cuem::add_statistics(sa, sb);
    const cuem::MixtureStatistics whole = cuem::mixture_statistics(m, all);
    EXPECT_EQ(sa.n_points, 900u);
    EXPECT_NEAR(sa.weight, 900.0, 0.0);
    EXPECT_NEAR(sa.log_likelihood, whole.log_likelihood, 1e-10 * std::abs(whole.log_likelihood));
    EXPECT_LT(cuem_test::max_rel_diff(sa.nk, whole.nk), 1e-12) << type_name(type);
    const double reg = 1e-6;
    const cuem::Model next = cuem::model_from_statistics(sa, reg);
    const cuem::Model ref = cuem_test::m_step(all, cuem_test::responsibilities(m, all), 3, type, reg);
    EXPECT_LT(cuem_test::max_rel_diff(next.weights, ref.weights), 1e-10) << type_name(type);
    EXPECT_LT(cuem_test::max_rel_diff(next.means, ref.means), 1e-10) << type_name(type);
    EXPECT_LT(cuem_test::max_rel_diff(next.covariances, ref.covariances), 1e-9) << type_name(type);
    cuem::MixtureStatistics other = cuem::mixture_statistics(m, a);
    other.n_features = 3;
    EXPECT_THROW(cuem::add_statistics(sa, other), cuem::InvalidArgument);
  }
}

// ---- bad input --------------------------------------------------------------------------

TEST(OnlineErrors, ScheduleOutsideItsRange) {
  const cuem::FitOptions o = cpu_options(CovarianceType::diag, 2);
  for (const double kappa : {0.5, 0.3, 1.01, std::numeric_limits<double>::quiet_NaN()})
    EXPECT_THROW(cuem::OnlineGaussianMixture(o, {kappa, 0.0}), cuem::InvalidArgument) << kappa;
  EXPECT_THROW(cuem::OnlineGaussianMixture(o, {0.7, -1.0}), cuem::InvalidArgument);
  // kappa = 1 is the range's closed end (rho_t = 1 / t): taken, and nothing fitted yet.
  const cuem::OnlineGaussianMixture at_edge(o, {1.0, 0.0});
  EXPECT_FALSE(at_edge.initialized());
  EXPECT_EQ(at_edge.n_steps(), 0);
  EXPECT_EQ(at_edge.n_points_seen(), 0u);
  EXPECT_TRUE(at_edge.model().empty());
  // Missing entries are taken: a batch with a NaN entry makes a step, and the step's model
  // is finite (tests/test_incremental_missing.cpp checks the values).
  cuem::FitOptions missing = o;
  missing.missing = cuem::MissingPolicy::marginalize;
  cuem::OnlineGaussianMixture with_missing(missing, {0.7, 0.0});
  const cuem_test::Mixture mix = cuem_test::make_mixture(CovarianceType::diag, 2, 3, 3.0, 93);
  cuem_test::Dataset ds = cuem_test::sample_mixture(mix, 200, 94);
  ds.x[4] = std::numeric_limits<double>::quiet_NaN();
  const double ll = with_missing.partial_fit(cuem::DataView(ds.x.data(), 200, 3));
  EXPECT_TRUE(std::isfinite(ll));
  EXPECT_TRUE(with_missing.initialized());
  EXPECT_EQ(with_missing.n_steps(), 1);
  EXPECT_EQ(with_missing.n_points_seen(), 200u);
  for (const double v : with_missing.model().means) EXPECT_TRUE(std::isfinite(v));
}

TEST(OnlineErrors, BadBatchesLeaveTheStateAsItWas) {
  const cuem_test::Mixture mix = cuem_test::make_mixture(CovarianceType::diag, 2, 3, 3.0, 91);
  const cuem_test::Dataset ds = cuem_test::sample_mixture(mix, 300, 92);
  cuem::OnlineGaussianMixture online(cpu_options(CovarianceType::diag, 2), {0.7, 1.0});
  // The first batch must hold at least K points; a failed first call leaves it unstarted.
  EXPECT_THROW(online.partial_fit(cuem::DataView(ds.x.data(), 1, 3)), cuem::DataError);
  EXPECT_FALSE(online.initialized());
  online.partial_fit(cuem::DataView(ds.x.data(), 100, 3));
  ASSERT_TRUE(online.initialized());
  const cuem::Model before = online.model();
  const auto message_of = [&](cuem::DataView X, cuem::WeightView w = {}) {
    try {
      online.partial_fit(X, w);
    } catch (const cuem::DataError& e) {
      return std::string(e.what());
    }
    return std::string("no DataError");
  };
  EXPECT_NE(message_of(cuem::DataView(ds.x.data(), 0, 3)).find("empty batch"), std::string::npos);
  EXPECT_NE(message_of(cuem::DataView(ds.x.data(), 50, 2)).find("2 columns"), std::string::npos);
  std::vector<double> bad(ds.x.begin(), ds.x.begin() + 30);
  bad[4] = std::numeric_limits<double>::infinity();
  EXPECT_NE(message_of(cuem::DataView(bad.data(), 10, 3)), "no DataError");
  const std::vector<double> zeros(10, 0.0);
  EXPECT_THROW(online.partial_fit(cuem::DataView(ds.x.data(), 10, 3), {zeros.data(), zeros.size()}),
               cuem::InvalidArgument);
  EXPECT_EQ(online.n_steps(), 1);
  EXPECT_EQ(online.n_points_seen(), 100u);
  EXPECT_EQ(online.model().means, before.means);
  EXPECT_EQ(online.model().covariances, before.covariances);
  // A later batch may be smaller than K.
  online.partial_fit(cuem::DataView(ds.x.data() + 100 * 3, 1, 3));
  EXPECT_EQ(online.n_steps(), 2);
  EXPECT_EQ(online.n_points_seen(), 101u);
}

}  // namespace
