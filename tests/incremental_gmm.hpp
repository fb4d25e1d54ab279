#pragma once
// What the incremental driver's tests on the Gaussian mixture share, with the full first pass
// (test_incremental_em) and the incremental one (test_incremental_first_pass): the options,
// and the checks both make, each a test's whole setup. The first pass takes one trace entry
// (full) or one a block (incremental); past it, every iteration takes one a block.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdio>
#include <functional>
#include <vector>

#include "cuem/devices.hpp"
#include "cuem/fit.hpp"
#include "cuem/options.hpp"
#include "engine/batch_driver.hpp"
#include "engine/gmm_model.hpp"
#include "engine/incremental_driver.hpp"
#include "gmm_blocks.hpp"
#include "test_util.hpp"

namespace cuem_test {

using GmmRun = cuem::engine::BatchResult<cuem::Model>;

// On the float64 CPU: K components of `type`, seed 11, `n_init` starts.
inline cuem::FitOptions incremental_options(cuem::CovarianceType type, int k, int n_init) {
  cuem::FitOptions o;
  o.device = cuem::parse_device("cpu");
  o.precision = cuem::Precision::float64;
  o.n_components = k;
  o.covariance_type = type;
  o.seed = 11;
  o.n_init = n_init;
  return o;
}

inline std::size_t first_pass_entries(cuem::FirstPass first_pass, std::size_t blocks) {
  return first_pass == cuem::FirstPass::incremental ? blocks : 1;
}

// The trace length of `n_iter` passes over `blocks` blocks.
inline std::size_t trace_entries(cuem::FirstPass first_pass, std::size_t blocks, int n_iter) {
  return first_pass_entries(first_pass, blocks) + (static_cast<std::size_t>(n_iter) - 1) * blocks;
}

// One block, a model of its own over all the rows (900 rows, three components of `type`,
// two starts): batch EM bit for bit: passes, best start, trace, bound and parameters.
// `more(inc, batch)` adds a test's own comparisons.
inline void expect_one_block_is_batch_em_bitwise(cuem::CovarianceType type, cuem::FirstPass first_pass,
                                                 const std::function<void(const GmmRun&, const GmmRun&)>& more = {}) {
  const Mixture mix = make_mixture(type, 3, 3, 1.5, 21);
  GmmBlocks f(sample_mixture(mix, 900, 22), incremental_options(type, 3, 2));
  cuem::engine::GaussianMixtureEM model = f.model();
  const GmmRun batch = cuem::engine::run_batch_em(model, f.batch(1e-6, 200));
  const GmmRun inc = cuem::engine::run_incremental_em(model, f.blocks(1), f.batch(1e-6, 200), first_pass);
  ASSERT_GT(batch.n_iter, 3);
  EXPECT_EQ(inc.n_iter, batch.n_iter);
  EXPECT_EQ(inc.best_init, batch.best_init);
  ASSERT_EQ(inc.trace.size(), batch.trace.size());
  for (std::size_t i = 0; i < inc.trace.size(); ++i)
    EXPECT_EQ(inc.trace[i].mean_log_likelihood, batch.trace[i].mean_log_likelihood) << i;
  EXPECT_EQ(inc.lower_bound, batch.lower_bound);
  EXPECT_EQ(inc.params.means, batch.params.means);
  EXPECT_EQ(inc.params.covariances, batch.params.covariances);
  EXPECT_EQ(inc.params.precisions_cholesky, batch.params.precisions_cholesky);
  if (more) more(inc, batch);
}

// Several blocks (2, 7, 30; 1200 rows, three components of `type`): from the first pass's
// last step on the free energy never falls (beyond rounding; the incremental pass's entries
// before it are bounds over fewer blocks, allowed to), and the fit ends at batch EM's optimum
// (a reference run far past its tolerance): the observed log-likelihood by the test's own
// densities, the bound, the means. `more(inc, ref, B)` adds a test's own comparisons.
inline void expect_blocks_reach_batch_optimum(
    cuem::CovarianceType type, cuem::FirstPass first_pass,
    const std::function<void(const GmmRun&, const GmmRun&, std::size_t)>& more = {}) {
  const Mixture mix = make_mixture(type, 3, 3, 2.0, 31);
  GmmBlocks f(sample_mixture(mix, 1200, 32), incremental_options(type, 3, 1));
  cuem::engine::GaussianMixtureEM model = f.model();
  const GmmRun ref = cuem::engine::run_batch_em(model, f.batch(1e-14, 100000));
  ASSERT_TRUE(ref.converged);
  for (std::size_t B : {2u, 7u, 30u}) {
    const GmmRun inc = cuem::engine::run_incremental_em(model, f.blocks(B), f.batch(1e-13, 100000), first_pass);
    ASSERT_TRUE(inc.converged) << "B = " << B;
    EXPECT_EQ(inc.n_decreases, 0) << "B = " << B << ", largest fall " << inc.max_decrease;
    ASSERT_EQ(inc.trace.size(), trace_entries(first_pass, B, inc.n_iter)) << "B = " << B;
    for (std::size_t i = first_pass_entries(first_pass, B); i < inc.trace.size(); ++i)
      EXPECT_GE(inc.trace[i].mean_log_likelihood, inc.trace[i - 1].mean_log_likelihood - 1e-12)
          << "B = " << B << ", entry " << i;
    const double ll = mean_log_likelihood(inc.params, f.ds.view());
    const double ll_ref = mean_log_likelihood(ref.params, f.ds.view());
    std::printf("%s B=%zu: %d passes (batch %d), bound %.14f, ll %.14f, batch ll %.14f\n", cuem::to_string(type), B,
                inc.n_iter, ref.n_iter, inc.lower_bound, ll, ll_ref);
    EXPECT_NEAR(ll, ll_ref, 1e-8) << "B = " << B;
    EXPECT_NEAR(inc.lower_bound, ll_ref, 1e-8) << "B = " << B;
    EXPECT_LE(inc.lower_bound, ll + 1e-12) << "the free energy bounds the log-likelihood";
    EXPECT_LT(max_rel_diff(inc.params.means, ref.params.means), 1e-4) << "B = " << B;
    if (more) more(inc, ref, B);
  }
}

// Sample weights through fit() (1000 rows, three components of `type` in 2-d, weights
// uniform on [0, 3)): five blocks reach the weighted batch optimum, bound and score.
inline void expect_weighted_fit_reaches_weighted_batch_optimum(cuem::CovarianceType type, cuem::FirstPass first_pass) {
  const Mixture mix = make_mixture(type, 3, 2, 2.0, 41);
  const Dataset ds = sample_mixture(mix, 1000, 42);
  Rng rng(43);
  std::vector<double> w(ds.n);
  for (double& v : w) v = rng.uniform(0.0, 3.0);
  cuem::FitOptions o = incremental_options(type, 3, 1);
  o.tol = 1e-14;
  o.max_iter = 100000;
  const cuem::FitResult batch = cuem::fit(ds.view(), o, {w.data(), w.size()});
  o.incremental_blocks = 5;
  o.first_pass = first_pass;
  o.tol = 1e-13;
  const cuem::FitResult inc = cuem::fit(ds.view(), o, {w.data(), w.size()});
  ASSERT_TRUE(batch.converged);
  ASSERT_TRUE(inc.converged);
  EXPECT_EQ(inc.n_decreases, 0);
  EXPECT_EQ(inc.trace.size(), trace_entries(first_pass, 5, inc.n_iter));
  const double s_batch = cuem::score(batch.model, ds.view(), {}, {w.data(), w.size()});
  const double s_inc = cuem::score(inc.model, ds.view(), {}, {w.data(), w.size()});
  EXPECT_NEAR(s_inc, s_batch, 1e-8);
  EXPECT_NEAR(inc.lower_bound, s_batch, 1e-8);
}

}  // namespace cuem_test
