// The Gaussian HMM (include/cuem/hmm.hpp) on the float64 CPU, against a plain reference
// written here: forward-backward in log space over log-densities from test_util.hpp's own
// Cholesky, hmmlearn's M-step by its textbook formulas, Viterbi by enumeration of every
// path; and the analytic cases (one state: a single Gaussian; transition rows equal to
// the start vector: the mixture).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "cuem/errors.hpp"
#include "cuem/fit.hpp"
#include "cuem/gmm_hmm.hpp"
#include "cuem/hmm.hpp"
#include "hmm_reference.hpp"
#include "test_util.hpp"

namespace {

using cuem::CovarianceType;
using cuem_test::Matrix;
using namespace hmm_test;

class HmmReference : public ::testing::TestWithParam<CovarianceType> {};

// Three Baum-Welch iterations from the same start on sequences of unequal lengths: the
// trace (the log-likelihood before each M-step) and the final parameters.
TEST_P(HmmReference, BaumWelchMatchesThePlainLoop) {
  const CovarianceType type = GetParam();
  const Chain truth = make_chain(type, 3, 3, 11);
  const std::vector<std::size_t> lengths{57, 120, 3, 1, 80};
  const std::vector<double> X = draw(truth, lengths, 5);
  const std::size_t N = X.size() / truth.D;
  Chain start = make_chain(type, 3, 3, 99);  // another chain as the start
  start.emissions.means = truth.emissions.means;
  for (double& v : start.emissions.means) v += 0.5;

  const int n_iter = 3;
  const cuem::HmmFitResult fit = cuem::fit_hmm(cuem::DataView(X.data(), N, 3), lengths, options_from(start, n_iter));
  ASSERT_EQ(fit.trace.size(), static_cast<std::size_t>(n_iter));
  Chain ref = start;
  for (int it = 0; it < n_iter; ++it) {
    const Reference r = reference_estep(ref, X, lengths);
    EXPECT_NEAR(fit.trace[it].mean_log_likelihood * N, r.log_likelihood, 1e-9 * std::abs(r.log_likelihood))
        << "iteration " << it + 1;
    ref = reference_mstep(ref, r, X);
  }
  EXPECT_LT(cuem_test::max_rel_diff(fit.model.startprob, ref.startprob, 1e-3), 1e-8);
  EXPECT_LT(cuem_test::max_rel_diff(fit.model.transmat, ref.transmat, 1e-3), 1e-8);
  EXPECT_LT(cuem_test::max_rel_diff(fit.model.emissions.means, ref.emissions.means), 1e-8);
  EXPECT_LT(cuem_test::max_rel_diff(fit.model.emissions.covariances, ref.emissions.covariances, 1e-3), 1e-8);
}

// Posteriors and the score of a fixed model against the reference.
TEST_P(HmmReference, PosteriorsAndScore) {
  const Chain c = make_chain(GetParam(), 4, 2, 3);
  const std::vector<std::size_t> lengths{30, 200, 2};
  const std::vector<double> X = draw(c, lengths, 8);
  const std::size_t N = X.size() / c.D;
  const Reference r = reference_estep(c, X, lengths);
  const cuem::HmmPosteriors p = cuem::posteriors_hmm(to_hmm(c), cuem::DataView(X.data(), N, 2), lengths);
  EXPECT_NEAR(p.log_likelihood, r.log_likelihood, 1e-11 * std::abs(r.log_likelihood));
  ASSERT_EQ(p.posteriors.size(), r.gamma.size());
  double worst = 0;
  for (std::size_t i = 0; i < r.gamma.size(); ++i) worst = std::max(worst, std::abs(p.posteriors[i] - r.gamma[i]));
  EXPECT_LT(worst, 1e-10);
  EXPECT_NEAR(cuem::score_hmm(to_hmm(c), cuem::DataView(X.data(), N, 2), lengths), r.log_likelihood,
              1e-11 * std::abs(r.log_likelihood));
}

INSTANTIATE_TEST_SUITE_P(AllTypes, HmmReference, ::testing::ValuesIn(cuem_test::all_covariance_types()),
                         [](const auto& info) { return std::string(cuem::to_string(info.param)); });

// Viterbi against every path of a short sequence (K^T of them).
TEST(HmmViterbi, MatchesEnumeration) {
  const Chain c = make_chain(CovarianceType::full, 3, 2, 21);
  const std::vector<std::size_t> lengths{7, 5};
  const std::vector<double> X = draw(c, lengths, 4);
  const std::size_t N = X.size() / 2;
  const std::vector<double> le = cuem_test::log_joint(c.emissions, cuem::DataView(X.data(), N, 2));
  const cuem::HmmDecoding d = cuem::decode_hmm(to_hmm(c), cuem::DataView(X.data(), N, 2), lengths);
  std::size_t lo = 0;
  double total = 0;
  for (std::size_t T : lengths) {
    std::size_t paths = 1;
    for (std::size_t t = 0; t < T; ++t) paths *= 3;
    double best = -std::numeric_limits<double>::infinity();
    std::vector<int> best_path(T), path(T);
    for (std::size_t code = 0; code < paths; ++code) {
      std::size_t v = code;
      for (std::size_t t = 0; t < T; ++t, v /= 3) path[t] = static_cast<int>(v % 3);
      double lp = std::log(c.startprob[path[0]]) + le[lo * 3 + path[0]];
      for (std::size_t t = 1; t < T; ++t)
        lp += std::log(c.transmat[path[t - 1] * 3 + path[t]]) + le[(lo + t) * 3 + path[t]];
      if (lp > best) {
        best = lp;
        best_path = path;
      }
    }
    for (std::size_t t = 0; t < T; ++t) EXPECT_EQ(d.states[lo + t], best_path[t]) << "frame " << lo + t;
    total += best;
    lo += T;
  }
  EXPECT_NEAR(d.log_probability, total, 1e-10 * std::abs(total));
  // 'map': the most probable state of every frame under the posteriors.
  const Reference r = reference_estep(c, X, lengths);
  const cuem::HmmDecoding m = cuem::decode_hmm(to_hmm(c), cuem::DataView(X.data(), N, 2), lengths, "map");
  for (std::size_t t = 0; t < N; ++t) {
    const double* g = r.gamma.data() + t * 3;
    EXPECT_EQ(m.states[t], static_cast<int>(std::max_element(g, g + 3) - g)) << "frame " << t;
  }
}

// One state: the chain is trivial and one iteration is the single Gaussian's fit from the
// data's mean and covariance (covars_prior 0 leaves the plain estimate).
// A path forced through a state whose density underflows against the frame's best (about
// 800 nats below it): Viterbi reads its exact log-density (the plain sum here) instead of
// -inf, which made the frame impossible.
TEST(HmmViterbi, ExactLogDensitiesWhereAStateUnderflows) {
  for (CovarianceType type : cuem_test::all_covariance_types()) {
    cuem::HmmModel m;
    m.startprob = {1.0, 0.0};
    m.transmat = {0.0, 1.0, 1.0, 0.0};  // strict alternation
    m.emissions.covariance_type = type;
    m.emissions.n_components = 2;
    m.emissions.n_features = 1;
    m.emissions.weights = {0.5, 0.5};
    m.emissions.means = {0.0, 40.0};
    m.emissions.covariances = type == CovarianceType::tied ? std::vector<double>{1.0} : std::vector<double>{1.0, 1.0};
    const std::vector<double> X{0.1, -0.2, 0.3, 0.0, 0.5};
    const cuem::HmmDecoding d = cuem::decode_hmm(m, cuem::DataView(X.data(), 5, 1), {5});
    double expected = 0;
    for (std::size_t t = 0; t < 5; ++t) {
      const double mu = t % 2 ? 40.0 : 0.0;
      expected += -0.5 * (std::log(2 * M_PI) + (X[t] - mu) * (X[t] - mu));
      EXPECT_EQ(d.states[t], static_cast<int>(t % 2));
    }
    EXPECT_NEAR(d.log_probability, expected, 1e-12 * std::abs(expected)) << cuem::to_string(type);
    // The GMMHMM's Viterbi, one component a state, the same.
    cuem::GmmHmmModel g;
    g.n_components = 2;
    g.n_mix = 1;
    g.n_features = 1;
    g.covariance_type = type;
    g.startprob = m.startprob;
    g.transmat = m.transmat;
    g.weights = {1.0, 1.0};
    g.means = m.emissions.means;
    g.covars = {1.0, 1.0};
    const cuem::HmmDecoding e = cuem::decode_gmm_hmm(g, cuem::DataView(X.data(), 5, 1), {5});
    EXPECT_EQ(e.states, d.states);
    EXPECT_NEAR(e.log_probability, expected, 1e-12 * std::abs(expected)) << cuem::to_string(type);
  }
}

TEST(HmmAnalytic, OneStateIsASingleGaussian) {
  const Chain c = make_chain(CovarianceType::full, 2, 3, 5);
  const std::vector<std::size_t> lengths{100, 60};
  const std::vector<double> X = draw(c, lengths, 2);
  const std::size_t N = X.size() / 3;
  cuem::HmmOptions o;
  o.n_components = 1;
  o.covariance_type = CovarianceType::full;
  o.n_iter = 2;
  o.tol = 0.0;
  o.priors.covars_prior = {0.0};
  o.device = cuem::parse_device("cpu");
  const cuem::HmmFitResult fit = cuem::fit_hmm(cuem::DataView(X.data(), N, 3), lengths, o);
  const Matrix mean = cuem_test::sample_mean(X.data(), N, 3);
  const Matrix cov = cuem_test::biased_covariance(X.data(), N, 3);
  EXPECT_LT(cuem_test::max_rel_diff(fit.model.emissions.means, mean), 1e-12);
  EXPECT_LT(cuem_test::max_rel_diff(fit.model.emissions.covariances, cov), 1e-12);
  EXPECT_EQ(fit.model.startprob, std::vector<double>{1.0});
  EXPECT_EQ(fit.model.transmat, std::vector<double>{1.0});
  // The second iteration's bound is the Gaussian's mean log-likelihood at the fit.
  cuem::Model g;
  g.covariance_type = CovarianceType::full;
  g.n_components = 1;
  g.n_features = 3;
  g.weights = {1.0};
  g.means = mean;
  g.covariances = cov;
  EXPECT_NEAR(fit.trace[1].mean_log_likelihood, cuem_test::mean_log_likelihood(g, cuem::DataView(X.data(), N, 3)),
              1e-12);
}

// Transition rows equal to the start vector make the frames independent draws from the
// mixture with weights startprob: the mixture's log-likelihood and posteriors.
TEST(HmmAnalytic, IndependentFramesAreTheMixture) {
  for (CovarianceType type : cuem_test::all_covariance_types()) {
    Chain c = make_chain(type, 3, 2, 17);
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 3; ++j) c.transmat[i * 3 + j] = c.startprob[j];
    const std::vector<std::size_t> lengths{40, 41, 9};
    const std::vector<double> X = draw(c, lengths, 1);
    const std::size_t N = X.size() / 2;
    const cuem::DataView view(X.data(), N, 2);
    cuem::Model gmm = c.emissions;
    gmm.weights = c.startprob;
    cuem_test::set_precisions_cholesky(gmm);
    const std::vector<double> lp = cuem::score_samples(gmm, view);
    double total = 0;
    for (double v : lp) total += v;
    const cuem::HmmPosteriors p = cuem::posteriors_hmm(to_hmm(c), view, lengths);
    EXPECT_NEAR(p.log_likelihood, total, 1e-12 * std::abs(total)) << cuem::to_string(type);
    const std::vector<double> resp = cuem::predict_proba(gmm, view);
    EXPECT_LT(cuem_test::max_rel_diff(p.posteriors, resp), 1e-12) << cuem::to_string(type);
    // One Baum-Welch step's emission update (no covariance prior) is the mixture's M-step
    // from those responsibilities.
    cuem::HmmOptions o = options_from(c, 1);
    o.params = "mc";
    o.priors.covars_prior = {0.0};
    const cuem::HmmFitResult fit = cuem::fit_hmm(view, lengths, o);
    const cuem::Model want = cuem_test::m_step(view, resp, 3, type, 0.0);
    EXPECT_LT(cuem_test::max_rel_diff(fit.model.emissions.means, want.means), 1e-10) << cuem::to_string(type);
    EXPECT_LT(cuem_test::max_rel_diff(fit.model.emissions.covariances, want.covariances), 1e-10)
        << cuem::to_string(type);
    EXPECT_EQ(fit.model.transmat, c.transmat);  // 't' not in params
  }
}

