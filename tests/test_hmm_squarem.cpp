// SQUAREM on the Gaussian HMM (src/engine/hmm_parameter_map.hpp): the map from an HMM to
// an unconstrained vector and back (structural zeros and fixed parameters kept bit for
// bit), and accelerated Baum-Welch reaching plain Baum-Welch's optimum in fewer passes
// without the log-likelihood ever falling.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "cuem/errors.hpp"
#include "cuem/hmm.hpp"
#include "engine/hmm_parameter_map.hpp"
#include "test_util.hpp"
#include "trace_checks.hpp"

namespace {

using cuem::CovarianceType;

// Two sticky states whose emissions overlap (centres `separation` apart, unit scale).
cuem::HmmModel overlapping_hmm(CovarianceType type, double separation, std::uint64_t seed) {
  const cuem_test::Mixture mix = cuem_test::make_mixture(type, 2, 2, separation, seed);
  cuem::HmmModel m;
  m.emissions = cuem_test::model_from_mixture(mix, type);
  m.emissions.weights.assign(2, 0.5);
  m.startprob = {0.6, 0.4};
  m.transmat = {0.9, 0.1, 0.2, 0.8};
  return m;
}

struct Frames {
  std::vector<double> X;
  std::vector<std::size_t> lengths;
  cuem::DataView view() const { return cuem::DataView(X.data(), X.size() / 2, 2); }
};

Frames draw(const cuem::HmmModel& m, const std::vector<std::size_t>& lengths) {
  Frames f;
  f.lengths = lengths;
  for (std::size_t i = 0; i < lengths.size(); ++i) {
    const cuem::HmmSamples s = cuem::sample_hmm(m, lengths[i], 100 + i);
    f.X.insert(f.X.end(), s.X.begin(), s.X.end());
  }
  return f;
}

using cuem_test::max_rel_diff;

TEST(HmmParameterMap, ModelToVectorToModelRoundTrips) {
  for (CovarianceType type : cuem_test::all_covariance_types()) {
    SCOPED_TRACE(cuem::to_string(type));
    const cuem::HmmModel m = overlapping_hmm(type, 1.0, 3);
    const cuem::HmmModel back = cuem::engine::hmm_from_vector(cuem::engine::hmm_to_vector(m), m, "stmc");
    EXPECT_LT(max_rel_diff(back.startprob, m.startprob), 1e-15);
    EXPECT_LT(max_rel_diff(back.transmat, m.transmat), 1e-15);
    EXPECT_EQ(back.emissions.means, m.emissions.means);
    EXPECT_LT(max_rel_diff(back.emissions.covariances, m.emissions.covariances), 1e-12);
    EXPECT_LT(max_rel_diff(back.emissions.precisions_cholesky, m.emissions.precisions_cholesky), 1e-12);
  }
}

// Any vector is a valid HMM; the shape's zeros stay zero, and the parameters not named in
// `params` are the shape's bit for bit.
TEST(HmmParameterMap, AnyVectorIsValidAndKeepsZerosAndFixedParameters) {
  std::mt19937_64 rng(9);
  std::normal_distribution<double> z(0.0, 3.0);
  for (CovarianceType type : cuem_test::all_covariance_types()) {
    SCOPED_TRACE(cuem::to_string(type));
    cuem::HmmModel shape = overlapping_hmm(type, 1.0, 4);
    shape.transmat = {0.7, 0.3, 0.0, 1.0};  // left-right: state 1 never returns
    std::vector<double> v = cuem::engine::hmm_to_vector(shape);
    for (double& x : v) x = z(rng);
    const cuem::HmmModel m = cuem::engine::hmm_from_vector(v, shape, "stmc");
    cuem::validate_hmm(m);
    EXPECT_EQ(m.transmat[2], 0.0);
    EXPECT_GT(m.transmat[0], 0.0);
    const cuem::HmmModel fixed = cuem::engine::hmm_from_vector(v, shape, "st");
    EXPECT_EQ(fixed.emissions.means, shape.emissions.means);
    EXPECT_EQ(fixed.emissions.covariances, shape.emissions.covariances);
    EXPECT_EQ(fixed.emissions.precisions_cholesky, shape.emissions.precisions_cholesky);
    const cuem::HmmModel chain_fixed = cuem::engine::hmm_from_vector(v, shape, "mc");
    EXPECT_EQ(chain_fixed.startprob, shape.startprob);
    EXPECT_EQ(chain_fixed.transmat, shape.transmat);
    v.push_back(0.0);
    EXPECT_THROW(cuem::engine::hmm_from_vector(v, shape, "stmc"), cuem::InvalidArgument);
  }
}

TEST(HmmSquarem, ReachesPlainBaumWelchsOptimumInFewerPassesAndNeverFalls) {
  int plain_total = 0, fast_total = 0;
  for (CovarianceType type : cuem_test::all_covariance_types()) {
    SCOPED_TRACE(cuem::to_string(type));
    const Frames f = draw(overlapping_hmm(type, 1.0, 7), {700, 450, 300});
    cuem::HmmOptions o;
    o.n_components = 2;
    o.covariance_type = type;
    o.n_iter = 20000;
    o.tol = 1e-10;
    o.seed = 2;
    o.device = cuem::parse_device("cpu");
    o.precision = cuem::Precision::float64;
    const cuem::HmmFitResult plain = cuem::fit_hmm(f.view(), f.lengths, o);
    o.acceleration = cuem::Acceleration::squarem;
    const cuem::HmmFitResult fast = cuem::fit_hmm(f.view(), f.lengths, o);
    std::printf("%s: plain %d passes (rate %.4f), SQUAREM %d passes; bounds %.12f %.12f\n", cuem::to_string(type),
                plain.n_estep_passes, plain.convergence_rate, fast.n_estep_passes, plain.lower_bound,
                fast.lower_bound);
    ASSERT_TRUE(plain.converged);
    ASSERT_TRUE(fast.converged);
    EXPECT_EQ(plain.n_estep_passes, plain.n_iter);
    EXPECT_GE(fast.lower_bound, plain.lower_bound - 1e-9);
    EXPECT_NEAR(fast.lower_bound, plain.lower_bound, 1e-6);
    EXPECT_EQ(fast.n_decreases, 0);
    cuem_test::expect_trace_never_decreases(fast.trace, 1e-12);
    cuem::validate_hmm(fast.model);
    plain_total += plain.n_estep_passes;
    fast_total += fast.n_estep_passes;
  }
  std::printf("all: plain %d passes, SQUAREM %d\n", plain_total, fast_total);
  EXPECT_LT(fast_total, plain_total);
}

}  // namespace
