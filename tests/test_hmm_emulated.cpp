// The Gaussian HMM on the CUDA backend, run on the emulated device (tests/emu), and as
// test_hmm_cuda on a real one in a CUDA build (skipped without a device): the
// emissions' posteriors and the gamma-weighted statistics (the primitives' 'given'
// responsibilities) come from the device, the chain from the host. Against the float64
// CPU: the statistics of given weights, then whole Baum-Welch fits, to rounding in float64
// and to float32 tolerances a GPU also meets; fits on frames with missing entries (the
// incomplete frames on the host) and GMMHMM fits (its K x M components on the device).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "cuem/errors.hpp"
#include "cuem/gmm_hmm.hpp"
#include "cuem/hmm.hpp"
#include "engine/hmm_device_chain.hpp"
#include "engine/hmm_model.hpp"
#include "engine/primitives.hpp"
#include "test_util.hpp"
#if defined(CUEM_EMULATED_DEVICE)
#include <cuda_runtime.h>  // the emulated runtime (tests/emu): its launch counts
#endif

namespace {

using cuem::CovarianceType;
using cuem::Precision;

std::vector<double> frames(std::size_t N, int D, double offset, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> z(0.0, 1.0);
  std::vector<double> X(N * D);
  int state = 0;
  for (std::size_t t = 0; t < N; ++t) {
    if (t % 37 == 0) state = (state + 1) % 3;
    for (int d = 0; d < D; ++d) X[t * D + d] = offset + 4.0 * state * (d == state % D ? 1 : 0) + z(rng);
  }
  return X;
}

double rel(const std::vector<double>& a, const std::vector<double>& b, double floor = 1.0) {
  return cuem_test::max_rel_diff(a, b, floor);
}

struct StatsCase {
  CovarianceType type;
  Precision precision;
  std::size_t memory_limit;  // small: the data streamed in chunks
};

class HmmGivenStats : public ::testing::TestWithParam<StatsCase> {};

// weighted_stats with the caller's N x K weights, about the same shift, on both backends.
TEST_P(HmmGivenStats, MatchTheCpu) {
  REQUIRE_DEVICE();
  const StatsCase c = GetParam();
  const std::size_t N = c.memory_limit ? 100000 : 20000;
  const int D = 3, K = 4;
  const std::vector<double> X = frames(N, D, 1e3, 4);
  std::mt19937_64 rng(9);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<double> g(N * K);
  for (double& v : g) v = u(rng);
  std::vector<double> shift(static_cast<std::size_t>(K) * D);
  for (std::size_t i = 0; i < shift.size(); ++i) shift[i] = 1e3 + static_cast<double>(i % 5);
  const cuem::DataView view(X.data(), N, D);
  auto cpu = cuem::make_primitives(view, {}, {cuem::parse_device("cpu"), Precision::float64, 0, {}});
  auto dev = cuem::make_primitives(view, {}, {cuem::parse_device("cuda"), c.precision, c.memory_limit, {}});
  const auto given = cuem::Responsibilities::given_weights(g.data());
  const cuem::SufficientStats want = cpu->weighted_stats(given, c.type, K, shift);
  // The device reports its own rounding of the shift: compare about the CPU's.
  const cuem::SufficientStats got = dev->weighted_stats(given, c.type, K, shift).recentred(want.shift);
  ASSERT_GT(cuem_test::max_abs(want.s2), 0.0);
  if (c.memory_limit) {
    EXPECT_NE(dev->description().find("stream"), std::string::npos) << dev->description();
  }
  const double tol = c.precision == Precision::float64 ? 1e-10 : 2e-4;
  EXPECT_LT(rel(got.nk, want.nk), tol);
  EXPECT_LT(rel(got.s1, want.s1, cuem_test::max_abs(want.s1)), tol);
  EXPECT_LT(rel(got.s2, want.s2, cuem_test::max_abs(want.s2)), tol);
}

INSTANTIATE_TEST_SUITE_P(
    Layouts, HmmGivenStats,
    ::testing::Values(StatsCase{CovarianceType::full, Precision::float64, 0},
                      StatsCase{CovarianceType::tied, Precision::float64, 0},
                      StatsCase{CovarianceType::diag, Precision::float32, 0},
                      StatsCase{CovarianceType::spherical, Precision::float32, 0},
                      StatsCase{CovarianceType::full, Precision::float32, 2 << 20},
                      StatsCase{CovarianceType::diag, Precision::float64, 2 << 20}),
    [](const auto& info) {
      const StatsCase& c = info.param;
      return std::string(cuem::to_string(c.type)) + (c.precision == Precision::float64 ? "_f64" : "_f32") +
             (c.memory_limit ? "_streamed" : "");
    });

// Starts from rows of X; fits `fit_X` (X where null) under `missing`, in segments of
// `segment_frames` (0: automatic).
cuem::HmmFitResult fit_on(const char* device, Precision precision, CovarianceType type,
                          const std::vector<double>& X, const std::vector<std::size_t>& lengths, int D,
                          std::size_t segment_frames = 0, const std::vector<double>* fit_X = nullptr,
                          cuem::MissingPolicy missing = cuem::MissingPolicy::error) {
  cuem::HmmOptions o;
  o.segment_frames = segment_frames;
  o.n_components = 3;
  o.covariance_type = type;
  o.n_iter = 6;
  o.tol = 0.0;
  o.init_params = "";
  o.startprob_init = {0.5, 0.3, 0.2};
  o.transmat_init = {0.8, 0.1, 0.1, 0.2, 0.7, 0.1, 0.1, 0.3, 0.6};
  for (int k = 0; k < 3; ++k)
    for (int d = 0; d < D; ++d) o.means_init.push_back(X[(40 * k + 5) * D + d]);
  const std::size_t n_cov = cuem::covariance_size(type, 3, D);
  o.covars_init.assign(n_cov, 0.0);
  if (type == CovarianceType::full || type == CovarianceType::tied) {
    for (std::size_t m = 0; m < n_cov / (D * D); ++m)
      for (int d = 0; d < D; ++d) o.covars_init[m * D * D + d * D + d] = 2.0;
  } else {
    o.covars_init.assign(n_cov, 2.0);
  }
  o.device = cuem::parse_device(device);
  o.precision = precision;
  o.missing = missing;
  const std::vector<double>& data = fit_X ? *fit_X : X;
  return cuem::fit_hmm(cuem::DataView(data.data(), data.size() / D, D), lengths, o);
}

class HmmEmulatedFit : public ::testing::TestWithParam<CovarianceType> {};

TEST_P(HmmEmulatedFit, MatchesTheCpu) {
  REQUIRE_DEVICE();
  const int D = 3;
  const std::vector<std::size_t> lengths{400, 133, 67, 1000};
  const std::vector<double> X = frames(1600, D, 50.0, 12);
  const cuem::HmmFitResult cpu = fit_on("cpu", Precision::float64, GetParam(), X, lengths, D);
  for (Precision p : {Precision::float64, Precision::float32}) {
    const cuem::HmmFitResult dev = fit_on("cuda", p, GetParam(), X, lengths, D);
    const double tol = p == Precision::float64 ? 1e-9 : 1e-4;
    ASSERT_EQ(dev.trace.size(), cpu.trace.size());
    for (std::size_t i = 0; i < cpu.trace.size(); ++i)
      EXPECT_NEAR(dev.trace[i].mean_log_likelihood, cpu.trace[i].mean_log_likelihood,
                  tol * std::abs(cpu.trace[i].mean_log_likelihood));
    EXPECT_LT(rel(dev.model.startprob, cpu.model.startprob), tol);
    EXPECT_LT(rel(dev.model.transmat, cpu.model.transmat), tol);
    EXPECT_LT(rel(dev.model.emissions.means, cpu.model.emissions.means), tol);
    EXPECT_LT(rel(dev.model.emissions.covariances, cpu.model.emissions.covariances), 10 * tol);
    EXPECT_EQ(dev.n_decreases, 0);
  }
}

// Frames with missing entries: the complete frames' emissions and statistics on the
// device, the incomplete frames' on the host in float64 (docs/HMM.md).
TEST_P(HmmEmulatedFit, MissingEntriesMatchTheCpu) {
  REQUIRE_DEVICE();
  const int D = 3;
  const std::vector<std::size_t> lengths{400, 133, 67, 1000};
  const std::vector<double> X = frames(1600, D, 50.0, 12);
  std::vector<double> Xn = X;
  std::mt19937_64 rng(4);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (double& v : Xn)
    if (u(rng) < 0.15) v = std::numeric_limits<double>::quiet_NaN();
  const auto marginalize = cuem::MissingPolicy::marginalize;
  const cuem::HmmFitResult cpu = fit_on("cpu", Precision::float64, GetParam(), X, lengths, D, 0, &Xn, marginalize);
  for (Precision p : {Precision::float64, Precision::float32}) {
    const cuem::HmmFitResult dev = fit_on("cuda", p, GetParam(), X, lengths, D, 0, &Xn, marginalize);
    const double tol = p == Precision::float64 ? 1e-9 : 1e-4;
    ASSERT_EQ(dev.trace.size(), cpu.trace.size());
    for (std::size_t i = 0; i < cpu.trace.size(); ++i)
      EXPECT_NEAR(dev.trace[i].mean_log_likelihood, cpu.trace[i].mean_log_likelihood,
                  tol * std::abs(cpu.trace[i].mean_log_likelihood));
    EXPECT_LT(rel(dev.model.transmat, cpu.model.transmat), tol);
    EXPECT_LT(rel(dev.model.emissions.means, cpu.model.emissions.means), tol);
    EXPECT_LT(rel(dev.model.emissions.covariances, cpu.model.emissions.covariances), 10 * tol);
    EXPECT_EQ(dev.n_decreases, 0);
  }
}

// The GMMHMM's K x M components on the device, against the CPU.
TEST_P(HmmEmulatedFit, GmmHmmMatchesTheCpu) {
  REQUIRE_DEVICE();
  const int D = 2, K = 2, M = 2;
  const std::vector<std::size_t> lengths{300, 500};
  const std::vector<double> X = frames(800, D, 50.0, 3);
  cuem::GmmHmmOptions o;
  o.n_components = K;
  o.n_mix = M;
  o.covariance_type = GetParam();
  o.n_iter = 5;
  o.tol = 0.0;
  o.seed = 2;
  const auto fit = [&](const char* device, Precision p) {
    o.device = cuem::parse_device(device);
    o.precision = p;
    return cuem::fit_gmm_hmm(cuem::DataView(X.data(), 800, D), lengths, o);
  };
  const cuem::GmmHmmFitResult cpu = fit("cpu", Precision::float64);
  const cuem::GmmHmmFitResult dev = fit("cuda", Precision::float64);
  ASSERT_EQ(dev.trace.size(), cpu.trace.size());
  for (std::size_t i = 0; i < cpu.trace.size(); ++i)
    EXPECT_NEAR(dev.trace[i].mean_log_likelihood, cpu.trace[i].mean_log_likelihood,
                1e-9 * std::abs(cpu.trace[i].mean_log_likelihood));
  EXPECT_LT(rel(dev.model.weights, cpu.model.weights), 1e-9);
  EXPECT_LT(rel(dev.model.means, cpu.model.means), 1e-9);
  EXPECT_LT(rel(dev.model.covars, cpu.model.covars), 1e-8);
  // Evaluation with device="cuda" (the chain and Viterbi on the device) against the CPU's.
  cuem::HmmEvaluateOptions on_cpu, on_dev;
  on_cpu.device = cuem::parse_device("cpu");
  on_cpu.precision = Precision::float64;
  on_dev.device = cuem::parse_device("cuda");
  on_dev.precision = Precision::float64;
  const cuem::DataView view(X.data(), 800, D);
  const cuem::HmmDecoding want = cuem::decode_gmm_hmm(cpu.model, view, lengths, "viterbi", on_cpu);
  const cuem::HmmDecoding got = cuem::decode_gmm_hmm(cpu.model, view, lengths, "viterbi", on_dev);
  EXPECT_EQ(got.states, want.states);
  EXPECT_NEAR(got.log_probability, want.log_probability, 1e-11 * std::abs(want.log_probability));
  const double ll = cuem::score_gmm_hmm(cpu.model, view, lengths, on_cpu);
  EXPECT_NEAR(cuem::score_gmm_hmm(cpu.model, view, lengths, on_dev), ll, 1e-11 * std::abs(ll));
  EXPECT_LT(cuem_test::max_rel_diff(cuem::posteriors_gmm_hmm(cpu.model, view, lengths, on_dev).posteriors,
                                    cuem::posteriors_gmm_hmm(cpu.model, view, lengths, on_cpu).posteriors, 1e-3),
            1e-10);
}

INSTANTIATE_TEST_SUITE_P(AllTypes, HmmEmulatedFit, ::testing::ValuesIn(cuem_test::all_covariance_types()),
                         [](const auto& info) { return std::string(cuem::to_string(info.param)); });

// ---- the chain on the device (kernels/hmm_forward_backward.cu) against the host chain ----

// A random model of K states and emissions b (rows normalised, some near zero) with log
// scales s for sequences of the given lengths.
struct ChainCase {
  cuem::HmmModel model;
  std::vector<std::size_t> offsets;
  cuem::engine::EmissionFrames frames;
};

ChainCase chain_case(int K, const std::vector<std::size_t>& lengths, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const std::size_t uK = static_cast<std::size_t>(K);
  ChainCase c;
  c.model.startprob.resize(uK);
  c.model.transmat.resize(uK * uK);
  const auto fill_row = [&](double* row) {
    double sum = 0.0;
    for (std::size_t k = 0; k < uK; ++k) sum += row[k] = u(rng) < 0.2 ? 1e-3 * u(rng) : u(rng);
    for (std::size_t k = 0; k < uK; ++k) row[k] /= sum;
  };
  fill_row(c.model.startprob.data());
  for (std::size_t i = 0; i < uK; ++i) fill_row(c.model.transmat.data() + i * uK);
  c.model.emissions.n_components = K;
  c.offsets = cuem::engine::sequence_offsets(lengths, [&] {
    std::size_t n = 0;
    for (std::size_t l : lengths) n += l;
    return n;
  }());
  const std::size_t N = c.offsets.back();
  c.frames.b.resize(N * uK);
  c.frames.s.resize(N);
  for (std::size_t t = 0; t < N; ++t) {
    fill_row(c.frames.b.data() + t * uK);
    c.frames.s[t] = -3.0 - 5.0 * u(rng);
  }
  return c;
}

// The primitives of a CUDA backend, for their device.
std::unique_ptr<cuem::Primitives> device_prims(const std::vector<double>& X) {
  return cuem::make_primitives(cuem::DataView(X.data(), X.size(), 1), {},
                               {cuem::parse_device("cuda"), Precision::float64, 0, {}});
}

class HmmDeviceChain : public ::testing::TestWithParam<int> {};

// Log-likelihood, gamma, start and transition sums against the float64 host chain, many
// sequences of unequal lengths (1 frame included); bitwise the same for every block size.
TEST_P(HmmDeviceChain, MatchesTheHostChain) {
  REQUIRE_DEVICE();
  const int K = GetParam();
  const std::size_t uK = static_cast<std::size_t>(K);
  const std::vector<std::size_t> lengths = K > 16 ? std::vector<std::size_t>{70, 1, 33, 128}
                                                  : std::vector<std::size_t>{200, 1, 37, 2, 150, 64, 91};
  const ChainCase c = chain_case(K, lengths, 100 + static_cast<std::uint64_t>(K));
  const std::vector<double> X(8, 1.0);
  const auto prims = device_prims(X);
  ASSERT_TRUE(cuem::engine::device_chain_available(*prims, K));

  cuem::engine::EmissionFrames host = c.frames;
  std::vector<double> start_h(uK), trans_h(uK * uK);
  const double ll_h = cuem::engine::chain_pass(c.model, c.offsets, host, start_h.data(), trans_h.data());

  std::vector<double> first_gamma, first_start, first_trans;
  double first_ll = 0.0;
  for (int threads : {0, 32, 96, 128}) {
    SCOPED_TRACE("threads " + std::to_string(threads));
    cuem::engine::EmissionFrames dev = c.frames;
    std::vector<double> start_d(uK), trans_d(uK * uK);
    const double ll_d =
        cuem::engine::device_chain_pass(*prims, c.model, c.offsets, dev, start_d.data(), trans_d.data(), threads);
    EXPECT_NEAR(ll_d, ll_h, 1e-12 * std::abs(ll_h));
    EXPECT_LT(cuem_test::max_rel_diff(dev.b, host.b, 1e-3), 1e-11);
    EXPECT_LT(rel(start_d, start_h), 1e-11);
    EXPECT_LT(rel(trans_d, trans_h), 1e-11);
    double total = 0.0;
    for (double v : trans_d) total += v;
    EXPECT_NEAR(total, static_cast<double>(c.offsets.back() - lengths.size()), 1e-9 * total + 1e-12);
    if (threads == 0) {
      first_gamma = dev.b;
      first_start = start_d;
      first_trans = trans_d;
      first_ll = ll_d;
    } else {  // the same arithmetic whatever the block's size
      EXPECT_EQ(ll_d, first_ll);
      EXPECT_EQ(dev.b, first_gamma);
      EXPECT_EQ(start_d, first_start);
      EXPECT_EQ(trans_d, first_trans);
    }
  }
}

// Long sequences cut into chunks (their entering messages from the chunks' products, chunk
// after chunk or by the tree): against the host chain, forced small chunks (several to a
// sequence, a last chunk of one frame; chunks of one frame with the tree) and the automatic
// choice (few sequences of at least 512 frames); bitwise the same for every block size.
TEST_P(HmmDeviceChain, ChunkedMatchesTheHostChain) {
  REQUIRE_DEVICE();
  const int K = GetParam();
  const std::size_t uK = static_cast<std::size_t>(K);
  const std::vector<std::size_t> lengths = K > 16 ? std::vector<std::size_t>{97, 3, 600}
                                                  : std::vector<std::size_t>{161, 1, 40, 700};
  const ChainCase c = chain_case(K, lengths, 500 + static_cast<std::uint64_t>(K));
  const std::vector<double> X(8, 1.0);
  const auto prims = device_prims(X);
  cuem::engine::EmissionFrames host = c.frames;
  std::vector<double> start_h(uK), trans_h(uK * uK);
  const double ll_h = cuem::engine::chain_pass(c.model, c.offsets, host, start_h.data(), trans_h.data());
  using cuem::engine::ChunkScan;
  std::vector<std::pair<std::size_t, ChunkScan>> forms{
      {16, ChunkScan::sequential}, {16, ChunkScan::tree}, {0, ChunkScan::by_shape}};
  if (K <= 16) forms.emplace_back(1, ChunkScan::tree);  // a first chunk of one frame; 700 chunks
  // Large K: by shape no chunks at all; forced ones (their K^3 products) only where the
  // emulator takes them in seconds.
  if (K > 64) forms = K <= 100 ? decltype(forms){{0, ChunkScan::by_shape}, {300, ChunkScan::sequential}}
                               : decltype(forms){{0, ChunkScan::by_shape}};
  for (const auto& [chunk, scan] : forms) {
    std::vector<double> first_gamma, first_trans;
    double first_ll = 0.0;
    for (int threads : {0, 128}) {
      SCOPED_TRACE("chunk " + std::to_string(chunk) + (scan == ChunkScan::tree ? ", tree" : "") + ", threads " +
                   std::to_string(threads));
      cuem::engine::EmissionFrames dev = c.frames;
      std::vector<double> start_d(uK), trans_d(uK * uK);
      const double ll_d = cuem::engine::device_chain_pass(*prims, c.model, c.offsets, dev, start_d.data(),
                                                          trans_d.data(), threads, chunk, scan);
      EXPECT_NEAR(ll_d, ll_h, 1e-12 * std::abs(ll_h));
      EXPECT_LT(cuem_test::max_rel_diff(dev.b, host.b, 1e-3), 1e-10);
      EXPECT_LT(rel(start_d, start_h), 1e-11);
      EXPECT_LT(rel(trans_d, trans_h), 1e-10);
      if (threads == 0) {
        first_gamma = dev.b;
        first_trans = trans_d;
        first_ll = ll_d;
      } else {
        EXPECT_EQ(ll_d, first_ll);
        EXPECT_EQ(dev.b, first_gamma);
        EXPECT_EQ(trans_d, first_trans);
      }
    }
  }
}

// Viterbi on the device against the host's, sequence by sequence: the same paths (the
// emulated device's logarithm is the host's, so no near-ties differ) and log-probabilities;
// the same for every block size.
TEST_P(HmmDeviceChain, ViterbiMatchesTheHost) {
  REQUIRE_DEVICE();
  const int K = GetParam();
  const std::size_t uK = static_cast<std::size_t>(K);
  const std::vector<std::size_t> lengths{90, 1, 41, 2, 66};
  ChainCase c = chain_case(K, lengths, 300 + static_cast<std::uint64_t>(K));
  if (K > 1) c.model.transmat[1] = 0.0;  // a forbidden transition (log 0 = -inf)
  const std::vector<double> X(8, 1.0);
  const auto prims = device_prims(X);
  const std::size_t N = c.offsets.back();
  std::vector<int> want(N);
  double lp_want = 0.0;
  std::vector<double> work;
  for (std::size_t q = 0; q + 1 < c.offsets.size(); ++q) {
    const std::size_t lo = c.offsets[q];
    lp_want += cuem::engine::viterbi(c.model.startprob.data(), c.model.transmat.data(), K, c.offsets[q + 1] - lo,
                                     c.frames.b.data() + lo * uK, c.frames.s.data() + lo, want.data() + lo, work);
  }
  for (int threads : {0, 32, 128}) {
    SCOPED_TRACE("threads " + std::to_string(threads));
    std::vector<int> got(N, -1);
    const double lp = cuem::engine::device_viterbi(*prims, c.model, c.offsets, c.frames, got.data(), threads);
    EXPECT_EQ(got, want);
    EXPECT_NEAR(lp, lp_want, 1e-12 * std::abs(lp_want));
  }
}

// The host's Viterbi, sequence by sequence: the paths into states, the summed log-probability.
double host_viterbi(const ChainCase& c, std::vector<int>& states) {
  const int K = c.model.n_components();
  const std::size_t uK = static_cast<std::size_t>(K);
  states.assign(c.offsets.back(), -1);
  double lp = 0.0;
  std::vector<double> work;
  for (std::size_t q = 0; q + 1 < c.offsets.size(); ++q) {
    const std::size_t lo = c.offsets[q];
    lp += cuem::engine::viterbi(c.model.startprob.data(), c.model.transmat.data(), K, c.offsets[q + 1] - lo,
                                c.frames.b.data() + lo * uK, c.frames.s.data() + lo, states.data() + lo, work);
  }
  return lp;
}

// Long sequences in chunks (the max-plus chunk products, the entering deltas chunk after
// chunk or by the tree over the products, each chunk's pass and traceback): the host's
// paths and log-probabilities, forced chunks of 16 and of 1 frame (a first chunk with no
// product; 600-700 chunks, ten tree levels) and the automatic choice (a sequence of 700
// frames among few), long and short sequences mixed; bitwise the same for every block size.
TEST_P(HmmDeviceChain, ViterbiChunkedMatchesTheHost) {
  REQUIRE_DEVICE();
  const int K = GetParam();
  const std::vector<std::size_t> lengths = K > 16 ? std::vector<std::size_t>{97, 3, 1, 600}
                                                  : std::vector<std::size_t>{161, 1, 40, 2, 700};
  ChainCase c = chain_case(K, lengths, 700 + static_cast<std::uint64_t>(K));
  if (K > 1) c.model.transmat[1] = 0.0;  // a forbidden transition (log 0 = -inf)
  const std::vector<double> X(8, 1.0);
  const auto prims = device_prims(X);
  std::vector<int> want;
  const double lp_want = host_viterbi(c, want);
  using cuem::engine::ChunkScan;
  std::vector<std::pair<std::size_t, ChunkScan>> forms{
      {16, ChunkScan::sequential}, {16, ChunkScan::tree}, {1, ChunkScan::sequential}, {0, ChunkScan::by_shape}};
  if (K <= 16) forms.emplace_back(1, ChunkScan::tree);  // 700 chunks: the emulator's K^3 levels take long beyond
  if (K > 64) forms = K <= 100 ? decltype(forms){{0, ChunkScan::by_shape}, {300, ChunkScan::sequential}}
                               : decltype(forms){{0, ChunkScan::by_shape}};
  for (const auto& [chunk, scan] : forms) {
    std::vector<int> first;
    double first_lp = 0.0;
    for (int threads : {0, 128}) {
      SCOPED_TRACE("chunk " + std::to_string(chunk) + (scan == ChunkScan::tree ? ", tree" : "") + ", threads " +
                   std::to_string(threads));
      std::vector<int> got(c.offsets.back(), -1);
      const double lp =
          cuem::engine::device_viterbi(*prims, c.model, c.offsets, c.frames, got.data(), threads, chunk, scan);
      EXPECT_EQ(got, want);
      EXPECT_NEAR(lp, lp_want, 1e-12 * std::abs(lp_want));
      if (threads == 0) {
        first = got;
        first_lp = lp;
      } else {
        EXPECT_EQ(got, first);
        EXPECT_EQ(lp, first_lp);
      }
    }
  }
}

// 65 and 130: the transition sums in device memory, blocks of four and eight warps.
INSTANTIATE_TEST_SUITE_P(States, HmmDeviceChain, ::testing::Values(1, 2, 3, 8, 17, 33, 64, 65, 130),
                         [](const auto& info) { return "K" + std::to_string(info.param); });

// The largest K the device chain takes (its vectors fill most of 48 KiB of shared memory):
// forward-backward and Viterbi against the host's, on short sequences, more of them than
// the kernel's 64 groups (so that a group's transition sums in device memory serve
// several sequences in turn).
TEST(HmmDeviceChainLargest, MatchesTheHostChainAndViterbi) {
  REQUIRE_DEVICE();
  const int K = 512;  // kHmmChainMaxStates (kernels/hmm_forward_backward.hpp): K + 1 is refused below
  const std::size_t uK = static_cast<std::size_t>(K);
  std::vector<std::size_t> lengths{40, 1, 25};
  for (int i = 0; i < 97; ++i) lengths.push_back(1 + static_cast<std::size_t>(i % 3));
  const ChainCase c = chain_case(K, lengths, 900);
  const std::vector<double> X(8, 1.0);
  const auto prims = device_prims(X);
  ASSERT_TRUE(cuem::engine::device_chain_available(*prims, K));
  ASSERT_FALSE(cuem::engine::device_chain_available(*prims, K + 1));
  cuem::engine::EmissionFrames host = c.frames, dev = c.frames;
  std::vector<double> start_h(uK), trans_h(uK * uK), start_d(uK), trans_d(uK * uK);
  const double ll_h = cuem::engine::chain_pass(c.model, c.offsets, host, start_h.data(), trans_h.data());
  const double ll_d = cuem::engine::device_chain_pass(*prims, c.model, c.offsets, dev, start_d.data(), trans_d.data());
  EXPECT_NEAR(ll_d, ll_h, 1e-12 * std::abs(ll_h));
  EXPECT_LT(cuem_test::max_rel_diff(dev.b, host.b, 1e-3), 1e-11);
  EXPECT_LT(rel(start_d, start_h), 1e-11);
  EXPECT_LT(rel(trans_d, trans_h), 1e-11);
  std::vector<int> want;
  const double lp_want = host_viterbi(c, want);
  std::vector<int> got(c.offsets.back(), -1);
  const double lp = cuem::engine::device_viterbi(*prims, c.model, c.offsets, c.frames, got.data());
  EXPECT_EQ(got, want);
  EXPECT_NEAR(lp, lp_want, 1e-12 * std::abs(lp_want));
}

// A frame no state can emit after its predecessor: the host chain's NumericalError.
TEST(HmmDeviceChainErrors, ImpossibleFrameThrows) {
  REQUIRE_DEVICE();
  ChainCase c = chain_case(2, {5, 6}, 3);
  c.model.transmat = {1.0, 0.0, 0.0, 1.0};
  c.model.startprob = {1.0, 0.0};
  // Sequence 1 stays in state 0, whose emission at its frame 3 is 0.
  c.frames.b[(5 + 3) * 2 + 0] = 0.0;
  c.frames.b[(5 + 3) * 2 + 1] = 1.0;
  const std::vector<double> X(8, 1.0);
  const auto prims = device_prims(X);
  std::vector<double> start(2), trans(4);
  cuem::engine::EmissionFrames host = c.frames;
  std::string want;
  try {
    cuem::engine::chain_pass(c.model, c.offsets, host, start.data(), trans.data());
  } catch (const cuem::NumericalError& e) {
    want = e.what();
  }
  ASSERT_FALSE(want.empty());
  // Whole sequences, and chunks of 2 frames (the impossible frame inside the second chunk),
  // their messages chunk after chunk and by the tree.
  for (const auto& [chunk, scan] : {std::pair{std::size_t{0}, cuem::engine::ChunkScan::by_shape},
                                    std::pair{std::size_t{2}, cuem::engine::ChunkScan::sequential},
                                    std::pair{std::size_t{2}, cuem::engine::ChunkScan::tree}}) {
    cuem::engine::EmissionFrames dev = c.frames;
    try {
      cuem::engine::device_chain_pass(*prims, c.model, c.offsets, dev, start.data(), trans.data(), 0, chunk, scan);
      ADD_FAILURE() << "no error with chunk " << chunk;
    } catch (const cuem::NumericalError& e) {
      EXPECT_EQ(std::string(e.what()), want);
    }
  }
}

// Exact ties (state 2 a copy of state 1: the same emissions, transitions into and out of
// it) go to the lowest state in the chunked form as on the host: state 2 is never on a
// path. The chunk products treat both states' columns alike, so their deltas tie bitwise.
TEST(HmmDeviceChainErrors, ViterbiTiesGoToTheLowestState) {
  REQUIRE_DEVICE();
  ChainCase c = chain_case(3, {300, 5, 257}, 41);
  c.model.startprob = {0.2, 0.4, 0.4};
  c.model.transmat = {0.5, 0.25, 0.25, 0.2, 0.4, 0.4, 0.2, 0.4, 0.4};
  for (std::size_t t = 0; t < c.offsets.back(); ++t) c.frames.b[t * 3 + 2] = c.frames.b[t * 3 + 1];
  const std::vector<double> X(8, 1.0);
  const auto prims = device_prims(X);
  std::vector<int> want;
  const double lp_want = host_viterbi(c, want);
  ASSERT_NE(std::find(want.begin(), want.end(), 1), want.end());
  EXPECT_EQ(std::find(want.begin(), want.end(), 2), want.end());
  for (std::size_t chunk : {std::size_t{0}, std::size_t{7}, std::size_t{64}})
    for (const auto scan : {cuem::engine::ChunkScan::sequential, cuem::engine::ChunkScan::tree}) {
      SCOPED_TRACE("chunk " + std::to_string(chunk) + (scan == cuem::engine::ChunkScan::tree ? ", tree" : ""));
      std::vector<int> got(c.offsets.back(), -1);
      const double lp =
          cuem::engine::device_viterbi(*prims, c.model, c.offsets, c.frames, got.data(), 0, chunk, scan);
      EXPECT_EQ(got, want);
      EXPECT_NEAR(lp, lp_want, 1e-12 * std::abs(lp_want));
    }
}

// A sequence with no path, whole or in chunks (the impossible frame in a middle chunk):
// the host Viterbi's NumericalError, naming the sequence's last frame.
TEST(HmmDeviceChainErrors, ViterbiWithoutAPathThrows) {
  REQUIRE_DEVICE();
  ChainCase c = chain_case(2, {5, 40, 6}, 3);
  c.model.transmat = {1.0, 0.0, 0.0, 1.0};
  c.model.startprob = {1.0, 0.0};
  c.frames.b[(5 + 17) * 2 + 0] = 0.0;  // sequence 1 stays in state 0, which cannot emit its frame 17
  c.frames.b[(5 + 17) * 2 + 1] = 1.0;
  const std::vector<double> X(8, 1.0);
  const auto prims = device_prims(X);
  std::string want;
  try {
    std::vector<int> states;
    host_viterbi(c, states);
  } catch (const cuem::NumericalError& e) {
    want = e.what();
  }
  ASSERT_FALSE(want.empty());
  for (std::size_t chunk : {std::size_t{0}, std::size_t{8}})
    for (const auto scan : {cuem::engine::ChunkScan::sequential, cuem::engine::ChunkScan::tree}) {
      std::vector<int> got(c.offsets.back());
      try {
        cuem::engine::device_viterbi(*prims, c.model, c.offsets, c.frames, got.data(), 0, chunk, scan);
        ADD_FAILURE() << "no error with chunk " << chunk;
      } catch (const cuem::NumericalError& e) {
        EXPECT_EQ(std::string(e.what()), want);
      }
    }
}

// Where the device has no room for the chain's arrays, the host chain runs: its results
// bitwise. Run by ctest on an emulated device of 150 KB (emulated_hmm_chain_no_room);
// skipped elsewhere.
TEST(HmmDeviceChainNoRoom, FallsBackToTheHostChain) {
  REQUIRE_DEVICE();
  if (!std::getenv("CUEM_HMM_TEST_NO_ROOM")) GTEST_SKIP() << "needs a small emulated device (ctest sets it)";
  const int K = 64;
  const ChainCase c = chain_case(K, {150, 80}, 77);
  const std::vector<double> X(8, 1.0);
  const auto prims = device_prims(X);
  cuem::engine::EmissionFrames host = c.frames, dev = c.frames;
  std::vector<double> sh(K), th(K * K), sd(K), td(K * K);
  const double ll_h = cuem::engine::chain_pass(c.model, c.offsets, host, sh.data(), th.data());
  const double ll_d = cuem::engine::device_chain_pass(*prims, c.model, c.offsets, dev, sd.data(), td.data());
  EXPECT_EQ(ll_d, ll_h);
  EXPECT_EQ(dev.b, host.b);
  EXPECT_EQ(td, th);
  EXPECT_EQ(sd, sh);
  std::vector<int> want(c.offsets.back()), got(c.offsets.back());
  std::vector<double> work;
  double lp = 0.0;
  for (std::size_t q = 0; q + 1 < c.offsets.size(); ++q)
    lp += cuem::engine::viterbi(c.model.startprob.data(), c.model.transmat.data(), K, c.offsets[q + 1] - c.offsets[q],
                                c.frames.b.data() + c.offsets[q] * K, c.frames.s.data() + c.offsets[q],
                                want.data() + c.offsets[q], work);
  EXPECT_EQ(cuem::engine::device_viterbi(*prims, c.model, c.offsets, c.frames, got.data()), lp);
  EXPECT_EQ(got, want);
  // From log emissions (decoding's), the host's viterbi_log.
  std::vector<double> log_e(c.frames.b.size());
  for (std::size_t t = 0; t < c.offsets.back(); ++t)
    for (int k = 0; k < K; ++k) log_e[t * K + k] = std::log(c.frames.b[t * K + k]) + c.frames.s[t];
  double lp_log = 0.0;
  for (std::size_t q = 0; q + 1 < c.offsets.size(); ++q)
    lp_log += cuem::engine::viterbi_log(c.model.startprob.data(), c.model.transmat.data(), K,
                                        c.offsets[q + 1] - c.offsets[q], log_e.data() + c.offsets[q] * K,
                                        want.data() + c.offsets[q], work);
  std::fill(got.begin(), got.end(), -1);
  EXPECT_EQ(cuem::engine::device_viterbi_log(prims->cuda_device(), c.model.startprob, c.model.transmat, c.offsets,
                                             log_e.data(), got.data()),
            lp_log);
  EXPECT_EQ(got, want);
}

// ---- statistics over a row range (the bounded-memory E-step on the CUDA backend) ----

// weighted_stats_rows on the device against the CPU's over the same rows, resident and
// streamed (a range that starts inside one chunk and ends in another).
TEST_P(HmmGivenStats, OverARowRangeMatchTheCpu) {
  REQUIRE_DEVICE();
  const StatsCase c = GetParam();
  const std::size_t N = c.memory_limit ? 100000 : 20000;
  const int D = 3, K = 4;
  const std::vector<double> X = frames(N, D, 1e3, 5);
  const std::size_t begin = N / 3 + 7, end = N - N / 5;
  std::mt19937_64 rng(10);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<double> g((end - begin) * K);
  for (double& v : g) v = u(rng);
  std::vector<double> shift(static_cast<std::size_t>(K) * D);
  for (std::size_t i = 0; i < shift.size(); ++i) shift[i] = 1e3 + static_cast<double>(i % 3);
  const cuem::DataView view(X.data(), N, D);
  auto cpu = cuem::make_primitives(view, {}, {cuem::parse_device("cpu"), Precision::float64, 0, {}});
  auto dev = cuem::make_primitives(view, {}, {cuem::parse_device("cuda"), c.precision, c.memory_limit, {}});
  ASSERT_TRUE(dev->stats_over_rows());
  const auto given = cuem::Responsibilities::given_weights(g.data());
  const cuem::SufficientStats want = cpu->weighted_stats_rows(given, c.type, K, shift, begin, end);
  const cuem::SufficientStats got = dev->weighted_stats_rows(given, c.type, K, shift, begin, end).recentred(want.shift);
  const double tol = c.precision == Precision::float64 ? 1e-10 : 2e-4;
  double total = 0.0;
  for (double v : want.nk) total += v;
  EXPECT_NEAR(total, [&] {
    double s = 0.0;
    for (double v : g) s += v;
    return s;
  }(), 1e-9 * total);
  EXPECT_LT(rel(got.nk, want.nk), tol);
  EXPECT_LT(rel(got.s1, want.s1, cuem_test::max_abs(want.s1)), tol);
  EXPECT_LT(rel(got.s2, want.s2, cuem_test::max_abs(want.s2)), tol);
  EXPECT_THROW(dev->weighted_stats_rows(given, c.type, K, shift, begin, N + 1), cuem::InvalidArgument);
}

// Kernel launches by name, to see that evaluation ran on the device (0 on a real one, where
// the test cannot count them).
unsigned long long launches(const char* kernel) {
#if defined(CUEM_EMULATED_DEVICE)
  return cuem::emu::launches_named(kernel);
#else
  (void)kernel;
  return 0;
#endif
}

// decode (Viterbi on the exact log emissions, and MAP), score and posteriors with
// device="cuda": the chain on the device, against the float64 CPU's; the same paths. Many
// sequences (whole ones a block) and one long one (in chunks).
TEST(HmmEmulatedEvaluate, DecodeScoreAndPosteriorsMatchTheCpu) {
  REQUIRE_DEVICE();
  const int D = 3;
  const std::vector<double> X = frames(1600, D, 50.0, 12);
  const cuem::HmmFitResult fit = fit_on("cpu", Precision::float64, CovarianceType::full, X, {400, 133, 67, 1000}, D);
  cuem::HmmEvaluateOptions cpu, dev;
  cpu.device = cuem::parse_device("cpu");
  cpu.precision = Precision::float64;
  dev.device = cuem::parse_device("cuda");
  dev.precision = Precision::float64;
  const cuem::DataView view(X.data(), 1600, D);
  for (const std::vector<std::size_t>& lengths :
       {std::vector<std::size_t>{400, 133, 67, 1, 999}, std::vector<std::size_t>{1600}}) {
    SCOPED_TRACE("sequences " + std::to_string(lengths.size()));
    const unsigned long long viterbi_before = launches("hmm_viterbi_kernel"),
                             chain_before = launches("hmm_chain_kernel");
    const cuem::HmmDecoding want = cuem::decode_hmm(fit.model, view, lengths, "viterbi", cpu);
    const cuem::HmmDecoding got = cuem::decode_hmm(fit.model, view, lengths, "viterbi", dev);
    EXPECT_EQ(got.states, want.states);
    EXPECT_NEAR(got.log_probability, want.log_probability, 1e-12 * std::abs(want.log_probability));
    const cuem::HmmDecoding map_want = cuem::decode_hmm(fit.model, view, lengths, "map", cpu);
    const cuem::HmmDecoding map_got = cuem::decode_hmm(fit.model, view, lengths, "map", dev);
    EXPECT_EQ(map_got.states, map_want.states);
    const double ll = cuem::score_hmm(fit.model, view, lengths, cpu);
    EXPECT_NEAR(cuem::score_hmm(fit.model, view, lengths, dev), ll, 1e-12 * std::abs(ll));
    const cuem::HmmPosteriors pw = cuem::posteriors_hmm(fit.model, view, lengths, cpu);
    const cuem::HmmPosteriors pg = cuem::posteriors_hmm(fit.model, view, lengths, dev);
    EXPECT_NEAR(pg.log_likelihood, pw.log_likelihood, 1e-12 * std::abs(pw.log_likelihood));
    EXPECT_LT(cuem_test::max_rel_diff(pg.posteriors, pw.posteriors, 1e-3), 1e-10);
#if defined(CUEM_EMULATED_DEVICE)
    EXPECT_EQ(launches("hmm_viterbi_kernel"), viterbi_before + 1);
    EXPECT_EQ(launches("hmm_chain_kernel"), chain_before + 3);  // map, score, posteriors
    if (lengths.size() == 1) {
      EXPECT_GT(launches("hmm_viterbi_product_kernel"), 0u);
    }
#else
    (void)viterbi_before;
    (void)chain_before;
#endif
  }
}

// A fit a segment at a time on the device equals the whole-data fit there and the CPU's.
TEST(HmmEmulatedBounded, SegmentedFitMatchesTheWholePassAndTheCpu) {
  REQUIRE_DEVICE();
  const int D = 3;
  const std::vector<std::size_t> lengths{700, 133, 767};
  const std::vector<double> X = frames(1600, D, 50.0, 13);
  for (Precision p : {Precision::float64, Precision::float32}) {
    SCOPED_TRACE(p == Precision::float64 ? "float64" : "float32");
    const cuem::HmmFitResult whole = fit_on("cuda", p, CovarianceType::diag, X, lengths, D);
    const cuem::HmmFitResult cpu = fit_on("cpu", Precision::float64, CovarianceType::diag, X, lengths, D, 128);
    const cuem::HmmFitResult seg = fit_on("cuda", p, CovarianceType::diag, X, lengths, D, 128);
    const double tol = p == Precision::float64 ? 1e-9 : 1e-4;
    ASSERT_EQ(seg.trace.size(), whole.trace.size());
    for (std::size_t i = 0; i < seg.trace.size(); ++i) {
      EXPECT_NEAR(seg.trace[i].mean_log_likelihood, whole.trace[i].mean_log_likelihood,
                  1e-12 * std::abs(whole.trace[i].mean_log_likelihood) + (p == Precision::float64 ? 0 : 1e-6));
      EXPECT_NEAR(seg.trace[i].mean_log_likelihood, cpu.trace[i].mean_log_likelihood,
                  tol * std::abs(cpu.trace[i].mean_log_likelihood));
    }
    EXPECT_LT(rel(seg.model.transmat, whole.model.transmat), p == Precision::float64 ? 1e-11 : 1e-5);
    EXPECT_LT(rel(seg.model.emissions.means, whole.model.emissions.means), p == Precision::float64 ? 1e-11 : 1e-5);
    EXPECT_LT(rel(seg.model.transmat, cpu.model.transmat), tol);
    EXPECT_LT(rel(seg.model.emissions.means, cpu.model.emissions.means), tol);
    EXPECT_LT(rel(seg.model.emissions.covariances, cpu.model.emissions.covariances), 10 * tol);
  }
}

// Whole Baum-Welch fits with the chain on the device, K from 1 to 65 states (65: the
// transition sums in device memory), against the float64 CPU fit from the same start.
class HmmEmulatedFitStates : public ::testing::TestWithParam<int> {};

TEST_P(HmmEmulatedFitStates, MatchesTheCpu) {
  REQUIRE_DEVICE();
  const int K = GetParam(), D = 2;
  const std::size_t uK = static_cast<std::size_t>(K);
  const std::vector<std::size_t> lengths{300, 45, 1, 254};
  const std::vector<double> X = frames(600, D, 5.0, 20 + static_cast<std::uint64_t>(K));
  cuem::HmmOptions o;
  o.n_components = K;
  o.covariance_type = CovarianceType::diag;
  o.n_iter = 4;
  o.tol = 0.0;
  o.init_params = "";
  o.startprob_init.assign(uK, 1.0 / K);
  for (std::size_t i = 0; i < uK; ++i)
    for (std::size_t j = 0; j < uK; ++j)
      o.transmat_init.push_back(K == 1 ? 1.0 : (i == j ? 0.5 : 0.5 / (K - 1)));
  for (std::size_t k = 0; k < uK; ++k)
    for (int d = 0; d < D; ++d) o.means_init.push_back(X[(k * 9 + 4) * D + static_cast<std::size_t>(d)]);
  o.covars_init.assign(uK * D, 1.5);
  const cuem::DataView view(X.data(), X.size() / D, D);
  o.device = cuem::parse_device("cpu");
  o.precision = Precision::float64;
  const cuem::HmmFitResult cpu = cuem::fit_hmm(view, lengths, o);
  for (Precision p : {Precision::float64, Precision::float32}) {
    SCOPED_TRACE(p == Precision::float64 ? "float64" : "float32");
    o.device = cuem::parse_device("cuda");
    o.precision = p;
    const cuem::HmmFitResult dev = cuem::fit_hmm(view, lengths, o);
    const double tol = p == Precision::float64 ? 1e-9 : 2e-3;
    ASSERT_EQ(dev.trace.size(), cpu.trace.size());
    for (std::size_t i = 0; i < cpu.trace.size(); ++i)
      EXPECT_NEAR(dev.trace[i].mean_log_likelihood, cpu.trace[i].mean_log_likelihood,
                  tol * std::abs(cpu.trace[i].mean_log_likelihood));
    EXPECT_LT(rel(dev.model.startprob, cpu.model.startprob), tol);
    EXPECT_LT(rel(dev.model.transmat, cpu.model.transmat), tol);
    EXPECT_LT(rel(dev.model.emissions.means, cpu.model.emissions.means), tol);
    EXPECT_LT(rel(dev.model.emissions.covariances, cpu.model.emissions.covariances), 10 * tol);
  }
}

INSTANTIATE_TEST_SUITE_P(States, HmmEmulatedFitStates, ::testing::Values(1, 5, 24, 64, 65),
                         [](const auto& info) { return "K" + std::to_string(info.param); });

}  // namespace