// ---- properties -------------------------------------------------------------------------

TEST(HmmProperties, TraceNeverDecreasesFromAKMeansStart) {
  for (CovarianceType type : cuem_test::all_covariance_types()) {
    const Chain c = make_chain(type, 3, 2, 31);
    const std::vector<std::size_t> lengths{300, 150, 77};
    const std::vector<double> X = draw(c, lengths, 6);
    cuem::HmmOptions o;
    o.n_components = 3;
    o.covariance_type = type;
    o.n_iter = 40;
    o.tol = 0.0;
    o.n_init = 2;
    o.device = cuem::parse_device("cpu");
    const cuem::HmmFitResult fit = cuem::fit_hmm(cuem::DataView(X.data(), X.size() / 2, 2), lengths, o);
    EXPECT_EQ(fit.n_decreases, 0) << cuem::to_string(type);
    ASSERT_EQ(fit.trace.size(), 80u);
    for (std::size_t i = 1; i < fit.trace.size(); ++i)
      if (fit.trace[i].init == fit.trace[i - 1].init) {
        EXPECT_GE(fit.trace[i].mean_log_likelihood, fit.trace[i - 1].mean_log_likelihood - 1e-12)
            << cuem::to_string(type) << " iteration " << fit.trace[i].iteration;
      }
    cuem::validate_hmm(fit.model);
  }
}

