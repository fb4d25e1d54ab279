// The variational Bayesian Gaussian mixture (include/cuem/bayesian.hpp) against
// scikit-learn's BayesianGaussianMixture: from the same responsibilities, after the same
// iterations, the lower bounds and the posterior agree to 1e-8 relative on the CPU for the
// four covariance types, both weight priors, default and given priors. The reference
// (tests/data/vb_reference.txt) was written by scikit-learn itself
// (scripts/make_vb_reference.py records the version); nothing here recomputes it.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "cuem/bayesian.hpp"
#include "cuem/errors.hpp"
#include "engine/vb_gmm_model.hpp"

namespace {

using cuem::BayesianOptions;
using cuem::CovarianceType;
using cuem::WeightPrior;

struct Case {
  std::string covariance_type, prior_type;
  bool custom = false;
  std::map<std::string, std::vector<double>> arrays;
};

struct Reference {
  std::vector<double> X, resp;
  std::vector<Case> cases;
};

const Reference& reference() {
  static const Reference ref = [] {
    Reference r;
    std::ifstream in(CUEM_VB_REFERENCE);
    if (!in) throw std::runtime_error("cannot read " CUEM_VB_REFERENCE);
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#') continue;
      std::istringstream s(line);
      std::string name;
      s >> name;
      if (name == "case") {
        Case c;
        int custom = 0;
        s >> c.covariance_type >> c.prior_type >> custom;
        c.custom = custom != 0;
        r.cases.push_back(c);
        continue;
      }
      std::size_t n = 0;
      s >> n;
      std::vector<double> v(n);
      for (double& x : v) s >> x;
      if (!s) throw std::runtime_error("bad line in the reference: " + name);
      if (name == "X") r.X = v;
      else if (name == "resp") r.resp = v;
      else r.cases.back().arrays[name] = v;
    }
    return r;
  }();
  return ref;
}

constexpr int kN = 90, kD = 3, kK = 4, kIterations = 4;

cuem::DataView data_view() { return cuem::DataView(reference().X.data(), kN, kD); }

BayesianOptions options_for(const Case& c) {
  BayesianOptions o;
  o.em.n_components = kK;
  o.em.covariance_type = cuem::parse_covariance_type(c.covariance_type);
  o.em.max_iter = kIterations;
  o.em.tol = 0.0;
  o.weight_concentration_prior_type = cuem::parse_weight_prior(c.prior_type);
  o.resp_init = reference().resp;
  if (c.custom) {
    o.weight_concentration_prior = c.arrays.at("weight_concentration_prior")[0];
    o.mean_precision_prior = c.arrays.at("mean_precision_prior")[0];
    o.mean_prior = c.arrays.at("mean_prior");
    o.degrees_of_freedom_prior = c.arrays.at("degrees_of_freedom_prior")[0];
    o.covariance_prior = c.arrays.at("covariance_prior");
  }
  return o;
}

// |got - want| <= 1e-8 |want| element by element, with an absolute floor of 1e-12 of the
// array's largest value for entries that are zero up to rounding (off-diagonal covariances,
// tiny probabilities); reports the first mismatch.
void expect_close(const std::vector<double>& got, const std::vector<double>& want, const std::string& what,
                  double rel = 1e-8) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double scale = 0.0;
  for (double w : want) scale = std::max(scale, std::abs(w));
  ASSERT_GT(scale, 0.0) << what << ": the reference is all zero";
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double tol = rel * std::abs(want[i]) + 1e-12 * scale;
    ASSERT_NEAR(got[i], want[i], tol) << what << "[" << i << "] is the first mismatch";
  }
}

class AgainstScikitLearn : public ::testing::TestWithParam<int> {};

