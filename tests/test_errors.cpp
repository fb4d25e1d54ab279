// Every error a user can cause is a typed cuem error with a message that helps, and the
// awkward-but-legal cases (an empty component) are handled rather than thrown.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "cuem/errors.hpp"
#include "cuem/fit.hpp"
#include "test_util.hpp"

namespace {

using cuem::CovarianceType;

cuem_test::Dataset blobs(std::size_t n = 200, int d = 3, std::uint64_t seed = 90) {
  const cuem_test::Mixture mix = cuem_test::make_mixture(CovarianceType::full, 2, d, 8.0, seed);
  return cuem_test::sample_mixture(mix, n, seed + 1);
}

cuem::FitOptions options(int k, CovarianceType type = CovarianceType::full) {
  cuem::FitOptions opt;
  opt.n_components = k;
  opt.covariance_type = type;
  return opt;
}

// Runs `f`, expecting an exception of type E, and returns its message ("" if none came).
template <class E, class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
    return "";
  }
  ADD_FAILURE() << "no exception thrown";
  return "";
}

// ---- data errors -----------------------------------------------------------------------

TEST(DataErrors, MoreComponentsThanPoints) {
  const cuem_test::Dataset ds = blobs(5);
  EXPECT_THROW(cuem::fit(ds.view(), options(6)), cuem::DataError);
  EXPECT_NO_THROW(cuem::fit(ds.view(), options(5, CovarianceType::spherical)));  // K = N is legal
}

TEST(DataErrors, EmptyData) {
  const cuem_test::Dataset ds = blobs();
  EXPECT_THROW(cuem::fit(cuem::DataView(ds.x.data(), 0, 3), options(1)), cuem::DataError);
  EXPECT_THROW(cuem::fit(cuem::DataView(ds.x.data(), 10, 0), options(1)), cuem::DataError);
  EXPECT_THROW(cuem::fit(cuem::DataView(static_cast<const double*>(nullptr), 0, 0), options(1)), cuem::DataError);
}

struct BadValueCase {
  double value;
  std::size_t row;
  std::size_t col;
  const char* name;
};

class NonFinite : public testing::TestWithParam<BadValueCase> {};

TEST_P(NonFinite, NamesFirstBadRowAndColumn) {
  const BadValueCase& c = GetParam();
  cuem_test::Dataset ds = blobs(20, 3);
  ds.x[c.row * 3 + c.col] = c.value;
  ds.x[15 * 3 + 0] = std::numeric_limits<double>::quiet_NaN();  // a later one, not to be named
  const std::string msg = message_of<cuem::DataError>([&] { cuem::fit(ds.view(), options(2)); });
  // 0-based indices, in the form "row R, column C".
  EXPECT_TRUE(cuem_test::mentions_number(msg, "row ", static_cast<long>(c.row))) << msg;
  EXPECT_TRUE(cuem_test::mentions_number(msg, "column ", static_cast<long>(c.col))) << msg;
  EXPECT_FALSE(cuem_test::mentions_number(msg, "row ", 15)) << msg;
}

INSTANTIATE_TEST_SUITE_P(
    Values, NonFinite,
    testing::Values(BadValueCase{std::numeric_limits<double>::quiet_NaN(), 7, 2, "nan"},
                    BadValueCase{std::numeric_limits<double>::infinity(), 3, 1, "inf"},
                    BadValueCase{-std::numeric_limits<double>::infinity(), 0, 0, "neg_inf"}),
    [](const testing::TestParamInfo<BadValueCase>& info) { return std::string(info.param.name); });

// ---- option errors ---------------------------------------------------------------------

TEST(OptionErrors, ScalarsOutOfRange) {
  const cuem_test::Dataset ds = blobs();
  const auto expect_invalid = [&](const cuem::FitOptions& opt, const char* what) {
    EXPECT_THROW(cuem::fit(ds.view(), opt), cuem::InvalidArgument) << what;
  };
  cuem::FitOptions opt = options(2);
  opt.n_components = 0;
  expect_invalid(opt, "n_components = 0");
  opt.n_components = -1;
  expect_invalid(opt, "n_components = -1");
  opt = options(2);
  opt.tol = -1e-3;
  expect_invalid(opt, "tol < 0");
  opt = options(2);
  opt.reg_covar = -1e-6;
  expect_invalid(opt, "reg_covar < 0");
  opt = options(2);
  opt.max_iter = 0;
  expect_invalid(opt, "max_iter = 0");
  opt = options(2);
  opt.n_init = 0;
  expect_invalid(opt, "n_init = 0");
  // The boundaries themselves are legal.
  opt = options(2);
  opt.tol = 0;
  opt.max_iter = 1;
  opt.n_init = 1;
  EXPECT_NO_THROW(cuem::fit(ds.view(), opt));
}