TEST(HmmProperties, ResultsDoNotDependOnTheThreadCount) {
  const Chain c = make_chain(CovarianceType::full, 4, 3, 41);
  std::vector<std::size_t> lengths;
  for (int i = 0; i < 300; ++i) lengths.push_back(5 + (i * 7) % 23);
  const std::vector<double> X = draw(c, lengths, 9);
  cuem::HmmOptions o;
  o.n_components = 4;
  o.covariance_type = CovarianceType::full;
  o.n_iter = 5;
  o.tol = 0.0;
  o.device = cuem::parse_device("cpu");
  o.n_threads = 1;
  const cuem::HmmFitResult one = cuem::fit_hmm(cuem::DataView(X.data(), X.size() / 3, 3), lengths, o);
  o.n_threads = 3;
  const cuem::HmmFitResult three = cuem::fit_hmm(cuem::DataView(X.data(), X.size() / 3, 3), lengths, o);
  ASSERT_EQ(one.trace.size(), three.trace.size());
  for (std::size_t i = 0; i < one.trace.size(); ++i)
    EXPECT_EQ(one.trace[i].mean_log_likelihood, three.trace[i].mean_log_likelihood);
  EXPECT_EQ(one.model.transmat, three.model.transmat);
  EXPECT_EQ(one.model.startprob, three.model.startprob);
  EXPECT_EQ(one.model.emissions.means, three.model.emissions.means);
  EXPECT_EQ(one.model.emissions.covariances, three.model.emissions.covariances);
}

