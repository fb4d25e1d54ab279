// The CUDA backend against the float64 CPU reference. Every test here runs on any
// machine: without a CUDA device (or in a build without CUDA) the GPU checks skip with
// the reason, and the refusal of device 'cuda' is checked instead.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/backend.hpp"
#include "core/m_step.hpp"
#include "core/prepared_params.hpp"
#include "core/rng.hpp"
#include "cpu/cpu_backend.hpp"
#include "cuem/devices.hpp"
#include "cuem/errors.hpp"
#include "cuem/fit.hpp"
#include "init/kmeans.hpp"
#include "test_util.hpp"
#if defined(CUEM_HAVE_CUDA)
#include "core/cuda_backend.hpp"
#include "core/cuda_devices.hpp"
#endif
#if defined(CUEM_EMULATED_DEVICE)
#include <cuda_runtime.h>  // the emulated runtime (tests/emu): its schedule
#endif

namespace {

using cuem::CovarianceType;
using cuem::Precision;

// Empty when a device is usable, else why not.
std::string no_device_reason() {
  std::string reason;
  if (!cuem::cuda_devices(&reason).empty()) return {};
  return "no CUDA device: " + reason;
}

#define REQUIRE_DEVICE()                                  \
  do {                                                    \
    const std::string why = no_device_reason();           \
    if (!why.empty()) GTEST_SKIP() << why;                \
  } while (0)

TEST(CudaBackend, CudaWithoutADeviceIsAClearError) {
  if (no_device_reason().empty()) GTEST_SKIP() << "a CUDA device is present";
  std::vector<double> X{0.0, 1.0, 2.0, 3.0};
  cuem::FitOptions o;
  o.device = cuem::parse_device("cuda");
  try {
    cuem::fit(cuem::DataView(X.data(), 4, 1), o);
    FAIL() << "device cuda should be refused without a device";
  } catch (const cuem::DeviceError& e) {
    EXPECT_NE(std::string(e.what()).find("'cpu'"), std::string::npos) << e.what();
  }
}

TEST(CudaBackend, AutoWithoutADeviceRunsOnTheCpuWithANotice) {
  if (no_device_reason().empty()) GTEST_SKIP() << "a CUDA device is present";
  std::vector<double> X{0.0, 1.0, 2.0, 3.0, 10.0, 11.0};
  cuem::FitOptions o;
  o.n_components = 2;
  o.device = cuem::parse_device("auto");
  const cuem::FitResult r = cuem::fit(cuem::DataView(X.data(), 6, 1), o);
  EXPECT_EQ(r.device, "cpu");
  ASSERT_EQ(r.notices.size(), 1u);
  EXPECT_NE(r.notices[0].find("CPU"), std::string::npos) << r.notices[0];
}

TEST(CudaBackend, EvaluatingOnCudaWithoutADeviceIsAClearError) {
  if (no_device_reason().empty()) GTEST_SKIP() << "a CUDA device is present";
  const cuem_test::Mixture mix = cuem_test::make_mixture(CovarianceType::full, 2, 2, 3.0, 5);
  const cuem_test::Dataset ds = cuem_test::sample_mixture(mix, 50, 6);
  const cuem::Model m = cuem_test::model_from_mixture(mix, CovarianceType::full);
  cuem::EvaluateOptions where;
  where.device = cuem::parse_device("cuda");
  EXPECT_THROW(cuem::predict(m, ds.view(), where), cuem::DeviceError);
  EXPECT_THROW(cuem::score_samples(m, ds.view(), where), cuem::DeviceError);
  where.device = cuem::parse_device("auto");  // falls back to the CPU
  EXPECT_EQ(cuem::predict(m, ds.view(), where), cuem::predict(m, ds.view()));
}

#if defined(CUEM_HAVE_CUDA)

// ---- sufficient statistics, CUDA against CPU --------------------------------------------

struct StatsCase {
  CovarianceType type;
  int D;
  int K;
  std::size_t N;
  double offset;  // added to every coordinate (data centred far from the origin)
  Precision precision;
  double tol;     // relative, see compare_stats
};

std::string case_name(const testing::TestParamInfo<StatsCase>& info) {
  const StatsCase& c = info.param;
  return std::string(cuem::to_string(c.type)) + "_D" + std::to_string(c.D) + "_K" + std::to_string(c.K) + "_N" +
         std::to_string(c.N) + (c.offset != 0 ? "_offset" : "") +
         (c.precision == Precision::float32 ? "_f32" : "_f64");
}

std::vector<StatsCase> stats_cases() {
  std::vector<StatsCase> out;
  for (CovarianceType type : cuem_test::all_covariance_types())
    for (int D : {1, 2, 3, 7, 16, 33, 64, 128})
      for (int K : {1, 2, 5, 16, 64, 256})
        for (Precision p : {Precision::float32, Precision::float64}) {
          // Several statistics segments where the problem is small; N is never a
          // multiple of a block or segment size.
          const std::size_t N = D * K <= 256 ? 20011 : 2013;
#if defined(CUEM_EMULATED_DEVICE)
          // The emulated device runs the kernels serially: the largest full cases
          // (billions of multiply-adds) are left to a GPU; every code path stays.
          const bool full = type == CovarianceType::full || type == CovarianceType::tied;
          const double M = full ? 1.0 + D + D * (D + 1) / 2.0 : 1.0 + 2.0 * D;
          if (static_cast<double>(N) * K * M > 3e8) continue;
#endif
          out.push_back({type, D, K, N, 0.0, p, p == Precision::float32 ? 1e-5 : 1e-10});
        }
  // The diagonal layout's multi-component kernel over several segments.
  for (CovarianceType type : {CovarianceType::diag, CovarianceType::spherical})
    for (auto [D, K] : {std::pair{32, 64}, std::pair{128, 16}, std::pair{7, 256}, std::pair{32, 32}, std::pair{9, 17}})
      for (Precision p : {Precision::float32, Precision::float64})
        out.push_back({type, D, K, 20011, 0.0, p, p == Precision::float32 ? 1e-5 : 1e-10});
  for (CovarianceType type : cuem_test::all_covariance_types())
    for (int D : {2, 16})
      for (Precision p : {Precision::float32, Precision::float64})
        out.push_back({type, D, 5, 20011, 1e4, p, p == Precision::float32 ? 1e-5 : 1e-10});
  // More components than one tile (K > 64): the log joints go unnormalised to the
  // diagonal statistics kernels, which normalise them from each tile's maxima and sums
  // (tiled kernel: D >= 32; multi-component kernel: D = 9, 7 above), over several
  // segments and a last tile of components partly padding; offset data too.
  for (CovarianceType type : {CovarianceType::diag, CovarianceType::spherical})
    for (auto [D, K] : {std::pair{40, 80}, std::pair{33, 130}, std::pair{9, 70}})
      for (Precision p : {Precision::float32, Precision::float64}) {
        out.push_back({type, D, K, 20011, 0.0, p, p == Precision::float32 ? 1e-5 : 1e-10});
        if (D == 40) out.push_back({type, D, K, 9001, 1e4, p, p == Precision::float32 ? 1e-5 : 1e-10});
      }
  // Two dimension tiles of the statistics kernel, each normalising the same log joints.
  for (CovarianceType type : {CovarianceType::diag, CovarianceType::spherical})
    for (Precision p : {Precision::float32, Precision::float64})
      out.push_back({type, 72, 70, 3001, 0.0, p, p == Precision::float32 ? 1e-5 : 1e-10});
  return out;
}

// Compares CUDA statistics (re-centred to the CPU's shift) with the CPU's, each block
// against its natural scale: N_k against N_k + 1; S1_k against sqrt(N_k trace S2_k)
// (which bounds sum g |y|); S2_k against its largest diagonal entry (which bounds every
// entry). Like N_k's "+ 1", the S1 and S2 scales are those of N_k + 1 points, so that a
// component with almost no mass (N_k ~ 1e-45, responsibilities float32 cannot hold) is
// held to one point's worth rather than to a relative error of its vanishing sums.
// Reports the first entry out of tolerance.
void compare_stats(const cuem::SufficientStats& gpu_raw, const cuem::SufficientStats& cpu, double tol) {
  const cuem::SufficientStats gpu = gpu_raw.recentred(cpu.shift);  // tested in test_sufficient_stats
  const int K = cpu.K, D = cpu.D;
  const bool full = cpu.type == CovarianceType::full || cpu.type == CovarianceType::tied;
  ASSERT_EQ(gpu.s2.size(), cpu.s2.size());
  // Not vacuous: the reference has mass and spread, and the device wrote every block.
  double mass = 0;
  for (int k = 0; k < K; ++k) mass += cpu.nk[k];
  ASSERT_NEAR(mass, static_cast<double>(cpu.n_points), 1e-6 * cpu.n_points);
  ASSERT_GT(cuem_test::max_abs(cpu.s2), 0.0);
  ASSERT_GT(cuem_test::max_abs(gpu.s2), 0.0);
  EXPECT_NEAR(gpu.log_likelihood, cpu.log_likelihood, tol * std::abs(cpu.log_likelihood))
      << "log-likelihood";
  auto s2_at = [&](const cuem::SufficientStats& s, int k, int i, int j) {
    if (cpu.type == CovarianceType::tied) return s.s2[i * D + j];
    if (full) return s.s2[(static_cast<std::size_t>(k) * D + i) * D + j];
    return i == j ? s.s2[k * D + i] : 0.0;
  };
  for (int k = 0; k < K; ++k) {
    ASSERT_NEAR(gpu.nk[k], cpu.nk[k], tol * (cpu.nk[k] + 1)) << "N_k, k = " << k;
    const int kk = cpu.type == CovarianceType::tied ? 0 : k;
    double trace = 0, max_diag = 0;
    for (int i = 0; i < D; ++i) {
      trace += s2_at(cpu, kk, i, i);
      max_diag = std::max(max_diag, s2_at(cpu, kk, i, i));
    }
    const double grow = cpu.nk[k] > 0 ? (cpu.nk[k] + 1) / cpu.nk[k] : 1.0;
    const double s1_scale = grow * std::sqrt(cpu.nk[k] * trace) + 1e-300;
    for (int i = 0; i < D; ++i)
      ASSERT_NEAR(gpu.s1[k * D + i], cpu.s1[k * D + i], tol * s1_scale) << "S1, k = " << k << ", i = " << i;
    if (cpu.type == CovarianceType::tied && k > 0) continue;
    for (int i = 0; i < D; ++i)
      for (int j = i; j < (full ? D : i + 1); ++j)
        ASSERT_NEAR(s2_at(gpu, kk, i, j), s2_at(cpu, kk, i, j), tol * (grow * max_diag + 1e-300))
            << "S2, k = " << kk << ", (" << i << ", " << j << ")";
  }
}

// Parameters a little off the generating mixture, so that responsibilities are soft.
cuem::Model perturbed_model(const cuem_test::Mixture& mix, CovarianceType type, double offset, std::uint64_t seed) {
  cuem::Model m = cuem_test::model_from_mixture(mix, type);
  cuem_test::Rng rng(seed);
  for (double& v : m.means) v += offset + 0.3 * rng.normal();
  return m;
}

// The data as the float32 path stores them: x - m rounded to float, with m the column
// means (the backend's origin). float32 data carry an error of half an ulp of the data's
// extent R, which moves S1_k and S2_k by about 2^-24 R / sigma_k relative (1e-5 for the
// D = 1, K = 256 cases, whose means span +-768 at unit spread): a property of float32
// storage, not of the kernels. Comparing on data float32 represents exactly isolates the
// kernels' arithmetic, which the tolerance is for.
void make_float32_exact(cuem_test::Dataset& ds) {
  const std::size_t D = ds.d;
  std::vector<double> m(D, 0.0);
  for (std::size_t i = 0; i < ds.n; ++i)
    for (std::size_t d = 0; d < D; ++d) m[d] += ds.x[i * D + d];
  for (double& v : m) v /= static_cast<double>(ds.n);
  for (std::size_t i = 0; i < ds.n; ++i)
    for (std::size_t d = 0; d < D; ++d)
      ds.x[i * D + d] = m[d] + static_cast<double>(static_cast<float>(ds.x[i * D + d] - m[d]));
}

class CudaStats : public testing::TestWithParam<StatsCase> {};

TEST_P(CudaStats, AgreeWithTheCpuReference) {
  REQUIRE_DEVICE();
  const StatsCase c = GetParam();
  const std::uint64_t seed = 1000u + static_cast<std::uint64_t>(c.D) * 31u + static_cast<std::uint64_t>(c.K);
  SCOPED_TRACE("seed " + std::to_string(seed));
  const cuem_test::Mixture mix = cuem_test::make_mixture(c.type, c.K, c.D, 3.0, seed);
  cuem_test::Dataset ds = cuem_test::sample_mixture(mix, c.N, seed + 1);
  for (double& v : ds.x) v += c.offset;
  if (c.precision == Precision::float32) make_float32_exact(ds);
  const cuem::Model model = perturbed_model(mix, c.type, c.offset, seed + 2);
  const cuem::PreparedParams params = cuem::prepare(model);

  cuem::CpuBackend cpu(ds.view());
  const cuem::SufficientStats want = cpu.estep(params);
  const auto gpu = cuem::cuda::make_backend(ds.view(), {0, c.precision, 0});
  const cuem::SufficientStats got = gpu->estep(params);
  ASSERT_EQ(got.n_points, c.N);
  compare_stats(got, want, c.tol);

  // The same call again gives bitwise the same statistics. (On the emulated device the
  // threads and blocks run in the opposite order the second time: a result that depends
  // on the order is a race a GPU may or may not show.)
#if defined(CUEM_EMULATED_DEVICE)
  const cuem::emu::ScheduleScope reverse(cuem::emu::Schedule::reverse);
#endif
  const cuem::SufficientStats again = gpu->estep(params);
  EXPECT_EQ(std::memcmp(again.s2.data(), got.s2.data(), got.s2.size() * sizeof(double)), 0);
  EXPECT_EQ(std::memcmp(again.s1.data(), got.s1.data(), got.s1.size() * sizeof(double)), 0);
  EXPECT_EQ(std::memcmp(again.nk.data(), got.nk.data(), got.nk.size() * sizeof(double)), 0);
  EXPECT_EQ(again.log_likelihood, got.log_likelihood);
}

INSTANTIATE_TEST_SUITE_P(AllShapes, CudaStats, testing::ValuesIn(stats_cases()), case_name);

// ---- whole fits and the backend's housekeeping --------------------------------------------

// K = 4 components in D dimensions (D <= 2 takes the fused E-step kernel).
cuem_test::Dataset small_problem(CovarianceType type, std::size_t n, std::uint64_t seed, double offset = 0,
                                 int D = 3) {
  const cuem_test::Mixture mix = cuem_test::make_mixture(type, 4, D, 3.0, seed);
  cuem_test::Dataset ds = cuem_test::sample_mixture(mix, n, seed + 1);
  for (double& v : ds.x) v += offset;
  return ds;
}

cuem::FitOptions fit_options(CovarianceType type, const std::string& device, Precision p) {
  cuem::FitOptions o;
  o.n_components = 4;
  o.covariance_type = type;
  o.device = cuem::parse_device(device);
  o.precision = p;
  o.tol = 1e-7;
  o.max_iter = 300;
  o.seed = 7;
  return o;
}

bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}

