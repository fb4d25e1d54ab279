// Every error a user can cause is a typed cuem error with a message that helps, and the
// awkward-but-legal cases (an empty component) are handled rather than thrown.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "cuem/devices.hpp"
#include "cuem/errors.hpp"
#include "cuem/fit.hpp"
#include "cuem/version.hpp"
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
}

// K = N is legal: k-means gives every point its own cluster and EM keeps it so (the
// points are at squared distances above 0.1, so another point's density under variance
// reg_covar is below exp(-5e4) = 0). Every mean is one of the points, every covariance reg_covar * I, every
// weight 1/N, and the lower bound is log(1/N) + log N(0 | 0, reg_covar I). (Full and tied:
// test_em_invariants.cpp.)
TEST(DataErrors, AsManyComponentsAsPointsFitsEachPoint) {
  const int n = 5, d = 3;
  SCOPED_TRACE("mixture seed 90, data seed 91, fit seed 0");
  const cuem_test::Dataset ds = blobs(n, d);
  for (int p = 0; p < n; ++p)  // precondition of the argument above
    for (int q = 0; q < p; ++q) {
      double dist2 = 0;
      for (int i = 0; i < d; ++i) dist2 += (ds.row(p)[i] - ds.row(q)[i]) * (ds.row(p)[i] - ds.row(q)[i]);
      ASSERT_GT(dist2, 0.1) << "points " << p << ", " << q;
    }
  for (CovarianceType type : {CovarianceType::spherical, CovarianceType::diag}) {
    SCOPED_TRACE(cuem::to_string(type));
    const cuem::FitOptions opt = options(n, type);
    const double reg = opt.reg_covar;
    cuem::FitResult r;
    ASSERT_NO_THROW(r = cuem::fit(ds.view(), opt));
    std::vector<bool> used(n, false);
    for (int c = 0; c < n; ++c) {
      SCOPED_TRACE("component " + std::to_string(c));
      int point = -1;
      for (int p = 0; p < n && point < 0; ++p) {
        bool same = true;
        for (int i = 0; i < d; ++i) same = same && std::abs(r.model.means[c * d + i] - ds.row(p)[i]) <= 1e-12 * 8;
        if (same) point = p;
      }
      ASSERT_GE(point, 0) << "the mean is no data point";
      EXPECT_FALSE(used[point]) << "point " << point << " is the mean of two components";
      used[point] = true;
      EXPECT_NEAR(r.model.weights[c], 1.0 / n, 1e-14);
      const cuem_test::Matrix cov = cuem_test::full_covariance(r.model, c);
      for (int i = 0; i < d; ++i) EXPECT_NEAR(cov[i * d + i], reg, 1e-9 * reg) << "dim " << i;
    }
    const double want = -std::log(static_cast<double>(n)) - 0.5 * d * std::log(2.0 * cuem_test::kPi * reg);
    EXPECT_NEAR(r.lower_bound, want, 1e-10 * std::abs(want));
  }
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
  // A spherical variance averages over dimensions and stays positive: the mean of the
  // x variance of 0..19, (20^2 - 1) / 12, and the y variance 0.
  cuem::FitOptions opt = options(1, CovarianceType::spherical);
  opt.reg_covar = 0;
  cuem::FitResult r;
  ASSERT_NO_THROW(r = cuem::fit(view, opt));
  EXPECT_NEAR(r.model.means[0], 9.5, 1e-13);
  EXPECT_NEAR(r.model.means[1], 3.0, 1e-13);
  EXPECT_NEAR(r.model.covariances[0], (399.0 / 12) / 2, 1e-12);
}