TEST(HmmSample, FollowsTheChain) {
  Chain c = make_chain(CovarianceType::diag, 3, 2, 7);
  c.startprob = {0.0, 1.0, 0.0};
  c.transmat = {0, 1, 0, 0, 0, 1, 1, 0, 0};  // 1 -> 2 -> 0 -> 1
  const cuem::HmmSamples s = cuem::sample_hmm(to_hmm(c), 3000, 12);
  ASSERT_EQ(s.states.size(), 3000u);
  for (std::size_t t = 0; t < 3000; ++t) ASSERT_EQ(s.states[t], static_cast<int>((t + 1) % 3)) << t;
  // Each state's frames have its mean and variance (1000 draws: within 5 standard errors).
  for (int k = 0; k < 3; ++k)
    for (int d = 0; d < 2; ++d) {
      double m = 0, v = 0;
      int n = 0;
      for (std::size_t t = 0; t < 3000; ++t)
        if (s.states[t] == k) {
          m += s.X[t * 2 + d];
          ++n;
        }
      m /= n;
      for (std::size_t t = 0; t < 3000; ++t)
        if (s.states[t] == k) v += (s.X[t * 2 + d] - m) * (s.X[t * 2 + d] - m);
      v /= n - 1;
      const double var = c.emissions.covariances[k * 2 + d];
      EXPECT_NEAR(m, c.emissions.means[k * 2 + d], 5 * std::sqrt(var / n));
      EXPECT_NEAR(v, var, 5 * var * std::sqrt(2.0 / n));
    }
}

// ---- bad input --------------------------------------------------------------------------

