// Incremental (Neal and Hinton) and stepwise EM for the Gaussian HMM through the engine's
// model-agnostic drivers (incremental_driver.hpp, stepwise_driver.hpp): the HMM's
// complete log-likelihood Q and log prior against plain loops and the M-step, blocks of
// whole sequences, the trace, the batch optimum, and stepwise EM's running mean.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "cpu/cpu_primitives.hpp"
#include "cuem/errors.hpp"
#include "cuem/hmm.hpp"
#include "engine/batch_driver.hpp"
#include "engine/hmm_chain.hpp"
#include "engine/hmm_model.hpp"
#include "engine/incremental_driver.hpp"
#include "engine/stepwise_driver.hpp"
#include "hmm_reference.hpp"
#include "test_util.hpp"
#include "trace_checks.hpp"

namespace {

using cuem::CovarianceType;
using cuem::engine::GaussianHmmEM;
using cuem::engine::HmmStats;
using cuem_test::max_rel_diff;
using namespace hmm_test;

const std::vector<std::size_t> kLengths{150, 90, 200, 60, 120, 180, 30, 170};

// Sequences laid end to end as a part of the frames: its own primitives and HMM model.
struct Part {
  std::vector<std::size_t> offsets;
  std::unique_ptr<cuem::CpuPrimitives> prims;
  std::unique_ptr<GaussianHmmEM> model;
};

struct Frames {
  Chain truth;
  std::vector<double> X;
  std::size_t N = 0;
  cuem::HmmOptions o;
  cuem::KMeansShared shared;
  std::vector<std::unique_ptr<Part>> parts;

