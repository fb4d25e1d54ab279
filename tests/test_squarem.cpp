// Accelerated EM (src/engine/squarem_driver.hpp) and the Gaussian mixture's parameter map
// (src/engine/gmm_parameter_map.hpp): the map is a bijection onto valid models; SQUAREM
// reaches plain EM's optimum with fewer E-step passes where EM crawls, never lowers the
// trace, backtracks and falls back where an extrapolation overshoots; the batch and
// accelerated drivers estimate EM's linear rate.
// GCC 12 inlines test_util's make_mixture here and then warns of a free of a non-heap
// pointer on a path it cannot rule out (a known false positive, as in test_resources).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wfree-nonheap-object"
#endif
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "bernoulli_mixture.hpp"
#include "core/linalg.hpp"
#include "core/m_step.hpp"
#include "core/rng.hpp"
#include "cuem/errors.hpp"
#include "engine/batch_driver.hpp"
#include "engine/gmm_model.hpp"
#include "engine/gmm_parameter_map.hpp"
#include "engine/squarem_driver.hpp"
#include "gmm_blocks.hpp"
#include "test_util.hpp"
#include "trace_checks.hpp"

namespace {

using cuem::CovarianceType;
using cuem::engine::BatchOptions;
using cuem::engine::run_batch_em;
using cuem::engine::run_squarem_em;
using cuem::engine::SquaremSettings;

const CovarianceType kTypes[] = {CovarianceType::full, CovarianceType::tied, CovarianceType::diag,
                                 CovarianceType::spherical};

template <class Result>
void expect_trace_never_decreases(const Result& r, double slack) {
  cuem_test::expect_trace_never_decreases(r.trace, slack);
}

// ---- the parameter map --------------------------------------------------------------

std::vector<double> random_vector(std::size_t n, double spread, std::uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> z(0.0, spread);
  std::vector<double> v(n);
  for (double& x : v) x = z(gen);
  return v;
}

TEST(GmmParameterMap, VectorToModelToVectorRoundTrips) {
  for (CovarianceType type : kTypes)
    for (int K : {1, 3}) {
      const int D = 4;
      const std::size_t n = cuem::engine::gmm_vector_size(type, K, D);
      const std::size_t cov = type == CovarianceType::full   ? static_cast<std::size_t>(K) * D * (D + 1) / 2
                              : type == CovarianceType::tied ? static_cast<std::size_t>(D) * (D + 1) / 2
                              : type == CovarianceType::diag ? static_cast<std::size_t>(K) * D
                                                             : static_cast<std::size_t>(K);
      ASSERT_EQ(n, static_cast<std::size_t>(K - 1 + K * D) + cov) << cuem::to_string(type);
      const std::vector<double> v = random_vector(n, 1.0, 17 + K);
      const cuem::Model m = cuem::engine::gmm_from_vector(v, type, K, D);
      const std::vector<double> back = cuem::engine::gmm_to_vector(m);
      ASSERT_EQ(back.size(), n);
      double worst = 0;
      for (std::size_t i = 0; i < n; ++i) worst = std::max(worst, std::abs(back[i] - v[i]));
      EXPECT_LT(worst, 1e-12) << cuem::to_string(type) << " K " << K;
    }
}

TEST(GmmParameterMap, ModelToVectorToModelRoundTrips) {
  for (CovarianceType type : kTypes) {
    const cuem_test::Mixture mix = cuem_test::make_mixture(type, 3, 3, 3.0, 5);
    const cuem::Model m = cuem_test::model_from_mixture(mix, type);
    const cuem::Model back = cuem::engine::gmm_from_vector(cuem::engine::gmm_to_vector(m), type, 3, 3);
    ASSERT_EQ(back.weights.size(), m.weights.size());
    for (std::size_t i = 0; i < m.weights.size(); ++i) EXPECT_NEAR(back.weights[i], m.weights[i], 1e-14);
    ASSERT_EQ(back.means, m.means);
    ASSERT_EQ(back.covariances.size(), m.covariances.size());
    for (std::size_t i = 0; i < m.covariances.size(); ++i)
      EXPECT_NEAR(back.covariances[i], m.covariances[i], 1e-13) << cuem::to_string(type) << " " << i;
    ASSERT_EQ(back.precisions_cholesky.size(), m.precisions_cholesky.size());
    for (std::size_t i = 0; i < m.precisions_cholesky.size(); ++i)
      EXPECT_NEAR(back.precisions_cholesky[i], m.precisions_cholesky[i], 1e-12) << cuem::to_string(type) << " " << i;
  }
}

// Any vector, however far from a fitted model, is a valid one: weights positive and
// summing to 1, covariances symmetric and positive definite (the M-step's factorisation
// takes them), precisions_cholesky finite.
TEST(GmmParameterMap, AnyVectorIsAValidModel) {
  for (CovarianceType type : kTypes)
    for (std::uint64_t seed = 1; seed <= 20; ++seed) {
      const int K = 4, D = 3;
      const std::vector<double> v = random_vector(cuem::engine::gmm_vector_size(type, K, D), 4.0, seed);
      const cuem::Model m = cuem::engine::gmm_from_vector(v, type, K, D);
      double sum = 0;
      for (double w : m.weights) {
        EXPECT_GT(w, 0.0);
        sum += w;
      }
      EXPECT_NEAR(sum, 1.0, 1e-15);
      ASSERT_EQ(m.covariances.size(), cuem::covariance_size(type, K, D));
      ASSERT_EQ(m.precisions_cholesky.size(), m.covariances.size());
      for (double p : m.precisions_cholesky) EXPECT_TRUE(std::isfinite(p));
      cuem::Model check = m;
      EXPECT_NO_THROW(cuem::compute_precision_cholesky(check, 0.0)) << cuem::to_string(type) << " seed " << seed;
      if (type == CovarianceType::full || type == CovarianceType::tied) {
        const int n = type == CovarianceType::full ? K : 1;
        for (int k = 0; k < n; ++k)
          for (int i = 0; i < D; ++i)
            for (int j = 0; j < D; ++j)
              EXPECT_EQ(m.covariances[(k * D + i) * D + j], m.covariances[(k * D + j) * D + i]);
      }
    }
  EXPECT_THROW(cuem::engine::gmm_from_vector(std::vector<double>(5), CovarianceType::diag, 2, 2),
               cuem::InvalidArgument);
}

// The precision factors are the M-step's (P = chol_lower(Sigma)^-T, P P^T = Sigma^-1), on
// vectors whose covariances are well enough conditioned for the two routes to agree.
TEST(GmmParameterMap, PrecisionFactorsAreTheMStepsOnes) {
  for (CovarianceType type : kTypes)
    for (std::uint64_t seed = 1; seed <= 10; ++seed) {
      const int K = 3, D = 4;
      const std::vector<double> v = random_vector(cuem::engine::gmm_vector_size(type, K, D), 0.5, seed);
      const cuem::Model m = cuem::engine::gmm_from_vector(v, type, K, D);
      cuem::Model check = m;
      cuem::compute_precision_cholesky(check, 0.0);
      ASSERT_EQ(m.precisions_cholesky.size(), check.precisions_cholesky.size());
      for (std::size_t i = 0; i < m.precisions_cholesky.size(); ++i)
        EXPECT_NEAR(m.precisions_cholesky[i], check.precisions_cholesky[i],
                    1e-12 * std::max(1.0, std::abs(check.precisions_cholesky[i])))
            << cuem::to_string(type) << " seed " << seed << " " << i;
    }
}

// ---- toy models with a known EM map -------------------------------------------------

// EM map theta <- A theta + b with A = diag(a): fixed point theta* = b / (1 - a), bound
// -||theta - theta*||^2 / 2, which every step raises. EM's rate is max a.
struct LinearMapModel {
  struct Params {
    std::vector<double> theta;
  };
  struct Stats {
    double log_likelihood = 0;
    double weight = 1;
    std::vector<double> theta;
  };
  std::vector<double> a, b;
  int e_steps = 0;

