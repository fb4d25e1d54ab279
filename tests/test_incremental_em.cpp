// Incremental EM (src/engine/incremental_driver.hpp): the expected complete-data
// log-likelihood against a plain loop; one block is batch EM bit for bit; the free-energy
// trace never falls; over several blocks it reaches batch EM's optimum; the option's
// errors.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wfree-nonheap-object"  // as in test_squarem (make_mixture inlined)
#endif
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "core/incremental_bound.hpp"
#include "core/prepared_params.hpp"
#include "cpu/cpu_primitives.hpp"
#include "cuem/errors.hpp"
#include "cuem/fit.hpp"
#include "cuem/resources.hpp"
#include "engine/batch_driver.hpp"
#include "engine/gmm_model.hpp"
#include "engine/incremental_driver.hpp"
#include "engine/placed_data.hpp"
#include "gmm_blocks.hpp"
#include "test_util.hpp"

namespace {

using cuem::CovarianceType;
using cuem::engine::BatchOptions;
using cuem::engine::GaussianMixtureEM;

const char* type_name(CovarianceType t) { return cuem::to_string(t); }

// ---- Q(s, theta) against sum_n sum_k g_nk log(pi_k N(x_n | k)) -------------------------

class CompleteLogLikelihood : public testing::TestWithParam<CovarianceType> {};

TEST_P(CompleteLogLikelihood, MatchesPlainLoop) {
  const CovarianceType type = GetParam();
  const cuem_test::Mixture mix = cuem_test::make_mixture(type, 3, 4, 2.0, 7);
  const cuem_test::Dataset ds = cuem_test::sample_mixture(mix, 500, 8);
  // Responsibilities from one model, the log-joint of another (shifted means, other weights).
  const cuem::Model m1 = cuem_test::model_from_mixture(mix, type);
  cuem::Model m2 = m1;
  for (double& v : m2.means) v += 0.3;
  m2.weights = {0.5, 0.3, 0.2};
  cuem::CpuPrimitives prims(ds.view(), {});
  const cuem::SufficientStats s = prims.gaussian_estep(cuem::prepare(m1));
  const std::vector<double> g = cuem_test::responsibilities(m1, ds.view());
  const std::vector<double> lj = cuem_test::log_joint(m2, ds.view());
  double reference = 0.0;
  for (std::size_t i = 0; i < g.size(); ++i) reference += g[i] * lj[i];
  const double q = cuem::expected_complete_log_likelihood(s, m2);
  EXPECT_NEAR(q, reference, 1e-10 * std::abs(reference)) << type_name(type);
  ASSERT_NE(reference, 0.0);
}

INSTANTIATE_TEST_SUITE_P(Types, CompleteLogLikelihood, testing::ValuesIn(cuem_test::all_covariance_types()),
                         [](const auto& info) { return std::string(type_name(info.param)); });

// ---- the driver on the Gaussian mixture ---------------------------------------------------

// The GMM as fit() builds it, on the float64 CPU, with blocks of consecutive rows.
using Fixture = cuem_test::GmmBlocks;

cuem::FitOptions options(CovarianceType type, int k) {
  cuem::FitOptions o;
  o.n_components = k;
  o.covariance_type = type;
  o.seed = 11;
  o.n_init = 2;
  return o;
}

class IncrementalGmm : public testing::TestWithParam<CovarianceType> {};

// One block, a model of its own over all the rows: batch EM bit for bit, restarts included.
TEST_P(IncrementalGmm, OneBlockIsBatchEmBitwise) {
  const CovarianceType type = GetParam();
  const cuem_test::Mixture mix = cuem_test::make_mixture(type, 3, 3, 1.5, 21);
  Fixture f(cuem_test::sample_mixture(mix, 900, 22), options(type, 3));
  GaussianMixtureEM model = f.model();
  const auto batch = cuem::engine::run_batch_em(model, f.batch(1e-6, 200));
  const auto inc = cuem::engine::run_incremental_em(model, f.blocks(1), f.batch(1e-6, 200));
  ASSERT_GT(batch.n_iter, 3);
  EXPECT_EQ(inc.n_iter, batch.n_iter);
  EXPECT_EQ(inc.converged, batch.converged);
  EXPECT_EQ(inc.best_init, batch.best_init);
  EXPECT_EQ(inc.n_estep_passes, batch.n_estep_passes);
  ASSERT_EQ(inc.trace.size(), batch.trace.size());
  for (std::size_t i = 0; i < inc.trace.size(); ++i) {
    EXPECT_EQ(inc.trace[i].iteration, batch.trace[i].iteration) << i;
    EXPECT_EQ(inc.trace[i].mean_log_likelihood, batch.trace[i].mean_log_likelihood) << i;
    const double r1 = inc.trace[i].rate, r2 = batch.trace[i].rate;
    EXPECT_TRUE(r1 == r2 || (std::isnan(r1) && std::isnan(r2))) << i << ": rate " << r1 << " vs " << r2;
  }
  EXPECT_EQ(inc.lower_bound, batch.lower_bound);
  EXPECT_TRUE(inc.convergence_rate == batch.convergence_rate ||
              (std::isnan(inc.convergence_rate) && std::isnan(batch.convergence_rate)));
  EXPECT_EQ(inc.params.weights, batch.params.weights);
  EXPECT_EQ(inc.params.means, batch.params.means);
  EXPECT_EQ(inc.params.covariances, batch.params.covariances);
  EXPECT_EQ(inc.params.precisions_cholesky, batch.params.precisions_cholesky);
}

// Several blocks: the free energy never falls (beyond rounding), and the fit ends at batch
// EM's optimum (a reference run far past its tolerance), bound and parameters.
TEST_P(IncrementalGmm, MonotoneAndReachesBatchOptimum) {
  const CovarianceType type = GetParam();
  const cuem_test::Mixture mix = cuem_test::make_mixture(type, 3, 3, 2.0, 31);
  Fixture f(cuem_test::sample_mixture(mix, 1200, 32), options(type, 3));
  f.o.n_init = 1;
  GaussianMixtureEM model = f.model();
  const auto ref = cuem::engine::run_batch_em(model, f.batch(1e-14, 100000));
  ASSERT_TRUE(ref.converged);
  for (std::size_t B : {2u, 7u, 30u}) {
    const auto inc = cuem::engine::run_incremental_em(model, f.blocks(B), f.batch(1e-13, 100000));
    ASSERT_TRUE(inc.converged) << "B = " << B;
    EXPECT_EQ(inc.n_decreases, 0) << "B = " << B << ", largest fall " << inc.max_decrease;
    for (std::size_t i = 1; i < inc.trace.size(); ++i)
      EXPECT_GE(inc.trace[i].mean_log_likelihood, inc.trace[i - 1].mean_log_likelihood - 1e-12)
          << "B = " << B << ", entry " << i;
    ASSERT_EQ(inc.trace.size(), 1 + (static_cast<std::size_t>(inc.n_iter) - 1) * B);
    // The observed log-likelihood of the result, by the test's own densities.
    const double ll = cuem_test::mean_log_likelihood(inc.params, f.ds.view());
    const double ll_ref = cuem_test::mean_log_likelihood(ref.params, f.ds.view());
    std::printf("%s B=%zu: %d passes (batch %d), bound %.14f, ll %.14f, batch ll %.14f\n", type_name(type), B,
                inc.n_iter, ref.n_iter, inc.lower_bound, ll, ll_ref);
    EXPECT_NEAR(ll, ll_ref, 1e-8) << "B = " << B;
    EXPECT_NEAR(inc.lower_bound, ll_ref, 1e-8) << "B = " << B;
    EXPECT_LE(inc.lower_bound, ll + 1e-12) << "the free energy bounds the log-likelihood";
    EXPECT_LT(cuem_test::max_rel_diff(inc.params.means, ref.params.means), 1e-4) << "B = " << B;
    EXPECT_LT(cuem_test::max_rel_diff(inc.params.weights, ref.params.weights), 1e-4) << "B = " << B;
  }
}

INSTANTIATE_TEST_SUITE_P(Types, IncrementalGmm, testing::ValuesIn(cuem_test::all_covariance_types()),
                         [](const auto& info) { return std::string(type_name(info.param)); });

// ---- through fit(): weights, what ran, errors ----------------------------------------------

TEST(IncrementalFit, WeightedReachesWeightedBatchOptimum) {
  const cuem_test::Mixture mix = cuem_test::make_mixture(CovarianceType::diag, 3, 2, 2.0, 41);
  const cuem_test::Dataset ds = cuem_test::sample_mixture(mix, 1000, 42);
  cuem_test::Rng rng(43);
  std::vector<double> w(ds.n);
  for (double& v : w) v = rng.uniform(0.0, 3.0);
  cuem::FitOptions o = options(CovarianceType::diag, 3);
  o.device = cuem::parse_device("cpu");
  o.precision = cuem::Precision::float64;
  o.n_init = 1;
  o.tol = 1e-14;
  o.max_iter = 100000;
  const cuem::FitResult batch = cuem::fit(ds.view(), o, {w.data(), w.size()});
  o.incremental_blocks = 5;
  o.tol = 1e-13;
  const cuem::FitResult inc = cuem::fit(ds.view(), o, {w.data(), w.size()});
  ASSERT_TRUE(batch.converged);
  ASSERT_TRUE(inc.converged);
  EXPECT_EQ(inc.n_decreases, 0);
  EXPECT_EQ(inc.trace.size(), 1 + (static_cast<std::size_t>(inc.n_iter) - 1) * 5);
  const double s_batch = cuem::score(batch.model, ds.view(), {}, {w.data(), w.size()});
  const double s_inc = cuem::score(inc.model, ds.view(), {}, {w.data(), w.size()});
  EXPECT_NEAR(s_inc, s_batch, 1e-8);
  EXPECT_NEAR(inc.lower_bound, s_batch, 1e-8);
}

TEST(IncrementalFit, BadOptionsAreClearErrors) {
  const cuem_test::Mixture mix = cuem_test::make_mixture(CovarianceType::full, 2, 2, 2.0, 51);
  cuem_test::Dataset ds = cuem_test::sample_mixture(mix, 50, 52);
  cuem::FitOptions o = options(CovarianceType::full, 2);
  const auto message_of = [&](const cuem::FitOptions& opts, cuem::DataView X) {
    try {
      cuem::fit(X, opts);
    } catch (const cuem::InvalidArgument& e) {
      return std::string(e.what());
    }
    return std::string("no InvalidArgument");
  };
  o.incremental_blocks = 0;
  EXPECT_NE(message_of(o, ds.view()).find("incremental_blocks must be at least 1"), std::string::npos);
  o.incremental_blocks = 51;
  EXPECT_NE(message_of(o, ds.view()).find("more than the 50 rows"), std::string::npos);
  o.incremental_blocks = 5;
  o.acceleration = cuem::Acceleration::squarem;
  EXPECT_NE(message_of(o, ds.view()).find("cannot be combined"), std::string::npos);
  // Missing entries are taken: tests/test_incremental_missing.cpp.
}

}  // namespace
