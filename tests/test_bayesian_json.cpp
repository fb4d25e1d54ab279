// The Bayesian mixture's model file (src/io/model_json.*): a fitted posterior written and
// read back is bitwise the same and evaluates the same; "kind" decides how a file is read
// (absent: a gaussian_mixture, as files written before the field); Bayesian files are
// version 2 and a plain-mixture reader refuses them.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "cuem/bayesian.hpp"
#include "cuem/errors.hpp"
#include "cuem/fit.hpp"
#include "io/model_json.hpp"

namespace {

// Three separated groups in 3 features, deterministic.
std::vector<double> three_groups(std::size_t n) {
  std::vector<double> X;
  for (std::size_t i = 0; i < n; ++i) {
    const double t = static_cast<double>(i) * 0.37;
    X.push_back(static_cast<double>(i % 3) * 5.0 + std::sin(t) / 3.0);
    X.push_back(static_cast<double>(i % 3) * -2.0 + std::cos(1.7 * t) / 7.0);
    X.push_back(std::sin(0.3 * t));
  }
  return X;
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const cuem::DataError& e) {
    return e.what();
  }
  return "(no DataError)";
}

std::string replaced(std::string s, const std::string& from, const std::string& to) {
  const auto p = s.find(from);
  EXPECT_NE(p, std::string::npos) << from;
  if (p != std::string::npos) s.replace(p, from.size(), to);
  return s;
}

struct Case {
  cuem::CovarianceType type;
  cuem::WeightPrior prior;
};

class BayesianJson : public ::testing::TestWithParam<Case> {
 protected:
  static cuem::BayesianPosterior fitted(const Case& c, const std::vector<double>& X) {
    cuem::BayesianOptions o;
    o.em.n_components = 5;
    o.em.covariance_type = c.type;
    o.em.seed = 4;
    o.weight_concentration_prior_type = c.prior;
    o.weight_concentration_prior = 0.01;
    return cuem::fit_bayesian(cuem::DataView(X.data(), X.size() / 3, 3), o).posterior;
  }
};