  double fixed_point(std::size_t i) const { return b[i] / (1 - a[i]); }
  Params initialize(std::uint64_t, std::vector<std::string>*) const { return {std::vector<double>(a.size(), 0.0)}; }
  Stats e_step(const Params& p) {
    ++e_steps;
    double s = 0;
    for (std::size_t i = 0; i < a.size(); ++i) s += (p.theta[i] - fixed_point(i)) * (p.theta[i] - fixed_point(i));
    return {-0.5 * s, 1.0, p.theta};
  }
  Params m_step(const Stats& s) const {
    Params p{s.theta};
    for (std::size_t i = 0; i < a.size(); ++i) p.theta[i] = a[i] * s.theta[i] + b[i];
    return p;
  }
  double unit_roundoff() const { return 0x1p-53; }
};

std::vector<double> to_unconstrained(const LinearMapModel&, const LinearMapModel::Params& p) { return p.theta; }
LinearMapModel::Params from_unconstrained(const LinearMapModel&, const std::vector<double>& v,
                                          const LinearMapModel::Params&) {
  return {v};
}

static_assert(cuem::engine::has_parameter_map<LinearMapModel>::value, "the linear model has a map");
static_assert(cuem::engine::has_parameter_map<cuem::engine::GaussianMixtureEM>::value, "the GMM has a map");

TEST(ConvergenceRate, BatchDriverRecoversTheRateOfALinearEmMap) {
  for (double a : {0.5, 0.9, 0.99}) {
    LinearMapModel model{{a}, {1.0}};
    BatchOptions o;
    o.max_iter = 100000;
    o.tol = 1e-9;
    const auto r = run_batch_em(model, o);
    ASSERT_TRUE(r.converged) << a;
    EXPECT_NEAR(r.convergence_rate, a, 1e-6) << a;
    EXPECT_EQ(r.n_estep_passes, model.e_steps);
    EXPECT_EQ(r.n_estep_passes, static_cast<int>(r.trace.size()));
  }
}

// Two directions at rates 0.95 and 0.5: the estimate is the larger, once the faster one
// has died out.
TEST(ConvergenceRate, BatchDriverReportsTheLargestRate) {
  LinearMapModel model{{0.5, 0.95}, {2.0, 0.1}};
  BatchOptions o;
  o.max_iter = 100000;
  o.tol = 1e-9;
  const auto r = run_batch_em(model, o);
  ASSERT_TRUE(r.converged);
  EXPECT_NEAR(r.convergence_rate, 0.95, 1e-6);
}

TEST(ConvergenceRate, NanWhereTooFewStepsToTell) {
  LinearMapModel model{{0.9}, {1.0}};
  BatchOptions o;
  o.max_iter = 2;  // one step: no ratio of two
  o.tol = 0;
  EXPECT_TRUE(std::isnan(run_batch_em(model, o).convergence_rate));
  o.max_iter = 3;
  EXPECT_NEAR(run_batch_em(model, o).convergence_rate, 0.9, 1e-12);
}

// On a linear map S3's step is exact: one extrapolation of a full step lands on theta*.
// The rate comes from the plain EM steps SQUAREM takes (x0 to x1 and the stabilising ones).
TEST(Squarem, LinearEmMapSolvedByOneFullExtrapolation) {
  const double a = 0.99;
  LinearMapModel model{{a}, {1.0}};
  BatchOptions o;
  o.max_iter = 100000;
  o.tol = 1e-12;
  const auto plain = run_batch_em(model, o);
  model.e_steps = 0;
  const auto fast = run_squarem_em(model, o);
  ASSERT_TRUE(fast.converged);
  EXPECT_EQ(fast.n_estep_passes, model.e_steps);
  EXPECT_NEAR(fast.params.theta[0], model.fixed_point(0), 1e-9);
  EXPECT_GE(fast.lower_bound, plain.lower_bound);
  // The cap on |alpha| grows 1, 4, 16, 64: three capped extrapolations, the fourth
  // (|alpha| = 1 / (1 - a) = 100 < 256) exact; about 3 passes a cycle.
  EXPECT_LT(fast.n_estep_passes, 20);
  EXPECT_GT(plain.n_estep_passes, 1000);
  EXPECT_EQ(fast.n_fallbacks, 0);
  EXPECT_EQ(fast.n_backtracks, 0);
  EXPECT_GE(fast.n_extrapolations, 3);
  EXPECT_NEAR(fast.convergence_rate, a, 1e-6);
  expect_trace_never_decreases(fast, 0.0);
  EXPECT_EQ(fast.n_decreases, 0);
}

// An EM map that converges quadratically, theta* - theta <- (theta* - theta)^2: the S3
// step assumes a geometric run and overshoots. From theta0 = 0.5 below theta* = 1:
// errors 0.5, 0.25, 0.0625; r = 0.25, v = -0.0625, alpha = -4, x' = theta0 + 1 (error
// -0.5, bound -0.125 below x1's -0.03125). Backtracking: alpha -2.5 (error -0.359375,
// still below), then -1.75 (error -0.183594, bound -0.016853 above x1's): kept.
struct QuadraticMapModel {
  struct Params {
    double theta = 0.5;
  };
  struct Stats {
    double log_likelihood = 0;
    double weight = 1;
    double theta = 0;
  };
  Params initialize(std::uint64_t, std::vector<std::string>*) const { return {}; }
  Stats e_step(const Params& p) const { return {-0.5 * (p.theta - 1) * (p.theta - 1), 1.0, p.theta}; }
  Params m_step(const Stats& s) const { return {1 - (1 - s.theta) * (1 - s.theta)}; }
  double unit_roundoff() const { return 0x1p-53; }
};
std::vector<double> to_unconstrained(const QuadraticMapModel&, const QuadraticMapModel::Params& p) {
  return {p.theta};
}
QuadraticMapModel::Params from_unconstrained(const QuadraticMapModel&, const std::vector<double>& v,
                                             const QuadraticMapModel::Params&) {
  return {v[0]};
}

double quadratic_bound(double theta) { return -0.5 * (theta - 1) * (theta - 1); }

TEST(Squarem, AnOvershootIsPulledBackTowardsThePlainStep) {
  QuadraticMapModel model;
  BatchOptions o;
  o.max_iter = 100;
  o.tol = 1e-14;
  SquaremSettings s;
  s.step_max0 = 100;  // let S3's alpha through on the first cycle
  s.max_backtracks = 2;
  const auto r = run_squarem_em(model, o, s);
  ASSERT_GE(r.trace.size(), 3u);
  EXPECT_EQ(r.trace[0].mean_log_likelihood, quadratic_bound(0.5));
  EXPECT_EQ(r.trace[1].mean_log_likelihood, quadratic_bound(0.75));
  // The third entry is the extrapolation with alpha = -1.75, after two pull-backs.
  const double alpha = -1.75, r1 = 0.25, v1 = (0.9375 - 0.75) - 0.25;
  EXPECT_NEAR(r.trace[2].mean_log_likelihood, quadratic_bound(0.5 - 2 * alpha * r1 + alpha * alpha * v1), 1e-15);
  EXPECT_GE(r.n_backtracks, 2);
  EXPECT_GE(r.n_extrapolations, 1);
  EXPECT_TRUE(r.converged);
  EXPECT_NEAR(r.params.theta, 1.0, 1e-6);
  expect_trace_never_decreases(r, 0.0);
  EXPECT_EQ(r.n_decreases, 0);
  // Passes: the kept entries plus the two rejected extrapolations (at least).
  EXPECT_GE(r.n_estep_passes, static_cast<int>(r.trace.size()) + 2);
}

TEST(Squarem, AnOvershootWithoutPullBacksFallsBackToThePlainStep) {
  QuadraticMapModel model;
  BatchOptions o;
  o.max_iter = 100;
  o.tol = 1e-14;
  SquaremSettings s;
  s.step_max0 = 100;
  s.max_backtracks = 0;
  const auto r = run_squarem_em(model, o, s);
  ASSERT_GE(r.trace.size(), 3u);
  // The rejected x' (bound -0.125) is not in the trace: the third entry is x2's.
  EXPECT_EQ(r.trace[2].mean_log_likelihood, quadratic_bound(0.9375));
  EXPECT_GE(r.n_fallbacks, 1);
  EXPECT_EQ(r.n_backtracks, 0);
  EXPECT_TRUE(r.converged);
  expect_trace_never_decreases(r, 0.0);
  EXPECT_EQ(r.n_decreases, 0);
  EXPECT_GT(r.n_estep_passes, static_cast<int>(r.trace.size()));
}

// The driver's bookkeeping: max_iter bounds E-step passes, the callback stops the fit,
// restarts take their seeds as the batch driver's, the best restart wins.
TEST(Squarem, PassesCallbackAndRestarts) {
  LinearMapModel model{{0.9}, {1.0}};
  BatchOptions o;
  o.tol = 0;
  o.max_iter = 7;
  o.n_init = 3;
  model.e_steps = 0;
  const auto capped = run_squarem_em(model, o);
  EXPECT_EQ(capped.n_estep_passes, 21);
  EXPECT_EQ(model.e_steps, 21);
  EXPECT_FALSE(capped.converged);
  EXPECT_EQ(capped.best_init, 0);  // equal restarts: the first keeps the lead

  o.n_init = 2;
  o.max_iter = 1000;
  int calls = 0;
  o.on_iteration = [&](const cuem::IterationInfo& info) {
    ++calls;
    EXPECT_EQ(info.init, 0);
    EXPECT_EQ(info.iteration, calls);
    return info.iteration < 4;
  };
  const auto stopped = run_squarem_em(model, o);
  EXPECT_EQ(calls, 4);
  EXPECT_EQ(stopped.trace.size(), 4u);
  EXPECT_EQ(stopped.n_iter, 4);
  EXPECT_FALSE(stopped.converged);
  // The result is the M-step of the last kept point: its bound is at least the last entry.
  EXPECT_GE(model.e_step(stopped.params).log_likelihood, stopped.lower_bound);
  EXPECT_EQ(stopped.lower_bound, stopped.trace.back().mean_log_likelihood);
}

// ---- the toy Bernoulli mixture (tests/bernoulli_mixture.hpp), with a map ------------

}  // namespace