TEST(CudaFit, ReachesTheCpuLowerBound) {
  REQUIRE_DEVICE();
  for (CovarianceType type : cuem_test::all_covariance_types())
    for (Precision p : {Precision::float32, Precision::float64})
      for (int D : {3, 1}) {
        SCOPED_TRACE(std::string(cuem::to_string(type)) + " " + cuem::to_string(p) + " D " + std::to_string(D));
        const cuem_test::Dataset ds = small_problem(type, 30001, 11, 1e4, D);
        const cuem::FitResult cpu = cuem::fit(ds.view(), fit_options(type, "cpu", p));
        const cuem::FitResult gpu = cuem::fit(ds.view(), fit_options(type, "cuda", p));
        EXPECT_NE(gpu.device.find("cuda:0"), std::string::npos) << gpu.device;
        EXPECT_EQ(gpu.n_decreases, 0) << "largest fall " << gpu.max_decrease << " of " << gpu.lower_bound;
        const double tol = p == Precision::float32 ? 1e-5 : 1e-9;
        EXPECT_NEAR(gpu.lower_bound, cpu.lower_bound, tol * std::abs(cpu.lower_bound));
        EXPECT_LT(cuem_test::max_rel_diff(gpu.model.weights, cpu.model.weights, 1e-3), 100 * tol);
      }
}