TEST_P(BayesianJson, RoundTripsBitwiseAndEvaluatesTheSame) {
  const std::vector<double> X = three_groups(300);
  const cuem::DataView view(X.data(), 300, 3);
  const cuem::BayesianPosterior q = fitted(GetParam(), X);
  ASSERT_FALSE(q.empty());
  const std::vector<std::string> names = {"a", "b", "c"};
  const std::string text = cuem::io::bayesian_model_to_json(q, {true, true, 9, -123.5, 300, "x.npy", names});
  EXPECT_NE(text.find("\"kind\": \"bayesian_gaussian_mixture\""), std::string::npos);
  EXPECT_NE(text.find("\"version\": 2"), std::string::npos);
  cuem::io::FitMetadata meta;
  const cuem::io::AnyModel back = cuem::io::any_model_from_json(text, "b.json", &meta);
  ASSERT_EQ(back.kind, cuem::io::ModelKind::bayesian_gaussian_mixture);
  const cuem::BayesianPosterior& r = back.bayesian;
  // Exact equality is the point: the text must carry every bit.
  EXPECT_EQ(r.covariance_type, q.covariance_type);
  EXPECT_EQ(r.n_components, q.n_components);
  EXPECT_EQ(r.n_features, q.n_features);
  EXPECT_EQ(r.prior.type, q.prior.type);
  EXPECT_EQ(r.prior.weight_concentration, q.prior.weight_concentration);
  EXPECT_EQ(r.prior.mean_precision, q.prior.mean_precision);
  EXPECT_EQ(r.prior.mean, q.prior.mean);
  EXPECT_EQ(r.prior.degrees_of_freedom, q.prior.degrees_of_freedom);
  EXPECT_EQ(r.prior.covariance, q.prior.covariance);
  EXPECT_EQ(r.weight_concentration, q.weight_concentration);
  EXPECT_EQ(r.mean_precision, q.mean_precision);
  EXPECT_EQ(r.means, q.means);
  EXPECT_EQ(r.degrees_of_freedom, q.degrees_of_freedom);
  EXPECT_EQ(r.covariances, q.covariances);
  EXPECT_EQ(r.precisions_cholesky, q.precisions_cholesky);
  EXPECT_TRUE(meta.present);
  EXPECT_EQ(meta.n_iter, 9);
  EXPECT_EQ(meta.lower_bound, -123.5);
  EXPECT_EQ(meta.feature_names, names);
  EXPECT_EQ(cuem::io::bayesian_model_to_json(r, meta), text);
  // Read back, it evaluates as the fitted posterior, bit for bit (same code, same input).
  const std::vector<double> a = cuem::score_samples(q, view), b = cuem::score_samples(r, view);
  ASSERT_EQ(a.size(), 300u);
  EXPECT_NE(a[0], 0.0);
  EXPECT_EQ(a, b);
  // A plain-mixture reader refuses the file, naming its kind.
  EXPECT_NE(message_of([&] { cuem::io::model_from_json(text, "b.json"); }).find("bayesian_gaussian_mixture"),
            std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(
    AllTypes, BayesianJson,
    ::testing::Values(Case{cuem::CovarianceType::full, cuem::WeightPrior::dirichlet_process},
                      Case{cuem::CovarianceType::tied, cuem::WeightPrior::dirichlet_distribution},
                      Case{cuem::CovarianceType::diag, cuem::WeightPrior::dirichlet_process},
                      Case{cuem::CovarianceType::spherical, cuem::WeightPrior::dirichlet_distribution}));

cuem::Model plain_model() {
  const std::vector<double> X = three_groups(300);
  cuem::FitOptions o;
  o.n_components = 3;
  return cuem::fit(cuem::DataView(X.data(), 300, 3), o).model;
}

TEST(ModelKind, GaussianFilesSayTheirKindAndStayVersionOne) {
  const std::string text = cuem::io::model_to_json(plain_model());
  EXPECT_NE(text.find("\"kind\": \"gaussian_mixture\""), std::string::npos);
  EXPECT_NE(text.find("\"version\": 1,"), std::string::npos);
  const cuem::io::AnyModel m = cuem::io::any_model_from_json(text, "g.json");
  EXPECT_EQ(m.kind, cuem::io::ModelKind::gaussian_mixture);
  EXPECT_EQ(m.gaussian.n_components, 3);
}

TEST(ModelKind, FilesWithoutKindReadAsGaussianMixtures) {
  const cuem::Model m = plain_model();
  const std::string old = replaced(cuem::io::model_to_json(m), "\"kind\": \"gaussian_mixture\",", "");
  ASSERT_EQ(old.find("\"kind\""), std::string::npos);
  const cuem::io::AnyModel any = cuem::io::any_model_from_json(old, "old.json");
  EXPECT_EQ(any.kind, cuem::io::ModelKind::gaussian_mixture);
  EXPECT_EQ(any.gaussian.means, m.means);
  EXPECT_EQ(cuem::io::model_from_json(old, "old.json").weights, m.weights);
}

TEST(ModelKind, BadKindsAndVersionsAreRefused) {
  const std::string good = cuem::io::model_to_json(plain_model());
  auto err = [](const std::string& text) { return message_of([&] { cuem::io::any_model_from_json(text, "m.json"); }); };
  EXPECT_NE(err(replaced(good, "\"gaussian_mixture\"", "\"mystery\"")).find("\"kind\" must be"), std::string::npos);
  EXPECT_NE(err(replaced(good, "\"version\": 1", "\"version\": 3")).find("upgrade cuem"), std::string::npos);
  // A Bayesian file claiming version 1 is refused (a version-1 reader would misread it).
  const std::vector<double> X = three_groups(300);
  cuem::BayesianOptions o;
  o.em.n_components = 3;
  const cuem::BayesianPosterior q = cuem::fit_bayesian(cuem::DataView(X.data(), 300, 3), o).posterior;
  const std::string bayes = cuem::io::bayesian_model_to_json(q);
  EXPECT_NE(err(replaced(bayes, "\"version\": 2", "\"version\": 1")).find("needs \"version\" 2"), std::string::npos);
  EXPECT_NE(err(replaced(bayes, "\"mean_precision\": [", "\"mean_precision\": [-1, ")).find("mean_precision"),
            std::string::npos);
  EXPECT_NE(err(replaced(bayes, "\"prior\"", "\"priors\"")).find("missing field \"prior\""), std::string::npos);
}

}  // namespace
