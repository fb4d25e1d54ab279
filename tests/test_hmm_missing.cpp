// Gaussian HMMs on frames with missing entries (HmmOptions::missing = marginalize), on the
// float64 CPU, against a plain reference written here: the marginal Gaussian log-density
// of each frame's observed entries (its own Cholesky of Sigma_oo), the log-space
// forward-backward of hmm_reference.hpp, and hmmlearn's M-step on the expected moments
// (the missing entries completed by their conditional mean under each state, plus the
// conditional covariance). Also: the 'given weights' statistics of the incomplete rows
// against the mixture's own E-step, and the errors.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/sufficient_stats.hpp"
#include "cuem/errors.hpp"
#include "cuem/hmm.hpp"
#include "engine/incomplete_rows.hpp"
#include "engine/missing_layout.hpp"
#include "hmm_reference.hpp"
#include "test_util.hpp"

namespace {

using cuem::CovarianceType;
using cuem_test::Matrix;
using namespace hmm_test;

const double kNaN = std::numeric_limits<double>::quiet_NaN();

// Knocks out entries at random (probability p) and every entry of the frames in `empty`.
std::vector<double> knock_out(std::vector<double> X, int D, double p, const std::vector<std::size_t>& empty,
                              std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (double& v : X)
    if (u(rng) < p) v = kNaN;
  for (std::size_t t : empty)
    for (int d = 0; d < D; ++d) X[t * D + d] = kNaN;
  return X;
}

// Per frame and state: the marginal log-density of the observed entries, and the frame
// completed by its conditional mean with the conditional covariance on the missing block.
struct Marginals {
  std::vector<double> le;        // N x K
  std::vector<Matrix> filled;    // N x K vectors of D (empty for a frame with nothing observed)
  std::vector<Matrix> cond_cov;  // N x K matrices D x D (zero outside the missing block)
};

Marginals reference_marginals(const Chain& c, const std::vector<double>& X) {
  const int K = c.K, D = c.D;
  const std::size_t N = X.size() / D;
  Marginals m;
  m.le.assign(N * K, 0.0);
  m.filled.resize(N * K);
  m.cond_cov.resize(N * K);
  for (std::size_t t = 0; t < N; ++t) {
    std::vector<int> o, mi;
    for (int d = 0; d < D; ++d) (std::isnan(X[t * D + d]) ? mi : o).push_back(d);
    if (o.empty()) continue;  // no emission: log-density 0, no statistics
    const int no = static_cast<int>(o.size());
    for (int k = 0; k < K; ++k) {
      const Matrix S = cuem_test::full_covariance(c.emissions, k);
      const double* mu = c.emissions.means.data() + k * D;
      Matrix Soo(no * no);
      for (int a = 0; a < no; ++a)
        for (int b = 0; b < no; ++b) Soo[a * no + b] = S[o[a] * D + o[b]];
      const Matrix L = cuem_test::cholesky_lower(Soo, no);
      const Matrix inv = cuem_test::inverse_spd(Soo, no);
      std::vector<double> r(no);
      for (int a = 0; a < no; ++a) r[a] = X[t * D + o[a]] - mu[o[a]];
      double q = 0, log_det = 0;
      for (int a = 0; a < no; ++a) {
        log_det += 2.0 * std::log(L[a * no + a]);
        for (int b = 0; b < no; ++b) q += r[a] * inv[a * no + b] * r[b];
      }
      m.le[t * K + k] = -0.5 * (no * std::log(2.0 * M_PI) + log_det + q);
      Matrix x(D), C(static_cast<std::size_t>(D) * D, 0.0);
      for (int d = 0; d < D; ++d) x[d] = X[t * D + d];
      for (int i : mi) {
        // x_i = mu_i + S_io S_oo^-1 (x_o - mu_o)
        double v = mu[i];
        for (int a = 0; a < no; ++a)
          for (int b = 0; b < no; ++b) v += S[i * D + o[a]] * inv[a * no + b] * r[b];
        x[i] = v;
        for (int j : mi) {
          double w = S[i * D + j];
          for (int a = 0; a < no; ++a)
            for (int b = 0; b < no; ++b) w -= S[i * D + o[a]] * inv[a * no + b] * S[o[b] * D + j];
          C[i * D + j] = w;
        }
      }
      m.filled[t * K + k] = x;
      m.cond_cov[t * K + k] = C;
    }
  }
  return m;
}

// One Baum-Welch iteration of the reference on frames with missing entries.
Chain reference_step(const Chain& c, const std::vector<double>& X, const std::vector<std::size_t>& lengths,
                     double* log_likelihood) {
  const int K = c.K, D = c.D;
  const Marginals mg = reference_marginals(c, X);
  const Reference r = reference_chain(c, mg.le, lengths);
  *log_likelihood = r.log_likelihood;
  Moments mo(K, D);
  for (std::size_t t = 0; t < X.size() / D; ++t)
    for (int k = 0; k < K; ++k) {
      const Matrix& x = mg.filled[t * K + k];
      if (x.empty()) continue;
      const double g = r.gamma[t * K + k];
      mo.post[k] += g;
      for (int i = 0; i < D; ++i) {
        mo.obs[k * D + i] += g * x[i];
        for (int j = 0; j < D; ++j) mo.oo[k][i * D + j] += g * (x[i] * x[j] + mg.cond_cov[t * K + k][i * D + j]);
      }
    }
  return reference_mstep_from(c, r, mo);
}

struct MissingCase {
  Chain start;
  std::vector<std::size_t> lengths;
  std::vector<double> X;
  std::size_t N = 0;
};

MissingCase make_case(CovarianceType type, std::uint64_t seed) {
  MissingCase m;
  const Chain truth = make_chain(type, 3, 3, 11 + seed);
  m.lengths = {57, 120, 3, 1, 80};
  m.X = knock_out(draw(truth, m.lengths, 5 + seed), 3, 0.25, {10, 11, 200}, 7 + seed);
  m.N = m.X.size() / 3;
  m.start = make_chain(type, 3, 3, 99);
  m.start.emissions.means = truth.emissions.means;
  for (double& v : m.start.emissions.means) v += 0.5;
  return m;
}

class HmmMissing : public ::testing::TestWithParam<CovarianceType> {};

// Three iterations from the same start: the trace and the parameters against the reference.
TEST_P(HmmMissing, BaumWelchMatchesThePlainLoop) {
  const MissingCase mc = make_case(GetParam(), 0);
  const int n_iter = 3;
  cuem::HmmOptions o = options_from(mc.start, n_iter);
  o.missing = cuem::MissingPolicy::marginalize;
  const cuem::HmmFitResult fit = cuem::fit_hmm(cuem::DataView(mc.X.data(), mc.N, 3), mc.lengths, o);
  ASSERT_EQ(fit.trace.size(), static_cast<std::size_t>(n_iter));
  Chain ref = mc.start;
  for (int it = 0; it < n_iter; ++it) {
    double ll = 0;
    ref = reference_step(ref, mc.X, mc.lengths, &ll);
    EXPECT_NEAR(fit.trace[it].mean_log_likelihood * mc.N, ll, 1e-10 * std::abs(ll)) << "iteration " << it + 1;
  }
  EXPECT_LT(cuem_test::max_rel_diff(fit.model.startprob, ref.startprob, 1e-3), 1e-10);
  EXPECT_LT(cuem_test::max_rel_diff(fit.model.transmat, ref.transmat, 1e-3), 1e-10);
  EXPECT_LT(cuem_test::max_rel_diff(fit.model.emissions.means, ref.emissions.means), 1e-10);
  EXPECT_LT(cuem_test::max_rel_diff(fit.model.emissions.covariances, ref.emissions.covariances, 1e-3), 1e-10);
  // The frames with nothing observed are counted (those knocked out, and any the draw emptied).
  std::size_t n_empty = 0;
  for (std::size_t t = 0; t < mc.N; ++t)
    n_empty += std::isnan(mc.X[t * 3]) && std::isnan(mc.X[t * 3 + 1]) && std::isnan(mc.X[t * 3 + 2]);
  ASSERT_GE(n_empty, 3u);
  const std::string expected = std::to_string(n_empty) + " frames have every entry missing";
  bool named = false;
  for (const std::string& n : fit.notices) named = named || n.find(expected) != std::string::npos;
  EXPECT_TRUE(named) << (fit.notices.empty() ? std::string("no notices") : fit.notices[0]);
}

// Posteriors, score and Viterbi of a fixed model on frames with missing entries.
TEST_P(HmmMissing, EvaluationsMatchThePlainLoop) {
  const MissingCase mc = make_case(GetParam(), 1);
  const Chain& c = mc.start;
  const Reference r = reference_chain(c, reference_marginals(c, mc.X).le, mc.lengths);
  cuem::HmmEvaluateOptions where;
  where.missing = cuem::MissingPolicy::marginalize;
  const cuem::DataView X(mc.X.data(), mc.N, 3);
  const cuem::HmmPosteriors p = cuem::posteriors_hmm(to_hmm(c), X, mc.lengths, where);
  EXPECT_NEAR(p.log_likelihood, r.log_likelihood, 1e-11 * std::abs(r.log_likelihood));
  ASSERT_EQ(p.posteriors.size(), r.gamma.size());
  double worst = 0;
  for (std::size_t i = 0; i < r.gamma.size(); ++i) worst = std::max(worst, std::abs(p.posteriors[i] - r.gamma[i]));
  EXPECT_LT(worst, 1e-10);
  EXPECT_NEAR(cuem::score_hmm(to_hmm(c), X, mc.lengths, where), r.log_likelihood, 1e-11 * std::abs(r.log_likelihood));
  // Viterbi's path: its log-probability is that of the path under the reference's log-densities.
  const cuem::HmmDecoding d = cuem::decode_hmm(to_hmm(c), X, mc.lengths, "viterbi", where);
  const std::vector<double> le = reference_marginals(c, mc.X).le;
  double lp = 0;
  std::size_t lo = 0;
  for (std::size_t T : mc.lengths) {
    for (std::size_t t = 0; t < T; ++t) {
      const int s = d.states[lo + t];
      lp += (t == 0 ? std::log(c.startprob[s]) : std::log(c.transmat[d.states[lo + t - 1] * c.K + s])) +
            le[(lo + t) * c.K + s];
    }
    lo += T;
  }
  EXPECT_NEAR(d.log_probability, lp, 1e-10 * std::abs(lp));
  // Without the policy the NaN are an error.
  EXPECT_THROW(cuem::score_hmm(to_hmm(c), X, mc.lengths), cuem::DataError);
}

INSTANTIATE_TEST_SUITE_P(AllTypes, HmmMissing, ::testing::ValuesIn(cuem_test::all_covariance_types()),
                         [](const auto& info) { return std::string(cuem::to_string(info.param)); });

TEST(HmmMissingProperties, TraceNeverDecreasesFromAKMeansStart) {
  for (CovarianceType type : cuem_test::all_covariance_types()) {
    const Chain c = make_chain(type, 3, 3, 31);
    const std::vector<std::size_t> lengths{300, 150, 77};
    const std::vector<double> X = knock_out(draw(c, lengths, 6), 3, 0.3, {0, 400}, 3);
    cuem::HmmOptions o;
    o.n_components = 3;
    o.covariance_type = type;
    o.n_iter = 40;
    o.tol = 0.0;
    o.n_init = 2;
    o.device = cuem::parse_device("cpu");
    o.missing = cuem::MissingPolicy::marginalize;
    const cuem::HmmFitResult fit = cuem::fit_hmm(cuem::DataView(X.data(), X.size() / 3, 3), lengths, o);
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

// Without NaN the policy changes nothing: the same model, bit for bit.
TEST(HmmMissingProperties, NoMissingEntriesEqualTheCompletePathBitwise) {
  for (CovarianceType type : cuem_test::all_covariance_types()) {
    const Chain c = make_chain(type, 3, 2, 17);
    const std::vector<std::size_t> lengths{90, 40};
    const std::vector<double> X = draw(c, lengths, 2);
    cuem::HmmOptions o;
    o.n_components = 3;
    o.covariance_type = type;
    o.n_iter = 5;
    o.device = cuem::parse_device("cpu");
    const cuem::HmmFitResult a = cuem::fit_hmm(cuem::DataView(X.data(), X.size() / 2, 2), lengths, o);
    o.missing = cuem::MissingPolicy::marginalize;
    const cuem::HmmFitResult b = cuem::fit_hmm(cuem::DataView(X.data(), X.size() / 2, 2), lengths, o);
    EXPECT_EQ(a.model.startprob, b.model.startprob);
    EXPECT_EQ(a.model.transmat, b.model.transmat);
    EXPECT_EQ(a.model.emissions.means, b.model.emissions.means);
    EXPECT_EQ(a.model.emissions.covariances, b.model.emissions.covariances);
    EXPECT_EQ(a.lower_bound, b.lower_bound);
  }
}

// incomplete_weighted_stats under the model's own responsibilities is the mixture's E-step.
TEST(HmmMissingProperties, GivenWeightsEqualTheMixtureEStepUnderItsResponsibilities) {
  for (CovarianceType type : cuem_test::all_covariance_types()) {
    const Chain c = make_chain(type, 3, 4, 23);
    const std::vector<double> X = knock_out(draw(c, {500}, 4), 4, 0.3, {3}, 9);
    cuem::Model m = c.emissions;
    m.weights = {0.2, 0.5, 0.3};
    cuem_test::set_precisions_cholesky(m);
    const cuem::engine::MissingLayout L = cuem::engine::make_missing_layout(cuem::DataView(X.data(), 500, 4), {}, true);
    const std::size_t n = L.n_rows - L.n_complete;
    std::vector<double> resp(n * 3);
    cuem::engine::incomplete_posteriors(L, m, nullptr, resp.data());
    const cuem::SufficientStats own = cuem::engine::make_cpu_incomplete_rows(L)->estep(m);
    const cuem::SufficientStats given = cuem::engine::incomplete_weighted_stats(L, m, resp.data());
    EXPECT_LT(cuem_test::max_rel_diff(given.nk, own.nk), 1e-12) << cuem::to_string(type);
    EXPECT_LT(cuem_test::max_rel_diff(given.s1, own.s1), 1e-12) << cuem::to_string(type);
    EXPECT_LT(cuem_test::max_rel_diff(given.s2, own.s2), 1e-12) << cuem::to_string(type);
    EXPECT_EQ(given.shift, own.shift);
    // Weights of one state alone: only its statistics are non-zero.
    std::vector<double> one(n * 3, 0.0);
    for (std::size_t i = 0; i < n; ++i) one[i * 3 + 1] = 1.0;
    const cuem::SufficientStats s = cuem::engine::incomplete_weighted_stats(L, m, one.data());
    EXPECT_EQ(s.nk[0], 0.0);
    EXPECT_EQ(s.nk[1], static_cast<double>(n));
    EXPECT_EQ(s.nk[2], 0.0);
  }
}

TEST(HmmMissingErrors, ClearErrors) {
  const Chain c = make_chain(CovarianceType::diag, 2, 3, 5);
  const std::vector<std::size_t> lengths{60};
  std::vector<double> X = knock_out(draw(c, lengths, 1), 3, 0.1, {}, 2);
  cuem::HmmOptions o;
  o.n_components = 2;
  o.device = cuem::parse_device("cpu");
  const cuem::DataView view(X.data(), 60, 3);
  // NaN under the default policy.
  EXPECT_THROW(cuem::fit_hmm(view, lengths, o), cuem::DataError);
  o.missing = cuem::MissingPolicy::marginalize;
  // A column never observed cannot be estimated.
  std::vector<double> no_column = X;
  for (std::size_t t = 0; t < 60; ++t) no_column[t * 3 + 1] = kNaN;
  try {
    cuem::fit_hmm(cuem::DataView(no_column.data(), 60, 3), lengths, o);
    ADD_FAILURE() << "no error for a column never observed";
  } catch (const cuem::DataError& e) {
    EXPECT_NE(std::string(e.what()).find("1"), std::string::npos) << e.what();
  }
  // Nothing observed at all.
  const std::vector<double> nothing(180, kNaN);
  EXPECT_THROW(cuem::fit_hmm(cuem::DataView(nothing.data(), 60, 3), lengths, o), cuem::DataError);
  // Infinity is an error whatever the policy.
  X[7] = std::numeric_limits<double>::infinity();
  EXPECT_THROW(cuem::fit_hmm(view, lengths, o), cuem::DataError);
}

}  // namespace
