// The GMMHMM (include/cuem/gmm_hmm.hpp) on the float64 CPU: the evaluations against the
// plain log-space forward-backward of hmm_reference.hpp over emission log-densities
// formed here (a log-sum-exp over each state's components, from test_util.hpp's own
// Cholesky); one component a state equals the GaussianHMM; the trace never falls; errors.
// The M-step is checked against hmmlearn's GMMHMM in tests/python/test_gmm_hmm.py.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "cuem/errors.hpp"
#include "cuem/gmm_hmm.hpp"
#include "cuem/hmm.hpp"
#include "hmm_reference.hpp"
#include "test_util.hpp"

namespace {

using cuem::CovarianceType;
using namespace hmm_test;

cuem::GmmHmmModel make_gmm_hmm(CovarianceType type, int K, int M, int D, std::uint64_t seed) {
  const Chain chain = make_chain(type, K, D, seed);
  const CovarianceType flat = type == CovarianceType::tied ? CovarianceType::full : type;
  const Chain comps = make_chain(flat, K * M, D, seed + 1);
  cuem::GmmHmmModel g;
  g.n_components = K;
  g.n_mix = M;
  g.n_features = D;
  g.covariance_type = type;
  g.startprob = chain.startprob;
  g.transmat = chain.transmat;
  g.means = comps.emissions.means;
  g.covars = type == CovarianceType::tied ? make_chain(CovarianceType::full, K, D, seed + 2).emissions.covariances
                                          : comps.emissions.covariances;
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.2, 1.0);
  g.weights.resize(static_cast<std::size_t>(K) * M);
  for (int k = 0; k < K; ++k) {
    double s = 0;
    for (int m = 0; m < M; ++m) s += g.weights[k * M + m] = u(rng);
    for (int m = 0; m < M; ++m) g.weights[k * M + m] /= s;
  }
  return g;
}

// log p(x_t | k) = log sum_m w_km N(x_t | mu_km, Sigma_km), by the test's own Cholesky.
std::vector<double> reference_log_densities(const cuem::GmmHmmModel& g, const std::vector<double>& X) {
  const int K = g.n_components, M = g.n_mix, D = g.n_features;
  cuem::Model flat;
  flat.n_components = K * M;
  flat.n_features = D;
  flat.weights = g.weights;
  flat.means = g.means;
  if (g.covariance_type == CovarianceType::tied) {
    flat.covariance_type = CovarianceType::full;
    for (int c = 0; c < K * M; ++c)
      flat.covariances.insert(flat.covariances.end(), g.covars.begin() + (c / M) * D * D,
                              g.covars.begin() + (c / M + 1) * D * D);
  } else {
    flat.covariance_type = g.covariance_type;
    flat.covariances = g.covars;
  }
  const std::size_t N = X.size() / D;
  const std::vector<double> lj = cuem_test::log_joint(flat, cuem::DataView(X.data(), N, D));
  std::vector<double> le(N * K);
  for (std::size_t t = 0; t < N; ++t)
    for (int k = 0; k < K; ++k) le[t * K + k] = cuem_test::logsumexp(lj.data() + t * K * M + k * M, M);
  return le;
}

Chain chain_of(const cuem::GmmHmmModel& g) {
  Chain c;
  c.K = g.n_components;
  c.D = g.n_features;
  c.startprob = g.startprob;
  c.transmat = g.transmat;
  return c;
}

class GmmHmm : public ::testing::TestWithParam<CovarianceType> {};