// The map, where argument-dependent lookup finds it (the model's namespace).
namespace cuem_test {

// The map: K - 1 log weight ratios against the last, then the logits of p.
std::vector<double> to_unconstrained(const cuem_test::BernoulliMixture&, const cuem_test::BernoulliParams& p) {
  std::vector<double> v;
  for (std::size_t k = 0; k + 1 < p.log_pi.size(); ++k) v.push_back(p.log_pi[k] - p.log_pi.back());
  for (double q : p.p) v.push_back(std::log(q / (1 - q)));
  return v;
}
cuem_test::BernoulliParams from_unconstrained(const cuem_test::BernoulliMixture&, const std::vector<double>& v, const cuem_test::BernoulliParams& shape) {
  const std::size_t K = shape.log_pi.size();
  cuem_test::BernoulliParams p{std::vector<double>(K), std::vector<double>(shape.p.size())};
  double top = 0;
  for (std::size_t k = 0; k + 1 < K; ++k) top = std::max(top, v[k]);
  double sum = 0;
  for (std::size_t k = 0; k < K; ++k) sum += std::exp((k + 1 < K ? v[k] : 0.0) - top);
  for (std::size_t k = 0; k < K; ++k) p.log_pi[k] = (k + 1 < K ? v[k] : 0.0) - top - std::log(sum);
  for (std::size_t i = 0; i < p.p.size(); ++i)
    p.p[i] = std::clamp(1 / (1 + std::exp(-v[K - 1 + i])), 1e-12, 1 - 1e-12);
  return p;
}

}  // namespace cuem_test