TEST(CudaFit, IsBitwiseReproducible) {
  REQUIRE_DEVICE();
  for (Precision p : {Precision::float32, Precision::float64}) {
    const cuem_test::Dataset ds = small_problem(CovarianceType::full, 50003, 21);
    const cuem::FitResult a = cuem::fit(ds.view(), fit_options(CovarianceType::full, "cuda", p));
#if defined(CUEM_EMULATED_DEVICE)
    const cuem::emu::ScheduleScope reverse(cuem::emu::Schedule::reverse);  // see CudaStats
#endif
    const cuem::FitResult b = cuem::fit(ds.view(), fit_options(CovarianceType::full, "cuda", p));
    EXPECT_TRUE(same_bits(a.model.means, b.model.means));
    EXPECT_TRUE(same_bits(a.model.covariances, b.model.covariances));
    EXPECT_TRUE(same_bits(a.model.weights, b.model.weights));
    EXPECT_EQ(a.lower_bound, b.lower_bound);
    EXPECT_EQ(a.n_iter, b.n_iter);
  }
}

TEST(CudaFit, StreamedChunksEqualTheInMemoryFit) {
  REQUIRE_DEVICE();
  for (CovarianceType type : cuem_test::all_covariance_types())
    for (int D : {3, 2}) {
      SCOPED_TRACE(std::string(cuem::to_string(type)) + " D " + std::to_string(D));
      const cuem_test::Dataset ds = small_problem(type, 50003, 31, 1e4, D);
      cuem::FitOptions o = fit_options(type, "cuda", Precision::float32);
      o.max_iter = 20;
      const cuem::FitResult whole = cuem::fit(ds.view(), o);
      const std::size_t limit = (std::size_t{3} << 20) / 2;  // 1.5 MiB: 8192-point chunks
      o.device_memory_limit = limit;
      const cuem::FitResult streamed = cuem::fit(ds.view(), o);
      EXPECT_TRUE(same_bits(whole.model.means, streamed.model.means));
      EXPECT_TRUE(same_bits(whole.model.covariances, streamed.model.covariances));
      EXPECT_EQ(whole.lower_bound, streamed.lower_bound);

      // The placement is checked on backends sized the same way as the fits', which must
      // also agree bitwise on one E-step.
      const cuem::PreparedParams params = cuem::prepare(whole.model);
      const auto resident = cuem::cuda::make_backend(ds.view(), {0, Precision::float32, 0});
      const auto chunked = cuem::cuda::make_backend(ds.view(), {0, Precision::float32, limit});
      const cuem::SufficientStats a = resident->estep(params);
      const cuem::SufficientStats b = chunked->estep(params);
      EXPECT_NE(resident->description().find("resident"), std::string::npos) << resident->description();
      EXPECT_NE(chunked->description().find("streamed"), std::string::npos) << chunked->description();
      EXPECT_NE(chunked->description().find("chunks of 8192 points"), std::string::npos) << chunked->description();
      EXPECT_TRUE(same_bits(a.nk, b.nk));
      EXPECT_TRUE(same_bits(a.s1, b.s1));
      EXPECT_TRUE(same_bits(a.s2, b.s2));
      EXPECT_EQ(a.log_likelihood, b.log_likelihood);
    }
}