TEST_P(AgainstScikitLearn, PosteriorAndBoundAfterIterations) {
  const Case& c = reference().cases.at(static_cast<std::size_t>(GetParam()));
  SCOPED_TRACE(c.covariance_type + " " + c.prior_type + (c.custom ? " given priors" : " default priors"));
  const cuem::BayesianFitResult r = cuem::fit_bayesian(data_view(), options_for(c));
  const cuem::BayesianPosterior& q = r.posterior;
  ASSERT_EQ(r.n_iter, kIterations);
  std::vector<double> bounds;
  for (const cuem::TracePoint& t : r.trace) bounds.push_back(t.mean_log_likelihood);
  expect_close(bounds, c.arrays.at("lower_bounds"), "lower_bounds");
  EXPECT_NEAR(r.lower_bound, c.arrays.at("lower_bounds").back(), 1e-8 * std::abs(r.lower_bound));
  expect_close(q.weight_concentration, c.arrays.at("weight_concentration"), "weight_concentration");
  expect_close(q.mean_precision, c.arrays.at("mean_precision"), "mean_precision");
  expect_close(q.means, c.arrays.at("means"), "means");
  expect_close(q.degrees_of_freedom, c.arrays.at("degrees_of_freedom"), "degrees_of_freedom");
  expect_close(q.covariances, c.arrays.at("covariances"), "covariances");
  expect_close(q.precisions_cholesky, c.arrays.at("precisions_cholesky"), "precisions_cholesky");
  expect_close(q.weights(), c.arrays.at("weights"), "weights");
  expect_close(cuem::score_samples(q, data_view()), c.arrays.at("score_samples"), "score_samples");
  expect_close(cuem::predict_proba(q, data_view()), c.arrays.at("predict_proba"), "predict_proba");
  EXPECT_EQ(r.n_decreases, 0);
}

INSTANTIATE_TEST_SUITE_P(Cases, AgainstScikitLearn, ::testing::Range(0, 16), [](const auto& info) {
  const Case& c = reference().cases.at(static_cast<std::size_t>(info.param));
  return c.covariance_type + "_" + (c.prior_type == "dirichlet_process" ? "process" : "distribution") +
         (c.custom ? "_given_priors" : "_default_priors");
});

TEST(VbReference, HoldsEveryConfiguration) {
  ASSERT_EQ(reference().cases.size(), 16u);
  ASSERT_EQ(reference().X.size(), static_cast<std::size_t>(kN * kD));
  ASSERT_EQ(reference().resp.size(), static_cast<std::size_t>(kN * kK));
}

// The bound of variational EM never falls (coordinate ascent on the ELBO), whatever the
// start: every type, both priors, every init method, to convergence.
TEST(VbGmm, BoundNeverDecreases) {
  for (const char* type : {"full", "tied", "diag", "spherical"})
    for (WeightPrior prior : {WeightPrior::dirichlet_process, WeightPrior::dirichlet_distribution})
      for (cuem::InitMethod init : {cuem::InitMethod::kmeans, cuem::InitMethod::kmeans_plusplus,
                                    cuem::InitMethod::random, cuem::InitMethod::random_from_data}) {
        SCOPED_TRACE(std::string(type) + " " + cuem::to_string(prior) + " " + cuem::to_string(init));
        BayesianOptions o;
        o.em.n_components = 6;  // more than the data's three clusters: some must empty out
        o.em.covariance_type = cuem::parse_covariance_type(type);
        o.em.init = init;
        o.em.seed = 7;
        o.em.max_iter = 300;
        o.em.tol = 1e-9;
        o.weight_concentration_prior_type = prior;
        const cuem::BayesianFitResult r = cuem::fit_bayesian(data_view(), o);
        ASSERT_GE(r.trace.size(), 3u);
        for (std::size_t i = 1; i < r.trace.size(); ++i) {
          const double before = r.trace[i - 1].mean_log_likelihood, after = r.trace[i].mean_log_likelihood;
          ASSERT_GE(after, before - 1e-9 * std::abs(before)) << "iteration " << i + 1;
        }
        EXPECT_EQ(r.n_decreases, 0);
        EXPECT_TRUE(r.converged);
      }
}

// Integer sample weights count as repeated rows: in the statistics, the default priors
// (the data's mean and covariance, ddof 1) and the bound.
TEST(VbGmm, IntegerWeightsAreRepeatedRows) {
  const Reference& ref = reference();
  std::vector<double> weights(kN), repeated, resp_repeated;
  for (int i = 0; i < kN; ++i) {
    weights[i] = static_cast<double>(i % 3);
    for (int c = 0; c < i % 3; ++c) {
      repeated.insert(repeated.end(), ref.X.begin() + i * kD, ref.X.begin() + (i + 1) * kD);
      resp_repeated.insert(resp_repeated.end(), ref.resp.begin() + i * kK, ref.resp.begin() + (i + 1) * kK);
    }
  }
  for (const char* type : {"full", "tied", "diag", "spherical"}) {
    SCOPED_TRACE(type);
    BayesianOptions o = options_for(ref.cases.at(0));
    o.em.covariance_type = cuem::parse_covariance_type(type);
    const cuem::BayesianFitResult weighted = cuem::fit_bayesian(data_view(), o, cuem::WeightView(weights.data(), kN));
    o.resp_init = resp_repeated;
    const cuem::BayesianFitResult copies =
        cuem::fit_bayesian(cuem::DataView(repeated.data(), repeated.size() / kD, kD), o);
    expect_close(weighted.posterior.means, copies.posterior.means, "means", 1e-10);
    expect_close(weighted.posterior.covariances, copies.posterior.covariances, "covariances", 1e-10);
    expect_close(weighted.posterior.prior.covariance, copies.posterior.prior.covariance, "covariance prior", 1e-10);
    EXPECT_NEAR(weighted.lower_bound, copies.lower_bound, 1e-10 * std::abs(copies.lower_bound));
  }
}

