// Incremental EM and out of core for the missing-data mixture (src/core/missing_range_model.hpp):
// one block through the incremental driver is batch EM bit for bit; without NaN the
// missing-data model's incremental fit is the complete model's; with NaN the free energy
// never falls and the fit reaches batch EM's optimum; out of core, a chunked fit started
// from given parameters ends where the in-memory one does; weights as repeated rows.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wfree-nonheap-object"  // as in test_squarem (make_mixture inlined)
#endif
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "core/missing_range_model.hpp"
#include "cuem/fit.hpp"
#include "cuem/online.hpp"
#include "engine/batch_driver.hpp"
#include "engine/incremental_driver.hpp"
#include "test_util.hpp"

namespace {

using cuem::CovarianceType;

cuem::FitOptions options(CovarianceType type, int k) {
  cuem::FitOptions o;
  o.n_components = k;
  o.covariance_type = type;
  o.seed = 5;
  o.device = cuem::parse_device("cpu");
  o.precision = cuem::Precision::float64;
  o.missing = cuem::MissingPolicy::marginalize;
  return o;
}

// A sample with about `rate` of its entries NaN (and so a few empty rows).
cuem_test::Dataset with_holes(CovarianceType type, std::size_t n, double rate, std::uint64_t seed) {
  const cuem_test::Mixture mix = cuem_test::make_mixture(type, 3, 3, 3.0, seed);
  cuem_test::Dataset ds = cuem_test::sample_mixture(mix, n, seed + 1);
  std::mt19937_64 rng(seed + 2);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (double& v : ds.x)
    if (u(rng) < rate) v = std::numeric_limits<double>::quiet_NaN();
  return ds;
}

const cuem::PrimitivesRequest kCpu64{cuem::parse_device("cpu"), cuem::Precision::float64, 0, {}};

class IncrementalMissing : public testing::TestWithParam<CovarianceType> {};

TEST_P(IncrementalMissing, OneBlockIsBatchEmBitwise) {
  const cuem_test::Dataset ds = with_holes(GetParam(), 900, 0.2, 31);
  cuem::FitOptions o = options(GetParam(), 3);
  o.n_init = 2;
  cuem::MissingRangeModel model(ds.view(), {}, 0, o, kCpu64, nullptr, true, true);
  cuem::MissingRangeModel block(ds.view(), {}, 0, o, kCpu64, nullptr, true, false);
  const cuem::engine::BatchOptions b{o.n_init, 200, 1e-6, o.seed, {}};
  const auto batch = cuem::engine::run_batch_em(model, b);
  const auto inc = cuem::engine::run_incremental_em(model, {&block}, b);
  ASSERT_GT(batch.n_iter, 3);
  EXPECT_EQ(inc.n_iter, batch.n_iter);
  ASSERT_EQ(inc.trace.size(), batch.trace.size());
  for (std::size_t i = 0; i < inc.trace.size(); ++i)
    EXPECT_EQ(inc.trace[i].mean_log_likelihood, batch.trace[i].mean_log_likelihood) << i;
  EXPECT_EQ(inc.params.means, batch.params.means);
  EXPECT_EQ(inc.params.covariances, batch.params.covariances);
  EXPECT_EQ(inc.params.weights, batch.params.weights);
}

TEST_P(IncrementalMissing, WithoutNanIsTheCompleteModel) {
  const cuem_test::Mixture mix = cuem_test::make_mixture(GetParam(), 3, 3, 2.0, 41);
  const cuem_test::Dataset ds = cuem_test::sample_mixture(mix, 1200, 42);
  cuem::FitOptions o = options(GetParam(), 3);
  o.incremental_blocks = 4;
  o.tol = 1e-10;
  o.max_iter = 300;
  const cuem::FitResult complete = cuem::fit(ds.view(), o);  // no NaN: the complete model
  cuem::MissingRangeModel model(ds.view(), {}, 0, o, kCpu64, nullptr, true, true);
  std::vector<std::unique_ptr<cuem::MissingRangeModel>> owned;
  std::vector<cuem::MissingRangeModel*> blocks;
  for (std::size_t b = 0; b < 4; ++b) {
    const std::size_t begin = b * ds.n / 4, end = (b + 1) * ds.n / 4;
    const cuem::DataView X(ds.x.data() + begin * ds.d, end - begin, static_cast<std::size_t>(ds.d));
    owned.push_back(
        std::make_unique<cuem::MissingRangeModel>(X, cuem::WeightView{}, begin, o, kCpu64, nullptr, true, false));
    blocks.push_back(owned.back().get());
  }
  const auto missing = cuem::engine::run_incremental_em(model, blocks, {o.n_init, o.max_iter, o.tol, o.seed, {}});
  EXPECT_EQ(missing.n_iter, complete.n_iter);
  EXPECT_NEAR(missing.lower_bound, complete.lower_bound, 1e-12 * std::abs(complete.lower_bound));
  EXPECT_LT(cuem_test::max_rel_diff(missing.params.means, complete.model.means), 1e-10);
  EXPECT_LT(cuem_test::max_rel_diff(missing.params.covariances, complete.model.covariances), 1e-10);
}

// Fits over 2, 7 and 30 blocks of 3000 rows with a fifth of their entries NaN, held to batch
// EM's optimum: each converges and ends at its bound, and the bound never falls from the
// first pass's last step on (an incremental pass's entries before it are bounds over fewer
// blocks, allowed to). `more(batch, inc, B)` adds a test's own checks.
void expect_blocks_rise_to_batch_optimum(
    CovarianceType type, cuem::FirstPass first_pass,
    const std::function<void(const cuem::FitResult&, const cuem::FitResult&, int)>& more) {
  const cuem_test::Dataset ds = with_holes(type, 3000, 0.2, 51);
  cuem::FitOptions o = options(type, 3);
  o.tol = 1e-13;
  o.max_iter = 20000;
  const cuem::FitResult batch = cuem::fit(ds.view(), o);
  ASSERT_TRUE(batch.converged);
  ASSERT_GT(batch.missing.missing_entries, 0u);
  o.first_pass = first_pass;
  for (int B : {2, 7, 30}) {
    o.incremental_blocks = B;
    const cuem::FitResult inc = cuem::fit(ds.view(), o);
    EXPECT_TRUE(inc.converged) << B;
    EXPECT_EQ(inc.n_decreases, 0) << B;
    const std::size_t first = first_pass == cuem::FirstPass::incremental ? static_cast<std::size_t>(B) : 1;
    for (std::size_t i = first; i < inc.trace.size(); ++i)
      EXPECT_GE(inc.trace[i].mean_log_likelihood - inc.trace[i - 1].mean_log_likelihood, -1e-12) << B << " step " << i;
    EXPECT_NEAR(inc.lower_bound, batch.lower_bound, 1e-8) << B;
    more(batch, inc, B);
    if (testing::Test::HasFatalFailure()) return;
  }
}

TEST_P(IncrementalMissing, FreeEnergyRisesToTheBatchOptimum) {
  expect_blocks_rise_to_batch_optimum(GetParam(), cuem::FirstPass::full,
                                      [](const cuem::FitResult& batch, const cuem::FitResult& inc, int) {
                                        EXPECT_EQ(inc.missing.missing_entries, batch.missing.missing_entries);
                                        EXPECT_EQ(inc.missing.empty_rows, batch.missing.empty_rows);
                                      });
}

// The incremental first pass (an M-step after each block from the ceil(B/10)-th on) over
// the missing-data E-step: the bound never falls from the pass's last step on, the same optimum.
TEST_P(IncrementalMissing, IncrementalFirstPassRisesToTheBatchOptimum) {
  expect_blocks_rise_to_batch_optimum(
      GetParam(), cuem::FirstPass::incremental, [](const cuem::FitResult&, const cuem::FitResult& inc, int B) {
        ASSERT_EQ(inc.trace.size(), static_cast<std::size_t>(inc.n_iter) * static_cast<std::size_t>(B)) << B;
      });
}

INSTANTIATE_TEST_SUITE_P(Types, IncrementalMissing, testing::ValuesIn(cuem_test::all_covariance_types()),
                         [](const auto& info) { return std::string(cuem::to_string(info.param)); });

// Out of core: the chunked E-step sums the chunks' expected statistics, so from the same
// start the fit follows the in-memory one to rounding; the summary is the whole data's.
TEST(OutOfCoreMissing, ChunkedFitFollowsTheInMemoryFit) {
  const cuem_test::Dataset ds = with_holes(CovarianceType::full, 4001, 0.25, 61);
  cuem::FitOptions o = options(CovarianceType::full, 3);
  o.tol = 1e-12;
  o.max_iter = 3000;
  const cuem::FitResult start = cuem::fit(ds.view(), o);
  o.weights_init = start.model.weights;
  for (double& m : o.means_init = start.model.means) m += 0.25;  // a start a few steps away
  o.precisions_init = cuem_test::precisions_of(start.model);
  const cuem::FitResult memory = cuem::fit(ds.view(), o);
  std::size_t released_to = 0, calls = 0;
  o.chunk_rows = 500;
  o.release_rows = [&](std::size_t row) {
    released_to = row;
    ++calls;
  };
  const cuem::FitResult chunked = cuem::fit(ds.view(), o);
  ASSERT_TRUE(chunked.converged);
  EXPECT_EQ(chunked.n_decreases, 0);
  EXPECT_NEAR(chunked.lower_bound, memory.lower_bound, 1e-10);
  EXPECT_LT(cuem_test::max_rel_diff(chunked.model.means, memory.model.means), 1e-6);
  EXPECT_EQ(released_to, ds.n);
  EXPECT_GE(calls, 9u * static_cast<std::size_t>(chunked.n_iter));
  EXPECT_EQ(chunked.missing.missing_entries, memory.missing.missing_entries);
  EXPECT_EQ(chunked.missing.incomplete_rows, memory.missing.incomplete_rows);
  EXPECT_EQ(chunked.missing.empty_rows, memory.missing.empty_rows);
  EXPECT_EQ(chunked.missing.n_patterns, memory.missing.n_patterns);
  EXPECT_EQ(chunked.missing.first_empty_rows, memory.missing.first_empty_rows);
  EXPECT_NE(chunked.device.find("out of core"), std::string::npos) << chunked.device;
}

// A column that no row observes cannot be estimated: out of core refuses it as the
// in-memory fit does (the chunks' observed columns pooled before the first E-step), while a
// column that only the last chunk observes is fitted, with the in-memory fit's summary and
// optimum.
TEST(OutOfCoreMissing, ColumnNoChunkObservesIsRefusedAsInMemory) {
  cuem_test::Dataset ds = with_holes(CovarianceType::diag, 1500, 0.1, 71);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  cuem::FitOptions o = options(CovarianceType::diag, 3);
  o.tol = 1e-10;
  o.max_iter = 2000;
  for (std::size_t i = 0; i < 1200; ++i) ds.x[i * 3 + 1] = nan;  // chunks 0-1 (of 500 rows) lack column 1
  const cuem::FitResult memory = cuem::fit(ds.view(), o);
  o.weights_init = memory.model.weights;
  for (double& m : o.means_init = memory.model.means) m += 0.25;  // a start a few steps away
  o.precisions_init = cuem_test::precisions_of(memory.model);
  const cuem::FitResult memory_again = cuem::fit(ds.view(), o);
  o.chunk_rows = 500;
  const cuem::FitResult chunked = cuem::fit(ds.view(), o);
  ASSERT_TRUE(chunked.converged);
  EXPECT_GT(chunked.n_iter, 2);
  EXPECT_NEAR(chunked.lower_bound, memory_again.lower_bound, 1e-10);
  EXPECT_EQ(chunked.missing.n_patterns, memory.missing.n_patterns);
  EXPECT_EQ(chunked.missing.missing_entries, memory.missing.missing_entries);

  for (std::size_t i = 1200; i < ds.n; ++i) ds.x[i * 3 + 1] = nan;  // now no row observes it
  for (std::size_t chunk : {std::size_t{0}, std::size_t{500}, std::size_t{1500}}) {
    o.chunk_rows = chunk;
    try {
      cuem::fit(ds.view(), o);
      ADD_FAILURE() << "no error with chunk_rows " << chunk;
    } catch (const cuem::DataError& e) {
      EXPECT_NE(std::string(e.what()).find("column 1 (0-based) has no observed value"), std::string::npos) << e.what();
    }
  }
}

// Weights: integer weights are repeated rows, for incremental and out-of-core fits of NaN data.
TEST(IncrementalMissing, WeightsAreRepeatedRows) {
  const cuem_test::Dataset ds = with_holes(CovarianceType::diag, 600, 0.2, 71);
  std::vector<double> w(ds.n), repeated;
  for (std::size_t i = 0; i < ds.n; ++i) {
    w[i] = static_cast<double>(1 + i % 3);
    for (int r = 0; r < static_cast<int>(w[i]); ++r)
      repeated.insert(repeated.end(), ds.x.begin() + static_cast<std::ptrdiff_t>(i * ds.d),
                      ds.x.begin() + static_cast<std::ptrdiff_t>((i + 1) * ds.d));
  }
  const cuem::DataView R(repeated.data(), repeated.size() / ds.d, static_cast<std::size_t>(ds.d));
  cuem::FitOptions o = options(CovarianceType::diag, 3);
  o.tol = 1e-12;
  o.max_iter = 5000;
  const cuem::FitResult start = cuem::fit(ds.view(), o, cuem::WeightView(w.data(), w.size()));
  o.weights_init = start.model.weights;
  o.means_init = start.model.means;
  for (double& m : o.means_init) m += 0.2;
  o.precisions_init = cuem_test::precisions_of(start.model);
  const cuem::FitResult reference = cuem::fit(R, o);
  o.chunk_rows = 70;
  const cuem::FitResult chunked = cuem::fit(ds.view(), o, cuem::WeightView(w.data(), w.size()));
  EXPECT_NEAR(chunked.lower_bound, reference.lower_bound, 1e-10);
  EXPECT_LT(cuem_test::max_rel_diff(chunked.model.means, reference.model.means), 1e-6);
  o.chunk_rows = 0;
  o.incremental_blocks = 6;
  const cuem::FitResult inc = cuem::fit(ds.view(), o, cuem::WeightView(w.data(), w.size()));
  EXPECT_EQ(inc.n_decreases, 0);
  EXPECT_NEAR(inc.lower_bound, reference.lower_bound, 1e-8);
}

// On a CUDA device (the emulated one in the _emulated build): the ranges' primitives and
// incomplete rows share the fit's device context; incremental, out-of-core and stepwise
// fits of NaN data match the CPU's in float64.
TEST(MissingOnDevice, IncrementalOutOfCoreAndStepwiseMatchTheCpu) {
  REQUIRE_DEVICE();
  const cuem_test::Dataset ds = with_holes(CovarianceType::full, 1200, 0.2, 81);
  cuem::FitOptions cpu = options(CovarianceType::full, 3);
  cpu.tol = 1e-10;
  cpu.max_iter = 2000;
  cuem::FitOptions gpu = cpu;
  gpu.device = cuem::parse_device("cuda");
  for (const auto& [blocks, chunk] : {std::pair<int, std::size_t>{5, 0}, std::pair<int, std::size_t>{1, 300}}) {
    cpu.incremental_blocks = gpu.incremental_blocks = blocks;
    cpu.chunk_rows = gpu.chunk_rows = chunk;
    const cuem::FitResult a = cuem::fit(ds.view(), cpu), b = cuem::fit(ds.view(), gpu);
    EXPECT_NEAR(a.lower_bound, b.lower_bound, 1e-9) << blocks << " " << chunk;
    EXPECT_LT(cuem_test::max_rel_diff(a.model.means, b.model.means), 1e-6) << blocks << " " << chunk;
    EXPECT_NE(b.device.find("cuda"), std::string::npos) << b.device;
  }
  cpu.incremental_blocks = gpu.incremental_blocks = 1;
  cpu.chunk_rows = gpu.chunk_rows = 0;
  cuem::OnlineGaussianMixture on_cpu(cpu, {0.7, 0.0}), on_gpu(gpu, {0.7, 0.0});
  for (std::size_t begin = 0; begin < ds.n; begin += 400) {
    const cuem::DataView batch(ds.x.data() + begin * ds.d, 400, static_cast<std::size_t>(ds.d));
    EXPECT_NEAR(on_cpu.partial_fit(batch), on_gpu.partial_fit(batch), 1e-9) << begin;
  }
  EXPECT_LT(cuem_test::max_rel_diff(on_cpu.model().means, on_gpu.model().means), 1e-9);
}

}  // namespace