TEST(CudaFit, TooSmallAMemoryLimitIsAClearErrorAndLeavesTheDeviceUsable) {
  REQUIRE_DEVICE();
  const cuem_test::Dataset ds = small_problem(CovarianceType::full, 5000, 41);
  cuem::FitOptions o = fit_options(CovarianceType::full, "cuda", Precision::float32);
  o.device_memory_limit = 4096;
  try {
    cuem::fit(ds.view(), o);
    FAIL() << "a 4 KiB limit cannot hold a chunk";
  } catch (const cuem::DeviceError& e) {
    EXPECT_NE(std::string(e.what()).find("memory limit"), std::string::npos) << e.what();
  }
  o.device_memory_limit = 0;
  EXPECT_TRUE(std::isfinite(cuem::fit(ds.view(), o).lower_bound));
}

TEST(CudaFit, RepeatedFitsDoNotLeakDeviceMemory) {
  REQUIRE_DEVICE();
  const cuem_test::Dataset ds = small_problem(CovarianceType::diag, 100003, 51);
  cuem::FitOptions o = fit_options(CovarianceType::diag, "cuda", Precision::float32);
  o.max_iter = 3;
  ASSERT_EQ(cuem::cuda::memory_in_use().device_bytes, 0u);
  for (int i = 0; i < 10; ++i) {
    o.device_memory_limit = i % 2 ? 0 : (std::size_t{3} << 20);  // resident and streamed
    cuem::fit(ds.view(), o);
    const cuem::cuda::MemoryInUse left = cuem::cuda::memory_in_use();
    ASSERT_EQ(left.device_bytes, 0u) << "fit " << i;
    ASSERT_EQ(left.pinned_bytes, 0u) << "fit " << i;
  }
  // A failing fit releases what it took too.
  o.device_memory_limit = 4096;
  EXPECT_THROW(cuem::fit(ds.view(), o), cuem::DeviceError);
  EXPECT_EQ(cuem::cuda::memory_in_use().device_bytes, 0u);
  EXPECT_EQ(cuem::cuda::memory_in_use().pinned_bytes, 0u);
}

