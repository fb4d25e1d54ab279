// The variational Bayesian Gaussian mixture (include/cuem/bayesian.hpp) against
// scikit-learn's BayesianGaussianMixture: from the same responsibilities, after the same
// iterations, the lower bounds and the posterior agree to 1e-8 relative on the CPU for the
// four covariance types, both weight priors, default and given priors. The reference
// (tests/data/vb_reference.txt) was written by scikit-learn itself
// (scripts/make_vb_reference.py records the version); nothing here recomputes it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <random>
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

// Pruning (BayesianOptions::prune_threshold): three well-separated clusters of 200
// points in 2-D, about (0, 0), (10, 0) and (0, 10), with unit spread; seed printed.
struct ThreeClusters {
  static constexpr std::size_t kPer = 200;
  std::vector<double> X;
  const double centres[3][2] = {{0, 0}, {10, 0}, {0, 10}};
  ThreeClusters() {
    std::mt19937_64 rng(20240519);
    std::normal_distribution<double> z(0.0, 1.0);
    for (const auto& c : centres)
      for (std::size_t i = 0; i < kPer; ++i) {
        X.push_back(c[0] + z(rng));
        X.push_back(c[1] + z(rng));
      }
  }
  cuem::DataView view() const { return cuem::DataView(X.data(), 3 * kPer, 2); }
};

BayesianOptions prune_options(CovarianceType type, WeightPrior prior) {
  BayesianOptions o;
  o.em.n_components = 10;
  o.em.covariance_type = type;
  o.em.seed = 3;
  o.em.max_iter = 500;
  o.em.tol = 1e-8;
  o.weight_concentration_prior_type = prior;
  o.weight_concentration_prior = 1e-3;
  o.prune_threshold = 0.01;
  o.prune_patience = 5;
  return o;
}

