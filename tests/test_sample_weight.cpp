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