  Frames(CovarianceType type, int n_iter) : truth(make_chain(type, 3, 2, 31)), X(draw(truth, kLengths, 32)) {
    N = X.size() / 2;
    Chain start = make_chain(type, 3, 2, 77);
    start.emissions.means = truth.emissions.means;
    for (double& v : start.emissions.means) v += 0.4;
    o = options_from(start, n_iter);
    o.precision = cuem::Precision::float64;
    o.n_threads = 1;  // small blocks: thread start-up would be most of a step (results do not depend on it)
  }
  cuem::DataView view() const { return cuem::DataView(X.data(), N, 2); }
  // The model over sequences [first, last) of kLengths.
  GaussianHmmEM& part(std::size_t first, std::size_t last) {
    auto p = std::make_unique<Part>();
    std::size_t lo = 0;
    for (std::size_t q = 0; q < first; ++q) lo += kLengths[q];
    p->offsets.push_back(0);
    for (std::size_t q = first; q < last; ++q) p->offsets.push_back(p->offsets.back() + kLengths[q]);
    const cuem::DataView v(X.data() + lo * 2, p->offsets.back(), 2);
    p->prims = std::make_unique<cuem::CpuPrimitives>(v, cuem::WeightView{});
    p->model = std::make_unique<GaussianHmmEM>(*p->prims, v, p->offsets, o, shared);
    parts.push_back(std::move(p));
    return *parts.back()->model;
  }
};

// Priors away from hmmlearn's defaults on every parameter.
cuem::HmmPriors strong_priors() {
  cuem::HmmPriors p;
  p.startprob_prior = {2.0};
  p.transmat_prior = {1.5};
  p.means_prior = {0.5};
  p.means_weight = {3.0};
  p.covars_prior = {0.4};
  p.covars_weight = 4.0;
  return p;
}

class HmmOnline : public ::testing::TestWithParam<CovarianceType> {};

// Q(s, theta) for the statistics of one model and the parameters of another, against the
// reference's gamma and xi sums: sum start log pi + sum xi log A + sum gamma log N(x | k).
TEST_P(HmmOnline, CompleteLogLikelihoodMatchesPlainLoop) {
  Frames f(GetParam(), 1);
  const Chain& c1 = f.truth;
  Chain c2 = make_chain(GetParam(), 3, 2, 5);
  GaussianHmmEM& model = f.part(0, kLengths.size());
  const HmmStats s = model.e_step(to_hmm(c1));
  const Reference r = reference_estep(c1, f.X, kLengths);
  const std::vector<double> le = cuem_test::log_joint(c2.emissions, f.view());
  double q = 0;
  for (int k = 0; k < 3; ++k) q += r.start[k] * std::log(c2.startprob[k]);
  for (int i = 0; i < 9; ++i) q += r.trans[i] * std::log(c2.transmat[i]);
  for (std::size_t i = 0; i < le.size(); ++i) q += r.gamma[i] * le[i];
  EXPECT_NEAR(cuem::engine::hmm_complete_log_likelihood(s, to_hmm(c2)), q, 1e-10 * std::abs(q));
  // At the E-step's own parameters, LL - Q is the posterior's entropy: positive.
  EXPECT_GT(s.log_likelihood - cuem::engine::hmm_complete_log_likelihood(s, to_hmm(c1)), 0.0);
}

// The M-step maximises Q + log prior: every small move of one parameter from its result
// lowers that sum, so the log prior is the density whose MAP the M-step computes.
TEST_P(HmmOnline, MStepMaximisesQPlusLogPrior) {
  const CovarianceType type = GetParam();
  Frames f(type, 1);
  f.o.priors = strong_priors();
  GaussianHmmEM& model = f.part(0, kLengths.size());
  const HmmStats s = model.e_step(to_hmm(f.truth));
  const cuem::HmmModel best = model.m_step(s);
  const auto objective = [&](const cuem::HmmModel& m) {
    return cuem::engine::hmm_complete_log_likelihood(s, m) + model.log_prior(m);
  };
  const double top = objective(best);
  const double slack = 1e-11 * std::abs(top);
  int moves = 0;
  const auto expect_lower = [&](cuem::HmmModel m, const char* what) {
    m.emissions = cuem::engine::hmm_emissions(type, 3, 2, m.emissions.means, m.emissions.covariances);
    EXPECT_LT(objective(m), top + slack) << what << " move " << moves;
    ++moves;
  };
  for (double e : {-1e-3, 1e-3}) {
    for (std::size_t i = 0; i < best.emissions.means.size(); ++i) {
      cuem::HmmModel m = best;
      m.emissions.means[i] += e;
      expect_lower(m, "mean");
    }
    for (std::size_t i = 0; i < best.emissions.covariances.size(); ++i) {
      cuem::HmmModel m = best;
      const std::size_t D = 2;
      const bool off_diagonal = (type == CovarianceType::full || type == CovarianceType::tied) && (i % (D * D)) % 3 != 0;
      if (off_diagonal) {  // the symmetric pair together
        const std::size_t base = i - i % (D * D);
        if (i % (D * D) != 1) continue;
        m.emissions.covariances[base + 1] += e;
        m.emissions.covariances[base + 2] += e;
      } else {
        m.emissions.covariances[i] *= 1.0 + e;
      }
      expect_lower(m, "covariance");
    }
    for (std::size_t i = 0; i < 3; ++i) {  // probability moved between two entries
      cuem::HmmModel m = best;
      m.startprob[i] += e;
      m.startprob[(i + 1) % 3] -= e;
      expect_lower(m, "startprob");
      m = best;
      m.transmat[i * 3 + i] += e;
      m.transmat[i * 3 + (i + 2) % 3] -= e;
      expect_lower(m, "transmat");
    }
  }
  EXPECT_GT(moves, 20);
}

// One block, a model of its own over all the sequences: Baum-Welch's parameters bit for bit.
TEST_P(HmmOnline, OneBlockIsBatchBitwise) {
  Frames f(GetParam(), 15);
  GaussianHmmEM& whole = f.part(0, kLengths.size());
  GaussianHmmEM& block = f.part(0, kLengths.size());
  const cuem::engine::BatchOptions o{1, 15, 0.0, 0, {}};
  const auto batch = cuem::engine::run_batch_em(whole, o);
  const auto inc = cuem::engine::run_incremental_em(whole, std::vector<GaussianHmmEM*>{&block}, o);
  ASSERT_EQ(inc.trace.size(), batch.trace.size());
  EXPECT_EQ(inc.params.startprob, batch.params.startprob);
  EXPECT_EQ(inc.params.transmat, batch.params.transmat);
  EXPECT_EQ(inc.params.emissions.means, batch.params.emissions.means);
  EXPECT_EQ(inc.params.emissions.covariances, batch.params.emissions.covariances);
}

// Blocks of whole sequences through fit_hmm: the free energy (with the log prior) never
// falls, and the fixed point is Baum-Welch's, with hmmlearn's default priors and with
// strong ones.
TEST_P(HmmOnline, IncrementalReachesBatchOptimumWithoutDecrease) {
  for (bool priors : {false, true}) {
    SCOPED_TRACE(priors ? "strong priors" : "default priors");
    Frames f(GetParam(), 120);  // passes: both at their fixed point to rounding
    if (priors) f.o.priors = strong_priors();
    const cuem::HmmFitResult batch = cuem::fit_hmm(f.view(), kLengths, f.o);
    for (int B : {3, 8}) {
      SCOPED_TRACE("B = " + std::to_string(B));
      cuem::HmmOptions o = f.o;
      o.incremental_blocks = B;
      const cuem::HmmFitResult inc = cuem::fit_hmm(f.view(), kLengths, o);
      EXPECT_EQ(inc.n_decreases, 0) << "max decrease " << inc.max_decrease;
      cuem_test::expect_trace_never_decreases(inc.trace, 1e-12);
      ASSERT_GT(inc.trace.size(), static_cast<std::size_t>(B));
      EXPECT_LT(max_rel_diff(inc.model.startprob, batch.model.startprob, 1e-3), 1e-8);
      EXPECT_LT(max_rel_diff(inc.model.transmat, batch.model.transmat, 1e-3), 1e-8);
      EXPECT_LT(max_rel_diff(inc.model.emissions.means, batch.model.emissions.means), 1e-8);
      EXPECT_LT(max_rel_diff(inc.model.emissions.covariances, batch.model.emissions.covariances, 1e-3), 1e-8);
    }
  }
}

// max_block_steps = S: the trace is the unlimited fit's first S steps bitwise, and S = 1 +
// B (P - 1) (the full first pass, then B steps a pass) is the fit of P passes bitwise.
TEST_P(HmmOnline, MaxBlockStepsStopsWhereThePassesAre) {
  Frames f(GetParam(), 6);
  cuem::HmmOptions o = f.o;
  o.tol = 0.0;
  o.incremental_blocks = 3;
  const cuem::HmmFitResult whole = cuem::fit_hmm(f.view(), kLengths, o);
  ASSERT_EQ(whole.trace.size(), 1U + 5 * 3);
  o.max_block_steps = 5;
  const cuem::HmmFitResult part = cuem::fit_hmm(f.view(), kLengths, o);
  ASSERT_EQ(part.trace.size(), 5U);
  for (std::size_t i = 0; i < 5; ++i) EXPECT_EQ(part.trace[i].mean_log_likelihood, whole.trace[i].mean_log_likelihood);
  EXPECT_FALSE(part.converged);
  o.max_block_steps = 1 + 3 * 2;
  const cuem::HmmFitResult steps = cuem::fit_hmm(f.view(), kLengths, o);
  o.max_block_steps = 0;
  o.n_iter = 3;
  const cuem::HmmFitResult passes = cuem::fit_hmm(f.view(), kLengths, o);
  EXPECT_EQ(steps.model.startprob, passes.model.startprob);
  EXPECT_EQ(steps.model.transmat, passes.model.transmat);
  EXPECT_EQ(steps.model.emissions.means, passes.model.emissions.means);
  EXPECT_EQ(steps.model.emissions.covariances, passes.model.emissions.covariances);
}

// Stepwise EM with rho_t = 1/t over batches of whole sequences: the running statistics per
// frame are the plain mean of each batch's statistics per frame, each taken under the
// parameters of its step (recomputed here by the batch's own E-step).
TEST_P(HmmOnline, StepwiseWithOneOverTIsTheRunningMean) {
  Frames f(GetParam(), 1);
  cuem::engine::StepwiseEM<GaussianHmmEM> em(cuem::engine::StepwiseSchedule{1.0, 0.0});
  em.start(to_hmm(f.truth));
  const std::vector<std::vector<std::size_t>> batches{{0, 2}, {2, 3}, {3, 6}, {6, 8}, {0, 1}, {1, 4}};
  std::vector<double> start(3, 0.0), trans(9, 0.0), nk(3, 0.0), s1, s2;
  const std::vector<double> zero(6, 0.0);
  double seen = 0;
  for (std::size_t t = 0; t < batches.size(); ++t) {
    GaussianHmmEM& batch = f.part(batches[t][0], batches[t][1]);
    const HmmStats b = batch.e_step(em.params());
    const cuem::SufficientStats raw = b.emission.recentred(zero);  // sums of g x and g x x
    if (t == 0) {
      s1.assign(raw.s1.size(), 0.0);
      s2.assign(raw.s2.size(), 0.0);
    }
    const double n = static_cast<double>(t + 1), w = b.weight;
    const auto mean = [&](std::vector<double>& m, const std::vector<double>& v) {
      for (std::size_t i = 0; i < m.size(); ++i) m[i] += (v[i] / w - m[i]) / n;
    };
    mean(start, b.start);
    mean(trans, b.trans);
    mean(nk, raw.nk);
    mean(s1, raw.s1);
    mean(s2, raw.s2);
    seen += w;
    em.step(batch);
    const HmmStats& s = em.stats();
    ASSERT_NEAR(s.weight, seen, 1e-13 * seen);
    const cuem::SufficientStats sr = s.emission.recentred(zero);
    const auto per_frame = [&](const std::vector<double>& v) {
      std::vector<double> out(v);
      for (double& x : out) x /= seen;
      return out;
    };
    EXPECT_LT(max_rel_diff(per_frame(s.start), start, 1e-3), 1e-12) << "step " << t + 1;
    EXPECT_LT(max_rel_diff(per_frame(s.trans), trans, 1e-3), 1e-12) << "step " << t + 1;
    EXPECT_LT(max_rel_diff(per_frame(sr.nk), nk, 1e-3), 1e-12) << "step " << t + 1;
    EXPECT_LT(max_rel_diff(per_frame(sr.s1), s1, 1e-3), 1e-12) << "step " << t + 1;
    EXPECT_LT(max_rel_diff(per_frame(sr.s2), s2, 1e-3), 1e-12) << "step " << t + 1;
  }
}

INSTANTIATE_TEST_SUITE_P(AllTypes, HmmOnline, ::testing::ValuesIn(cuem_test::all_covariance_types()),
                         [](const auto& info) { return std::string(cuem::to_string(info.param)); });

// Blocks are whole sequences: more blocks than sequences is refused, as are SQUAREM with
// blocks and frames with missing entries in blocks.
TEST(HmmOnlineBadInput, RefusedCombinations) {
  Frames f(CovarianceType::diag, 3);
  cuem::HmmOptions o = f.o;
  o.incremental_blocks = 9;
  EXPECT_THROW(cuem::fit_hmm(f.view(), kLengths, o), cuem::InvalidArgument);
  o.incremental_blocks = 8;  // one sequence a block: the most allowed, and it fits
  const cuem::HmmFitResult at_most = cuem::fit_hmm(f.view(), kLengths, o);
  EXPECT_EQ(at_most.n_decreases, 0);
  EXPECT_GT(at_most.trace.size(), 8U);
  o.incremental_blocks = 0;
  EXPECT_THROW(cuem::fit_hmm(f.view(), kLengths, o), cuem::InvalidArgument);
  o.incremental_blocks = 1;
  o.max_block_steps = 4;  // a budget of block steps needs blocks
  EXPECT_THROW(cuem::fit_hmm(f.view(), kLengths, o), cuem::InvalidArgument);
  o.incremental_blocks = 2;
  o.max_block_steps = -1;
  EXPECT_THROW(cuem::fit_hmm(f.view(), kLengths, o), cuem::InvalidArgument);
  o.max_block_steps = 0;
  o.acceleration = cuem::Acceleration::squarem;
  EXPECT_THROW(cuem::fit_hmm(f.view(), kLengths, o), cuem::InvalidArgument);
  o.acceleration = cuem::Acceleration::none;
  std::vector<double> X = f.X;
  X[7] = std::nan("");
  o.missing = cuem::MissingPolicy::marginalize;
  EXPECT_THROW(cuem::fit_hmm(cuem::DataView(X.data(), f.N, 2), kLengths, o), cuem::InvalidArgument);
}

// partial_fit through the public class: epochs of one-sequence batches from the same start
// as a batch fit come within a small margin of the batch optimum's log-likelihood.
TEST(HmmOnlinePartialFit, ApproachesTheBatchOptimum) {
  for (CovarianceType type : cuem_test::all_covariance_types()) {
    SCOPED_TRACE(cuem::to_string(type));
    Frames f(type, 200);
    const cuem::HmmFitResult batch = cuem::fit_hmm(f.view(), kLengths, f.o);
    const double best = cuem::score_hmm(batch.model, f.view(), kLengths) / static_cast<double>(f.N);
    cuem::OnlineGaussianHmm online(f.o, {0.6, 2.0});
    EXPECT_FALSE(online.initialized());
    for (int epoch = 0; epoch < 4; ++epoch) {
      std::size_t lo = 0;
      for (std::size_t q = 0; q < kLengths.size(); ++q) {
        const double ll = online.partial_fit(cuem::DataView(f.X.data() + lo * 2, kLengths[q], 2), {kLengths[q]});
        EXPECT_TRUE(std::isfinite(ll));
        lo += kLengths[q];
      }
    }
    EXPECT_EQ(online.n_steps(), 32);
    EXPECT_NEAR(online.n_frames_seen(), 4.0 * static_cast<double>(f.N), 1e-9 * static_cast<double>(f.N));
    const double reached = cuem::score_hmm(online.model(), f.view(), kLengths) / static_cast<double>(f.N);
    EXPECT_LT(best - reached, 0.02) << "batch " << best << " online " << reached;
  }
}

// A batch of other features, an empty batch and NaN frames are refused, the state kept.
TEST(HmmOnlineBadInput, PartialFitRefusesBadBatches) {
  Frames f(CovarianceType::diag, 1);
  cuem::OnlineGaussianHmm online(f.o);
  EXPECT_THROW(online.partial_fit(cuem::DataView(f.X.data(), 0, 2), {}), cuem::DataError);
  EXPECT_FALSE(online.initialized());
  online.partial_fit(f.view(), kLengths);
  const cuem::HmmModel before = online.model();
  EXPECT_THROW(online.partial_fit(cuem::DataView(f.X.data(), 100, 3), {}), cuem::DataError);
  std::vector<double> X(f.X.begin(), f.X.begin() + 200);
  X[5] = std::nan("");
  EXPECT_THROW(online.partial_fit(cuem::DataView(X.data(), 100, 2), {}), cuem::DataError);
  EXPECT_THROW(online.partial_fit(cuem::DataView(f.X.data(), 100, 2), {60, 30}), cuem::InvalidArgument);
  EXPECT_THROW(cuem::OnlineGaussianHmm(f.o, {0.5, 0.0}), cuem::InvalidArgument);
  EXPECT_EQ(online.n_steps(), 1);
  EXPECT_EQ(online.model().emissions.means, before.emissions.means);
}

}  // namespace