TEST(CudaFit, InterruptStopsTheFitAndFreesItsWork) {
  REQUIRE_DEVICE();
  const cuem_test::Dataset ds = small_problem(CovarianceType::full, 20000, 61);
  cuem::FitOptions o = fit_options(CovarianceType::full, "cuda", Precision::float32);
  int polls = 0;
  o.interrupted = [&] { return ++polls > 3; };
  EXPECT_THROW(cuem::fit(ds.view(), o), cuem::Interrupted);
  EXPECT_EQ(cuem::cuda::memory_in_use().device_bytes, 0u);
  o.interrupted = nullptr;
  EXPECT_TRUE(std::isfinite(cuem::fit(ds.view(), o).lower_bound));
}

// K = 6 in D = 5 takes the per-point kernel; K = 20 in D = 9 the tiled ones (diag and
// spherical normalising in the tile, full and tied through normalize_kernel).
TEST(CudaBackendEvaluate, MatchesTheCpu) {
  REQUIRE_DEVICE();
  for (CovarianceType type : cuem_test::all_covariance_types())
    for (Precision p : {Precision::float32, Precision::float64})
      for (auto [KK, D] : {std::pair{6, 5}, std::pair{20, 9}, std::pair{80, 40}}) {
        // K = 80: the only path left that normalises K > 64 log joints in place
        // (normalize_kernel; an E-step defers that to its statistics kernel).
        if (KK == 80 && type != CovarianceType::diag && type != CovarianceType::spherical) continue;
        SCOPED_TRACE(std::string(cuem::to_string(type)) + " " + cuem::to_string(p) + " K " + std::to_string(KK));
        const cuem_test::Mixture mix = cuem_test::make_mixture(type, KK, D, 3.0, 71);
        const cuem_test::Dataset ds = cuem_test::sample_mixture(mix, 12345, 72);
        const cuem::PreparedParams params = cuem::prepare(perturbed_model(mix, type, 0.0, 73));
        const std::size_t begin = 100, end = 12001, n = end - begin, K = static_cast<std::size_t>(KK);
        std::vector<double> lp_cpu(n), lp_gpu(n, std::nan("")), r_cpu(n * K), r_gpu(n * K, std::nan(""));
        cuem::CpuBackend cpu(ds.view());
        cpu.evaluate(params, begin, end, lp_cpu.data(), r_cpu.data());
        const auto gpu = cuem::cuda::make_backend(ds.view(), {0, p, 0});
        gpu->evaluate(params, begin, end, lp_gpu.data(), r_gpu.data());
        const double tol = p == Precision::float32 ? 1e-5 : 1e-12;
        for (std::size_t i = 0; i < n; ++i) {
          ASSERT_NEAR(lp_gpu[i], lp_cpu[i], tol * (std::abs(lp_cpu[i]) + 1)) << "point " << begin + i;
          for (std::size_t k = 0; k < K; ++k)
            ASSERT_NEAR(r_gpu[i * K + k], r_cpu[i * K + k], 10 * tol) << "point " << begin + i << ", k " << k;
        }
      }
}

// The deferred normalisation (K > 64) across chunks of a streamed data set: bitwise the
// resident E-step (the normalisation buffer is reused chunk after chunk), and N_k equal
// to the column sums of the in-place path's responsibilities (evaluate).
TEST(CudaStats, DeferredNormalisationStreamedEqualsResident) {
  REQUIRE_DEVICE();
  for (CovarianceType type : {CovarianceType::diag, CovarianceType::spherical}) {
    SCOPED_TRACE(cuem::to_string(type));
    const int K = 80, D = 40;
    const cuem_test::Mixture mix = cuem_test::make_mixture(type, K, D, 3.0, 91);
    cuem_test::Dataset ds = cuem_test::sample_mixture(mix, 20011, 92);
    make_float32_exact(ds);
    const cuem::PreparedParams params = cuem::prepare(perturbed_model(mix, type, 0.0, 93));
    const auto resident = cuem::cuda::make_backend(ds.view(), {0, Precision::float32, 0});
    const cuem::SufficientStats want = resident->estep(params);
    // Room for about one 8192-point chunk beside the fixed buffers: streamed.
    const std::size_t per_point = (K + 1 + 2 + 2 * 2 + 2 * D) * sizeof(float) + 8;
    const std::size_t limit = (std::size_t{3} << 19) + 10000 * per_point;
    const auto streamed = cuem::cuda::make_backend(ds.view(), {0, Precision::float32, limit});
    const cuem::SufficientStats got = streamed->estep(params);
    ASSERT_NE(streamed->description().find("streamed"), std::string::npos) << streamed->description();
    EXPECT_TRUE(same_bits(got.nk, want.nk));
    EXPECT_TRUE(same_bits(got.s1, want.s1));
    EXPECT_TRUE(same_bits(got.s2, want.s2));
    EXPECT_EQ(got.log_likelihood, want.log_likelihood);
    std::vector<double> resp(ds.n * static_cast<std::size_t>(K));
    resident->evaluate(params, 0, ds.n, nullptr, resp.data());
    for (int k = 0; k < K; ++k) {
      double nk = 0;
      for (std::size_t i = 0; i < ds.n; ++i) nk += resp[i * K + k];
      EXPECT_NEAR(want.nk[k], nk, 1e-5 * (nk + 1)) << "k " << k;
    }
  }
}

