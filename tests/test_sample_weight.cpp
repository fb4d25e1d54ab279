// sample_weight through the public API: a row of integer weight w counts as w copies of
// it, a row of weight 0 as absent, all-ones weights as none; bad weights are refused
// before any work. The references are the same fits on repeated or dropped rows.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "cuem/errors.hpp"
#include "cuem/fit.hpp"
#include "test_util.hpp"

namespace {

using cuem::CovarianceType;

std::string type_name(const testing::TestParamInfo<CovarianceType>& info) { return cuem::to_string(info.param); }

constexpr int kK = 3;
constexpr int kD = 3;

// Data from a 3-component mixture, integer weights in [0, 3] (seed 72), and the data
// with every row repeated its weight's times in place (so that the zero rows vanish and
// cumulative sums over rows run through the same points in the same order).
struct WeightedData {
  cuem_test::Dataset data;
  std::vector<double> w;
  std::vector<double> repeated;  // rows x D
  std::size_t repeated_rows = 0;
  explicit WeightedData(CovarianceType type, int max_weight = 3, std::size_t n = 400) {
    data = cuem_test::sample_mixture(cuem_test::make_mixture(type, kK, kD, 3.0, 71), n, 70);
    std::mt19937_64 gen(72);
    std::uniform_int_distribution<int> pick(0, max_weight);
    w.resize(data.n);
    for (std::size_t i = 0; i < data.n; ++i) {
      w[i] = pick(gen);
      for (int c = 0; c < static_cast<int>(w[i]); ++c) {
        for (int d = 0; d < kD; ++d) repeated.push_back(data.x[i * kD + d]);
        ++repeated_rows;
      }
    }
  }
  cuem::DataView view() const { return data.view(); }
  cuem::WeightView weights() const { return {w.data(), w.size()}; }
  cuem::DataView repeated_view() const { return {repeated.data(), repeated_rows, static_cast<std::size_t>(kD)}; }
};

class SampleWeight : public testing::TestWithParam<CovarianceType> {};

double rel(double got, double want) { return std::abs(got - want) / std::max(1.0, std::abs(want)); }

TEST_P(SampleWeight, WeightedScoreIsTheWeightedMeanOfScoreSamples) {
  const WeightedData wd(GetParam());
  const cuem::Model m = cuem_test::model_from_mixture(cuem_test::make_mixture(GetParam(), kK, kD, 3.0, 71), GetParam());
  const std::vector<double> lp = cuem_test::log_likelihoods(m, wd.view());
  double sum = 0, mass = 0;
  for (std::size_t i = 0; i < lp.size(); ++i) {
    sum += wd.w[i] * lp[i];
    mass += wd.w[i];
  }
  const double p = cuem::n_parameters(m);
  EXPECT_LT(rel(cuem::score(m, wd.view(), {}, wd.weights()), sum / mass), 1e-12);
  EXPECT_LT(rel(cuem::bic(m, wd.view(), wd.weights()), -2 * sum + p * std::log(mass)), 1e-12);
  EXPECT_LT(rel(cuem::aic(m, wd.view(), wd.weights()), -2 * sum + 2 * p), 1e-12);
  const cuem::Criteria c = cuem::criteria(m, wd.view(), {}, wd.weights());
  EXPECT_EQ(c.total_weight, mass);
  EXPECT_EQ(c.score, cuem::score(m, wd.view(), {}, wd.weights()));
  EXPECT_EQ(c.bic, cuem::bic(m, wd.view(), wd.weights()));
  EXPECT_EQ(c.aic, cuem::aic(m, wd.view(), wd.weights()));
  // The same numbers as the repeated rows give.
  EXPECT_LT(rel(c.score, cuem::score(m, wd.repeated_view())), 1e-12);
  EXPECT_LT(rel(c.bic, cuem::bic(m, wd.repeated_view())), 1e-12);
  // Without weights, criteria() is score(), bic() and aic() exactly.
  const cuem::Criteria u = cuem::criteria(m, wd.view());
  EXPECT_EQ(u.score, cuem::score(m, wd.view()));
  EXPECT_EQ(u.bic, cuem::bic(m, wd.view()));
  EXPECT_EQ(u.aic, cuem::aic(m, wd.view()));
  EXPECT_EQ(u.total_weight, static_cast<double>(wd.data.n));
}

TEST_P(SampleWeight, ZeroWeightDropsAPointWhoseDensityIsZero) {
  // A point far out has log-density -inf under a tight model; with weight 0 it is absent.
  const WeightedData wd(GetParam());
  const cuem::Model m = cuem_test::model_from_mixture(cuem_test::make_mixture(GetParam(), kK, kD, 3.0, 71), GetParam());
  std::vector<double> x(wd.data.x.begin(), wd.data.x.begin() + 10 * kD);
  for (int d = 0; d < kD; ++d) x[d] = 1e160;
  std::vector<double> w(10, 1.0);
  w[0] = 0.0;
  const cuem::DataView X(x.data(), 10, kD);
  const double got = cuem::score(m, X, {}, {w.data(), w.size()});
  EXPECT_TRUE(std::isfinite(got));
  EXPECT_EQ(got, cuem::score(m, cuem::DataView(x.data() + kD, 9, kD)));
}

cuem::FitOptions fit_options(CovarianceType type, cuem::InitMethod init) {
  cuem::FitOptions o;
  o.n_components = kK;
  o.covariance_type = type;
  o.init = init;
  o.seed = 73;
  o.tol = 1e-9;
  o.max_iter = 60;
  return o;
}

void expect_close(const std::vector<double>& got, const std::vector<double>& want, double tol, const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_LT(rel(got[i], want[i]), tol) << what << "[" << i << "]";
}

void expect_same_fit(const cuem::FitResult& a, const cuem::FitResult& b, double tol) {
  EXPECT_GT(a.n_iter, 2);  // EM moved: the comparison covers iterations, not only the start
  EXPECT_EQ(a.n_iter, b.n_iter);
  EXPECT_LT(rel(a.lower_bound, b.lower_bound), tol);
  expect_close(a.model.weights, b.model.weights, tol, "weights");
  expect_close(a.model.means, b.model.means, tol, "means");
  expect_close(a.model.covariances, b.model.covariances, tol, "covariances");
}

// The starts that depend on the data only through sums over rows (k-means and its
// seeding by cumulative weight) and the given start. 'random' draws per row and
// 'random_from_data' picks rows uniformly, so repeated rows are other draws there.
const cuem::InitMethod kWeightedInits[] = {cuem::InitMethod::kmeans, cuem::InitMethod::kmeans_plusplus};

TEST_P(SampleWeight, IntegerWeightsFitAsRepeatedRows) {
  const WeightedData wd(GetParam());
  for (const cuem::InitMethod init : kWeightedInits) {
    SCOPED_TRACE(cuem::to_string(init));
    const cuem::FitOptions o = fit_options(GetParam(), init);
    const cuem::FitResult weighted = cuem::fit(wd.view(), o, wd.weights());
    const cuem::FitResult repeated = cuem::fit(wd.repeated_view(), o);
    expect_same_fit(weighted, repeated, 1e-12);
  }
}

TEST_P(SampleWeight, IntegerWeightsFitAsRepeatedRowsFromAGivenStart) {
  const WeightedData wd(GetParam());
  cuem::FitOptions o = fit_options(GetParam(), cuem::InitMethod::random);
  const cuem::Model start =
      cuem_test::model_from_mixture(cuem_test::make_mixture(GetParam(), kK, kD, 2.0, 74), GetParam());
  o.weights_init = start.weights;
  o.means_init = start.means;
  o.precisions_init = cuem_test::precisions_of(start);  // every parameter given: no init pass
  expect_same_fit(cuem::fit(wd.view(), o, wd.weights()), cuem::fit(wd.repeated_view(), o), 1e-12);
}

TEST_P(SampleWeight, ZeroWeightsFitAsDroppedRows) {
  const WeightedData wd(GetParam(), 1);  // weights 0 and 1: the repeated data drop rows
  for (const cuem::InitMethod init : {cuem::InitMethod::kmeans, cuem::InitMethod::kmeans_plusplus,
                                      cuem::InitMethod::random_from_data}) {
    SCOPED_TRACE(cuem::to_string(init));
    const cuem::FitOptions o = fit_options(GetParam(), init);
    expect_same_fit(cuem::fit(wd.view(), o, wd.weights()), cuem::fit(wd.repeated_view(), o), 1e-12);
  }
}

TEST_P(SampleWeight, OnesAreNoWeightsBitwise) {
  const WeightedData wd(GetParam());
  const std::vector<double> ones(wd.data.n, 1.0);
  for (const cuem::InitMethod init : {cuem::InitMethod::kmeans, cuem::InitMethod::kmeans_plusplus,
                                      cuem::InitMethod::random, cuem::InitMethod::random_from_data}) {
    SCOPED_TRACE(cuem::to_string(init));
    cuem::FitOptions o = fit_options(GetParam(), init);
    o.n_init = 2;
    const cuem::FitResult a = cuem::fit(wd.view(), o, {ones.data(), ones.size()});
    const cuem::FitResult b = cuem::fit(wd.view(), o);
    EXPECT_EQ(a.model.weights, b.model.weights);
    EXPECT_EQ(a.model.means, b.model.means);
    EXPECT_EQ(a.model.covariances, b.model.covariances);
    EXPECT_EQ(a.lower_bound, b.lower_bound);
    EXPECT_EQ(a.n_iter, b.n_iter);
  }
}

TEST_P(SampleWeight, ScalingEveryWeightChangesNothing) {
  // Weights say how much each row counts relative to the others: w and 2.5 w fit the same
  // model with the same mean log-likelihood per unit weight.
  const WeightedData wd(GetParam());
  std::vector<double> scaled = wd.w;
  for (double& v : scaled) v *= 2.5;
  const cuem::FitOptions o = fit_options(GetParam(), cuem::InitMethod::kmeans);
  expect_same_fit(cuem::fit(wd.view(), o, {scaled.data(), scaled.size()}), cuem::fit(wd.view(), o, wd.weights()),
                  1e-12);
}

TEST(SampleWeightErrors, BadWeightsAreRefusedWithTheirIndex) {
  const cuem_test::Dataset ds = cuem_test::sample_mixture(
      cuem_test::make_mixture(CovarianceType::diag, 2, 2, 3.0, 81), 20, 82);
  cuem::FitOptions o;
  o.n_components = 2;
  const auto message = [&](std::vector<double> w) -> std::string {
    try {
      cuem::fit(ds.view(), o, {w.data(), w.size()});
    } catch (const cuem::InvalidArgument& e) {
      return e.what();
    } catch (const cuem::DataError& e) {
      return std::string("DataError: ") + e.what();
    }
    return "no error";
  };
  std::vector<double> ok(20, 1.0);
  auto with = [&](std::size_t i, double v) {
    std::vector<double> w = ok;
    w[i] = v;
    return w;
  };
  EXPECT_NE(message(with(3, -1.0)).find("sample_weight[3] is -1"), std::string::npos) << message(with(3, -1.0));
  EXPECT_NE(message(with(4, std::nan(""))).find("sample_weight[4]"), std::string::npos);
  EXPECT_NE(message(with(5, std::numeric_limits<double>::infinity())).find("sample_weight[5] is inf"),
            std::string::npos);
  EXPECT_NE(message(std::vector<double>(20, 0.0)).find("zero for every row"), std::string::npos);
  EXPECT_NE(message(std::vector<double>(19, 1.0)).find("19 values for 20 rows"), std::string::npos);
  std::vector<double> one(20, 0.0);
  one[7] = 2.5;
  EXPECT_NE(message(one).find("DataError: n_components = 2 is more than the 1 rows"), std::string::npos)
      << message(one);
  // score and the criteria check them too.
  const cuem::Model m = cuem_test::model_from_mixture(cuem_test::make_mixture(CovarianceType::diag, 2, 2, 3.0, 81), CovarianceType::diag);
  const std::vector<double> neg = with(0, -2.0);
  EXPECT_THROW(cuem::score(m, ds.view(), {}, {neg.data(), neg.size()}), cuem::InvalidArgument);
  EXPECT_THROW(cuem::bic(m, ds.view(), {ok.data(), 3}), cuem::InvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(AllTypes, SampleWeight, testing::ValuesIn(cuem_test::all_covariance_types()), type_name);

}  // namespace