// Two runs of ten points on the slanted line p + t u, u = (0.6, 0.8), with t = 0..9 and
// t = 100..109, and one component per run. Along the line's normal each covariance is
// exactly reg_covar (no spread there); along u it is the variance of t over the run,
// (10^2 - 1) / 12, plus reg_covar; the means are the runs' centres. Tied pools two equal
// scatters, so it has the same matrix. Diag and spherical on the axis-parallel line
// y = 3: x variance 8.25 + reg_covar, y variance reg_covar; spherical their mean.
TEST(NumericalErrors, PointsOnALineFitTheirSpreadAlongIt) {
  const double reg = 1e-6;
  const double var_t = 99.0 / 12;
  const double u[2] = {0.6, 0.8}, normal[2] = {-0.8, 0.6}, origin[2] = {2.0, -1.0};
  for (CovarianceType type : cuem_test::all_covariance_types()) {
    SCOPED_TRACE(cuem::to_string(type));
    const bool slanted = type == CovarianceType::full || type == CovarianceType::tied;
    const double dir[2] = {slanted ? u[0] : 1.0, slanted ? u[1] : 0.0};
    const double nrm[2] = {slanted ? normal[0] : 0.0, slanted ? normal[1] : 1.0};
    std::vector<double> x;
    for (int run = 0; run < 2; ++run)
      for (int t = 0; t < 10; ++t) {
        const double s = 100.0 * run + t;
        x.insert(x.end(), {origin[0] + s * dir[0], origin[1] + s * dir[1]});
      }
    cuem::FitOptions opt = options(2, type);
    opt.reg_covar = reg;
    cuem::FitResult r;
    ASSERT_NO_THROW(r = cuem::fit(cuem::DataView(x.data(), 20, 2), opt));
    const cuem::Model& m = r.model;
    ASSERT_TRUE(cuem_test::all_finite(m));
    const int first = m.means[0] < m.means[2] ? 0 : 1;  // the run with t = 0..9
    for (int run = 0; run < 2; ++run) {
      SCOPED_TRACE("run " + std::to_string(run));
      const int c = run == 0 ? first : 1 - first;
      const double centre = 100.0 * run + 4.5;
      EXPECT_NEAR(m.weights[c], 0.5, 1e-14);
      for (int i = 0; i < 2; ++i) EXPECT_NEAR(m.means[c * 2 + i], origin[i] + centre * dir[i], 1e-12) << "dim " << i;
      const cuem_test::Matrix cov = cuem_test::full_covariance(m, c);
      const auto quad = [&](const double* a, const double* b) {
        double s = 0;
        for (int i = 0; i < 2; ++i)
          for (int j = 0; j < 2; ++j) s += a[i] * cov[i * 2 + j] * b[j];
        return s;
      };
      if (type == CovarianceType::spherical) {
        EXPECT_NEAR(cov[0], var_t / 2 + reg, 1e-12);
        continue;
      }
      // Rounding of the points and sums is ~1e-14 against reg_covar = 1e-6.
      EXPECT_NEAR(quad(nrm, nrm), reg, 1e-12) << "along the normal";
      EXPECT_NEAR(quad(dir, dir), var_t + reg, 1e-12) << "along the line";
      EXPECT_NEAR(quad(dir, nrm), 0.0, 1e-12) << "across";
    }
  }
}

// ---- empty components ----------------------------------------------------------------