TEST(CudaPredict, AgreesWithTheCpu) {
  REQUIRE_DEVICE();
  for (CovarianceType type : cuem_test::all_covariance_types()) {
    SCOPED_TRACE(cuem::to_string(type));
    const cuem_test::Mixture mix = cuem_test::make_mixture(type, 5, 4, 4.0, 81);
    const cuem_test::Dataset ds = cuem_test::sample_mixture(mix, 40009, 82);
    const cuem::Model m = cuem_test::model_from_mixture(mix, type);
    cuem::EvaluateOptions gpu;
    gpu.device = cuem::parse_device("cuda");
    const std::vector<int> want = cuem::predict(m, ds.view());
    const std::vector<int> got = cuem::predict(m, ds.view(), gpu);
    ASSERT_EQ(got.size(), want.size());
    std::size_t differ = 0;  // float32 may flip points on a decision boundary, very few
    for (std::size_t i = 0; i < got.size(); ++i) differ += got[i] != want[i];
    EXPECT_LE(differ, got.size() / 10000 + 1);
    EXPECT_NEAR(cuem::score(m, ds.view(), gpu), cuem::score(m, ds.view()), 1e-5 * std::abs(cuem::score(m, ds.view())));
    gpu.precision = Precision::float64;
    EXPECT_EQ(cuem::predict(m, ds.view(), gpu), want);
  }
}

// ---- k-means on the device ------------------------------------------------------------------

// K = 6 takes the per-point assignment kernel; 16 and 70 (two tiles of 64, the second
// partial; D = 20 in two staging steps) the tiled distances and argmin.
TEST(CudaKMeans, ClosestDistancesAndLloydStepsAgreeWithTheCpu) {
  REQUIRE_DEVICE();
  for (auto [K, D] : {std::pair{6, 5}, std::pair{16, 3}, std::pair{70, 20}})
    for (Precision p : {Precision::float32, Precision::float64}) {
      SCOPED_TRACE(std::string(cuem::to_string(p)) + " K " + std::to_string(K) + " D " + std::to_string(D));
      const double tol = p == Precision::float32 ? 1e-5 : 1e-12;
      const cuem_test::Mixture mix = cuem_test::make_mixture(CovarianceType::diag, K, D, 4.0, 91);
      cuem_test::Dataset ds = cuem_test::sample_mixture(mix, 30011, 92);
      for (double& v : ds.x) v += 1e3;  // offset: the device works relative to the data's origin
      cuem::CpuBackend cpu(ds.view());
      const auto gpu = cuem::cuda::make_backend(ds.view(), {0, p, 0});
      const double* c0 = ds.row(17);
      const double* c1 = ds.row(20000);
      const double* c2 = ds.row(5);
      EXPECT_NEAR(gpu->closest_reset(c0), cpu.closest_reset(c0), tol * cpu.closest_reset(c0));
      EXPECT_NEAR(gpu->closest_potential(c1), cpu.closest_potential(c1), tol * cpu.closest_potential(c1));
      const double want = cpu.closest_update(c2);
      EXPECT_NEAR(gpu->closest_update(c2), want, tol * want);
      for (double frac : {0.0, 0.1, 0.5, 0.9, 0.999999}) {
        const std::size_t a = gpu->closest_sample(frac * want), b = cpu.closest_sample(frac * want);
        if (p == Precision::float64)
          EXPECT_EQ(a, b) << frac;
        else  // float32 sums may move the crossing by a point or two
          EXPECT_LE(a > b ? a - b : b - a, 2u) << frac;
      }
      // Lloyd steps from the same centres.
      std::vector<double> centers(mix.means);
      for (double& v : centers) v += 1e3 + 0.5;
      const cuem::LloydStep lc = cpu.lloyd_step(centers, mix.k);
      const cuem::LloydStep lg = gpu->lloyd_step(centers, mix.k);
      double total = 0;
      for (int k = 0; k < mix.k; ++k) {
        total += lg.counts[k];
        EXPECT_NEAR(lg.counts[k], lc.counts[k], p == Precision::float64 ? 0.0 : 3.0) << "k " << k;
      }
      EXPECT_EQ(total, static_cast<double>(ds.n));
      EXPECT_LT(cuem_test::max_rel_diff(lg.centers, lc.centers, 1.0), p == Precision::float64 ? 1e-12 : 1e-4);
      EXPECT_NEAR(lg.inertia, lc.inertia, 10 * tol * lc.inertia);
      std::vector<int> lab_g(ds.n), lab_c(ds.n);
      gpu->nearest_labels(lc.centers, mix.k, 0, ds.n, lab_g.data());
      cpu.nearest_labels(lc.centers, mix.k, 0, ds.n, lab_c.data());
      std::size_t differ = 0;
      for (std::size_t i = 0; i < ds.n; ++i) differ += lab_g[i] != lab_c[i];
      EXPECT_LE(differ, p == Precision::float64 ? 0u : 3u);
    }
}

