// The pipelined E-step chain (src/engine/hmm_pipeline.hpp): emissions computed beside the
// interleaved forward-backward recursions, blocks combined as they become ready. Against
// emission_frames followed by chain_pass (the two-step path it replaces) bitwise, on 1, 2
// and 3 threads; against the plain log-space reference loop of hmm_reference.hpp to
// rounding; the emission chunks that the recursion thread computes where it would wait
// among those compared; and the impossible frame reported as chain_pass reports it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "cpu/cpu_primitives.hpp"
#include "cuem/errors.hpp"
#include "engine/hmm_chain.hpp"
#include "engine/hmm_model.hpp"
#include "engine/hmm_pipeline.hpp"
#include "engine/placed_data.hpp"
#include "hmm_reference.hpp"
#include "test_util.hpp"

namespace {

using cuem::CovarianceType;
using namespace hmm_test;

struct Case {
  int K;
  std::vector<std::size_t> lengths;
};

std::string name_of(const Case& c) {
  std::string s = "K" + std::to_string(c.K);
  for (std::size_t T : c.lengths) s += "_" + std::to_string(T);
  return s;
}

struct Pass {
  double ll = 0;
  std::vector<double> start, trans, gamma, s;
};

// K 3 and 8 take the compile-time chain, 7 the run-time one; lengths around the chunk and
// block sizes (64-frame blocks up to 16384 frames, blocks longer than a step chunk from 65536, 1024-frame emission chunks, 256-frame
// step chunks), a single frame, and several sequences one after the other.
class HmmPipeline : public ::testing::TestWithParam<Case> {};

TEST_P(HmmPipeline, EqualsTheTwoStepPassBitwiseOnAnyThreadCount) {
  const Case& p = GetParam();
  const Chain c = make_chain(CovarianceType::diag, p.K, 3, 17);
  const std::vector<double> X = draw(c, p.lengths, 5);
  const std::size_t N = X.size() / 3, uK = static_cast<std::size_t>(p.K);
  const cuem::DataView view(X.data(), N, 3);
  cuem::CpuPrimitives prims(view, cuem::WeightView{});
  const cuem::HmmModel model = to_hmm(c);
  const std::vector<std::size_t> offsets = cuem::engine::sequence_offsets(p.lengths, N);

  Pass two_step;
  {
    const cuem::engine::ThreadCountScope threads(1);
    cuem::engine::EmissionFrames f;
    cuem::engine::emission_frames(prims, model, f);
    two_step.start.assign(uK, 0.0);
    two_step.trans.assign(uK * uK, 0.0);
    two_step.ll = cuem::engine::chain_pass(model, offsets, f, two_step.start.data(), two_step.trans.data());
    two_step.gamma = f.b;
    two_step.s = f.s;
  }
  // Not vacuous: a finite log-likelihood and every gamma row summing to 1.
  ASSERT_TRUE(std::isfinite(two_step.ll));
  ASSERT_NE(two_step.ll, 0.0);
  for (std::size_t t = 0; t < N; ++t) {
    double sum = 0;
    for (std::size_t k = 0; k < uK; ++k) sum += two_step.gamma[t * uK + k];
    ASSERT_NEAR(sum, 1.0, 1e-12) << "frame " << t;
  }
  // The plain log-space loop (its own densities), to rounding: its messages reach
  // ~T nats and each of its T steps rounds them, so the tolerance grows with T (measured:
  // 2.6e-8 at T = 2x10^4, 3.1e-7 at 10^5).
  const Reference ref = reference_estep(c, X, p.lengths);
  const double tol = std::max(1e-9, 5e-12 * static_cast<double>(*std::max_element(p.lengths.begin(), p.lengths.end())));
  EXPECT_NEAR(two_step.ll, ref.log_likelihood, 1e-10 * std::abs(ref.log_likelihood));
  EXPECT_LT(cuem_test::max_rel_diff(two_step.trans, ref.trans, 1e-3), tol);
  EXPECT_LT(cuem_test::max_rel_diff(two_step.start, ref.start, 1e-3), tol);
  double worst = 0;
  for (std::size_t i = 0; i < ref.gamma.size(); ++i) worst = std::max(worst, std::abs(two_step.gamma[i] - ref.gamma[i]));
  EXPECT_LT(worst, tol);

  const std::size_t T_max = *std::max_element(p.lengths.begin(), p.lengths.end());
  for (int threads : {1, 2, 3}) {
    const cuem::engine::ThreadCountScope scope(threads);
    cuem::engine::EmissionFrames f;
    cuem::engine::ChainWork work;
    cuem::engine::PipelineSplit split;
    Pass piped;
    piped.start.assign(uK, 0.0);
    piped.trans.assign(uK * uK, 0.0);
    // Four times on the same work and frames, each time with every array the threads
    // share filled with NaN first: a read before the write it waits for (a block
    // combined, a step taken too early) shows up as a mismatch rather than as the last
    // call's equal values.
    for (int rep = 0; rep < 4; ++rep) {
      const double nan = std::numeric_limits<double>::quiet_NaN();
      for (std::vector<double>* v : {&work.a, &work.r, &f.b}) v->assign(N * uK, nan);
      work.c.assign(N, nan);
      f.s.assign(N, nan);
      std::fill(piped.start.begin(), piped.start.end(), 0.0);
      std::fill(piped.trans.begin(), piped.trans.end(), 0.0);
      piped.ll = cuem::engine::pipelined_chain_pass(prims, model, offsets, f, piped.start.data(), piped.trans.data(),
                                                     work, &split);
      EXPECT_EQ(piped.ll, two_step.ll) << threads << " threads, call " << rep;
      EXPECT_EQ(piped.start, two_step.start) << threads << " threads, call " << rep;
      EXPECT_EQ(piped.trans, two_step.trans) << threads << " threads, call " << rep;
      ASSERT_EQ(f.b.size(), two_step.gamma.size());
      for (std::size_t i = 0; i < f.b.size(); ++i)
        ASSERT_EQ(f.b[i], two_step.gamma[i]) << threads << " threads: first mismatch at frame " << i / uK;
      EXPECT_EQ(f.s, two_step.s) << threads << " threads";
    }
    // How many chunks the recursion thread computed depends on when each thread starts
    // (on a loaded machine either may start milliseconds after the other), so it is
    // reported, not required; one thread computes them all in the emissions role.
    if (threads == 1) {
      EXPECT_EQ(split.chunks_by_recursions, 0u);
    }
    EXPECT_EQ(split.chunks, 4 * std::accumulate(p.lengths.begin(), p.lengths.end(), std::size_t{0},
                                                [](std::size_t n, std::size_t T) { return n + (T + 1023) / 1024; }));
    EXPECT_LE(split.chunks_by_recursions, split.chunks);
    std::printf("%d threads, T %zu: the recursion thread computed %zu of %zu emission chunks\n", threads, T_max,
                split.chunks_by_recursions, split.chunks);
  }
}

// Where the E-step takes the pipeline: the CPU backend, few sequences, at most 8 states.
TEST(HmmPipelineApplies, FewSequencesSmallKOnTheCpu) {
  const std::vector<double> X(40, 0.5);
  cuem::CpuPrimitives prims(cuem::DataView(X.data(), 20, 2), cuem::WeightView{});
  EXPECT_TRUE(cuem::engine::pipelined_chain_applies(prims, 1, 8, 2));
  EXPECT_TRUE(cuem::engine::pipelined_chain_applies(prims, 3, 2, 2));
  EXPECT_FALSE(cuem::engine::pipelined_chain_applies(prims, 4, 8, 2));  // chain_pass's sequences over threads
  EXPECT_FALSE(cuem::engine::pipelined_chain_applies(prims, 1, 16, 2));
  EXPECT_FALSE(cuem::engine::pipelined_chain_applies(prims, 1, 64, 2));
}

INSTANTIATE_TEST_SUITE_P(Lengths, HmmPipeline,
                         ::testing::Values(Case{3, {1}}, Case{3, {2}}, Case{8, {63}}, Case{8, {1025}},
                                           Case{8, {5000}}, Case{7, {4097}}, Case{3, {20000}}, Case{3, {100000}}, Case{7, {100000}},
                                           Case{8, {700, 1, 64, 2100}}, Case{7, {300, 3000}}),
                         [](const auto& info) { return name_of(info.param); });

// A chain that cannot leave state 0 and a frame only state 1 can emit (its density under
// state 0 underflows in the normalised emissions): the frame is impossible, and the
// pipeline says so as chain_pass does, from either thread count, without hanging.
TEST(HmmPipelineErrors, ImpossibleFrameIsReportedAsChainPassReportsIt) {
  Chain c = make_chain(CovarianceType::diag, 2, 1, 3);
  c.startprob = {1.0, 0.0};
  c.transmat = {1.0, 0.0, 0.0, 1.0};
  c.emissions.means = {0.0, 100.0};
  c.emissions.covariances = {1.0, 1.0};
  const std::size_t T = 3000, bad = 2500;
  std::vector<double> X(T, 0.1);
  X[bad] = 100.0;
  const cuem::DataView view(X.data(), T, 1);
  cuem::CpuPrimitives prims(view, cuem::WeightView{});
  const cuem::HmmModel model = to_hmm(c);
  const std::vector<std::size_t> offsets{0, T};
  std::vector<double> start(2), trans(4);
  std::string expected;
  try {
    cuem::engine::EmissionFrames f;
    cuem::engine::emission_frames(prims, model, f);
    cuem::engine::chain_pass(model, offsets, f, start.data(), trans.data());
  } catch (const cuem::NumericalError& e) {
    expected = e.what();
  }
  ASSERT_NE(expected.find("frame " + std::to_string(bad) + " "), std::string::npos) << expected;
  for (int threads : {1, 2}) {
    const cuem::engine::ThreadCountScope scope(threads);
    cuem::engine::EmissionFrames f;
    cuem::engine::ChainWork work;
    try {
      cuem::engine::pipelined_chain_pass(prims, model, offsets, f, start.data(), trans.data(), work);
      ADD_FAILURE() << threads << " threads: no error";
    } catch (const cuem::NumericalError& e) {
      EXPECT_EQ(std::string(e.what()), expected) << threads << " threads";
    }
  }
}

}  // namespace
