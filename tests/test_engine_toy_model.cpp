// A second model on the engine: a mixture of independent Bernoulli features
// (tests/bernoulli_mixture.hpp), nothing Gaussian. It gets restarts, the trace, the
// monotonicity watch and best-of-n from the driver.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "bernoulli_mixture.hpp"
#include "core/rng.hpp"
#include "engine/batch_driver.hpp"

namespace {

using cuem_test::BernoulliMixture;
using cuem_test::BernoulliParams;
using cuem_test::BernoulliStats;

static_assert(cuem::engine::is_batch_model<BernoulliMixture>::value, "the toy model is an engine model");
static_assert(!cuem::engine::is_batch_model<BernoulliParams>::value, "parameters alone are not");

// Two well separated profiles over 20 features, 30% / 70%.
struct ToyData {
  int N = 3000, D = 20, K = 2;
  std::vector<double> p_true, pi_true{0.3, 0.7};
  std::vector<int> x;
  ToyData() : p_true(K * D), x(N * D) {
    std::mt19937_64 gen(7);
    for (int d = 0; d < D; ++d) {
      p_true[d] = d % 2 ? 0.85 : 0.2;
      p_true[D + d] = d % 3 ? 0.1 : 0.7;
    }
    std::uniform_real_distribution<double> u(0, 1);
    for (int n = 0; n < N; ++n) {
      const int k = u(gen) < pi_true[0] ? 0 : 1;
      for (int d = 0; d < D; ++d) x[n * D + d] = u(gen) < p_true[k * D + d] ? 1 : 0;
    }
  }
};

TEST(EngineToyModel, BernoulliMixtureFitsThroughTheBatchDriverWithRestartsAndTrace) {
  const ToyData t;
  BernoulliMixture model(t.x, t.N, t.D, t.K);
  cuem::engine::BatchOptions o;
  o.n_init = 3;
  o.max_iter = 200;
  o.tol = 1e-10;
  o.seed = 11;
  const auto r = cuem::engine::run_batch_em(model, o);
  ASSERT_TRUE(r.fitted);
  EXPECT_TRUE(r.converged);
  EXPECT_EQ(r.n_decreases, 0);

  // The trace: every restart's iterations in order, each restart's bounds non-decreasing,
  // the winner's last entry the result's bound, and the winner the best final bound.
  std::vector<double> final_bound(o.n_init, -std::numeric_limits<double>::infinity());
  std::vector<int> iterations(o.n_init, 0);
  for (std::size_t i = 0; i < r.trace.size(); ++i) {
    const cuem::TracePoint& tp = r.trace[i];
    ASSERT_GE(tp.init, 0);
    ASSERT_LT(tp.init, o.n_init);
    EXPECT_EQ(tp.iteration, ++iterations[tp.init]);
    if (i > 0 && r.trace[i - 1].init == tp.init) {
      EXPECT_GE(tp.mean_log_likelihood, r.trace[i - 1].mean_log_likelihood - 1e-12);
    }
    final_bound[tp.init] = tp.mean_log_likelihood;
  }
  for (int i = 0; i < o.n_init; ++i) EXPECT_GT(iterations[i], 1) << "restart " << i;
  const int best = static_cast<int>(std::max_element(final_bound.begin(), final_bound.end()) - final_bound.begin());
  EXPECT_EQ(r.best_init, best);
  EXPECT_EQ(r.lower_bound, final_bound[best]);
  EXPECT_EQ(r.n_iter, iterations[best]);

  // The restarts start from different parameters: their first bounds differ.
  EXPECT_NE(r.trace.front().mean_log_likelihood, r.trace[iterations[0]].mean_log_likelihood);

  // The profiles are recovered (up to the order of the components).
  const int a = r.params.p[0] < 0.5 ? 0 : 1;  // the component whose feature 0 is rare: true 0
  for (int d = 0; d < t.D; ++d) {
    EXPECT_NEAR(r.params.p[a * t.D + d], t.p_true[d], 0.05) << d;
    EXPECT_NEAR(r.params.p[(1 - a) * t.D + d], t.p_true[t.D + d], 0.05) << d;
  }
  EXPECT_NEAR(std::exp(r.params.log_pi[a]), t.pi_true[0], 0.03);

  // EM's guarantee, checked independently of the driver: the returned parameters (after
  // the last M-step) score at least the last bound.
  const BernoulliStats at_end = model.e_step(r.params);
  EXPECT_GE(at_end.log_likelihood / at_end.weight, r.lower_bound - 1e-12);
}

TEST(EngineToyModel, StatisticsOfChunksAddUpToTheWholePass) {
  const ToyData t;
  const BernoulliMixture model(t.x, t.N, t.D, t.K);
  const BernoulliParams p = model.initialize(3, nullptr);
  const BernoulliStats whole = model.e_step(p);
  BernoulliStats sum = model.e_step(p, 0, 1000);
  sum.add(model.e_step(p, 1000, 2500));
  sum.add(model.e_step(p, 2500, t.N));
  EXPECT_EQ(sum.weight, whole.weight);
  EXPECT_NEAR(sum.log_likelihood, whole.log_likelihood, 1e-10 * std::abs(whole.log_likelihood));
  for (std::size_t i = 0; i < whole.nk.size(); ++i) EXPECT_NEAR(sum.nk[i], whole.nk[i], 1e-9);
  for (std::size_t i = 0; i < whole.s.size(); ++i) EXPECT_NEAR(sum.s[i], whole.s[i], 1e-9);
}

TEST(EngineToyModel, CallbackStopsAndTolDecidesConvergence) {
  const ToyData t;
  BernoulliMixture model(t.x, t.N, t.D, t.K);
  cuem::engine::BatchOptions o;
  o.n_init = 2;
  o.tol = 0;
  int calls = 0;
  o.on_iteration = [&](const cuem::IterationInfo& info) {
    ++calls;
    EXPECT_EQ(info.init, 0);
    return info.iteration < 2;
  };
  const auto stopped = cuem::engine::run_batch_em(model, o);
  EXPECT_EQ(calls, 2);  // the second restart never starts
  EXPECT_EQ(stopped.trace.size(), 2u);
  EXPECT_FALSE(stopped.converged);
  EXPECT_EQ(stopped.n_iter, 2);

  // A tolerance larger than any change: converged at the second iteration.
  o.on_iteration = nullptr;
  o.n_init = 1;
  o.tol = 1e9;
  const auto loose = cuem::engine::run_batch_em(model, o);
  EXPECT_TRUE(loose.converged);
  EXPECT_EQ(loose.n_iter, 2);

  // max_iter bounds the iterations without convergence.
  o.tol = 0;
  o.max_iter = 3;
  const auto capped = cuem::engine::run_batch_em(model, o);
  EXPECT_FALSE(capped.converged);
  EXPECT_EQ(capped.n_iter, 3);
  EXPECT_EQ(capped.trace.size(), 3u);
}

// A model whose E-step reports a falling bound: the driver counts it, as it would a bug.
struct FallingModel {
  struct Params { int step = 0; };
  struct Stats { double log_likelihood; double weight; int step; };
  Params initialize(std::uint64_t, std::vector<std::string>* notices) {
    notices->push_back("the same notice from every restart");
    return {};
  }
  Stats e_step(const Params& p) { return {p.step == 2 ? -5.0 : -1.0 + 0.1 * p.step, 1.0, p.step}; }
  Params m_step(const Stats& s) { return {s.step + 1}; }
  double unit_roundoff() const { return 0x1p-53; }
};

TEST(EngineToyModel, DriverCountsDecreasesAndMergesNotices) {
  FallingModel model;
  cuem::engine::BatchOptions o;
  o.n_init = 2;
  o.max_iter = 4;
  o.tol = 0;
  const auto r = cuem::engine::run_batch_em(model, o);
  // Bounds -1, -0.9, -5, -0.7 per restart: one fall of 4.1 in each.
  EXPECT_EQ(r.n_decreases, 2);
  EXPECT_NEAR(r.max_decrease, 4.1, 1e-12);
  ASSERT_EQ(r.notices.size(), 1u);
  EXPECT_EQ(r.best_init, 0);  // equal final bounds: the first restart keeps the lead
}

}  // namespace