TEST(OptionErrors, WeightsInit) {
  const cuem_test::Dataset ds = blobs();
  cuem::FitOptions opt = options(2);
  opt.weights_init = {1.0};
  EXPECT_THROW(cuem::fit(ds.view(), opt), cuem::InvalidArgument) << "wrong size";
  opt.weights_init = {0.5, 0.6};
  EXPECT_THROW(cuem::fit(ds.view(), opt), cuem::InvalidArgument) << "sum 1.1";
  opt.weights_init = {1.5, -0.5};
  EXPECT_THROW(cuem::fit(ds.view(), opt), cuem::InvalidArgument) << "negative";
  opt.weights_init = {0.3, 0.7};
  EXPECT_NO_THROW(cuem::fit(ds.view(), opt));
}

TEST(OptionErrors, MeansInit) {
  const cuem_test::Dataset ds = blobs();
  cuem::FitOptions opt = options(2);
  opt.means_init = {0, 0, 0, 1, 1};  // K x D is 6
  EXPECT_THROW(cuem::fit(ds.view(), opt), cuem::InvalidArgument);
  opt.means_init = {0, 0, 0, 1, 1, std::numeric_limits<double>::quiet_NaN()};
  EXPECT_THROW(cuem::fit(ds.view(), opt), cuem::InvalidArgument) << "non-finite";
}

class PrecisionsInit : public testing::TestWithParam<CovarianceType> {};

TEST_P(PrecisionsInit, RejectsWrongSizeAndNotPositiveDefinite) {
  const CovarianceType type = GetParam();
  const int k = 2, d = 3;
  const cuem_test::Dataset ds = blobs(200, d);
  cuem::FitOptions opt = options(k, type);

  // A valid precision of the type's shape, then one that is not positive definite.
  std::vector<double> good, bad;
  const std::vector<double> eye = cuem_test::identity(d);
  std::vector<double> indefinite = eye;
  indefinite[0 * d + 1] = indefinite[1 * d + 0] = 2.0;  // [[1, 2], [2, 1]] block: eigenvalue -1
  switch (type) {
    case CovarianceType::full:
      good.insert(good.end(), eye.begin(), eye.end());
      good.insert(good.end(), eye.begin(), eye.end());
      bad = eye;
      bad.insert(bad.end(), indefinite.begin(), indefinite.end());
      break;
    case CovarianceType::tied:
      good = eye;
      bad = indefinite;
      break;
    case CovarianceType::diag:
      good.assign(k * d, 1.0);
      bad = good;
      bad[4] = -1.0;
      break;
    case CovarianceType::spherical:
      good = {1.0, 1.0};
      bad = {1.0, 0.0};
      break;
  }
  opt.precisions_init = good;
  EXPECT_NO_THROW(cuem::fit(ds.view(), opt));
  opt.precisions_init = bad;
  EXPECT_THROW(cuem::fit(ds.view(), opt), cuem::InvalidArgument) << "not positive definite";
  opt.precisions_init = good;
  opt.precisions_init.pop_back();
  EXPECT_THROW(cuem::fit(ds.view(), opt), cuem::InvalidArgument) << "wrong size";
}

INSTANTIATE_TEST_SUITE_P(AllTypes, PrecisionsInit, testing::ValuesIn(cuem_test::all_covariance_types()),
                         [](const testing::TestParamInfo<CovarianceType>& info) {
                           return std::string(cuem::to_string(info.param));
                         });

// ---- numerical errors ------------------------------------------------------------------

// Two groups of identical points: with reg_covar = 0 each component's covariance is
// exactly zero, which no implementation can factor.
TEST(NumericalErrors, SingularCovarianceNamesComponentAndRemedy) {
  std::vector<double> x;
  for (int i = 0; i < 10; ++i) x.insert(x.end(), {0.0, 0.0});
  for (int i = 0; i < 10; ++i) x.insert(x.end(), {5.0, 5.0});
  const cuem::DataView view(x.data(), 20, 2);
  for (CovarianceType type : cuem_test::all_covariance_types()) {
    SCOPED_TRACE(cuem::to_string(type));
    cuem::FitOptions opt = options(2, type);
    opt.reg_covar = 0;
    const std::string msg = message_of<cuem::NumericalError>([&] { cuem::fit(view, opt); });
    EXPECT_NE(msg.find("reg_covar"), std::string::npos) << msg;
    if (type != CovarianceType::tied) {
      EXPECT_NE(msg.find("component"), std::string::npos) << msg;
    }
    // The remedy works: the default reg_covar makes the same fit legal.
    opt.reg_covar = 1e-6;
    EXPECT_NO_THROW(cuem::fit(view, opt));
  }
}