// One of three means placed far from all the data: it receives no responsibility
// (N_k = 0, guarded to 10 eps), which must be handled rather than divided by. Its weight
// is the guard's 10 eps / N, its mean stays where it was (README: an empty component
// keeps its mean), its covariance is reg_covar * I; the two live components are exactly
// the fit of two components from the same start (weights 0.4, 0.4 renormalised to 0.5,
// 0.5 give the same responsibilities). Mixture seed 95, data seed 96.
TEST(EmptyComponent, IsHandled) {
  const int d = 2;
  const std::size_t n = 500;
  for (CovarianceType type : cuem_test::all_covariance_types()) {
    SCOPED_TRACE(cuem::to_string(type));
    cuem_test::Mixture mix = cuem_test::make_mixture(type, 2, d, 8.0, 95);
    const cuem_test::Dataset ds = cuem_test::sample_mixture(mix, n, 96);
    const cuem::Model two = cuem_test::model_from_mixture(mix, type);

    cuem_test::Mixture mix3 = mix;
    mix3.k = 3;
    mix3.weights = {0.4, 0.4, 0.2};
    mix3.means.insert(mix3.means.end(), {1e3, 1e3});
    const cuem_test::Matrix cov2 = type == CovarianceType::tied ? mix.covariance(0) : cuem_test::identity(d);
    mix3.covariances.insert(mix3.covariances.end(), cov2.begin(), cov2.end());
    const cuem::Model three = cuem_test::model_from_mixture(mix3, type);

    cuem::FitOptions opt = options(3, type);
    opt.tol = 0;
    opt.max_iter = 20;
    opt.weights_init = three.weights;
    opt.means_init = three.means;
    opt.precisions_init = cuem_test::precisions_of(three);
    cuem::FitResult r;
    ASSERT_NO_THROW(r = cuem::fit(ds.view(), opt));
    EXPECT_TRUE(cuem_test::all_finite(r.model));
    EXPECT_TRUE(std::isfinite(r.lower_bound));
    EXPECT_NO_THROW(cuem::validate_model(r.model));
    const std::vector<double> proba = cuem::predict_proba(r.model, ds.view());
    EXPECT_TRUE(cuem_test::all_finite(proba));
    EXPECT_TRUE(cuem_test::all_finite(cuem::score_samples(r.model, ds.view())));

    const double eps10 = 10 * std::numeric_limits<double>::epsilon();
    EXPECT_NEAR(r.model.weights[2], eps10 / n, 1e-6 * eps10 / n);
    EXPECT_EQ(r.model.means[4], 1e3);
    EXPECT_EQ(r.model.means[5], 1e3);
    double max_proba = 0;
    for (std::size_t p = 0; p < n; ++p) max_proba = std::max(max_proba, proba[p * 3 + 2]);
    EXPECT_EQ(max_proba, 0.0) << "the empty component took a point";
    if (type != CovarianceType::tied) {
      const cuem_test::Matrix cov = cuem_test::full_covariance(r.model, 2);
      for (int i = 0; i < d; ++i)
        for (int j = 0; j < d; ++j)
          EXPECT_NEAR(cov[i * d + j], i == j ? opt.reg_covar : 0.0, 1e-9 * opt.reg_covar) << i << ", " << j;
    }

    cuem::FitOptions opt2 = opt;
    opt2.n_components = 2;
    opt2.weights_init = {0.5, 0.5};
    opt2.means_init = two.means;
    opt2.precisions_init = cuem_test::precisions_of(two);
    const cuem::FitResult r2 = cuem::fit(ds.view(), opt2);
    ASSERT_GT(cuem_test::max_rel_diff(r2.model.means, two.means), 1e-4) << "the fit did not move: vacuous";
    for (int c = 0; c < 2; ++c) {
      SCOPED_TRACE("live component " + std::to_string(c));
      EXPECT_NEAR(r.model.weights[c], r2.model.weights[c], 1e-12);
      for (int i = 0; i < d; ++i)
        EXPECT_NEAR(r.model.means[c * d + i], r2.model.means[c * d + i],
                    1e-10 * std::max(1.0, std::abs(r2.model.means[c * d + i])));
      const cuem_test::Matrix got = cuem_test::full_covariance(r.model, c);
      const cuem_test::Matrix want = cuem_test::full_covariance(r2.model, c);
      EXPECT_LT(cuem_test::max_rel_diff(got, want, cuem_test::max_abs(want)), 1e-10);
    }
    EXPECT_NEAR(r.lower_bound, r2.lower_bound, 1e-10 * std::abs(r2.lower_bound));
  }
}

// ---- devices ---------------------------------------------------------------------------