TEST_P(GmmHmm, EvaluationsMatchThePlainLoop) {
  const cuem::GmmHmmModel g = make_gmm_hmm(GetParam(), 3, 2, 3, 7);
  const std::vector<std::size_t> lengths{40, 170, 1, 60};
  const std::vector<double> X = draw(make_chain(CovarianceType::full, 3, 3, 4), lengths, 9);
  const std::size_t N = X.size() / 3;
  const cuem::DataView view(X.data(), N, 3);
  const Reference r = reference_chain(chain_of(g), reference_log_densities(g, X), lengths);
  const cuem::HmmPosteriors p = cuem::posteriors_gmm_hmm(g, view, lengths);
  EXPECT_NEAR(p.log_likelihood, r.log_likelihood, 1e-11 * std::abs(r.log_likelihood));
  double worst = 0;
  for (std::size_t i = 0; i < r.gamma.size(); ++i) worst = std::max(worst, std::abs(p.posteriors[i] - r.gamma[i]));
  EXPECT_LT(worst, 1e-10);
  EXPECT_NEAR(cuem::score_gmm_hmm(g, view, lengths), r.log_likelihood, 1e-11 * std::abs(r.log_likelihood));
  // Viterbi: the path's log-probability under the reference's log-densities.
  const cuem::HmmDecoding d = cuem::decode_gmm_hmm(g, view, lengths);
  const std::vector<double> le = reference_log_densities(g, X);
  double lp = 0;
  std::size_t lo = 0;
  for (std::size_t T : lengths) {
    for (std::size_t t = 0; t < T; ++t) {
      const int s = d.states[lo + t];
      lp += (t == 0 ? std::log(g.startprob[s]) : std::log(g.transmat[d.states[lo + t - 1] * 3 + s])) +
            le[(lo + t) * 3 + s];
    }
    lo += T;
  }
  EXPECT_NEAR(d.log_probability, lp, 1e-10 * std::abs(lp));
}

// One component a state is the GaussianHMM: the same evaluations, and the same start,
// transitions and means after Baum-Welch with the covariances held (hmmlearn's GMMHMM
// covariance update differs from its GaussianHMM's by design: scatter about the old means).
TEST_P(GmmHmm, OneComponentIsTheGaussianHmm) {
  const CovarianceType type = GetParam();
  cuem::GmmHmmModel g = make_gmm_hmm(type, 3, 1, 2, 13);
  cuem::HmmModel h;
  h.startprob = g.startprob;
  h.transmat = g.transmat;
  h.emissions.covariance_type = type == CovarianceType::tied ? CovarianceType::full : type;
  h.emissions.n_components = 3;
  h.emissions.n_features = 2;
  h.emissions.weights.assign(3, 1.0 / 3);
  h.emissions.means = g.means;
  h.emissions.covariances = g.covars;
  const std::vector<std::size_t> lengths{100, 33};
  const std::vector<double> X = draw(make_chain(CovarianceType::diag, 3, 2, 5), lengths, 3);
  const cuem::DataView view(X.data(), X.size() / 2, 2);
  const cuem::HmmPosteriors a = cuem::posteriors_gmm_hmm(g, view, lengths);
  const cuem::HmmPosteriors b = cuem::posteriors_hmm(h, view, lengths);
  EXPECT_NEAR(a.log_likelihood, b.log_likelihood, 1e-12 * std::abs(b.log_likelihood));
  EXPECT_LT(cuem_test::max_rel_diff(a.posteriors, b.posteriors), 1e-12);

  cuem::GmmHmmOptions go;
  go.n_components = 3;
  go.covariance_type = type;
  go.n_iter = 3;
  go.tol = 0;
  go.params = "stmw";
  go.init_params = "";
  go.init = g;
  go.device = cuem::parse_device("cpu");
  cuem::HmmOptions ho;
  ho.n_components = 3;
  ho.covariance_type = h.emissions.covariance_type;
  ho.n_iter = 3;
  ho.tol = 0;
  ho.params = "stm";
  ho.init_params = "";
  ho.startprob_init = h.startprob;
  ho.transmat_init = h.transmat;
  ho.means_init = h.emissions.means;
  ho.covars_init = h.emissions.covariances;
  ho.device = go.device;
  const cuem::GmmHmmFitResult gf = cuem::fit_gmm_hmm(view, lengths, go);
  const cuem::HmmFitResult hf = cuem::fit_hmm(view, lengths, ho);
  ASSERT_EQ(gf.trace.size(), hf.trace.size());
  for (std::size_t i = 0; i < gf.trace.size(); ++i)
    EXPECT_NEAR(gf.trace[i].mean_log_likelihood, hf.trace[i].mean_log_likelihood, 1e-12);
  EXPECT_LT(cuem_test::max_rel_diff(gf.model.startprob, hf.model.startprob), 1e-12);
  EXPECT_LT(cuem_test::max_rel_diff(gf.model.transmat, hf.model.transmat), 1e-12);
  EXPECT_LT(cuem_test::max_rel_diff(gf.model.means, hf.model.emissions.means), 1e-12);
  for (double w : gf.model.weights) EXPECT_EQ(w, 1.0);
}

