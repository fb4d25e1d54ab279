// SQUAREM on the variational Bayesian mixture (src/engine/vb_parameter_map.hpp): the map
// from a posterior to an unconstrained vector and back, and accelerated fits that reach
// the plain fit's lower bound in fewer E-step passes without the bound ever falling.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "cuem/bayesian.hpp"
#include "cuem/errors.hpp"
#include "engine/vb_parameter_map.hpp"
#include "test_util.hpp"
#include "trace_checks.hpp"

namespace {

using cuem::BayesianOptions;
using cuem::CovarianceType;
using cuem::WeightPrior;

const CovarianceType kTypes[] = {CovarianceType::full, CovarianceType::tied, CovarianceType::diag,
                                 CovarianceType::spherical};
const WeightPrior kPriors[] = {WeightPrior::dirichlet_process, WeightPrior::dirichlet_distribution};

// Two overlapping clusters in 3-D (centres 1.2 apart, unit spread), where the
// iterations crawl; seed fixed.
struct Overlapping {
  static constexpr std::size_t kN = 800, kD = 3;
  std::vector<double> X;
  Overlapping() {
    std::mt19937_64 rng(77);
    std::normal_distribution<double> z(0.0, 1.0);
    for (std::size_t i = 0; i < kN; ++i) {
      const double shift = i % 3 == 0 ? 1.2 : 0.0;
      for (std::size_t d = 0; d < kD; ++d) X.push_back((d == 0 ? shift : 0.0) + z(rng));
    }
  }
  cuem::DataView view() const { return cuem::DataView(X.data(), kN, kD); }
};

BayesianOptions options(CovarianceType type, WeightPrior prior) {
  BayesianOptions o;
  o.em.n_components = 3;
  o.em.covariance_type = type;
  o.em.seed = 5;
  o.em.max_iter = 20000;
  o.em.tol = 1e-7;
  o.weight_concentration_prior_type = prior;
  return o;
}

using cuem_test::max_rel_diff;

TEST(VbParameterMap, PosteriorToVectorToPosteriorRoundTrips) {
  const Overlapping data;
  for (CovarianceType type : kTypes)
    for (WeightPrior prior : kPriors) {
      SCOPED_TRACE(std::string(cuem::to_string(type)) + " " + cuem::to_string(prior));
      BayesianOptions o = options(type, prior);
      o.em.max_iter = 5;
      const cuem::BayesianPosterior q = cuem::fit_bayesian(data.view(), o).posterior;
      const cuem::BayesianPosterior back = cuem::engine::vb_from_vector(cuem::engine::vb_to_vector(q), q);
      EXPECT_LT(max_rel_diff(back.weight_concentration, q.weight_concentration), 1e-13);
      EXPECT_LT(max_rel_diff(back.mean_precision, q.mean_precision), 1e-13);
      EXPECT_LT(max_rel_diff(back.degrees_of_freedom, q.degrees_of_freedom), 1e-13);
      EXPECT_EQ(back.means, q.means);
      EXPECT_LT(max_rel_diff(back.covariances, q.covariances), 1e-12);
      EXPECT_LT(max_rel_diff(back.precisions_cholesky, q.precisions_cholesky), 1e-12);
    }
}

// Any vector of the right length is a posterior the evaluations take: concentrations and
// mean precisions positive, degrees of freedom above D - 1, covariances positive definite.
TEST(VbParameterMap, AnyVectorIsAValidPosterior) {
  const Overlapping data;
  std::mt19937_64 rng(3);
  std::normal_distribution<double> z(0.0, 3.0);
  for (CovarianceType type : kTypes)
    for (WeightPrior prior : kPriors) {
      SCOPED_TRACE(std::string(cuem::to_string(type)) + " " + cuem::to_string(prior));
      BayesianOptions o = options(type, prior);
      o.em.max_iter = 1;
      const cuem::BayesianPosterior shape = cuem::fit_bayesian(data.view(), o).posterior;
      std::vector<double> v = cuem::engine::vb_to_vector(shape);
      for (double& x : v) x = z(rng);
      const cuem::BayesianPosterior q = cuem::engine::vb_from_vector(v, shape);
      for (double a : q.weight_concentration) EXPECT_GT(a, 0.0);
      for (double b : q.mean_precision) EXPECT_GT(b, 0.0);
      for (double nu : q.degrees_of_freedom) EXPECT_GT(nu, Overlapping::kD - 1.0);
      const std::vector<double> lp = cuem::score_samples(q, data.view());
      for (double x : lp) ASSERT_TRUE(std::isfinite(x));
      v.push_back(0.0);
      EXPECT_THROW(cuem::engine::vb_from_vector(v, shape), cuem::InvalidArgument);
    }
}

TEST(VbSquarem, ReachesThePlainFitsBoundInFewerPassesAndNeverFalls) {
  const Overlapping data;
  int plain_total = 0, fast_total = 0;
  for (CovarianceType type : kTypes)
    for (WeightPrior prior : kPriors) {
      SCOPED_TRACE(std::string(cuem::to_string(type)) + " " + cuem::to_string(prior));
      BayesianOptions o = options(type, prior);
      const cuem::BayesianFitResult plain = cuem::fit_bayesian(data.view(), o);
      o.em.acceleration = cuem::Acceleration::squarem;
      const cuem::BayesianFitResult fast = cuem::fit_bayesian(data.view(), o);
      std::printf("%s %s: plain %d passes (rate %.4f), SQUAREM %d passes; bounds %.10f %.10f\n",
                  cuem::to_string(type), cuem::to_string(prior), plain.n_estep_passes, plain.convergence_rate,
                  fast.n_estep_passes, plain.lower_bound, fast.lower_bound);
      ASSERT_TRUE(plain.converged);
      ASSERT_TRUE(fast.converged);
      EXPECT_EQ(plain.n_estep_passes, plain.n_iter);
      // The bound is a whole-data total here (about -3500): no worse than plain's end, and
      // the same optimum to the slack the tolerance leaves.
      EXPECT_GE(fast.lower_bound, plain.lower_bound - 1e-6);
      EXPECT_NEAR(fast.lower_bound, plain.lower_bound, 1e-4);
      EXPECT_EQ(fast.n_decreases, 0);
      cuem_test::expect_trace_never_decreases(fast.trace, 1e-9);
      plain_total += plain.n_estep_passes;
      fast_total += fast.n_estep_passes;
    }
  std::printf("all: plain %d passes, SQUAREM %d\n", plain_total, fast_total);
  EXPECT_LT(fast_total, plain_total / 2);  // about a fifth on this data
}

TEST(VbSquarem, WithPruningIsRefused) {
  const Overlapping data;
  BayesianOptions o = options(CovarianceType::diag, WeightPrior::dirichlet_process);
  o.em.acceleration = cuem::Acceleration::squarem;
  o.prune_threshold = 0.01;
  try {
    cuem::fit_bayesian(data.view(), o);
    FAIL() << "SQUAREM with pruning was accepted";
  } catch (const cuem::InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("do not go together"), std::string::npos) << e.what();
  }
}

}  // namespace