namespace {

using cuem_test::BernoulliMixture;

// Two overlapping profiles (features 0.5 +- 0.15), 40% / 60%.
struct ToyData {
  int N = 2000, D = 12, K = 2;
  std::vector<int> x;
  ToyData() : x(N * D) {
    std::mt19937_64 gen(7);
    std::uniform_real_distribution<double> u(0, 1);
    for (int n = 0; n < N; ++n) {
      const int k = u(gen) < 0.4 ? 0 : 1;
      for (int d = 0; d < D; ++d) x[n * D + d] = u(gen) < (k == (d % 2) ? 0.65 : 0.35) ? 1 : 0;
    }
  }
};

TEST(Squarem, BernoulliMixtureReachesPlainEmsOptimumInFewerPasses) {
  const ToyData t;
  BernoulliMixture model(t.x, t.N, t.D, t.K);
  BatchOptions o;
  o.max_iter = 20000;
  o.tol = 1e-10;
  o.seed = 3;
  const auto plain = run_batch_em(model, o);
  const auto fast = run_squarem_em(model, o);
  ASSERT_TRUE(plain.converged);
  ASSERT_TRUE(fast.converged);
  std::printf("Bernoulli: plain %d passes (rate %.4f), SQUAREM %d passes (%d kept, %d pulled back, %d fallbacks)\n",
              plain.n_estep_passes, plain.convergence_rate, fast.n_estep_passes, fast.n_extrapolations,
              fast.n_backtracks, fast.n_fallbacks);
  EXPECT_GE(fast.lower_bound, plain.lower_bound - 1e-9);
  EXPECT_NEAR(fast.lower_bound, plain.lower_bound, 1e-7);
  for (std::size_t i = 0; i < plain.params.p.size(); ++i) EXPECT_NEAR(fast.params.p[i], plain.params.p[i], 2e-3) << i;
  EXPECT_LT(fast.n_estep_passes, plain.n_estep_passes);
  expect_trace_never_decreases(fast, 1e-12);
  EXPECT_EQ(fast.n_decreases, 0);
}

// ---- the Gaussian mixture -----------------------------------------------------------

// The runs below take the GMM as fit() builds it, on the float64 CPU, from tests/gmm_blocks.hpp.

struct GmmCase {
  const char* name;
  CovarianceType type;
  int k, d;
  double separation;
  std::size_t n;
  double max_pass_ratio;  // SQUAREM's passes at most this fraction of plain EM's
};

void PrintTo(const GmmCase& c, std::ostream* os) { *os << c.name; }

class SquaremGmm : public testing::TestWithParam<GmmCase> {};

TEST_P(SquaremGmm, ReachesPlainEmsOptimum) {
  const GmmCase c = GetParam();
  const cuem_test::Mixture mix = cuem_test::make_mixture(c.type, c.k, c.d, c.separation, 41);
  cuem::FitOptions o;
  o.n_components = c.k;
  o.covariance_type = c.type;
  o.seed = 43;
  o.reg_covar = 1e-6;
  cuem_test::GmmBlocks f(cuem_test::sample_mixture(mix, c.n, 42), o);
  auto model = f.model();
  const double tol = 1e-10;
  const auto plain = run_batch_em(model, f.batch(tol, 50000));
  const auto fast = run_squarem_em(model, f.batch(tol, 50000));
  // A reference optimum: plain EM far past the tolerance.
  const auto ref = run_batch_em(model, f.batch(1e-14, 200000));
  std::printf("%s: plain %d passes (rate %.5f), SQUAREM %d passes (%d kept, %d pulled back, %d fallbacks, rate "
              "%.5f); bounds %.12f %.12f ref %.12f\n",
              c.name, plain.n_estep_passes, plain.convergence_rate, fast.n_estep_passes, fast.n_extrapolations,
              fast.n_backtracks, fast.n_fallbacks, fast.convergence_rate, plain.lower_bound, fast.lower_bound,
              ref.lower_bound);
  ASSERT_TRUE(plain.converged);
  ASSERT_TRUE(fast.converged);
  // No worse than plain EM, and at the same optimum.
  EXPECT_GE(fast.lower_bound, plain.lower_bound - 1e-10);
  EXPECT_NEAR(fast.lower_bound, ref.lower_bound, 1e-8);
  // The overlapping optimum is flat: at tol 1e-10 plain EM's means are 1e-3 from it too.
  const double param_tol = 2e-3;
  for (std::size_t i = 0; i < ref.params.weights.size(); ++i)
    EXPECT_NEAR(fast.params.weights[i], ref.params.weights[i], param_tol) << "weight " << i;
  for (std::size_t i = 0; i < ref.params.means.size(); ++i)
    EXPECT_NEAR(fast.params.means[i], ref.params.means[i], param_tol) << "mean " << i;
  for (std::size_t i = 0; i < ref.params.covariances.size(); ++i)
    EXPECT_NEAR(fast.params.covariances[i], ref.params.covariances[i], param_tol) << "covariance " << i;
  expect_trace_never_decreases(fast, 1e-12);
  EXPECT_EQ(fast.n_decreases, 0);
  EXPECT_LE(fast.n_estep_passes, c.max_pass_ratio * plain.n_estep_passes);
  EXPECT_GT(plain.convergence_rate, 0.0);
  EXPECT_LT(plain.convergence_rate, 1.0);
}

INSTANTIATE_TEST_SUITE_P(
    Mixtures, SquaremGmm,
    testing::Values(GmmCase{"separated_full", CovarianceType::full, 3, 2, 3.0, 3000, 1.0},
                    GmmCase{"separated_diag", CovarianceType::diag, 4, 3, 3.0, 3000, 1.0},
                    GmmCase{"overlapping_full", CovarianceType::full, 3, 2, 1.0, 3000, 0.6},
                    GmmCase{"overlapping_tied", CovarianceType::tied, 3, 2, 1.0, 3000, 0.6},
                    GmmCase{"overlapping_spherical", CovarianceType::spherical, 3, 3, 1.0, 3000, 0.6}),
    [](const testing::TestParamInfo<GmmCase>& info) { return std::string(info.param.name); });

// On overlapping components EM crawls: the rate estimate says so, and it agrees with the
// rate measured from the reference run's approach to its optimum.
TEST(ConvergenceRate, GmmRateMatchesTheObservedApproach) {
  const cuem_test::Mixture mix = cuem_test::make_mixture(CovarianceType::full, 3, 2, 1.0, 41);
  cuem::FitOptions o;
  o.n_components = 3;
  o.covariance_type = CovarianceType::full;
  o.seed = 43;
  cuem_test::GmmBlocks f(cuem_test::sample_mixture(mix, 3000, 42), o);
  auto model = f.model();
  const auto r = run_batch_em(model, f.batch(1e-9, 50000));
  const auto ref = run_batch_em(model, f.batch(1e-14, 200000));
  ASSERT_TRUE(r.converged);
  ASSERT_TRUE(ref.converged);
  // The gap to the optimum shrinks by rate^2 a step: over m steps near the end,
  // (gap_{t+m} / gap_t)^(1 / 2m).
  const std::size_t n = r.trace.size();
  ASSERT_GT(n, 60u);
  const double end = ref.lower_bound;
  const double g0 = end - r.trace[n - 41].mean_log_likelihood, g1 = end - r.trace[n - 21].mean_log_likelihood;
  const double observed = std::pow(g1 / g0, 1.0 / 40);
  std::printf("rate %.6f, observed %.6f\n", r.convergence_rate, observed);
  EXPECT_GT(r.convergence_rate, 0.9);
  EXPECT_NEAR(r.convergence_rate, observed, 0.01);
}

}  // namespace