template <class E, class F>
void expect_error(F&& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one mentioning '" << needle << "'";
  } catch (const E& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(HmmErrors, BadLengthsAndParameters) {
  const Chain c = make_chain(CovarianceType::diag, 2, 2, 1);
  const std::vector<double> X = draw(c, {50}, 3);
  const cuem::DataView view(X.data(), 50, 2);
  cuem::HmmOptions o = options_from(c, 2);
  expect_error<cuem::InvalidArgument>([&] { cuem::fit_hmm(view, {20, 20}, o); }, "lengths sum to 40");
  expect_error<cuem::InvalidArgument>([&] { cuem::fit_hmm(view, {50, 0}, o); }, "lengths[1] is 0");
  expect_error<cuem::InvalidArgument>([&] { cuem::score_hmm(to_hmm(c), view, {49}); }, "lengths sum to 49");
  cuem::HmmOptions bad = o;
  bad.transmat_init = {0.5, 0.4, 0.5, 0.5};
  expect_error<cuem::InvalidArgument>([&] { cuem::fit_hmm(view, {}, bad); }, "row 0 sums to 0.9");
  bad = o;
  bad.startprob_init = {0.7, 0.7};
  expect_error<cuem::InvalidArgument>([&] { cuem::fit_hmm(view, {}, bad); }, "sums to 1.4");
  bad = o;
  bad.params = "stmx";
  expect_error<cuem::InvalidArgument>([&] { cuem::fit_hmm(view, {}, bad); }, "holds 'x'");
  bad = o;
  bad.covars_init = {1.0, -1.0, 1.0, 1.0};
  expect_error<cuem::NumericalError>([&] { cuem::fit_hmm(view, {}, bad); }, "not positive definite");
  cuem::HmmModel m = to_hmm(c);
  m.transmat = {0.9, 0.2, 0.5, 0.5};
  expect_error<cuem::InvalidArgument>([&] { cuem::decode_hmm(m, view, {}); }, "row 0 sums to 1.1");
  expect_error<cuem::InvalidArgument>([&] { cuem::decode_hmm(to_hmm(c), view, {}, "best"); }, "'best'");
}

// A state far from every frame gets no weight: it keeps its parameters and the fit says so.
TEST(HmmErrors, NeverVisitedStateIsKeptWithANotice) {
  Chain c = make_chain(CovarianceType::diag, 3, 2, 13);
  const std::vector<double> X = draw(c, {200}, 3);
  Chain start = c;
  start.emissions.means[4] = 1e6;
  start.emissions.means[5] = 1e6;
  const cuem::HmmFitResult fit = cuem::fit_hmm(cuem::DataView(X.data(), 200, 2), {}, options_from(start, 3));
  ASSERT_FALSE(fit.notices.empty());
  EXPECT_NE(fit.notices.back().find("state 2 (0-based) received no weight"), std::string::npos) << fit.notices.back();
  EXPECT_EQ(fit.model.emissions.means[4], 1e6);
  EXPECT_EQ(fit.model.emissions.covariances[4], start.emissions.covariances[4]);
  cuem::validate_hmm(fit.model);
}

// ---- one long sequence, and the bounded-memory E-step ---------------------------------

// One sequence long enough to be split over the threads (forward and backward side by
// side, time blocks shared): Baum-Welch against the plain loop, K with a compile-time
// chain (3) and without (7), and bitwise the same for 1, 2 and 3 threads.
TEST_P(HmmReference, OneLongSequenceMatchesThePlainLoopOnAnyThreadCount) {
  const CovarianceType type = GetParam();
  for (int K : {3, 7}) {
    const Chain truth = make_chain(type, K, 2, 21);
    const std::vector<std::size_t> lengths{3000};
    const std::vector<double> X = draw(truth, lengths, 7);
    const std::size_t N = X.size() / truth.D;
    Chain start = truth;
    for (double& v : start.emissions.means) v += 0.3;
    const int n_iter = 2;
    cuem::HmmOptions o = options_from(start, n_iter);
    std::vector<cuem::HmmFitResult> fits;
    for (int threads : {1, 2, 3}) {
      o.n_threads = threads;
      fits.push_back(cuem::fit_hmm(cuem::DataView(X.data(), N, 2), lengths, o));
    }
    Chain ref = start;
    for (int it = 0; it < n_iter; ++it) {
      const Reference r = reference_estep(ref, X, lengths);
      EXPECT_NEAR(fits[0].trace[it].mean_log_likelihood * N, r.log_likelihood, 1e-9 * std::abs(r.log_likelihood))
          << "K " << K << " iteration " << it + 1;
      ref = reference_mstep(ref, r, X);
    }
    EXPECT_LT(cuem_test::max_rel_diff(fits[0].model.transmat, ref.transmat, 1e-3), 1e-8) << "K " << K;
    EXPECT_LT(cuem_test::max_rel_diff(fits[0].model.emissions.means, ref.emissions.means), 1e-8) << "K " << K;
    for (std::size_t f = 1; f < fits.size(); ++f) {
      for (int it = 0; it < n_iter; ++it)
        EXPECT_EQ(fits[f].trace[it].mean_log_likelihood, fits[0].trace[it].mean_log_likelihood);
      EXPECT_EQ(fits[f].model.transmat, fits[0].model.transmat);
      EXPECT_EQ(fits[f].model.startprob, fits[0].model.startprob);
      EXPECT_EQ(fits[f].model.emissions.means, fits[0].model.emissions.means);
      EXPECT_EQ(fits[f].model.emissions.covariances, fits[0].model.emissions.covariances);
    }
  }
}

// The bounded-memory E-step (segments of a few time blocks, the forward pass recomputed
// per segment) against the whole-data pass: the log-likelihood, start and transition
// sums are bitwise the same (the same operations in the same order), so are the start
// and transition updates; the emission statistics are merged per segment, so the means
// and covariances agree to rounding.
TEST_P(HmmReference, BoundedMemoryEqualsTheWholePass) {
  const CovarianceType type = GetParam();
  const Chain truth = make_chain(type, 3, 3, 13);
  const std::vector<std::size_t> lengths{1500, 700, 64, 1, 900};
  const std::vector<double> X = draw(truth, lengths, 3);
  const std::size_t N = X.size() / truth.D;
  Chain start = truth;
  for (double& v : start.emissions.means) v -= 0.4;
  for (int n_iter : {1, 3}) {
    cuem::HmmOptions o = options_from(start, n_iter);
    o.segment_frames = std::numeric_limits<std::size_t>::max();
    const cuem::HmmFitResult whole = cuem::fit_hmm(cuem::DataView(X.data(), N, 3), lengths, o);
    for (std::size_t segment : {std::size_t{1}, std::size_t{200}}) {
      o.segment_frames = segment;
      const cuem::HmmFitResult part = cuem::fit_hmm(cuem::DataView(X.data(), N, 3), lengths, o);
      ASSERT_EQ(part.trace.size(), whole.trace.size());
      EXPECT_EQ(part.trace[0].mean_log_likelihood, whole.trace[0].mean_log_likelihood);
      for (std::size_t i = 1; i < whole.trace.size(); ++i)
        EXPECT_NEAR(part.trace[i].mean_log_likelihood, whole.trace[i].mean_log_likelihood,
                    1e-12 * std::abs(whole.trace[i].mean_log_likelihood));
      if (n_iter == 1) {
        EXPECT_EQ(part.model.startprob, whole.model.startprob) << "segment " << segment;
        EXPECT_EQ(part.model.transmat, whole.model.transmat) << "segment " << segment;
      } else {
        EXPECT_LT(cuem_test::max_rel_diff(part.model.transmat, whole.model.transmat, 1e-3), 1e-12);
        EXPECT_LT(cuem_test::max_rel_diff(part.model.startprob, whole.model.startprob, 1e-3), 1e-12);
      }
      EXPECT_LT(cuem_test::max_rel_diff(part.model.emissions.means, whole.model.emissions.means), 1e-12);
      EXPECT_LT(cuem_test::max_rel_diff(part.model.emissions.covariances, whole.model.emissions.covariances), 1e-12);
    }
  }
  // The segmented pass on 1 and 3 threads: bitwise the same.
  cuem::HmmOptions o = options_from(start, 2);
  o.segment_frames = 200;
  o.n_threads = 1;
  const cuem::HmmFitResult one = cuem::fit_hmm(cuem::DataView(X.data(), N, 3), lengths, o);
  o.n_threads = 3;
  const cuem::HmmFitResult three = cuem::fit_hmm(cuem::DataView(X.data(), N, 3), lengths, o);
  EXPECT_EQ(one.trace.back().mean_log_likelihood, three.trace.back().mean_log_likelihood);
  EXPECT_EQ(one.model.transmat, three.model.transmat);
  EXPECT_EQ(one.model.emissions.means, three.model.emissions.means);
  EXPECT_EQ(one.model.emissions.covariances, three.model.emissions.covariances);
}

}  // namespace
