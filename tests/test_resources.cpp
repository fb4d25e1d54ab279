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
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "cuem/devices.hpp"
#include "cuem/errors.hpp"
#include "cuem/resources.hpp"
#include "test_util.hpp"
#include "engine/placed_data.hpp"
#if defined(CUEM_EMULATED_DEVICE)
#include <cuda_runtime.h>
#endif

namespace {

using cuem::CovarianceType;

std::string type_name(const testing::TestParamInfo<CovarianceType>& info) { return cuem::to_string(info.param); }

// The device the placed-data tests run on: the emulated CUDA device in the emulated
// binary, a GPU where there is one (scripts/gpu_check.sh runs this binary there), the CPU
// otherwise.
cuem::Device test_device() {
#if defined(CUEM_EMULATED_DEVICE)
  return cuem::parse_device("cuda");
#else
  std::string reason;
  return cuem::parse_device(cuem::cuda_devices(&reason).empty() ? "cpu" : "cuda");
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
  cuem::Resources resources({o_.device, o_.precision, 0, 0, {}});
  cuem::PlacedData data(resources, ds_.view());
  const cuem::FitResult placed = cuem::fit(data, o_);
  const cuem::FitResult direct = cuem::fit(ds_.view(), o_);
  expect_same_model(placed.model, direct.model);
  EXPECT_EQ(placed.lower_bound, direct.lower_bound);
  EXPECT_EQ(placed.n_iter, direct.n_iter);
  EXPECT_EQ(placed.trace.size(), direct.trace.size());
  EXPECT_EQ(placed.device, direct.device);
  EXPECT_EQ(data.description(), direct.device);

  const cuem::EvaluateOptions where{o_.device, o_.precision, 0, {}, cuem::MissingPolicy::error};
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
  cuem::Resources resources({o_.device, o_.precision, 0, 0, {}});
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
  cuem::Resources resources({o_.device, o_.precision, 0, 0, {}});
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
  cuem::Resources resources({o_.device, o_.precision, 0, 0, {}});
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
  cuem::criteria(first.model, ds_.view(), {o_.device, o_.precision, 0, {}});
  EXPECT_GE(cuem::emu::host_to_device_bytes() - per_call, values * sizeof(float));
}
#endif

// The device context (kernels/device_context.cuh): one per Resources, made at its first
// CUDA primitives; every device buffer comes from its stream-ordered pool.
class DeviceContextTest : public testing::Test {
 protected:
  void SetUp() override {
    const cuem_test::Mixture mix = cuem_test::make_mixture(CovarianceType::full, 3, 3, 3.0, 101);
    ds_ = cuem_test::sample_mixture(mix, 1500, 102);
    o_.n_components = 3;
    o_.covariance_type = CovarianceType::full;
    o_.seed = 103;
    o_.n_init = 2;
    o_.device = test_device();
    o_.precision = cuem::Precision::float64;
  }
  cuem::ResourceOptions resource_options() const { return {o_.device, o_.precision, 0, 0, {}}; }
  cuem_test::Dataset ds_;
  cuem::FitOptions o_;
};

TEST_F(DeviceContextTest, ACpuResourcesNeverTouchesCuda) {
#if defined(CUEM_EMULATED_DEVICE)
  const cuem::emu::AllocationCounts before = cuem::emu::allocation_counts();
  const std::size_t uploaded = cuem::emu::host_to_device_bytes();
#endif
  cuem::Resources resources({cuem::parse_device("cpu"), o_.precision, 0, 0, {}});
  {
    cuem::PlacedData data(resources, ds_.view());
    const cuem::FitResult r = cuem::fit(data, o_);
    EXPECT_EQ(r.device.rfind("cpu", 0), 0u) << r.device;
    cuem::criteria(data, r.model);
  }
  EXPECT_EQ(resources.impl().cuda_context, nullptr);
#if defined(CUEM_EMULATED_DEVICE)
  const cuem::emu::AllocationCounts after = cuem::emu::allocation_counts();
  EXPECT_EQ(after.device_mallocs, before.device_mallocs);
  EXPECT_EQ(after.pool_allocations, before.pool_allocations);
  EXPECT_EQ(cuem::emu::host_to_device_bytes(), uploaded);
#endif
}

#if defined(CUEM_EMULATED_DEVICE)
// An emulated-runtime setting for one test (the runtime reads it at every call).
class EnvScope {
 public:
  EnvScope(const char* name, const char* value) : name_(name) { setenv(name, value, 1); }
  ~EnvScope() { unsetenv(name_); }
  EnvScope(const EnvScope&) = delete;
  EnvScope& operator=(const EnvScope&) = delete;