INSTANTIATE_TEST_SUITE_P(AllTypes, GmmHmm, ::testing::ValuesIn(cuem_test::all_covariance_types()),
                         [](const auto& info) { return std::string(cuem::to_string(info.param)); });

TEST(GmmHmmProperties, TraceNeverDecreasesFromAKMeansStart) {
  for (CovarianceType type : cuem_test::all_covariance_types()) {
    const std::vector<std::size_t> lengths{300, 150, 77};
    // Frames of six well-spread clusters: three states of two components each.
    const std::vector<double> X = draw(make_chain(CovarianceType::full, 6, 2, 31), lengths, 6);
    cuem::GmmHmmOptions o;
    o.n_components = 3;
    o.n_mix = 2;
    o.covariance_type = type;
    o.n_iter = 30;
    o.tol = 0.0;
    // The maximum-likelihood update (hmmlearn's defaults are, except spherical's, whose
    // denominator D (N + 1) - M is a prior's; alpha = -(D + 2) / 2 makes it D N). The
    // covariances about the old means and then the means is a conditional maximisation
    // in two steps, so the likelihood never falls.
    if (type == CovarianceType::spherical) o.priors.covars_prior = {-2.0};
    o.device = cuem::parse_device("cpu");
    const cuem::GmmHmmFitResult fit = cuem::fit_gmm_hmm(cuem::DataView(X.data(), X.size() / 2, 2), lengths, o);
    ASSERT_EQ(fit.trace.size(), 30u) << cuem::to_string(type);
    EXPECT_EQ(fit.n_decreases, 0) << cuem::to_string(type);
    for (std::size_t i = 1; i < fit.trace.size(); ++i)
      EXPECT_GE(fit.trace[i].mean_log_likelihood, fit.trace[i - 1].mean_log_likelihood - 1e-12)
          << cuem::to_string(type) << " iteration " << fit.trace[i].iteration;
    cuem::validate_gmm_hmm(fit.model);
  }
}

TEST(GmmHmmErrors, ClearErrors) {
  const std::vector<std::size_t> lengths{50};
  const std::vector<double> X = draw(make_chain(CovarianceType::diag, 2, 2, 3), lengths, 1);
  const cuem::DataView view(X.data(), 50, 2);
  cuem::GmmHmmOptions o;
  o.n_components = 2;
  o.n_mix = 0;
  o.device = cuem::parse_device("cpu");
  EXPECT_THROW(cuem::fit_gmm_hmm(view, lengths, o), cuem::InvalidArgument);
  o.n_mix = 2;
  o.params = "stmx";
  EXPECT_THROW(cuem::fit_gmm_hmm(view, lengths, o), cuem::InvalidArgument);
  o.params = "stmcw";
  o.init_params = "stmc";  // weights not given
  EXPECT_THROW(cuem::fit_gmm_hmm(view, lengths, o), cuem::InvalidArgument);
  cuem::GmmHmmModel g = make_gmm_hmm(CovarianceType::diag, 2, 2, 2, 1);
  g.weights[0] = 0.9;  // the row sums to more than 1
  EXPECT_THROW(cuem::score_gmm_hmm(g, view, lengths), cuem::InvalidArgument);
}

}  // namespace
