// Acceleration::squarem through the public fit(): the same optimum as plain EM with
// fewer E-step passes where EM crawls, a trace that never falls, and the same for data
// with missing entries; FitResult's convergence rate says when EM crawls.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "cuem/cuem.hpp"
#include "test_util.hpp"

namespace {

using cuem::CovarianceType;

// Two overlapping components (means about 2.2 apart, unit variances): EM crawls.
cuem_test::Dataset overlapping(std::size_t n) {
  cuem_test::Dataset d;
  d.n = n;
  d.d = 2;
  cuem_test::Rng rng(811);
  for (std::size_t i = 0; i < n; ++i) {
    const double shift = i % 2 ? 2.0 : 0.0;
    d.x.push_back(rng.normal() + shift);
    d.x.push_back(rng.normal() + 0.5 * shift);
  }
  return d;
}

cuem::FitOptions options(cuem::Acceleration a) {
  cuem::FitOptions o;
  o.n_components = 2;
  o.covariance_type = CovarianceType::full;
  o.tol = 1e-7;
  o.max_iter = 5000;
  o.seed = 3;
  o.acceleration = a;
  return o;
}

void expect_monotone(const cuem::FitResult& r) {
  EXPECT_EQ(r.n_decreases, 0);
  for (std::size_t i = 1; i < r.trace.size(); ++i)
    if (r.trace[i].init == r.trace[i - 1].init) {
      EXPECT_GE(r.trace[i].mean_log_likelihood, r.trace[i - 1].mean_log_likelihood - 1e-12) << i;
    }
}

TEST(Acceleration, SquaremReachesPlainEmsOptimumInFewerPasses) {
  const cuem_test::Dataset d = overlapping(3000);
  const cuem::FitResult plain = cuem::fit(d.view(), options(cuem::Acceleration::none));
  const cuem::FitResult fast = cuem::fit(d.view(), options(cuem::Acceleration::squarem));
  ASSERT_TRUE(plain.converged) << plain.n_iter;
  ASSERT_TRUE(fast.converged);
  EXPECT_GE(fast.lower_bound, plain.lower_bound - 1e-7);
  EXPECT_LT(fast.n_estep_passes, plain.n_estep_passes * 6 / 10)
      << "plain " << plain.n_estep_passes << ", squarem " << fast.n_estep_passes;
  EXPECT_EQ(plain.n_estep_passes, plain.n_iter);  // one pass per plain iteration
  expect_monotone(fast);
  // EM crawls here, and says so.
  EXPECT_GT(plain.convergence_rate, 0.9);
  EXPECT_LT(plain.convergence_rate, 1.0);
}

TEST(Acceleration, SquaremWithMissingEntries) {
  cuem_test::Dataset d = overlapping(3000);
  cuem_test::Rng rng(812);
  for (double& v : d.x)
    if (rng.uniform() < 0.15) v = std::numeric_limits<double>::quiet_NaN();
  cuem::FitOptions o = options(cuem::Acceleration::none);
  o.missing = cuem::MissingPolicy::marginalize;
  const cuem::FitResult plain = cuem::fit(d.view(), o);
  o.acceleration = cuem::Acceleration::squarem;
  const cuem::FitResult fast = cuem::fit(d.view(), o);
  EXPECT_GE(fast.lower_bound, plain.lower_bound - 1e-7);
  EXPECT_LT(fast.n_estep_passes, plain.n_estep_passes);
  expect_monotone(fast);
}

TEST(Acceleration, PlainEmIsUnchangedByTheOption) {
  const cuem_test::Dataset d = overlapping(500);
  cuem::FitOptions o = options(cuem::Acceleration::none);
  o.max_iter = 20;
  const cuem::FitResult a = cuem::fit(d.view(), o);
  EXPECT_EQ(a.n_estep_passes, 20);
  EXPECT_EQ(cuem::parse_acceleration("squarem"), cuem::Acceleration::squarem);
  EXPECT_STREQ(cuem::to_string(cuem::Acceleration::none), "none");
  EXPECT_THROW(cuem::parse_acceleration("aitken"), cuem::InvalidArgument);
}

}  // namespace
