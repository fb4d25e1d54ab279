// The Gaussian HMM on the CUDA backend, run on the emulated device (tests/emu), and as
// test_hmm_cuda on a real one in a CUDA build (skipped without a device): the
// emissions' posteriors and the gamma-weighted statistics (the primitives' 'given'
// responsibilities) come from the device, the chain from the host. Against the float64
// CPU: the statistics of given weights, then whole Baum-Welch fits, to rounding in float64
// and to float32 tolerances a GPU also meets; fits on frames with missing entries (the
// incomplete frames on the host) and GMMHMM fits (its K x M components on the device).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "cuem/gmm_hmm.hpp"
#include "cuem/hmm.hpp"
#include "engine/primitives.hpp"
#include "test_util.hpp"

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

// Starts from rows of X; fits `fit_X` (X where null) under `missing`.
cuem::HmmFitResult fit_on(const char* device, Precision precision, CovarianceType type,
                          const std::vector<double>& X, const std::vector<std::size_t>& lengths, int D,
                          const std::vector<double>* fit_X = nullptr,
                          cuem::MissingPolicy missing = cuem::MissingPolicy::error) {
  cuem::HmmOptions o;
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
  const cuem::HmmFitResult cpu = fit_on("cpu", Precision::float64, GetParam(), X, lengths, D, &Xn, marginalize);
  for (Precision p : {Precision::float64, Precision::float32}) {
    const cuem::HmmFitResult dev = fit_on("cuda", p, GetParam(), X, lengths, D, &Xn, marginalize);
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
}

INSTANTIATE_TEST_SUITE_P(AllTypes, HmmEmulatedFit, ::testing::ValuesIn(cuem_test::all_covariance_types()),
                         [](const auto& info) { return std::string(cuem::to_string(info.param)); });

}  // namespace