// Streamed chunks (closest distances kept in pinned host memory, block sums written at
// each chunk's block offset, labels in pieces) give bitwise what the resident backend does.
TEST(CudaKMeans, StreamedEqualsResidentBitwise) {
  REQUIRE_DEVICE();
  for (Precision p : {Precision::float32, Precision::float64}) {
    SCOPED_TRACE(cuem::to_string(p));
    const cuem_test::Mixture mix = cuem_test::make_mixture(CovarianceType::diag, 6, 5, 4.0, 93);
    cuem_test::Dataset ds = cuem_test::sample_mixture(mix, 30011, 94);
    for (double& v : ds.x) v += 1e3;
    // Data, the 1 MiB reserve and the smallest resident workspace exceed these limits,
    // which leave room for 8192-point chunks (four of them) with K = 1 and K = 6.
    const std::size_t limit = p == Precision::float32 ? (std::size_t{7} << 20) / 4 : (std::size_t{5} << 20) / 2;
    const auto whole = cuem::cuda::make_backend(ds.view(), {0, p, 0});
    const auto streamed = cuem::cuda::make_backend(ds.view(), {0, p, limit});
    const double* c0 = ds.row(3);
    const double* c1 = ds.row(29000);
    const double* c2 = ds.row(12345);
    const double r0 = whole->closest_reset(c0);
    EXPECT_GT(r0, 0.0);
    EXPECT_EQ(streamed->closest_reset(c0), r0);
    EXPECT_NE(streamed->description().find("streamed"), std::string::npos) << streamed->description();
    EXPECT_NE(whole->description().find("resident"), std::string::npos) << whole->description();
    EXPECT_EQ(streamed->closest_potential(c1), whole->closest_potential(c1));
    const double r2 = whole->closest_update(c2);
    EXPECT_LT(r2, r0);
    EXPECT_EQ(streamed->closest_update(c2), r2);
    for (double frac : {0.0, 0.3, 0.7, 0.999})
      EXPECT_EQ(streamed->closest_sample(frac * r2), whole->closest_sample(frac * r2)) << frac;
    std::vector<double> centers(mix.means);
    for (double& v : centers) v += 1e3 + 0.25;
    const cuem::LloydStep a = whole->lloyd_step(centers, mix.k);
    const cuem::LloydStep b = streamed->lloyd_step(centers, mix.k);
    EXPECT_TRUE(same_bits(a.centers, b.centers));
    EXPECT_TRUE(same_bits(a.counts, b.counts));
    EXPECT_EQ(a.inertia, b.inertia);
    EXPECT_GT(a.inertia, 0.0);
    std::vector<int> la(ds.n, -1), lb(ds.n, -2);
    whole->nearest_labels(centers, mix.k, 0, ds.n, la.data());
    streamed->nearest_labels(centers, mix.k, 0, ds.n, lb.data());
    EXPECT_EQ(la, lb);
    // The same assignment as the Lloyd step's, so its counts.
    std::vector<std::size_t> per(mix.k, 0);
    for (int l : la) {
      ASSERT_TRUE(l >= 0 && l < mix.k) << l;
      ++per[l];
    }
    for (int k = 0; k < mix.k; ++k) EXPECT_EQ(static_cast<double>(per[k]), a.counts[k]) << "k " << k;
  }
}

TEST(CudaKMeans, InitialisedFitsMatchTheCpu) {
  REQUIRE_DEVICE();
  for (cuem::InitMethod init : {cuem::InitMethod::kmeans, cuem::InitMethod::kmeans_plusplus}) {
    const cuem_test::Mixture mix = cuem_test::make_mixture(CovarianceType::full, 4, 3, 20.0, 101);
    cuem_test::Dataset ds = cuem_test::sample_mixture(mix, 40009, 102);
    for (double& v : ds.x) v += 50.0;
    cuem::FitOptions o = fit_options(CovarianceType::full, "cpu", Precision::float64);
    o.init = init;
    const cuem::FitResult cpu = cuem::fit(ds.view(), o);
    o.device = cuem::parse_device("cuda");
    const cuem::FitResult gpu = cuem::fit(ds.view(), o);
    // Well-separated blobs: both reach the same optimum from their own k-means seeds.
    EXPECT_NEAR(gpu.lower_bound, cpu.lower_bound, 1e-9 * std::abs(cpu.lower_bound)) << cuem::to_string(init);
    o.precision = Precision::float32;
    const cuem::FitResult gpu32 = cuem::fit(ds.view(), o);
    EXPECT_NEAR(gpu32.lower_bound, cpu.lower_bound, 1e-5 * std::abs(cpu.lower_bound)) << cuem::to_string(init);
  }
}

// The k-means initialisation's two passes on the device (Backend::partition_stats)
// against the same passes on the host: labels of the nearest centre, each part's mean
// (zero for an empty part), then the partition's statistics about the means.
TEST(CudaKMeans, PartitionStatisticsMatchTheHostPasses) {
  REQUIRE_DEVICE();
  for (CovarianceType type : cuem_test::all_covariance_types())
    for (auto [K, D] : {std::pair{5, 2}, std::pair{5, 16}, std::pair{20, 9}}) {  // K = 20: tiled assignment
      SCOPED_TRACE(std::string(cuem::to_string(type)) + " K " + std::to_string(K) + " D " + std::to_string(D));
      const cuem_test::Mixture mix = cuem_test::make_mixture(type, K, D, 3.0, 77);
      cuem_test::Dataset ds = cuem_test::sample_mixture(mix, 20011, 78);
      for (double& v : ds.x) v += 100.0;
      make_float32_exact(ds);
      std::vector<double> centers(mix.means);
      for (double& v : centers) v += 100.0;
      centers[(K - 1) * D] += 1e6;  // a centre no point is nearest to: an empty part

      cuem::CpuBackend cpu(ds.view());
      std::vector<int> labels(ds.n);
      cpu.nearest_labels(centers, K, 0, ds.n, labels.data());
      const cuem::ResponsibilityFn one_hot = [&](std::size_t begin, std::size_t count, double* resp, double*) {
        std::fill(resp, resp + count * K, 0.0);
        for (std::size_t b = 0; b < count; ++b) resp[b * K + labels[begin + b]] = 1.0;
      };
      const std::vector<double> origin(static_cast<std::size_t>(K) * D, 0.0);
      const cuem::SufficientStats first =
          cuem::accumulate_stats(ds.view(), CovarianceType::diag, K, origin, one_hot, false);
      std::vector<double> means(static_cast<std::size_t>(K) * D, 0.0);
      for (int k = 0; k < K; ++k)
        if (first.nk[k] > 0)
          for (int d = 0; d < D; ++d) means[k * D + d] = first.s1[k * D + d] / first.nk[k];
      const cuem::SufficientStats want = cuem::accumulate_stats(ds.view(), type, K, means, one_hot, false);
      ASSERT_EQ(want.nk[K - 1], 0.0);

      for (Precision p : {Precision::float32, Precision::float64}) {
        const auto gpu = cuem::cuda::make_backend(ds.view(), {0, p, 0});
        cuem::SufficientStats got;
        ASSERT_TRUE(gpu->partition_stats(centers, K, type, &got));
        const double tol = p == Precision::float32 ? 1e-5 : 1e-10;
        for (int k = 0; k < K; ++k) EXPECT_EQ(got.nk[k], want.nk[k]) << "N_k, k = " << k;  // counts are exact
        // The device's shift is the means rounded to S; compare about the host's.
        compare_stats(got, want, tol);
      }
    }
}

