// Incremental EM (src/engine/incremental_driver.hpp): the expected complete-data
// log-likelihood against a plain loop; one block is batch EM bit for bit; the free-energy
// trace never falls; over several blocks it reaches batch EM's optimum; the option's
// errors.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wfree-nonheap-object"  // as in test_squarem (make_mixture inlined)
#endif
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/incremental_bound.hpp"
#include "core/prepared_params.hpp"
#include "cpu/cpu_primitives.hpp"
#include "cuem/errors.hpp"
#include "cuem/fit.hpp"
#include "incremental_gmm.hpp"
#include "test_util.hpp"

namespace {

using cuem::CovarianceType;

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
  EXPECT_NEAR(q, reference, 1e-10 * std::abs(reference)) << cuem::to_string(type);
  ASSERT_NE(reference, 0.0);
}

INSTANTIATE_TEST_SUITE_P(Types, CompleteLogLikelihood, testing::ValuesIn(cuem_test::all_covariance_types()),
                         [](const auto& info) { return std::string(cuem::to_string(info.param)); });

// ---- the driver on the Gaussian mixture ---------------------------------------------------

// The GMM as fit() builds it, on the float64 CPU, with blocks of consecutive rows
// (tests/gmm_blocks.hpp); the checks shared with the incremental first pass's tests are in
// tests/incremental_gmm.hpp.
using cuem_test::GmmRun;
using cuem_test::incremental_options;

class IncrementalGmm : public testing::TestWithParam<CovarianceType> {};

// One block, a model of its own over all the rows: batch EM bit for bit, restarts included;
// with the full first pass also convergence, E-step passes, the trace's iterations and rates
// and the weights.
TEST_P(IncrementalGmm, OneBlockIsBatchEmBitwise) {
  cuem_test::expect_one_block_is_batch_em_bitwise(
      GetParam(), cuem::FirstPass::full, [](const GmmRun& inc, const GmmRun& batch) {
        EXPECT_EQ(inc.converged, batch.converged);
        EXPECT_EQ(inc.n_estep_passes, batch.n_estep_passes);
        for (std::size_t i = 0; i < inc.trace.size(); ++i) {
          EXPECT_EQ(inc.trace[i].iteration, batch.trace[i].iteration) << i;
          const double r1 = inc.trace[i].rate, r2 = batch.trace[i].rate;
          EXPECT_TRUE(r1 == r2 || (std::isnan(r1) && std::isnan(r2))) << i << ": rate " << r1 << " vs " << r2;
        }
        EXPECT_TRUE(inc.convergence_rate == batch.convergence_rate ||
                    (std::isnan(inc.convergence_rate) && std::isnan(batch.convergence_rate)));
        EXPECT_EQ(inc.params.weights, batch.params.weights);
      });
}

// Several blocks: the free energy never falls (beyond rounding), and the fit ends at batch
// EM's optimum (a reference run far past its tolerance), bound and parameters.
TEST_P(IncrementalGmm, MonotoneAndReachesBatchOptimum) {
  cuem_test::expect_blocks_reach_batch_optimum(
      GetParam(), cuem::FirstPass::full, [](const GmmRun& inc, const GmmRun& ref, std::size_t B) {
        EXPECT_LT(cuem_test::max_rel_diff(inc.params.weights, ref.params.weights), 1e-4) << "B = " << B;
      });
}

INSTANTIATE_TEST_SUITE_P(Types, IncrementalGmm, testing::ValuesIn(cuem_test::all_covariance_types()),
                         [](const auto& info) { return std::string(cuem::to_string(info.param)); });

// ---- through fit(): weights, what ran, errors ----------------------------------------------

TEST(IncrementalFit, WeightedReachesWeightedBatchOptimum) {
  cuem_test::expect_weighted_fit_reaches_weighted_batch_optimum(CovarianceType::diag, cuem::FirstPass::full);
}

TEST(IncrementalFit, BadOptionsAreClearErrors) {
  const cuem_test::Mixture mix = cuem_test::make_mixture(CovarianceType::full, 2, 2, 2.0, 51);
  cuem_test::Dataset ds = cuem_test::sample_mixture(mix, 50, 52);
  cuem::FitOptions o = incremental_options(CovarianceType::full, 2, 2);
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
