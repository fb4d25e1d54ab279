// The long-lived handles (include/cuem/resources.hpp): fits and evaluations on placed data
// give bitwise what the per-call functions give, several fits share one placement, and
// on a device (the emulated one in test_resources_emulated) the data go up once.
// GCC 12 inlines test_util's make_mixture here and then warns of a free of a
// non-heap pointer on a path it cannot rule out (a known false positive of the warning).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wfree-nonheap-object"
#endif
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "cuem/errors.hpp"
#include "cuem/resources.hpp"
#include "test_util.hpp"
#if defined(CUEM_EMULATED_DEVICE)
#include <cuda_runtime.h>
#endif

namespace {

using cuem::CovarianceType;

std::string type_name(const testing::TestParamInfo<CovarianceType>& info) { return cuem::to_string(info.param); }

// The device the placed-data tests run on: the emulated CUDA device in the emulated
// binary, the CPU otherwise.
cuem::Device test_device() {
#if defined(CUEM_EMULATED_DEVICE)
  return cuem::parse_device("cuda");
#else
  return cuem::parse_device("cpu");
#endif
}

void expect_same_model(const cuem::Model& a, const cuem::Model& b) {
  EXPECT_EQ(a.weights, b.weights);
  EXPECT_EQ(a.means, b.means);
  EXPECT_EQ(a.covariances, b.covariances);
  EXPECT_EQ(a.precisions_cholesky, b.precisions_cholesky);
}

class PlacedDataTest : public testing::TestWithParam<CovarianceType> {
 protected:
  void SetUp() override {
    const cuem_test::Mixture mix = cuem_test::make_mixture(GetParam(), 3, 3, 3.0, 91);
    ds_ = cuem_test::sample_mixture(mix, 2000, 92);
    o_.n_components = 3;
    o_.covariance_type = GetParam();
    o_.seed = 93;
    o_.n_init = 2;
    o_.device = test_device();
  }
  cuem_test::Dataset ds_;
  cuem::FitOptions o_;
};

TEST_P(PlacedDataTest, FitsAndEvaluationsEqualThePerCallFunctions) {
  cuem::Resources resources({o_.device, o_.precision});
  cuem::PlacedData data(resources, ds_.view());
  const cuem::FitResult placed = cuem::fit(data, o_);
  const cuem::FitResult direct = cuem::fit(ds_.view(), o_);
  expect_same_model(placed.model, direct.model);
  EXPECT_EQ(placed.lower_bound, direct.lower_bound);
  EXPECT_EQ(placed.n_iter, direct.n_iter);
  EXPECT_EQ(placed.trace.size(), direct.trace.size());
  EXPECT_EQ(placed.device, direct.device);
  EXPECT_EQ(data.description(), direct.device);

  const cuem::EvaluateOptions where{o_.device, o_.precision, 0};
  EXPECT_EQ(cuem::predict(data, placed.model), cuem::predict(placed.model, ds_.view(), where));
  EXPECT_EQ(cuem::predict_proba(data, placed.model), cuem::predict_proba(placed.model, ds_.view(), where));
  EXPECT_EQ(cuem::score_samples(data, placed.model), cuem::score_samples(placed.model, ds_.view(), where));
  const cuem::Criteria c = cuem::criteria(data, placed.model);
  const cuem::Criteria d = cuem::criteria(placed.model, ds_.view(), where);
  EXPECT_EQ(c.score, d.score);
  EXPECT_EQ(c.bic, d.bic);
  EXPECT_EQ(c.aic, d.aic);
  EXPECT_EQ(c.total_weight, 2000.0);
}

TEST_P(PlacedDataTest, ManyFitsShareOnePlacement) {
  // Model selection's pattern: fits of several sizes on one placement, each equal to its
  // own per-call fit (a previous fit's buffers and shape leave nothing behind).
  cuem::Resources resources({o_.device, o_.precision});
  cuem::PlacedData data(resources, ds_.view());
  for (int k : {4, 1, 3, 2}) {
    cuem::FitOptions o = o_;
    o.n_components = k;
    const cuem::FitResult placed = cuem::fit(data, o);
    const cuem::FitResult direct = cuem::fit(ds_.view(), o);
    SCOPED_TRACE("k = " + std::to_string(k));
    expect_same_model(placed.model, direct.model);
    EXPECT_EQ(placed.lower_bound, direct.lower_bound);
  }
}

TEST_P(PlacedDataTest, AnInterruptEndsWithItsFit) {
  cuem::Resources resources({o_.device, o_.precision});
  cuem::PlacedData data(resources, ds_.view());
  {
    cuem::FitOptions o = o_;
    int polls = 0;
    o.interrupted = [&polls] { return ++polls > 3; };
    EXPECT_THROW(cuem::fit(data, o), cuem::Interrupted);
  }
  // The callback above and what it captured are gone; the next fit must not call it.
  const cuem::FitResult after = cuem::fit(data, o_);
  expect_same_model(after.model, cuem::fit(ds_.view(), o_).model);
}

TEST(PlacedData, ChecksTheDataAndTheModel) {
  std::vector<double> x(40, 1.0);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::sin(static_cast<double>(i));
  cuem::Resources resources;
  x[9] = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THROW(cuem::PlacedData(resources, cuem::DataView(x.data(), 20, 2)), cuem::DataError);
  x[9] = 0.5;
  const std::vector<double> negative(20, -1.0);
  EXPECT_THROW(cuem::PlacedData(resources, cuem::DataView(x.data(), 20, 2), {negative.data(), 20}),
               cuem::InvalidArgument);
  cuem::PlacedData data(resources, cuem::DataView(x.data(), 20, 2));
  cuem::FitOptions o;
  o.n_components = 21;
  EXPECT_THROW(cuem::fit(data, o), cuem::DataError);  // K > N, as fit(X) says
  o.n_components = 2;
  const cuem::Model m = cuem::fit(data, o).model;
  cuem::PlacedData three(resources, cuem::DataView(x.data(), 10, 4));
  EXPECT_THROW(cuem::predict(three, m), cuem::DataError);  // 4 features for a 2-feature model
}

#if defined(CUEM_EMULATED_DEVICE)
TEST_P(PlacedDataTest, TheDataGoUpOnce) {
  const std::size_t values = ds_.x.size();
  cuem::Resources resources({o_.device, o_.precision});
  cuem::PlacedData data(resources, ds_.view());
  const std::size_t before = cuem::emu::host_to_device_bytes();
  const cuem::FitResult first = cuem::fit(data, o_);
  const std::size_t first_fit = cuem::emu::host_to_device_bytes() - before;
  ASSERT_NE(first.device.find("data resident"), std::string::npos) << first.device;
  EXPECT_GE(first_fit, values * sizeof(float));  // the upload, in the fit's precision
  // Later calls send parameters, not data.
  const std::size_t mark = cuem::emu::host_to_device_bytes();
  cuem::fit(data, o_);
  cuem::criteria(data, first.model);
  cuem::predict(data, first.model);
  EXPECT_LT(cuem::emu::host_to_device_bytes() - mark, values * sizeof(float) / 4);
  // While per-call functions place the data again each time.
  const std::size_t per_call = cuem::emu::host_to_device_bytes();
  cuem::criteria(first.model, ds_.view(), {o_.device, o_.precision, 0});
  EXPECT_GE(cuem::emu::host_to_device_bytes() - per_call, values * sizeof(float));
}
#endif

INSTANTIATE_TEST_SUITE_P(AllTypes, PlacedDataTest, testing::ValuesIn(cuem_test::all_covariance_types()),
                         type_name);

}  // namespace