// The 'random' initialisation's two passes on the device (Backend::random_stats) against
// the host's: the same draws (rng stream kRandomResp, normalised in float64), the means
// from the first pass, the statistics about them from the second. Several chunks of a
// streamed data set too, since a draw depends on the point's global index.
TEST(CudaInit, RandomStatisticsMatchTheHostPasses) {
  REQUIRE_DEVICE();
  for (CovarianceType type : cuem_test::all_covariance_types())
    for (auto [K, D] : {std::pair{3, 2}, std::pair{7, 9}}) {
      SCOPED_TRACE(std::string(cuem::to_string(type)) + " K " + std::to_string(K) + " D " + std::to_string(D));
      const cuem_test::Mixture mix = cuem_test::make_mixture(type, K, D, 3.0, 81);
      cuem_test::Dataset ds = cuem_test::sample_mixture(mix, 20011, 82);
      for (double& v : ds.x) v += 100.0;
      make_float32_exact(ds);
      const std::uint64_t seed = 5;
      const cuem::ResponsibilityFn draws = [&](std::size_t begin, std::size_t count, double* resp, double*) {
        for (std::size_t b = 0; b < count; ++b) {
          double sum = 0.0;
          for (int k = 0; k < K; ++k)
            sum += resp[b * K + k] = cuem::rng::uniform(seed, cuem::rng::kRandomResp, (begin + b) * K + k);
          for (int k = 0; k < K; ++k) resp[b * K + k] /= sum;
        }
      };
      const cuem::SufficientStats first = cuem::accumulate_stats(
          ds.view(), CovarianceType::diag, K, std::vector<double>(static_cast<std::size_t>(K) * D, 0.0), draws, false);
      std::vector<double> means(static_cast<std::size_t>(K) * D);
      for (int k = 0; k < K; ++k)
        for (int d = 0; d < D; ++d) means[k * D + d] = first.s1[k * D + d] / first.nk[k];
      const cuem::SufficientStats want = cuem::accumulate_stats(ds.view(), type, K, means, draws, false);
      for (Precision p : {Precision::float32, Precision::float64})
        for (bool streamed : {false, true}) {
          if (streamed && D < 9) continue;  // small data would stay resident
          SCOPED_TRACE(std::string(cuem::to_string(p)) + (streamed ? " streamed" : " resident"));
          // Streamed: room for one 8192-point chunk (and its two staging slots) beside the
          // backend's fixed 1 MiB, less than residence asks (the data and three chunks).
          const std::size_t S = p == Precision::float32 ? 4 : 8;
          const std::size_t per_point = (K + 1 + 2 * static_cast<std::size_t>(D)) * S;
          const std::size_t limit = streamed ? (std::size_t{5} << 18) + 8192 * per_point : 0;
          const auto gpu = cuem::cuda::make_backend(ds.view(), {0, p, limit});
          cuem::SufficientStats got;
          ASSERT_TRUE(gpu->random_stats(seed, K, type, &got));
          EXPECT_EQ(gpu->description().find("streamed") != std::string::npos, streamed) << gpu->description();
          EXPECT_EQ(got.log_likelihood, 0.0);
          compare_stats(got, want, p == Precision::float32 ? 1e-5 : 1e-10);
        }
    }
}

// k-means' tolerance scale, the mean feature variance, from the device's passes against
// the host's two passes, on data far from the origin.
TEST(CudaKMeans, MeanFeatureVarianceMatchesTheHost) {
  REQUIRE_DEVICE();
  const cuem_test::Mixture mix = cuem_test::make_mixture(CovarianceType::diag, 3, 7, 4.0, 79);
  cuem_test::Dataset ds = cuem_test::sample_mixture(mix, 30011, 80);
  for (double& v : ds.x) v += 1e4;
  make_float32_exact(ds);
  cuem::CpuBackend cpu(ds.view());
  const double want = cuem::mean_feature_variance(cpu, ds.view());
  for (Precision p : {Precision::float32, Precision::float64}) {
    const auto gpu = cuem::cuda::make_backend(ds.view(), {0, p, 0});
    const double got = cuem::mean_feature_variance(*gpu, ds.view());
    EXPECT_NEAR(got, want, (p == Precision::float32 ? 1e-6 : 1e-12) * want);
  }
}

TEST(CudaBackend, NonexistentDeviceIndexIsAClearError) {
  REQUIRE_DEVICE();
  std::vector<double> X{0.0, 1.0, 2.0, 3.0};
  cuem::FitOptions o;
  o.device = cuem::parse_device("cuda:999");
  try {
    cuem::fit(cuem::DataView(X.data(), 4, 1), o);
    FAIL() << "cuda:999 should not exist";
  } catch (const cuem::DeviceError& e) {
    EXPECT_NE(std::string(e.what()).find("cuda:999"), std::string::npos) << e.what();
  }
}

#endif  // CUEM_HAVE_CUDA

}  // namespace
