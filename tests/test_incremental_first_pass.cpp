// Incremental EM's incremental first pass (src/engine/incremental_driver.hpp,
// FirstPass::incremental): one pass equals a plain loop written here (block b's
// responsibilities under the M-step of blocks 0..b-1, the start for block 0) and differs
// from batch EM's first step; from the pass's last step on the bound never falls; the fit
// reaches batch EM's optimum; one block is batch EM bit for bit; sample weights.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wfree-nonheap-object"  // as in test_squarem (make_mixture inlined)
#endif
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "cuem/errors.hpp"
#include "cuem/fit.hpp"
#include "incremental_gmm.hpp"
#include "test_util.hpp"

namespace {

using cuem::CovarianceType;
using cuem::FirstPass;
using cuem_test::incremental_options;

// The start: the generating mixture moved off its optimum, so that the first pass has work.
cuem::Model start_of(const cuem_test::Mixture& mix, CovarianceType type) {
  cuem::Model m = cuem_test::model_from_mixture(mix, type);
  for (std::size_t i = 0; i < m.means.size(); ++i) m.means[i] += 0.4 * std::cos(3.0 * static_cast<double>(i));
  for (double& v : m.covariances) v *= 1.7;
  m.weights = std::vector<double>(m.n_components, 1.0 / m.n_components);
  cuem_test::set_precisions_cholesky(m);
  return m;
}

void set_start(cuem::FitOptions& o, const cuem::Model& start) {
  o.weights_init = start.weights;
  o.means_init = start.means;
  o.precisions_init = cuem_test::precisions_of(start);
}

// From `start`, B blocks, an incremental first pass, max_iter passes, tol 0.
cuem::FitOptions first_pass_options(CovarianceType type, const cuem::Model& start, std::size_t B, int max_iter) {
  cuem::FitOptions o = incremental_options(type, start.n_components, 1);
  set_start(o, start);
  o.max_iter = max_iter;
  o.tol = 0;
  o.incremental_blocks = static_cast<int>(B);
  o.first_pass = FirstPass::incremental;
  return o;
}

// Block b's rows as fit() interleaves them: tiles of `tile` consecutive rows (the last
// one shorter), tile t in block t mod B; the rows in order.
std::vector<std::size_t> interleaved_rows(std::size_t n, std::size_t B, std::size_t tile, std::size_t b) {
  std::vector<std::size_t> rows;
  for (std::size_t r = 0; r < n; ++r)
    if ((r / tile) % B == b) rows.push_back(r);
  return rows;
}

// Neal and Hinton's first pass by hand: block b's responsibilities (times the weights)
// under the parameters so far, then the M-step on the rows of blocks 0..b, from the
// ceil(B / 5)-th block on (the blocks before stay under the start). Blocks: interleaved
// tiles of `tile` rows; the first `steps` blocks (all B by default).
cuem::Model plain_first_pass(const cuem_test::Dataset& ds, const std::vector<double>& w, std::size_t B,
                             std::size_t tile, cuem::Model params, double reg_covar, std::size_t steps = 0) {
  const std::size_t k = static_cast<std::size_t>(params.n_components), d = static_cast<std::size_t>(ds.d);
  std::vector<double> resp, seen_x;
  for (std::size_t b = 0; b < (steps ? steps : B); ++b) {
    std::vector<double> block_x;
    const std::vector<std::size_t> rows = interleaved_rows(ds.n, B, tile, b);
    for (std::size_t r : rows) block_x.insert(block_x.end(), ds.row(r), ds.row(r) + d);
    std::vector<double> r = cuem_test::responsibilities(params, cuem::DataView(block_x.data(), rows.size(), d));
    for (std::size_t p = 0; p < rows.size(); ++p)
      for (std::size_t c = 0; c < k; ++c) r[p * k + c] *= w.empty() ? 1.0 : w[rows[p]];
    resp.insert(resp.end(), r.begin(), r.end());
    seen_x.insert(seen_x.end(), block_x.begin(), block_x.end());
    if (b + 1 < (B + 4) / 5) continue;
    const cuem::DataView seen(seen_x.data(), seen_x.size() / d, d);
    params = cuem_test::m_step(seen, resp, params.n_components, params.covariance_type, reg_covar);
  }
  return params;
}

double weighted_mean_ll(const cuem::Model& m, cuem::DataView x, const double* w) {
  const std::vector<double> ll = cuem_test::log_likelihoods(m, x);
  double s = 0, total = 0;
  for (std::size_t p = 0; p < ll.size(); ++p) {
    s += (w ? w[p] : 1.0) * ll[p];
    total += w ? w[p] : 1.0;
  }
  return s / total;
}

class FirstPassIncremental : public testing::TestWithParam<CovarianceType> {};

// One pass through fit(): the plain loop's parameters to 1e-12, away from batch EM's one
// step; the first trace entry is block 0's mean log-likelihood under the start. B = 4: an
// M-step after every block, tiles of 403 / 64 = 6 rows (the last of one row); B = 23:
// after the fifth block on, tiles of one row.
TEST_P(FirstPassIncremental, OnePassIsThePlainLoop) {
  const CovarianceType type = GetParam();
  const cuem_test::Mixture mix = cuem_test::make_mixture(type, 3, 3, 2.0, 61);
  const cuem_test::Dataset ds = cuem_test::sample_mixture(mix, 403, 62);  // blocks of unequal size
  const cuem::Model start = start_of(mix, type);
  cuem_test::Rng rng(63);
  std::vector<double> weights(ds.n);
  for (double& v : weights) v = rng.uniform(0.2, 3.0);
  for (const auto& [weighted, B] : {std::pair<bool, std::size_t>{false, 4}, {true, 4}, {false, 23}, {true, 23}}) {
    const std::size_t tile = B == 4 ? 6 : 1;
    const std::vector<double> w = weighted ? weights : std::vector<double>{};
    const cuem::WeightView wv = weighted ? cuem::WeightView{w.data(), w.size()} : cuem::WeightView{};
    cuem::FitOptions o = first_pass_options(type, start, B, 1);
    const cuem::FitResult inc = cuem::fit(ds.view(), o, wv);
    o.incremental_blocks = 1;
    const cuem::FitResult batch = cuem::fit(ds.view(), o, wv);
    const cuem::Model ref = plain_first_pass(ds, w, B, tile, start, o.reg_covar);
    const std::string what =
        std::string(cuem::to_string(type)) + (weighted ? ", weighted" : "") + ", B = " + std::to_string(B);
    ASSERT_EQ(inc.n_iter, 1) << what;
    ASSERT_EQ(inc.trace.size(), B) << what;
    ASSERT_GT(cuem_test::max_abs(inc.model.means), 0.5) << what;  // not vacuous
    EXPECT_LT(cuem_test::max_rel_diff(inc.model.weights, ref.weights), 1e-12) << what;
    EXPECT_LT(cuem_test::max_rel_diff(inc.model.means, ref.means), 1e-12) << what;
    EXPECT_LT(cuem_test::max_rel_diff(inc.model.covariances, ref.covariances), 1e-12) << what;
    // The M-steps within the pass moved it away from batch EM's one step.
    EXPECT_GT(cuem_test::max_rel_diff(inc.model.means, batch.model.means), 1e-4) << what;
    std::vector<double> x0, w0;
    for (std::size_t r : interleaved_rows(ds.n, B, tile, 0)) {
      x0.insert(x0.end(), ds.row(r), ds.row(r) + ds.d);
      if (weighted) w0.push_back(w[r]);
    }
    const cuem::DataView block0(x0.data(), x0.size() / ds.d, static_cast<std::size_t>(ds.d));
    EXPECT_NEAR(inc.trace[0].mean_log_likelihood, weighted_mean_ll(start, block0, weighted ? w0.data() : nullptr), 1e-12)
        << what;
  }
}

// max_block_steps S stops part-way through the first pass with the plain loop's
// parameters after S blocks (the start itself before the M-steps begin, at the fifth
// block of 23), and past it with the unlimited fit's first S trace entries, bit for bit.
TEST_P(FirstPassIncremental, MaxBlockStepsStopsWhereThePlainLoopIs) {
  const CovarianceType type = GetParam();
  const cuem_test::Mixture mix = cuem_test::make_mixture(type, 3, 3, 2.0, 71);
  const cuem_test::Dataset ds = cuem_test::sample_mixture(mix, 403, 72);
  const cuem::Model start = start_of(mix, type);
  const std::size_t B = 23;
  cuem::FitOptions o = first_pass_options(type, start, B, 4);
  const cuem::FitResult all = cuem::fit(ds.view(), o);
  ASSERT_EQ(all.trace.size(), 4 * B);
  for (std::size_t S : {std::size_t{3}, std::size_t{5}, std::size_t{12}, B, B + 7, 3 * B + 1}) {
    o.max_block_steps = static_cast<int>(S);
    const cuem::FitResult part = cuem::fit(ds.view(), o);
    const std::string what = std::string(cuem::to_string(type)) + ", S = " + std::to_string(S);
    ASSERT_EQ(part.trace.size(), S) << what;
    EXPECT_FALSE(part.converged) << what;
    EXPECT_EQ(part.n_iter, static_cast<int>((S + B - 1) / B)) << what;
    for (std::size_t i = 0; i < S; ++i)
      ASSERT_EQ(part.trace[i].mean_log_likelihood, all.trace[i].mean_log_likelihood) << what << ", step " << i;
    if (S > B) continue;
    const cuem::Model ref = plain_first_pass(ds, {}, B, 1, start, o.reg_covar, S);
    EXPECT_LT(cuem_test::max_rel_diff(part.model.means, ref.means), 1e-12) << what;
    EXPECT_LT(cuem_test::max_rel_diff(part.model.covariances, ref.covariances), 1e-12) << what;
    EXPECT_LT(cuem_test::max_rel_diff(part.model.weights, ref.weights), 1e-12) << what;
    if (S < 5) {
      EXPECT_LT(cuem_test::max_rel_diff(part.model.means, start.means), 1e-15) << what;
    }
  }
}

TEST(FirstPassIncrementalFit, MaxBlockStepsNeedsBlocksAndIsNotNegative) {
  const cuem_test::Mixture mix = cuem_test::make_mixture(CovarianceType::diag, 2, 2, 3.0, 5);
  const cuem_test::Dataset ds = cuem_test::sample_mixture(mix, 200, 6);
  cuem::FitOptions o = incremental_options(CovarianceType::diag, 2, 1);
  o.max_block_steps = 3;
  EXPECT_THROW(cuem::fit(ds.view(), o), cuem::InvalidArgument);  // incremental_blocks = 1
  o.incremental_blocks = 4;
  o.max_block_steps = -1;
  EXPECT_THROW(cuem::fit(ds.view(), o), cuem::InvalidArgument);
}

// The driver on the GMM, as fit() builds it, with blocks of consecutive rows: the checks
// shared with the full first pass's tests (tests/incremental_gmm.hpp).

// From the first pass's last step on the bound never falls (the first-pass entries before
// it are bounds over fewer blocks, allowed to), and the fit ends at batch EM's optimum.
TEST_P(FirstPassIncremental, MonotoneAfterFirstPassAndReachesBatchOptimum) {
  cuem_test::expect_blocks_reach_batch_optimum(GetParam(), FirstPass::incremental);
}

// One block: the incremental first pass is the full one, so batch EM bit for bit.
TEST_P(FirstPassIncremental, OneBlockIsBatchEmBitwise) {
  cuem_test::expect_one_block_is_batch_em_bitwise(GetParam(), FirstPass::incremental);
}

INSTANTIATE_TEST_SUITE_P(Types, FirstPassIncremental, testing::ValuesIn(cuem_test::all_covariance_types()),
                         [](const auto& info) { return std::string(cuem::to_string(info.param)); });

// Sample weights through fit(): the weighted batch optimum.
TEST(FirstPassIncrementalFit, WeightedReachesWeightedBatchOptimum) {
  cuem_test::expect_weighted_fit_reaches_weighted_batch_optimum(CovarianceType::full, FirstPass::incremental);
}

TEST(FirstPassIncrementalFit, NamesParseAndUnknownIsAClearError) {
  EXPECT_EQ(cuem::parse_first_pass("full"), FirstPass::full);
  EXPECT_EQ(cuem::parse_first_pass("incremental"), FirstPass::incremental);
  EXPECT_STREQ(cuem::to_string(FirstPass::incremental), "incremental");
  EXPECT_STREQ(cuem::to_string(FirstPass::full), "full");
  try {
    cuem::parse_first_pass("half");
    ADD_FAILURE() << "no InvalidArgument";
  } catch (const cuem::InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("use full or incremental"), std::string::npos) << e.what();
  }
}

}  // namespace