 private:
  const char* name_;
};

// What the runtime and cuem print to stderr in a scope (released when a failure throws
// through it, so that the next test can capture again).
class StderrCapture {
 public:
  StderrCapture() { testing::internal::CaptureStderr(); }
  ~StderrCapture() {
    if (!taken_) (void)testing::internal::GetCapturedStderr();
  }
  StderrCapture(const StderrCapture&) = delete;
  StderrCapture& operator=(const StderrCapture&) = delete;
  std::string take() {
    taken_ = true;
    return testing::internal::GetCapturedStderr();
  }

 private:
  bool taken_ = false;
};

TEST_F(DeviceContextTest, ASecondFitIsServedByThePool) {
  const cuem::FitResult direct = cuem::fit(ds_.view(), o_);
  cuem::Resources resources(resource_options());
  cuem::PlacedData data(resources, ds_.view());
  const cuem::emu::AllocationCounts start = cuem::emu::allocation_counts();
  const cuem::FitResult first = cuem::fit(data, o_);
  const cuem::emu::AllocationCounts between = cuem::emu::allocation_counts();
  const cuem::FitResult second = cuem::fit(data, o_);
  const cuem::emu::AllocationCounts end = cuem::emu::allocation_counts();
  // Every device buffer comes from the pool, none from cudaMalloc ...
  EXPECT_EQ(end.device_mallocs, start.device_mallocs);
  EXPECT_GT(between.pool_allocations, start.pool_allocations);
  EXPECT_GT(between.pool_growths, start.pool_growths);
  // ... and the second fit's allocations (the k-means values, the work buffers of each
  // shape) are all served by blocks the first fit freed.
  EXPECT_GT(end.pool_allocations, between.pool_allocations);
  EXPECT_EQ(end.pool_growths, between.pool_growths);
  // Bitwise what the per-call path (a context of its own) gives.
  expect_same_model(first.model, direct.model);
  expect_same_model(second.model, direct.model);
  EXPECT_EQ(first.lower_bound, direct.lower_bound);
  EXPECT_EQ(second.lower_bound, direct.lower_bound);
  EXPECT_EQ(second.n_iter, direct.n_iter);
}

TEST_F(DeviceContextTest, PlacedDataOnOneResourcesShareItsContext) {
  cuem::Resources resources(resource_options());
  cuem::PlacedData b(resources, ds_.view());
  {
    cuem::PlacedData a(resources, ds_.view());
    EXPECT_EQ(resources.impl().cuda_context, nullptr);  // made at the first fit, not before
    const cuem::FitResult r = cuem::fit(a, o_);
    ASSERT_NE(resources.impl().cuda_context, nullptr);
    EXPECT_EQ(resources.impl().cuda_context.use_count(), 2);  // the Resources and a's primitives
    expect_same_model(r.model, cuem::fit(ds_.view(), o_).model);
  }
  EXPECT_EQ(resources.impl().cuda_context.use_count(), 1);
  // b's placement and work buffers fit in the blocks a gave back to the shared pool.
  const cuem::emu::AllocationCounts before = cuem::emu::allocation_counts();
  const cuem::FitResult r = cuem::fit(b, o_);
  const cuem::emu::AllocationCounts after = cuem::emu::allocation_counts();
  EXPECT_EQ(resources.impl().cuda_context.use_count(), 2);
  EXPECT_GT(after.pool_allocations, before.pool_allocations);
  EXPECT_EQ(after.pool_growths, before.pool_growths);
  expect_same_model(r.model, cuem::fit(ds_.view(), o_).model);
}

// The default memory limit (80% of what is free) counts the blocks the context's pool
// holds cached as free: data that were resident for one placement stay resident for the
// next, although cudaMemGetInfo still counts the first one's memory as used.
TEST_F(DeviceContextTest, TheDefaultLimitCountsThePoolsCacheAsFree) {
  constexpr std::size_t N = 131072, D = 8;  // 4 MiB in float32, half the device below
  std::vector<double> x(N * D);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.37 * static_cast<double>(i));
  cuem::FitOptions small;
  small.n_components = 1;
  small.device = cuem::parse_device("cpu");
  const cuem::Model model = cuem::fit(cuem::DataView(x.data(), 1000, D), small).model;
  const EnvScope memory("CUEM_EMU_MEMORY", "8388608");  // an 8 MiB device
  {
    cuem::Resources resources({o_.device, cuem::Precision::float32, 0, 0, {}});
    {
      cuem::PlacedData a(resources, cuem::DataView(x.data(), N, D));
      cuem::criteria(a, model);
      ASSERT_NE(a.description().find("data resident"), std::string::npos) << a.description();
    }
    cuem::PlacedData b(resources, cuem::DataView(x.data(), N, D));
    cuem::criteria(b, model);
    EXPECT_NE(b.description().find("data resident"), std::string::npos) << b.description();
  }
}

