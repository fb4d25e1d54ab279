// The CUDA out-of-core and incremental paths (docs/ONLINE.md, "On a CUDA device"): the data
// are placed once, resident or streamed through the pinned staging buffers within the
// device memory limit, and every block or chunk is an E-step over a range of those rows.
// Checked against the CPU float64 path: the E-step over ranges against the CPU's over the
// same rows, and out-of-core and incremental fits from the same start against the CPU's
// (float64 on the device to 1e-12, float32 to float32's tolerances), with and without
// weights, on a device memory limit that forces many streamed pieces. On the emulated
// device also: the device memory the fit holds stays under the limit, and the number of
// device allocations does not grow with the number of chunks. Without a device (a CPU
// build) every test skips with the reason.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wfree-nonheap-object"  // as in test_squarem (make_mixture inlined)
#endif
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "core/m_step.hpp"
#include "core/prepared_params.hpp"
#include "cuem/errors.hpp"
#include "cuem/fit.hpp"
#include "engine/primitives.hpp"
#include "test_util.hpp"
#if defined(CUEM_EMULATED_DEVICE)
#include <cuda_runtime.h>
#endif

namespace {

using cuem::CovarianceType;
using cuem::Precision;

// Below the data's resident need (data, one resident chunk's workspace, the fixed 1 MiB
// reserve), above one streamed chunk's: every pass streams the rows in pieces.
constexpr std::size_t kLimit = (std::size_t{5} << 20) / 2;
constexpr std::size_t kRows = 60000, kCols = 3;

struct Data {
  cuem_test::Dataset ds;
  std::vector<float> x32;
  std::vector<double> w;
  cuem::DataView view(bool f32) const {
    return f32 ? cuem::DataView(x32.data(), ds.n, kCols) : ds.view();
  }
};

const Data& data() {
  static const Data d = [] {
    Data out;
    const cuem_test::Mixture mix = cuem_test::make_mixture(CovarianceType::full, 3, kCols, 2.5, 301);
    out.ds = cuem_test::sample_mixture(mix, kRows, 302);
    for (double& v : out.ds.x) v += 100.0;  // offset data: the device's origin matters
    out.x32.assign(out.ds.x.begin(), out.ds.x.end());
    out.w.resize(kRows);
    for (std::size_t i = 0; i < kRows; ++i) out.w[i] = 0.25 * static_cast<double>(i % 7);  // zeros included
    return out;
  }();
  return d;
}

cuem::Model start_model() {
  const cuem_test::Mixture mix = cuem_test::make_mixture(CovarianceType::full, 3, kCols, 2.5, 301);
  cuem::Model m = cuem_test::model_from_mixture(mix, CovarianceType::full);
  for (double& v : m.means) v += 100.3;  // near, not at, the generating means
  return m;
}

cuem::FitOptions fit_options(const char* device, Precision p) {
  const cuem::Model m = start_model();
  cuem::FitOptions o;
  o.n_components = 3;
  o.covariance_type = CovarianceType::full;
  o.device = cuem::parse_device(device);
  o.precision = p;
  o.device_memory_limit = kLimit;
  o.weights_init = m.weights;
  o.means_init = m.means;
  o.precisions_init = cuem_test::precisions_of(m);
  o.tol = 0.0;  // a fixed number of iterations: both devices take the same steps
  o.max_iter = 6;
  return o;
}

#if defined(CUEM_EMULATED_DEVICE)
std::size_t device_bytes_used() {
  std::size_t free_b = 0, total_b = 0;
  EXPECT_EQ(cudaMemGetInfo(&free_b, &total_b), cudaSuccess);
  return total_b - free_b;
}
#endif

// The E-step over uneven row ranges of data placed once (streamed: the ranges cut across
// the device's pieces) against the CPU's E-step over the same rows as data of their own,
// and their merge against the whole E-step: compared through the M-step (the shifts
// differ) and the log-likelihood, in float64.
TEST(DeviceRows, EStepOverRangesIsTheCpuEStepOverThoseRows) {
  REQUIRE_DEVICE();
  const Data& d = data();
  const cuem::PreparedParams params = cuem::prepare(start_model());
  for (const bool weighted : {false, true}) {
    const cuem::WeightView w = weighted ? cuem::WeightView(d.w.data(), kRows) : cuem::WeightView{};
    const auto gpu = cuem::make_primitives(d.ds.view(), w, {cuem::parse_device("cuda"), Precision::float64, kLimit, {}});
    ASSERT_TRUE(gpu->estep_over_rows());
    const std::vector<std::size_t> starts = {0, 1, 9000, 9001, 25000, 41000, 59999, kRows};
    cuem::SufficientStats merged;
    for (std::size_t r = 0; r + 1 < starts.size(); ++r) {
      const std::size_t b = starts[r], e = starts[r + 1];
      const cuem::SufficientStats part = gpu->gaussian_estep_rows(params, b, e);
      cuem::DataView rows = d.ds.view();
      rows.data += b * kCols;
      rows.n_rows = e - b;
      const cuem::WeightView rw = weighted ? cuem::WeightView(d.w.data() + b, e - b) : cuem::WeightView{};
      const auto cpu = cuem::make_primitives(rows, rw, {cuem::parse_device("cpu"), Precision::float64, 0, {}});
      const cuem::SufficientStats ref = cpu->gaussian_estep(params);
      EXPECT_EQ(part.n_points, e - b);
      EXPECT_NEAR(part.weight, ref.weight, 1e-12 * ref.weight) << b;
      EXPECT_NEAR(part.log_likelihood, ref.log_likelihood, 1e-12 * std::abs(ref.log_likelihood) + 1e-12) << b;
      for (int k = 0; k < 3; ++k) EXPECT_NEAR(part.nk[k], ref.nk[k], 1e-12 * ref.weight + 1e-300) << b << " " << k;
      if (e - b > 1000) {  // enough rows for an M-step of every component
        const cuem::Model a = cuem::m_step(part, 1e-6), c = cuem::m_step(ref, 1e-6);
        EXPECT_LT(cuem_test::max_rel_diff(a.means, c.means), 1e-12) << b;
        EXPECT_LT(cuem_test::max_rel_diff(a.covariances, c.covariances), 1e-11) << b;
      }
      if (r == 0) merged = part;
      else merged.merge(part);
    }
    EXPECT_NE(gpu->description().find("streamed"), std::string::npos) << gpu->description();
    const cuem::SufficientStats whole = gpu->gaussian_estep(params);
    EXPECT_NEAR(merged.log_likelihood, whole.log_likelihood, 1e-12 * std::abs(whole.log_likelihood));
    EXPECT_NEAR(merged.weight, whole.weight, 1e-12 * whole.weight);
    const cuem::Model a = cuem::m_step(merged, 1e-6), c = cuem::m_step(whole, 1e-6);
    EXPECT_LT(cuem_test::max_rel_diff(a.means, c.means), 1e-12);
    EXPECT_LT(cuem_test::max_rel_diff(a.covariances, c.covariances), 1e-11);
    EXPECT_THROW(gpu->gaussian_estep_rows(params, 10, kRows + 1), cuem::InvalidArgument);
  }
}

struct Case {
  bool f32_data;
  Precision precision;
  bool weighted;
  double bound_tol, param_tol;
};

class DeviceOutOfCore : public testing::TestWithParam<Case> {};

// Out of core in chunks of 7000 rows (9 chunks, none on a device piece's boundary) from
// the same start: the device's fit is the CPU's.
TEST_P(DeviceOutOfCore, ChunkedFitIsTheCpuChunkedFit) {
  REQUIRE_DEVICE();
  const Case c = GetParam();
  const Data& d = data();
  const cuem::WeightView w = c.weighted ? cuem::WeightView(d.w.data(), kRows) : cuem::WeightView{};
  cuem::FitOptions cpu = fit_options("cpu", Precision::float64), gpu = fit_options("cuda", c.precision);
  cpu.chunk_rows = gpu.chunk_rows = 7000;
#if defined(CUEM_EMULATED_DEVICE)
  const std::size_t baseline = device_bytes_used();
  std::size_t peak = 0;
  gpu.release_rows = [&](std::size_t) { peak = std::max(peak, device_bytes_used() - baseline); };
#endif
  const cuem::FitResult a = cuem::fit(d.view(c.f32_data), cpu, w);
  const cuem::FitResult b = cuem::fit(d.view(c.f32_data), gpu, w);
  EXPECT_NE(b.device.find("streamed"), std::string::npos) << b.device;
  EXPECT_NE(b.device.find("out of core"), std::string::npos) << b.device;
  ASSERT_EQ(a.n_iter, b.n_iter);
  std::printf("bound %.17g (cpu) %.17g (cuda): difference %.3g; means %.3g relative\n", a.lower_bound, b.lower_bound,
              b.lower_bound - a.lower_bound, cuem_test::max_rel_diff(a.model.means, b.model.means));
  EXPECT_NEAR(a.lower_bound, b.lower_bound, c.bound_tol);
  EXPECT_LT(cuem_test::max_rel_diff(a.model.means, b.model.means), c.param_tol);
  EXPECT_LT(cuem_test::max_rel_diff(a.model.covariances, b.model.covariances), 10 * c.param_tol);
  EXPECT_LT(cuem_test::max_rel_diff(a.model.weights, b.model.weights), 10 * c.param_tol);
#if defined(CUEM_EMULATED_DEVICE)
  // The fit's device memory: the primitives' buffers within the limit (the rows never
  // all on the device), whatever the file's size.
  std::printf("device memory held: at most %zu bytes (limit %zu, data %zu)\n", peak, kLimit,
              kRows * kCols * (c.precision == Precision::float32 ? 4 : 8));
  EXPECT_GT(peak, 0u);
  EXPECT_LE(peak, kLimit);
#endif
}

INSTANTIATE_TEST_SUITE_P(
    Files, DeviceOutOfCore,
    testing::Values(Case{false, Precision::float64, false, 1e-12, 1e-10}, Case{false, Precision::float64, true, 1e-12, 1e-10},
                    Case{true, Precision::float64, false, 1e-12, 1e-10}, Case{true, Precision::float32, false, 2e-5, 1e-5},
                    Case{true, Precision::float32, true, 2e-5, 1e-5}),
    [](const testing::TestParamInfo<Case>& i) {
      return std::string(i.param.f32_data ? "f32file_" : "f64file_") +
             (i.param.precision == Precision::float32 ? "f32device" : "f64device") + (i.param.weighted ? "_weighted" : "");
    });

// Incremental EM with 6 blocks of the data placed once: the device's passes are the CPU's.
TEST(DeviceIncremental, BlocksOfDataPlacedOnceFollowTheCpu) {
  REQUIRE_DEVICE();
  const Data& d = data();
  for (const bool weighted : {false, true}) {
    const cuem::WeightView w = weighted ? cuem::WeightView(d.w.data(), kRows) : cuem::WeightView{};
    cuem::FitOptions cpu = fit_options("cpu", Precision::float64), gpu = fit_options("cuda", Precision::float64);
    cpu.incremental_blocks = gpu.incremental_blocks = 6;
    cpu.max_iter = gpu.max_iter = 3;
    const cuem::FitResult a = cuem::fit(d.ds.view(), cpu, w), b = cuem::fit(d.ds.view(), gpu, w);
    ASSERT_EQ(a.trace.size(), b.trace.size());
    ASSERT_EQ(a.trace.size(), 1u + 2u * 6u);
    for (std::size_t i = 0; i < a.trace.size(); ++i)
      EXPECT_NEAR(a.trace[i].mean_log_likelihood, b.trace[i].mean_log_likelihood, 1e-10) << i;
    EXPECT_EQ(b.n_decreases, 0);
    EXPECT_LT(cuem_test::max_rel_diff(a.model.means, b.model.means), 1e-9);
    EXPECT_NE(b.device.find("streamed"), std::string::npos) << b.device;
  }
}

#if defined(CUEM_EMULATED_DEVICE)
// Placed once: the number of device allocations of an out-of-core or incremental fit does
// not depend on the number of chunks or blocks (primitives per chunk or block allocated
// buffers for each).
TEST(DeviceOutOfCoreAllocations, DoNotGrowWithTheChunksOrBlocks) {
  REQUIRE_DEVICE();
  const Data& d = data();
  const auto allocations = [&](std::size_t chunk_rows, int blocks) {
    cuem::FitOptions o = fit_options("cuda", Precision::float64);
    o.max_iter = 2;
    o.chunk_rows = chunk_rows;
    o.incremental_blocks = blocks;
    const cuem::emu::AllocationCounts before = cuem::emu::allocation_counts();
    cuem::fit(d.ds.view(), o);
    const cuem::emu::AllocationCounts after = cuem::emu::allocation_counts();
    return (after.device_mallocs - before.device_mallocs) + (after.pool_allocations - before.pool_allocations);
  };
  const unsigned long long few = allocations(30000, 1), many = allocations(3000, 1);
  std::printf("device allocations: %llu with 2 chunks, %llu with 20\n", few, many);
  EXPECT_GT(few, 0u);
  EXPECT_EQ(few, many);
  const unsigned long long two = allocations(0, 2), twenty = allocations(0, 20);
  std::printf("device allocations: %llu with 2 blocks, %llu with 20\n", two, twenty);
  EXPECT_GT(two, 0u);
  EXPECT_EQ(two, twenty);
}
#endif

}  // namespace