// Asking for 'cuda' where it cannot run is a DeviceError whose message says why; where a
// device exists the fit runs there and agrees with the CPU's. Which case applies is read
// from the build (built_with_cuda) and the public device list, not from the fit's outcome;
// the case that cannot happen on this machine skips with the reason.
TEST(DeviceErrors, CudaWithoutAUsableDeviceIsAnErrorThatSaysWhy) {
  std::string reason;
  const bool have_device = !cuem::cuda_devices(&reason).empty();
  if (have_device) GTEST_SKIP() << "a CUDA device is present: the error case cannot happen here";
  const cuem_test::Dataset ds = blobs();
  cuem::FitOptions opt = options(2);
  opt.device.kind = cuem::DeviceKind::cuda;
  const std::string msg = message_of<cuem::DeviceError>([&] { cuem::fit(ds.view(), opt); });
  if (!cuem::built_with_cuda()) {
    EXPECT_NE(msg.find("built without CUDA"), std::string::npos) << msg;
  } else {
    EXPECT_NE(msg.find("no CUDA device is usable"), std::string::npos) << msg;
    EXPECT_NE(msg.find(reason), std::string::npos) << "the device query's reason '" << reason << "' is missing: " << msg;
  }
  EXPECT_NE(msg.find("'cpu'"), std::string::npos) << "no remedy named: " << msg;
  // Any ordinal: the same error, not another type.
  opt.device.index = 1000;
  EXPECT_EQ(message_of<cuem::DeviceError>([&] { cuem::fit(ds.view(), opt); }).empty(), false);
}

// Well-separated blobs and a full start, so both fits follow the same path to the same
// optimum; the device's float32 E-step then differs from the float64 CPU fit by float32
// rounding (relative 6e-8 a value, summed in float64), so means, weights, covariances
// and the lower bound are compared to 1e-5 relative, ~100 float32 ulps: far below any
// wrong formula.
TEST(DeviceErrors, CudaWithADeviceMatchesTheCpu) {
  std::string reason;
  const std::vector<cuem::CudaDevice> devices = cuem::cuda_devices(&reason);
  if (devices.empty()) GTEST_SKIP() << "no CUDA device: " << reason;
  SCOPED_TRACE("mixture seed 90, data seed 91");
  const cuem_test::Dataset ds = blobs(4000);
  const cuem_test::Mixture mix = cuem_test::make_mixture(CovarianceType::full, 2, 3, 8.0, 90);
  cuem::Model start = cuem_test::model_from_mixture(mix, CovarianceType::full);
  for (double& v : start.means) v += 0.5;
  cuem::FitOptions opt = options(2);
  opt.tol = 0;
  opt.max_iter = 30;
  opt.weights_init = start.weights;
  opt.means_init = start.means;
  opt.precisions_init = cuem_test::precisions_of(start);
  const cuem::FitResult cpu = cuem::fit(ds.view(), opt);
  opt.device.kind = cuem::DeviceKind::cuda;
  opt.precision = cuem::Precision::float32;
  cuem::FitResult gpu;
  ASSERT_NO_THROW(gpu = cuem::fit(ds.view(), opt));
  EXPECT_NE(gpu.device.find("cuda"), std::string::npos) << gpu.device;
  ASSERT_EQ(gpu.n_iter, cpu.n_iter);
  EXPECT_LT(cuem_test::max_rel_diff(gpu.model.weights, cpu.model.weights), 1e-5);
  EXPECT_LT(cuem_test::max_rel_diff(gpu.model.means, cpu.model.means), 1e-5);
  EXPECT_LT(cuem_test::max_rel_diff(gpu.model.covariances, cpu.model.covariances,
                                    cuem_test::max_abs(cpu.model.covariances)),
            1e-5);
  EXPECT_NEAR(gpu.lower_bound, cpu.lower_bound, 1e-5 * std::abs(cpu.lower_bound));
  // An ordinal past the last device is an error that says how many there are.
  opt.device.index = static_cast<int>(devices.size());
  const std::string msg = message_of<cuem::DeviceError>([&] { cuem::fit(ds.view(), opt); });
  EXPECT_NE(msg.find("does not exist"), std::string::npos) << msg;
  EXPECT_NE(msg.find(std::to_string(devices.size()) + " CUDA device"), std::string::npos) << msg;
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