TEST_F(DeviceContextTest, WithoutPoolsTheBuffersComeFromCudaMalloc) {
  const cuem::FitResult direct = cuem::fit(ds_.view(), o_);
  const EnvScope no_pools("CUEM_EMU_NO_POOLS", "1");
  StderrCapture captured;
  const cuem::emu::AllocationCounts before = cuem::emu::allocation_counts();
  {
    cuem::Resources resources(resource_options());
    cuem::PlacedData data(resources, ds_.view());
    expect_same_model(cuem::fit(data, o_).model, direct.model);
    expect_same_model(cuem::fit(data, o_).model, direct.model);
  }
  const cuem::emu::AllocationCounts after = cuem::emu::allocation_counts();
  EXPECT_EQ(captured.take(), "");  // no pool call was tried
  EXPECT_GT(after.device_mallocs, before.device_mallocs);
  EXPECT_EQ(after.pool_allocations, before.pool_allocations);
}

TEST_F(DeviceContextTest, AnInterruptedFitLeavesTheContextUsable) {
  const cuem::FitResult direct = cuem::fit(ds_.view(), o_);
  std::size_t free_before = 0, total = 0;
  ASSERT_EQ(cudaMemGetInfo(&free_before, &total), cudaSuccess);
  StderrCapture captured;
  {
    cuem::Resources resources(resource_options());
    {
      cuem::PlacedData data(resources, ds_.view());
      // The polls of a fit after the first (which also learns what k-means shares).
      cuem::fit(data, o_);
      int polls_in_a_fit = 0;
      {
        cuem::FitOptions o = o_;
        o.interrupted = [&polls_in_a_fit] { return ++polls_in_a_fit < 0; };
        cuem::fit(data, o);
      }
      ASSERT_GT(polls_in_a_fit, 10);
      // Interrupted in k-means++, then in the last EM iterations (after the buffers of
      // every shape were made): the unwinding frees what each had, in stream order.
      for (int polls_before_stop : {3, polls_in_a_fit - 2}) {
        cuem::FitOptions o = o_;
        int polls = 0;
        o.interrupted = [&polls, polls_before_stop] { return ++polls > polls_before_stop; };
        EXPECT_THROW(cuem::fit(data, o), cuem::Interrupted);
        const cuem::FitResult after = cuem::fit(data, o_);
        expect_same_model(after.model, direct.model);
      }
    }
    // A new placement on the same context after the interrupts.
    cuem::PlacedData again(resources, ds_.view());
    expect_same_model(cuem::fit(again, o_).model, direct.model);
  }
  // The pool was destroyed empty and gave all its memory back, without a complaint from
  // the runtime (a double free, a free of a foreign pointer, live allocations).
  EXPECT_EQ(captured.take(), "");
  std::size_t free_after = 0;
  ASSERT_EQ(cudaMemGetInfo(&free_after, &total), cudaSuccess);
  EXPECT_EQ(free_after, free_before);
}
#endif

INSTANTIATE_TEST_SUITE_P(AllTypes, PlacedDataTest, testing::ValuesIn(cuem_test::all_covariance_types()),
                         type_name);

}  // namespace