TEST(VbGmm, DigammaKnownValues) {
  // psi(1) = -Euler's gamma, psi(1/2) = -gamma - 2 ln 2, psi(n) = H_{n-1} - gamma
  const double euler = 0.57721566490153286061;
  EXPECT_NEAR(cuem::engine::digamma(1.0), -euler, 1e-15);
  EXPECT_NEAR(cuem::engine::digamma(0.5), -euler - 2.0 * std::log(2.0), 1e-15);
  double harmonic = 0.0;
  for (int n = 1; n < 40; ++n) harmonic += 1.0 / n;
  EXPECT_NEAR(cuem::engine::digamma(40.0), harmonic - euler, 4e-15);
  // scipy.special.digamma's values
  EXPECT_NEAR(cuem::engine::digamma(1e-3), -1000.5755719318103, 1e-12 * 1000);
  EXPECT_NEAR(cuem::engine::digamma(0.25), -4.2274535333762655, 1e-14);
  EXPECT_NEAR(cuem::engine::digamma(3.3), 1.0348224890596216, 1e-14);
  EXPECT_NEAR(cuem::engine::digamma(12.75), 2.5058032764013554, 1e-14);
}

// Priors out of range: scikit-learn's conditions and wording.
void expect_invalid(const BayesianOptions& o, const std::string& message) {
  try {
    cuem::fit_bayesian(data_view(), o);
    FAIL() << "accepted; expected: " << message;
  } catch (const cuem::InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
  }
}

TEST(VbGmm, BadPriorsAreClearErrors) {
  BayesianOptions base;
  base.em.n_components = 2;
  for (double v : {0.0, -1.0}) {
    BayesianOptions o = base;
    o.weight_concentration_prior = v;
    expect_invalid(o, "'weight_concentration_prior' parameter must be None or a float in the range (0.0, inf)");
    o = base;
    o.mean_precision_prior = v;
    expect_invalid(o, "'mean_precision_prior' parameter must be None or a float in the range (0.0, inf)");
  }
  for (double nu : {2.0, 1.0, -3.0}) {  // D - 1 = 2 and below
    BayesianOptions o = base;
    o.degrees_of_freedom_prior = nu;
    expect_invalid(o, "The parameter 'degrees_of_freedom_prior' should be greater than 2, but got");
  }
  {
    BayesianOptions o = base;
    o.degrees_of_freedom_prior = 2.01;  // just above D - 1: allowed
    EXPECT_NO_THROW(cuem::fit_bayesian(data_view(), o));
  }
  {
    BayesianOptions o = base;  // eigenvalues 3, -1, 1
    o.covariance_prior = {1, 2, 0, 2, 1, 0, 0, 0, 1};
    expect_invalid(o, "'full covariance_prior' should be symmetric, positive-definite");
    o.covariance_prior = {1, 0.5, 0, 0, 1, 0, 0, 0, 1};
    expect_invalid(o, "'full covariance_prior' should be symmetric, positive-definite");
    o.em.covariance_type = CovarianceType::tied;
    expect_invalid(o, "'tied covariance_prior' should be symmetric, positive-definite");
    o.covariance_prior = {1, 0, 0, 1};
    expect_invalid(o, "should have the shape of (3, 3)");
  }
  {
    BayesianOptions o = base;
    o.em.covariance_type = CovarianceType::diag;
    o.covariance_prior = {1.0, 0.0, 2.0};
    expect_invalid(o, "'diag covariance_prior' should be positive");
    o.em.covariance_type = CovarianceType::spherical;
    o.covariance_prior = {-1.0};
    expect_invalid(o, "'covariance_prior' parameter must be None or a float in the range (0.0, inf)");
  }
  {
    BayesianOptions o = base;
    o.mean_prior = {1.0, 2.0};
    expect_invalid(o, "should have the shape of (3,)");
  }
}

}  // namespace