// All points on the line y = 3: the second variance is exactly zero.
TEST(NumericalErrors, PointsOnALine) {
  std::vector<double> x;
  for (int i = 0; i < 20; ++i) x.insert(x.end(), {static_cast<double>(i), 3.0});
  const cuem::DataView view(x.data(), 20, 2);
  for (CovarianceType type : {CovarianceType::full, CovarianceType::tied, CovarianceType::diag}) {
    SCOPED_TRACE(cuem::to_string(type));
    cuem::FitOptions opt = options(1, type);
    opt.reg_covar = 0;
    const std::string msg = message_of<cuem::NumericalError>([&] { cuem::fit(view, opt); });
    EXPECT_NE(msg.find("reg_covar"), std::string::npos) << msg;
  }
  // A spherical variance averages over dimensions and stays positive.
  cuem::FitOptions opt = options(1, CovarianceType::spherical);
  opt.reg_covar = 0;
  EXPECT_NO_THROW(cuem::fit(view, opt));
}

// ---- empty components ----------------------------------------------------------------

// One of three means placed far from all the data: it receives no responsibility
// (N_k = 10 eps), which must be handled rather than divided by.
TEST(EmptyComponent, IsHandled) {
  for (CovarianceType type : cuem_test::all_covariance_types()) {
    SCOPED_TRACE(cuem::to_string(type));
    const int d = 2;
    cuem_test::Mixture mix = cuem_test::make_mixture(CovarianceType::full, 2, d, 8.0, 95);
    const cuem_test::Dataset ds = cuem_test::sample_mixture(mix, 500, 96);
    cuem::FitOptions opt = options(3, type);
    opt.means_init = {mix.means[0], mix.means[1], mix.means[2], mix.means[3], 1e3, 1e3};
    opt.weights_init = {0.4, 0.4, 0.2};
    cuem::FitResult r;
    ASSERT_NO_THROW(r = cuem::fit(ds.view(), opt));
    EXPECT_TRUE(cuem_test::all_finite(r.model));
    EXPECT_TRUE(std::isfinite(r.lower_bound));
    EXPECT_NO_THROW(cuem::validate_model(r.model));
    const std::vector<double> proba = cuem::predict_proba(r.model, ds.view());
    EXPECT_TRUE(cuem_test::all_finite(proba));
    EXPECT_TRUE(cuem_test::all_finite(cuem::score_samples(r.model, ds.view())));
  }
}

// ---- devices ---------------------------------------------------------------------------

// Where CUDA is not built in or no GPU is present, asking for it is a DeviceError; where
// one is, the fit succeeds. Either way, never a crash or another error type.
TEST(DeviceErrors, CudaIsAnErrorOrWorks) {
  const cuem_test::Dataset ds = blobs();
  cuem::FitOptions opt = options(2);
  opt.device.kind = cuem::DeviceKind::cuda;
  try {
    const cuem::FitResult r = cuem::fit(ds.view(), opt);
    EXPECT_TRUE(cuem_test::all_finite(r.model));
    EXPECT_TRUE(std::isfinite(r.lower_bound));
  } catch (const cuem::DeviceError& e) {
    EXPECT_GT(std::string(e.what()).size(), 0u);
  }
  // A device ordinal that cannot exist is always an error.
  opt.device.index = 1000;
  EXPECT_THROW(cuem::fit(ds.view(), opt), cuem::DeviceError);
}

}  // namespace

namespace {

// The interrupt hook stops a fit within one chunk of points and surfaces as Interrupted;
// a hook that never fires changes nothing.
TEST(Interrupt, StopsTheFitPromptly) {
  std::vector<double> X(20000 * 2);
  for (std::size_t i = 0; i < X.size(); ++i) X[i] = std::sin(0.37 * static_cast<double>(i)) + (i % 7);
  cuem::FitOptions o;
  o.n_components = 3;
  o.max_iter = 50;
  o.tol = 0;
  int polls = 0;
  o.interrupted = [&polls] { return ++polls > 25; };
  EXPECT_THROW(cuem::fit(cuem::DataView(X.data(), 20000, 2), o), cuem::Interrupted);
  EXPECT_EQ(polls, 26) << "the fit must stop at the first poll that says so";

  cuem::FitOptions plain = o;
  plain.interrupted = [] { return false; };
  o.interrupted = nullptr;
  const cuem::FitResult a = cuem::fit(cuem::DataView(X.data(), 20000, 2), plain);
  const cuem::FitResult b = cuem::fit(cuem::DataView(X.data(), 20000, 2), o);
  EXPECT_EQ(a.model.means, b.model.means);
  EXPECT_EQ(a.n_iter, b.n_iter);
}

}  // namespace