// Off (the default), the fit is bitwise the one with other patience values: nothing of
// pruning runs, every component is kept and reported as such.
TEST(VbPrune, OffIsBitwiseTheDefaultFit) {
  const ThreeClusters data;
  BayesianOptions off = prune_options(CovarianceType::full, WeightPrior::dirichlet_process);
  off.prune_threshold = 0.0;
  BayesianOptions plain = off;
  plain.prune_patience = BayesianOptions{}.prune_patience;
  off.prune_patience = 1;
  const cuem::BayesianFitResult a = cuem::fit_bayesian(data.view(), plain);
  const cuem::BayesianFitResult b = cuem::fit_bayesian(data.view(), off);
  ASSERT_EQ(a.posterior.n_components, 10);
  ASSERT_EQ(b.posterior.n_components, 10);
  ASSERT_EQ(a.trace.size(), b.trace.size());
  for (std::size_t i = 0; i < a.trace.size(); ++i)
    ASSERT_EQ(a.trace[i].mean_log_likelihood, b.trace[i].mean_log_likelihood) << "iteration " << i + 1;
  EXPECT_EQ(a.posterior.means, b.posterior.means);
  EXPECT_EQ(a.posterior.covariances, b.posterior.covariances);
  EXPECT_EQ(a.posterior.weight_concentration, b.posterior.weight_concentration);
  EXPECT_EQ(b.kept_components, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_TRUE(b.prunes.empty());
}

void expect_pruned_to_clusters(const ThreeClusters& data, const cuem::BayesianFitResult& r, int patience) {
  const cuem::BayesianPosterior& q = r.posterior;
  ASSERT_EQ(q.n_components, 3);
  ASSERT_EQ(r.kept_components.size(), 3u);
  EXPECT_EQ(q.means.size(), 6u);
  EXPECT_EQ(q.mean_precision.size(), 3u);
  EXPECT_EQ(q.weights().size(), 3u);
  // every original component is either kept or removed once
  std::vector<int> seen(r.kept_components);
  ASSERT_FALSE(r.prunes.empty());
  for (const cuem::PruneEvent& e : r.prunes) {
    EXPECT_GE(e.iteration, patience);
    seen.insert(seen.end(), e.components.begin(), e.components.end());
  }
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  // each cluster's centre has one mean within 0.3 (the sample mean's spread is 0.07)
  for (const auto& c : data.centres) {
    int near = 0;
    for (int k = 0; k < 3; ++k)
      if (std::hypot(q.means[2 * k] - c[0], q.means[2 * k + 1] - c[1]) < 0.3) ++near;
    EXPECT_EQ(near, 1) << "centre (" << c[0] << ", " << c[1] << ")";
  }
  // the fit went on after the last prune, with the smaller model
  const int last = r.prunes.back().iteration;
  EXPECT_GT(r.n_iter, last + 1);
  ASSERT_EQ(r.trace.size(), static_cast<std::size_t>(r.n_iter));
  // the bound never falls between iterations of the same model; across a prune it may
  std::vector<bool> after_prune(r.trace.size() + 1, false);
  for (const cuem::PruneEvent& e : r.prunes) after_prune[static_cast<std::size_t>(e.iteration)] = true;
  for (std::size_t i = 1; i < r.trace.size(); ++i) {
    if (after_prune[i]) continue;  // trace[i] is iteration i + 1, the first after a prune at i
    const double before = r.trace[i - 1].mean_log_likelihood, after = r.trace[i].mean_log_likelihood;
    ASSERT_GE(after, before - 1e-9 * std::abs(before)) << "iteration " << i + 1;
  }
  EXPECT_EQ(r.n_decreases, 0);
  EXPECT_TRUE(r.converged);
}

TEST(VbPrune, TenComponentsOnThreeClustersEndWithThree) {
  const ThreeClusters data;
  for (CovarianceType type : {CovarianceType::full, CovarianceType::tied, CovarianceType::diag,
                              CovarianceType::spherical})
    for (WeightPrior prior : {WeightPrior::dirichlet_process, WeightPrior::dirichlet_distribution}) {
      SCOPED_TRACE(std::string(cuem::to_string(type)) + " " + cuem::to_string(prior) + ", seed 20240519");
      const BayesianOptions o = prune_options(type, prior);
      const cuem::BayesianFitResult r = cuem::fit_bayesian(data.view(), o);
      expect_pruned_to_clusters(data, r, o.prune_patience);
    }
}

// A component stays for prune_patience iterations below the threshold before it goes:
// with a patience beyond the fit's length nothing is removed.
TEST(VbPrune, PatienceDelaysRemoval) {
  const ThreeClusters data;
  BayesianOptions o = prune_options(CovarianceType::full, WeightPrior::dirichlet_process);
  o.prune_patience = 1;
  const cuem::BayesianFitResult quick = cuem::fit_bayesian(data.view(), o);
  ASSERT_FALSE(quick.prunes.empty());
  o.prune_patience = 20;
  const cuem::BayesianFitResult slow = cuem::fit_bayesian(data.view(), o);
  ASSERT_FALSE(slow.prunes.empty());
  EXPECT_GE(slow.prunes.front().iteration, quick.prunes.front().iteration + 19);
  o.em.max_iter = 15;
  o.em.tol = 0.0;
  const cuem::BayesianFitResult none = cuem::fit_bayesian(data.view(), o);
  EXPECT_EQ(none.n_iter, 15);
  EXPECT_TRUE(none.prunes.empty());
  EXPECT_EQ(none.posterior.n_components, 10);
}

// With restarts, each starts from all n_components and a fresh record; the result holds
// the kept restart's: one index per fitted component, every original one kept or removed.
TEST(VbPrune, RestartsReportTheKeptRestartsComponents) {
  const ThreeClusters data;
  BayesianOptions o = prune_options(CovarianceType::diag, WeightPrior::dirichlet_process);
  o.em.n_init = 3;
  o.em.init = cuem::InitMethod::random;
  const cuem::BayesianFitResult r = cuem::fit_bayesian(data.view(), o);
  ASSERT_EQ(r.kept_components.size(), static_cast<std::size_t>(r.posterior.n_components));
  std::size_t removed = 0;
  for (const cuem::PruneEvent& e : r.prunes) removed += e.components.size();
  EXPECT_EQ(removed + r.kept_components.size(), 10u);
  for (const cuem::PruneEvent& e : r.prunes) EXPECT_LT(e.iteration, r.n_iter);
}

TEST(VbPrune, BadOptionsAreClearErrors) {
  BayesianOptions base;
  base.em.n_components = 2;
  for (double t : {-0.1, 1.0, 2.0, std::nan("")}) {
    BayesianOptions o = base;
    o.prune_threshold = t;
    expect_invalid(o, "prune_threshold must be at least 0 (0: no pruning) and below 1");
  }
  for (int p : {0, -3}) {
    BayesianOptions o = base;
    o.prune_threshold = 0.01;
    o.prune_patience = p;
    expect_invalid(o, "prune_patience must be at least 1 iteration, got " + std::to_string(p));
  }
}

}  // namespace
