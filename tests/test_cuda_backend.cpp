// The CUDA primitives against the float64 CPU reference. Every test here runs on any
// machine: without a CUDA device (or in a build without CUDA) the GPU checks skip with
// the reason, and the refusal of device 'cuda' is checked instead.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/m_step.hpp"
#include "core/prepared_params.hpp"
#include "core/rng.hpp"
#include "cpu/cpu_primitives.hpp"
#include "cuem/devices.hpp"
#include "cuem/errors.hpp"
#include "cuem/fit.hpp"
#include "engine/primitives.hpp"
#include "init/kmeans.hpp"
#include "test_util.hpp"
#if defined(CUEM_HAVE_CUDA)
#include "core/cuda_devices.hpp"
#include "core/cuda_primitives.hpp"
#include "cuda/device_checks.hpp"
#endif
#if defined(CUEM_EMULATED_DEVICE)
#include <cuda_runtime.h>  // the emulated runtime (tests/emu): its schedule
#endif

namespace {

using cuem::ClosestMode;
using cuem::CovarianceType;
using cuem::Precision;

using cuem_test::no_device_reason;

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

// The kernel choices of the ctest variants _untiled and _stats_rk2 (and scripts/gpu_check.sh):
// CUEM_CUDA_TILED=0 keeps the simpler kernels, CUEM_CUDA_STATS_RK=2 takes 2 components a
// thread in the tiled diagonal statistics. The library reads no environment; the test
// passes them as options, so one binary runs every kernel.
cuem::CudaTuning tuning_from_environment() {
  cuem::CudaTuning t;
  const char* tiled = std::getenv("CUEM_CUDA_TILED");
  if (tiled && tiled[0] == '0') t.tiled = false;
  const char* rk = std::getenv("CUEM_CUDA_STATS_RK");
  if (rk && std::string(rk) == "2") t.diag_stats_components = 2;
  return t;
}

// The CUDA primitives on device 0 with the environment's kernel choices.
std::unique_ptr<cuem::Primitives> cuda_primitives(cuem::DataView X, Precision p, std::size_t memory_limit = 0) {
  return cuem::cuda::make_primitives(X, {}, {0, p, memory_limit}, tuning_from_environment());
}

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
#if defined(CUEM_EMULATED_DEVICE) && defined(CUEM_TEST_SANITIZED)
  // Under the sanitizers each shape runs in one precision, float32 and float64 alternating
  // over the shapes: every kernel path still runs under them, and the release build runs
  // both precisions of every shape.
  std::vector<StatsCase> one_precision;
  for (const StatsCase& c : out) {
    const int parity = (static_cast<int>(c.type) + c.D + c.K + (c.offset != 0 ? 1 : 0)) % 2;
    if ((parity == 0) == (c.precision == Precision::float32)) one_precision.push_back(c);
  }
  out = std::move(one_precision);
#endif
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

// ---- labels against the float64 reference, up to near ties ----------------------------
//
// A device computes labels as the argmax of log joints or the argmin of squared distances
// in its own precision, so a point whose two best scores lie within rounding of each
// other may take either label (and on a GPU, whose nvcc contracts multiply-adds and uses
// its own expf and logf, it may take the other one than the emulator does). The tests
// below allow exactly those flips: the reference scores are computed here in float64,
// with a first-order bound on how far the device's rounding can move each, and a label
// may differ from the reference only where its score is within the two bounds of the
// best one. Every other label must match.

// The unit roundoff of a device's arithmetic.
double unit_roundoff(Precision p) { return p == Precision::float32 ? 0x1p-24 : 0x1p-53; }

// Column means: the origin about which the CUDA backend stores the data.
std::vector<double> column_means(const cuem_test::Dataset& ds) {
  std::vector<double> o(static_cast<std::size_t>(ds.d), 0.0);
  for (std::size_t i = 0; i < ds.n; ++i)
    for (int d = 0; d < ds.d; ++d) o[d] += ds.x[i * ds.d + d];
  for (double& v : o) v /= static_cast<double>(ds.n);
  return o;
}

// Per point and component, the float64 score a device label is the best of, and the
// bound on the device's rounding of it.
struct Scores {
  std::size_t n = 0;
  int k = 0;
  bool maximise = true;       // log joints; false for squared distances
  std::vector<double> value;  // n x k
  std::vector<double> error;  // n x k

  double v(std::size_t i, int c) const { return value[i * k + c]; }
  double e(std::size_t i, int c) const { return error[i * k + c]; }
  bool better(double a, double b) const { return maximise ? a > b : a < b; }
  // The lowest index on exact ties, as the kernels and the CPU take it.
  int best(std::size_t i) const {
    int b = 0;
    for (int c = 1; c < k; ++c)
      if (better(v(i, c), v(i, b))) b = c;
    return b;
  }
  // Whether rounding alone can make `label` the device's choice at point i.
  bool within_rounding(std::size_t i, int label, int b) const {
    return label >= 0 && label < k && std::abs(v(i, b) - v(i, label)) <= e(i, b) + e(i, label);
  }
  // Whether another component is within rounding of the best at point i.
  bool near_tie(std::size_t i) const {
    const int b = best(i);
    for (int c = 0; c < k; ++c)
      if (c != b && within_rounding(i, c, b)) return true;
    return false;
  }
};

// Squared distances from every point to every centre, with the rounding of a device that
// stores x - o in its precision (o: the column means) and computes t = ((x - o) - hi) - lo
// and sum_d t_d^2 (kmeans.cuh, the distance tile of estep_posteriors.cuh). First order: storing x - o
// rounds by u |x - o|, the two subtractions by u |t| each, the squares by u t^2 and the
// D-term sum by (D - 1) u sum t^2, so |error| <= u ((D + 4) v + 2 sum_d |t_d| |x_d - o_d|);
// doubled for second-order terms and the reference's own rounding.
Scores distance_scores(const cuem_test::Dataset& ds, const std::vector<double>& centres, int K, Precision p) {
  const double u = unit_roundoff(p);
  const std::vector<double> o = column_means(ds);
  const int D = ds.d;
  Scores s;
  s.n = ds.n;
  s.k = K;
  s.maximise = false;
  s.value.resize(ds.n * K);
  s.error.resize(ds.n * K);
  for (std::size_t i = 0; i < ds.n; ++i)
    for (int c = 0; c < K; ++c) {
      double v = 0, cross = 0;
      for (int d = 0; d < D; ++d) {
        const double t = ds.x[i * D + d] - centres[static_cast<std::size_t>(c) * D + d];
        v += t * t;
        cross += std::abs(t) * std::abs(ds.x[i * D + d] - o[d]);
      }
      s.value[i * K + c] = v;
      s.error[i * K + c] = 2 * u * ((D + 4) * v + 2 * cross);
    }
  return s;
}

// Log joints log w_k + log|P_k| - D/2 log(2 pi) - |P_k^T (x - mu_k)|^2 / 2 (P_k: the
// precision's Cholesky factor, from this file's own float64 linear algebra), with the
// rounding of a device that evaluates them in its precision and returns responsibilities
// exp(lj - logsumexp) (point_math.hpp, estep_posteriors.cuh). First order, with y = x - mu and
// z = P^T y: y_d carries u (3 |x_d - o_d| + 3 |y_d|) (storing x - o, the two parts of the
// mean or, for diag, the scaled means), z_j carries (D + 2) u sum_i |P_ij y_i| plus the
// spread of y's errors, |z|^2 (D + 1) u |z|^2 plus 2 |z_j| times z_j's error; the
// constants log w, log|P| and D/2 log(2 pi) one u each, the sum of the terms u |lj|, and
// the exponent and the responsibility u (|lj - logsumexp| + 2). Doubled, as above.
Scores log_joint_scores(const cuem::Model& m, const cuem_test::Dataset& ds, Precision p) {
  const double u = unit_roundoff(p);
  const std::vector<double> o = column_means(ds);
  const int D = m.n_features, K = m.n_components;
  const bool factored = m.covariance_type == CovarianceType::full || m.covariance_type == CovarianceType::tied;
  Scores s;
  s.n = ds.n;
  s.k = K;
  s.maximise = true;
  s.value.resize(ds.n * K);
  s.error.resize(ds.n * K);
  std::vector<double> y(D);
  for (int c = 0; c < K; ++c) {
    const cuem_test::Matrix cov = cuem_test::full_covariance(m, c);
    cuem_test::Matrix P(static_cast<std::size_t>(D) * D, 0.0);
    if (factored)
      P = cuem_test::precision_cholesky_full(cov, D);
    else
      for (int d = 0; d < D; ++d) P[d * D + d] = 1.0 / std::sqrt(cov[d * D + d]);
    double log_det = 0;
    for (int d = 0; d < D; ++d) log_det += std::log(P[d * D + d]);
    const double half_log_2pi = 0.5 * D * std::log(2.0 * cuem_test::kPi);
    const double constant = std::log(m.weights[c]) + log_det - half_log_2pi;
    const double constant_terms = std::abs(std::log(m.weights[c])) + std::abs(log_det) + half_log_2pi;
    const double* mu = m.means.data() + static_cast<std::size_t>(c) * D;
    for (std::size_t i = 0; i < ds.n; ++i) {
      const double* x = ds.row(i);
      for (int d = 0; d < D; ++d) y[d] = x[d] - mu[d];
      double maha = 0, cross = 0;
      for (int j = 0; j < D; ++j) {
        double z = 0, products = 0, spread = 0;
        for (int r = 0; r <= j; ++r) {
          z += y[r] * P[r * D + j];
          products += std::abs(y[r] * P[r * D + j]);
          spread += std::abs(P[r * D + j]) * (3 * std::abs(x[r] - o[r]) + 3 * std::abs(y[r]));
        }
        maha += z * z;
        cross += std::abs(z) * ((D + 2) * products + spread);
      }
      const double lj = constant - 0.5 * maha;
      s.value[i * K + c] = lj;
      s.error[i * K + c] = 2 * u * (constant_terms + std::abs(lj) + 0.5 * ((D + 1) * maha + 2 * cross));
    }
  }
  for (std::size_t i = 0; i < ds.n; ++i) {
    const double lse = cuem_test::logsumexp(s.value.data() + i * K, static_cast<std::size_t>(K));
    for (int c = 0; c < K; ++c) s.error[i * K + c] += 2 * u * (std::abs(s.v(i, c) - lse) + 2);
  }
  return s;
}

// Device labels against the reference scores: each the reference's best or, at a near
// tie, a component within rounding of it. Names the first label that is neither; also
// fails where near ties are more than one point in a thousand (a bound so loose would
// excuse real errors).
testing::AssertionResult labels_match_up_to_ties(const std::vector<int>& got, const Scores& ref) {
  if (got.size() != ref.n) return testing::AssertionFailure() << got.size() << " labels for " << ref.n << " points";
  std::size_t near = 0, differ = 0;
  for (std::size_t i = 0; i < ref.n; ++i) {
    const int b = ref.best(i);
    near += ref.near_tie(i);
    if (got[i] == b) continue;
    ++differ;
    if (!ref.within_rounding(i, got[i], b)) {
      testing::AssertionResult fail = testing::AssertionFailure();
      fail << "point " << i << ": label " << got[i] << ", the reference's " << b << " (score " << ref.v(i, b)
           << " +- " << ref.e(i, b) << ")";
      if (got[i] >= 0 && got[i] < ref.k) fail << " against " << ref.v(i, got[i]) << " +- " << ref.e(i, got[i]);
      return fail << ": not a near tie";
    }
  }
  if (near * 1000 > ref.n)
    return testing::AssertionFailure() << near << " near ties in " << ref.n << " points: the bound is too loose";
  return testing::AssertionSuccess() << differ << " of " << near << " near ties flipped";
}

// Per component, how many points rounding may move to or from it (the near ties it is
// one of the candidates at): a count the device makes may differ from the reference's by
// no more.
std::vector<std::size_t> tie_allowance(const Scores& ref) {
  std::vector<std::size_t> allow(ref.k, 0);
  for (std::size_t i = 0; i < ref.n; ++i) {
    if (!ref.near_tie(i)) continue;
    const int b = ref.best(i);
    for (int c = 0; c < ref.k; ++c)
      if (c == b || ref.within_rounding(i, c, b)) ++allow[c];
  }
  return allow;
}

std::size_t near_ties(const Scores& ref) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < ref.n; ++i) n += ref.near_tie(i);
  return n;
}

std::vector<double> reference_counts(const Scores& ref) {
  std::vector<double> counts(ref.k, 0.0);
  for (std::size_t i = 0; i < ref.n; ++i) counts[ref.best(i)] += 1.0;
  return counts;
}

// The reference for closest_sample(r): the running sum, in point order, of each point's
// squared distance to the nearest of `centres`, and a bound on how far the device's sum
// can be from it: each distance's rounding (distance_scores; the nearer of two takes the
// larger bound) plus, for the sums in any order, (i + 1) u64 times the sum, both sides.
struct RunningSum {
  std::vector<double> sum, error;
  // Whether rounding alone can make index a the first whose running sum exceeds r.
  bool may_cross_at(std::size_t a, double r) const {
    if (a >= sum.size() || !(sum[a] + error[a] > r)) return false;
    return a == 0 || sum[a - 1] - error[a - 1] <= r;
  }
};

RunningSum closest_running_sum(const cuem_test::Dataset& ds, const std::vector<const double*>& centres, Precision p) {
  std::vector<double> flat;
  for (const double* c : centres) flat.insert(flat.end(), c, c + ds.d);
  const Scores s = distance_scores(ds, flat, static_cast<int>(centres.size()), p);
  RunningSum out;
  out.sum.resize(ds.n);
  out.error.resize(ds.n);
  double sum = 0, error = 0;
  for (std::size_t i = 0; i < ds.n; ++i) {
    const int b = s.best(i);
    double e = 0;
    for (int c = 0; c < s.k; ++c) e = std::max(e, s.e(i, c));
    sum += s.v(i, b);
    error += e;
    out.sum[i] = sum;
    out.error[i] = error + 2.0 * static_cast<double>(i + 1) * 0x1p-53 * sum;
  }
  return out;
}

// ---- whole fits against the CPU's ----------------------------------------------------

// Whether two fits found the same components in the same order: each mean of `got` lies
// nearer its namesake in `want` than a tenth of the way to any other mean of `want`.
testing::AssertionResult same_labelling(const cuem::Model& got, const cuem::Model& want) {
  const int K = want.n_components, D = want.n_features;
  if (got.n_components != K || got.n_features != D) return testing::AssertionFailure() << "shapes differ";
  auto dist = [&](const std::vector<double>& a, int i, const std::vector<double>& b, int j) {
    double s = 0;
    for (int d = 0; d < D; ++d) {
      const double t = a[static_cast<std::size_t>(i) * D + d] - b[static_cast<std::size_t>(j) * D + d];
      s += t * t;
    }
    return std::sqrt(s);
  };
  for (int k = 0; k < K; ++k) {
    double nearest_other = std::numeric_limits<double>::infinity();
    for (int j = 0; j < K; ++j)
      if (j != k) nearest_other = std::min(nearest_other, dist(want.means, k, want.means, j));
    if (!(dist(got.means, k, want.means, k) < 0.1 * nearest_other))
      return testing::AssertionFailure() << "component " << k << "'s mean is " << dist(got.means, k, want.means, k)
                                         << " from the reference's, whose nearest other mean is " << nearest_other
                                         << " away: the fits labelled their components differently";
  }
  return testing::AssertionSuccess();
}

// Weights, means and covariances, component by component, each against its natural
// scale: a weight relative to itself, a mean along axis d in units of the component's
// standard deviation sqrt(Sigma_dd), a covariance entry in units of sqrt(Sigma_ii
// Sigma_jj). Names the first entry out of tolerance.
testing::AssertionResult same_model(const cuem::Model& got, const cuem::Model& want, double tol) {
  const testing::AssertionResult labelling = same_labelling(got, want);
  if (!labelling) return labelling;
  const int K = want.n_components, D = want.n_features;
  for (int k = 0; k < K; ++k) {
    if (!(std::abs(got.weights[k] - want.weights[k]) <= tol * want.weights[k]))
      return testing::AssertionFailure() << "weight " << k << ": " << got.weights[k] << " against "
                                         << want.weights[k];
    const cuem_test::Matrix cg = cuem_test::full_covariance(got, k), cw = cuem_test::full_covariance(want, k);
    for (int i = 0; i < D; ++i) {
      const double mg = got.means[static_cast<std::size_t>(k) * D + i];
      const double mw = want.means[static_cast<std::size_t>(k) * D + i];
      if (!(std::abs(mg - mw) <= tol * std::sqrt(cw[i * D + i])))
        return testing::AssertionFailure() << "mean " << k << ", axis " << i << ": " << mg << " against " << mw
                                           << " (sd " << std::sqrt(cw[i * D + i]) << ")";
      for (int j = 0; j < D; ++j)
        if (!(std::abs(cg[i * D + j] - cw[i * D + j]) <= tol * std::sqrt(cw[i * D + i] * cw[j * D + j])))
          return testing::AssertionFailure() << "covariance " << k << ", (" << i << ", " << j << "): " << cg[i * D + j]
                                             << " against " << cw[i * D + j];
    }
  }
  return testing::AssertionSuccess();
}

// EM never lowers the log-likelihood: each value of each restart's trace against the one
// before it, less the rounding of a device E-step in precision p. Every log p(x_n) carries
// about 2 D + 8 roundings of the size |log p| + D (log_joint_scores), and the sum of N of
// them those of its partial sums: up to 32 points a thread in the device's precision, then
// a float64 tree of log2(N) levels. Two successive values share the data and nearly the
// parameters, so their roundings largely repeat: a fall is allowed one value's worth.
testing::AssertionResult never_decreases(const std::vector<cuem::IterationInfo>& trace, Precision p, int D,
                                         std::size_t N) {
  const double ulps = 2.0 * D + 8 + 32 + std::log2(static_cast<double>(N));
  for (std::size_t t = 1; t < trace.size(); ++t) {
    if (trace[t].init != trace[t - 1].init) continue;
    const double before = trace[t - 1].mean_log_likelihood, after = trace[t].mean_log_likelihood;
    const double slack = ulps * unit_roundoff(p) * (std::abs(before) + D);
    if (!(after >= before - slack))
      return testing::AssertionFailure() << "restart " << trace[t].init << ", iteration " << trace[t].iteration
                                         << ": " << after << " after " << before << ", a fall of " << before - after
                                         << " where rounding allows " << slack;
  }
  return testing::AssertionSuccess();
}

// The final mean log-likelihood of each restart, in order.
std::vector<double> restart_bounds(const std::vector<cuem::TracePoint>& trace) {
  std::vector<double> out;
  for (const cuem::TracePoint& t : trace) {
    if (t.init >= static_cast<int>(out.size())) out.resize(t.init + 1);
    out[t.init] = t.mean_log_likelihood;
  }
  return out;
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

  cuem::CpuPrimitives cpu(ds.view());
  const cuem::SufficientStats want = cpu.gaussian_estep(params);
  const auto gpu = cuda_primitives(ds.view(), c.precision);
  const cuem::SufficientStats got = gpu->gaussian_estep(params);
  ASSERT_EQ(got.n_points, c.N);
  compare_stats(got, want, c.tol);

  // The same call again gives bitwise the same statistics. (On the emulated device the
  // threads and blocks run in the opposite order the second time: a result that depends
  // on the order is a race a GPU may or may not show.)
#if defined(CUEM_EMULATED_DEVICE)
  const cuem::emu::ScheduleScope reverse(cuem::emu::Schedule::reverse);
#endif
  const cuem::SufficientStats again = gpu->gaussian_estep(params);
  EXPECT_EQ(std::memcmp(again.s2.data(), got.s2.data(), got.s2.size() * sizeof(double)), 0);
  EXPECT_EQ(std::memcmp(again.s1.data(), got.s1.data(), got.s1.size() * sizeof(double)), 0);
  EXPECT_EQ(std::memcmp(again.nk.data(), got.nk.data(), got.nk.size() * sizeof(double)), 0);
  EXPECT_EQ(again.log_likelihood, got.log_likelihood);
}

INSTANTIATE_TEST_SUITE_P(AllShapes, CudaStats, testing::ValuesIn(stats_cases()), case_name);

#if defined(CUEM_EMULATED_DEVICE)
// CudaTuning reaches the kernels: the emulated runtime counts launches by kernel name, so
// each choice must show the kernel it names running, and the one it replaces not. (The
// ctest variants _untiled and _stats_rk2 would otherwise pass on the default kernels.)
TEST(CudaTuning, EachChoiceRunsTheKernelItNames) {
  REQUIRE_DEVICE();
  const int K = 64, D = 64;  // diag: tiled log joints and tiled statistics by default
  const cuem_test::Mixture mix = cuem_test::make_mixture(CovarianceType::diag, K, D, 3.0, 41);
  cuem_test::Dataset ds = cuem_test::sample_mixture(mix, 2013, 42);
  make_float32_exact(ds);
  const cuem::PreparedParams params = cuem::prepare(perturbed_model(mix, CovarianceType::diag, 0.0, 43));
  const std::vector<double> centres(ds.x.begin(), ds.x.begin() + static_cast<std::ptrdiff_t>(K) * D);
  struct Run {
    cuem::SufficientStats stats;
    std::map<std::string, unsigned long long> launches;  // by kernel-name fragment
  };
  const std::vector<std::string> kernels = {"17posteriors_kernel",         "tiled_log_joint_kernel",
                                            "diag_segment_stats_kernel",   "tiled_diag_stats_kernelIfLi4E",
                                            "tiled_diag_stats_kernelIfLi2E", "18hard_assign_kernel",
                                            "argmin_assign_kernel"};
  const auto run = [&](const cuem::CudaTuning& tuning) {
    std::map<std::string, unsigned long long> before;
    for (const std::string& k : kernels) before[k] = cuem::emu::launches_named(k.c_str());
    const auto gpu = cuem::cuda::make_primitives(ds.view(), {}, {0, Precision::float32, 0}, tuning);
    Run r{gpu->gaussian_estep(params), {}};
    gpu->lloyd_step(centres, K);
    for (const std::string& k : kernels) r.launches[k] = cuem::emu::launches_named(k.c_str()) - before[k];
    return r;
  };
  const Run tiled = run({});
  cuem::CudaTuning simple;
  simple.tiled = false;
  const Run untiled = run(simple);
  cuem::CudaTuning rk2;
  rk2.diag_stats_components = 2;
  const Run two = run(rk2);

  EXPECT_GT(tiled.launches.at("tiled_log_joint_kernel"), 0u);
  EXPECT_GT(tiled.launches.at("tiled_diag_stats_kernelIfLi4E"), 0u);
  EXPECT_GT(tiled.launches.at("argmin_assign_kernel"), 0u);
  EXPECT_EQ(tiled.launches.at("17posteriors_kernel") + tiled.launches.at("diag_segment_stats_kernel") +
                tiled.launches.at("tiled_diag_stats_kernelIfLi2E") + tiled.launches.at("18hard_assign_kernel"),
            0u);

  EXPECT_GT(untiled.launches.at("17posteriors_kernel"), 0u);
  EXPECT_GT(untiled.launches.at("diag_segment_stats_kernel"), 0u);
  EXPECT_GT(untiled.launches.at("18hard_assign_kernel"), 0u);
  EXPECT_EQ(untiled.launches.at("tiled_log_joint_kernel") + untiled.launches.at("tiled_diag_stats_kernelIfLi4E") +
                untiled.launches.at("tiled_diag_stats_kernelIfLi2E") + untiled.launches.at("argmin_assign_kernel"),
            0u);

  EXPECT_GT(two.launches.at("tiled_diag_stats_kernelIfLi2E"), 0u);
  EXPECT_EQ(two.launches.at("tiled_diag_stats_kernelIfLi4E"), 0u);

  // Other kernels, the same statistics up to rounding.
  compare_stats(untiled.stats, tiled.stats, 1e-5);
  compare_stats(two.stats, tiled.stats, 1e-5);
}

// The ctest variants _untiled and _stats_rk2 run this one too (their filters name it): the
// variable each sets must reach the kernels through tuning_from_environment, or the
// variant would test the default kernels again.
TEST(CudaTuning, TheVariantsVariableReachesTheKernels) {
  REQUIRE_DEVICE();
  const char* tiled_var = std::getenv("CUEM_CUDA_TILED");
  const char* rk_var = std::getenv("CUEM_CUDA_STATS_RK");
  const bool untiled = tiled_var && std::string(tiled_var) == "0";
  const bool rk2 = rk_var && std::string(rk_var) == "2";
  const int K = 64, D = 64;  // as above
  const cuem_test::Mixture mix = cuem_test::make_mixture(CovarianceType::diag, K, D, 3.0, 41);
  cuem_test::Dataset ds = cuem_test::sample_mixture(mix, 2013, 42);
  make_float32_exact(ds);
  const cuem::PreparedParams params = cuem::prepare(perturbed_model(mix, CovarianceType::diag, 0.0, 43));
  const unsigned long long simple = cuem::emu::launches_named("17posteriors_kernel");
  const unsigned long long two = cuem::emu::launches_named("tiled_diag_stats_kernelIfLi2E");
  const unsigned long long four = cuem::emu::launches_named("tiled_diag_stats_kernelIfLi4E");
  cuda_primitives(ds.view(), Precision::float32)->gaussian_estep(params);
  EXPECT_EQ(cuem::emu::launches_named("17posteriors_kernel") > simple, untiled);
  EXPECT_EQ(cuem::emu::launches_named("tiled_diag_stats_kernelIfLi2E") > two, !untiled && rk2);
  EXPECT_EQ(cuem::emu::launches_named("tiled_diag_stats_kernelIfLi4E") > four, !untiled && !rk2);
}
#endif

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
  o.cuda_tuning = tuning_from_environment();
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
        cuem::FitOptions o = fit_options(type, "cuda", p);
        std::vector<cuem::IterationInfo> trace;
        o.on_iteration = [&](const cuem::IterationInfo& info) {
          trace.push_back(info);
          return true;
        };
        const cuem::FitResult gpu = cuem::fit(ds.view(), o);
        EXPECT_NE(gpu.device.find("cuda:0"), std::string::npos) << gpu.device;
        // EM's monotonicity, checked here on the values the fit reported each iteration
        // (not by the library's own count of decreases).
        ASSERT_EQ(trace.size(), static_cast<std::size_t>(gpu.n_iter));
        EXPECT_TRUE(never_decreases(trace, p, D, ds.n));
        const double tol = p == Precision::float32 ? 1e-5 : 1e-9;
        EXPECT_NEAR(gpu.lower_bound, cpu.lower_bound, tol * std::abs(cpu.lower_bound));
        // The same optimum: the same components in the same order, each with its weight,
        // mean and covariance. Both fits stop once the bound changes by less than tol,
        // which leaves the parameters up to about sqrt(tol) (in units of the components'
        // spread) short of the optimum, and float32 rounding may move that stop by an
        // iteration; float64 fits take the same steps.
        const double model_tol = p == Precision::float32 ? 3 * std::sqrt(o.tol) : 100 * tol;
        EXPECT_TRUE(same_model(gpu.model, cpu.model, model_tol));
      }
}

// A bound on how far a device's mean log-likelihood of `m` over the data can be from the
// float64 value: each log p(x_n) = logsumexp_k lj_k moves by at most the responsibility-
// weighted bounds of its log joints (log_joint_scores, which include the rounding of the
// exponent), and the sum of N of them adds those of its partial sums: up to 32 points a
// thread in the device's precision, then a float64 tree of log2(N) levels, each a rounding
// of the mean |log p(x_n)|.
double mean_log_likelihood_rounding(const cuem::Model& m, const cuem_test::Dataset& ds, Precision p) {
  const Scores s = log_joint_scores(m, ds, p);
  double error = 0, magnitude = 0;
  for (std::size_t i = 0; i < ds.n; ++i) {
    const double lse = cuem_test::logsumexp(s.value.data() + i * s.k, static_cast<std::size_t>(s.k));
    for (int c = 0; c < s.k; ++c) error += std::exp(s.v(i, c) - lse) * s.e(i, c);
    magnitude += std::abs(lse);
  }
  const double N = static_cast<double>(ds.n);
  return error / N + (32 + std::log2(N)) * unit_roundoff(p) * magnitude / N;
}

// The trace's monotonicity checked outside the library. A fit stopped after t iterations
// holds the model of the t-th M-step (fits are bitwise reproducible, so its trace is a
// prefix of the longest one's); that model's mean log-likelihood, recomputed here in
// float64, must rise at every step, and the device's value of it (the next iteration's
// E-step) must agree to the device's rounding.
TEST(CudaFit, EachIterationRaisesTheLogLikelihoodRecomputedInFloat64) {
  REQUIRE_DEVICE();
  constexpr int T = 6;
  for (CovarianceType type : cuem_test::all_covariance_types()) {
    SCOPED_TRACE(cuem::to_string(type));
    const std::uint64_t seed = 111;
    const cuem_test::Dataset ds = small_problem(type, 20011, seed, 1e3);
    // Parameters off the generating ones (small_problem's mixture): the same start for
    // every fit, and no initialisation pass.
    const cuem::Model start = perturbed_model(cuem_test::make_mixture(type, 4, 3, 3.0, seed), type, 1e3, seed + 7);
    cuem::FitOptions o = fit_options(type, "cuda", Precision::float32);
    o.tol = 0;  // run every iteration asked for
    o.weights_init = start.weights;
    o.means_init = start.means;
    o.precisions_init = cuem_test::precisions_of(start);
    o.max_iter = T + 1;
    const cuem::FitResult whole = cuem::fit(ds.view(), o);
    ASSERT_EQ(whole.trace.size(), static_cast<std::size_t>(T + 1));
    double previous = cuem_test::mean_log_likelihood(start, ds.view());
    EXPECT_NEAR(whole.trace[0].mean_log_likelihood, previous,
                mean_log_likelihood_rounding(start, ds, Precision::float32));
    for (int t = 1; t <= T; ++t) {
      o.max_iter = t;
      const cuem::FitResult part = cuem::fit(ds.view(), o);
      ASSERT_EQ(part.trace.size(), static_cast<std::size_t>(t));
      for (int s = 0; s < t; ++s)
        ASSERT_EQ(part.trace[s].mean_log_likelihood, whole.trace[s].mean_log_likelihood) << "iteration " << s + 1;
      const double ll = cuem_test::mean_log_likelihood(part.model, ds.view());
      EXPECT_GT(ll, previous) << "the model after iteration " << t << " fell from " << previous << " to " << ll;
      EXPECT_NEAR(whole.trace[t].mean_log_likelihood, ll,
                  mean_log_likelihood_rounding(part.model, ds, Precision::float32))
          << "the device's log-likelihood of the model after iteration " << t;
      previous = ll;
    }
  }
}

// float32 data (read in place) and several restarts through the CUDA backend, against the
// CPU's fit of the same data with the same options. random_from_data starts each restart
// from points it draws by index alone, the same on both backends, so each restart must end
// at the CPU's optimum for it, the same restart must win, and the winner must be the CPU's
// model to the device's rounding.
TEST(CudaFit, Float32DataAndRestartsMatchTheCpu) {
  REQUIRE_DEVICE();
  constexpr int kRestarts = 4;
  for (CovarianceType type : cuem_test::all_covariance_types())
    for (Precision p : {Precision::float32, Precision::float64}) {
      // float64 arithmetic converts the float32 data by the same code for every type.
      if (p == Precision::float64 && (type == CovarianceType::tied || type == CovarianceType::spherical)) continue;
      SCOPED_TRACE(std::string(cuem::to_string(type)) + " " + cuem::to_string(p));
      // Blobs close enough for restarts to end at different optima, and a seed per
      // covariance type whose best restart is well ahead of the others.
      const cuem_test::Mixture mix = cuem_test::make_mixture(type, 4, 2, 2.5, 121);
      const cuem_test::Dataset ds = cuem_test::sample_mixture(mix, 8011, 122);
      std::vector<float> x32(ds.x.size());
      for (std::size_t i = 0; i < x32.size(); ++i) x32[i] = static_cast<float>(100.0 + ds.x[i]);
      const cuem::DataView view(x32.data(), ds.n, static_cast<std::size_t>(ds.d));
      cuem::FitOptions o = fit_options(type, "cpu", p);
      o.n_init = kRestarts;
      o.init = cuem::InitMethod::random_from_data;
      o.seed = type == CovarianceType::tied ? 5 : type == CovarianceType::diag ? 4 : 2;
      const cuem::FitResult cpu = cuem::fit(view, o);
      o.device = cuem::parse_device("cuda");
      const cuem::FitResult gpu = cuem::fit(view, o);
      EXPECT_NE(gpu.device.find("cuda:0"), std::string::npos) << gpu.device;

      // Each restart ends where the CPU's does. A restart that converges slowly stops where
      // its change falls below tol, which float32 rounding may move by many iterations,
      // and so short of its optimum by up to about 1e-4 of the bound.
      const double tol = p == Precision::float32 ? 1e-4 : 1e-9;
      const std::vector<double> want = restart_bounds(cpu.trace), got = restart_bounds(gpu.trace);
      ASSERT_EQ(want.size(), static_cast<std::size_t>(kRestarts));
      ASSERT_EQ(got.size(), want.size());
      for (int r = 0; r < kRestarts; ++r)
        EXPECT_NEAR(got[r], want[r], tol * std::abs(want[r])) << "restart " << r;
      // Not vacuous: the CPU's best restart is ahead of the next by far more than that.
      std::vector<double> ranked = want;
      std::sort(ranked.rbegin(), ranked.rend());
      ASSERT_GT(ranked[0] - ranked[1], 10 * tol * std::abs(ranked[0])) << "the restarts do not tell optima apart";
      EXPECT_EQ(gpu.best_init, cpu.best_init);
      EXPECT_EQ(gpu.lower_bound, got[gpu.best_init]);
      EXPECT_NEAR(gpu.lower_bound, cpu.lower_bound, (p == Precision::float32 ? 1e-5 : 1e-9) * std::abs(cpu.lower_bound));
      // The winner's model, as in ReachesTheCpuLowerBound.
      EXPECT_TRUE(same_model(gpu.model, cpu.model, p == Precision::float32 ? 3 * std::sqrt(o.tol) : 1e-7));
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
      const auto resident = cuda_primitives(ds.view(), Precision::float32);
      const auto chunked = cuda_primitives(ds.view(), Precision::float32, limit);
      const cuem::SufficientStats a = resident->gaussian_estep(params);
      const cuem::SufficientStats b = chunked->gaussian_estep(params);
      EXPECT_NE(resident->description().find("resident"), std::string::npos) << resident->description();
      EXPECT_NE(chunked->description().find("streamed"), std::string::npos) << chunked->description();
      EXPECT_NE(chunked->description().find("chunks of 8192 points"), std::string::npos) << chunked->description();
      EXPECT_TRUE(same_bits(a.nk, b.nk));
      EXPECT_TRUE(same_bits(a.s1, b.s1));
      EXPECT_TRUE(same_bits(a.s2, b.s2));
      EXPECT_EQ(a.log_likelihood, b.log_likelihood);
    }
}

// Chunks larger than one pinned staging run (8 MiB), converted on several host threads:
// every run of every chunk must reach the device in place, bitwise as the resident copy
// (the emulator's own test also bounds the pinned bytes; this one runs on a GPU too,
// where the staging buffers' event ordering is real).
TEST(CudaFit, StreamedChunksOfSeveralStagingRunsEqualResident) {
  REQUIRE_DEVICE();
  const int K = 4, D = 64;
  const cuem_test::Mixture mix = cuem_test::make_mixture(CovarianceType::diag, K, D, 3.0, 341);
  const cuem_test::Dataset ds = cuem_test::sample_mixture(mix, 200003, 342);
  const cuem::PreparedParams params = cuem::prepare(cuem_test::model_from_mixture(mix, CovarianceType::diag));
  const int threads_before = omp_get_max_threads();
  omp_set_num_threads(3);  // divides neither the runs nor the chunks
  for (Precision p : {Precision::float32, Precision::float64}) {
    SCOPED_TRACE(cuem::to_string(p));
    const std::size_t bytes = p == Precision::float32 ? 4 : 8;
    const auto resident = cuda_primitives(ds.view(), p);
    const auto streamed = cuda_primitives(ds.view(), p, std::size_t{40} << 20);
    const cuem::SufficientStats want = resident->gaussian_estep(params);
    for (int pass = 0; pass < 2; ++pass) {  // the second reuses the staging buffers
      const cuem::SufficientStats got = streamed->gaussian_estep(params);
      if (pass == 0) {  // the data are placed at the first E-step
        const std::string desc = streamed->description();
        const std::size_t at = desc.find("chunks of ");
        ASSERT_NE(at, std::string::npos) << desc;
        const std::size_t chunk = std::stoull(desc.substr(at + 10));
        ASSERT_GT(chunk * D * bytes, std::size_t{8} << 20) << "a chunk must span several staging runs: " << desc;
      }
      EXPECT_TRUE(same_bits(got.nk, want.nk)) << "pass " << pass;
      EXPECT_TRUE(same_bits(got.s1, want.s1)) << "pass " << pass;
      EXPECT_TRUE(same_bits(got.s2, want.s2)) << "pass " << pass;
      EXPECT_EQ(got.log_likelihood, want.log_likelihood) << "pass " << pass;
    }
    std::vector<double> lp_want(ds.n), lp_got(ds.n, std::nan(""));
    resident->posteriors(params, 0, ds.n, lp_want.data(), nullptr);
    streamed->posteriors(params, 0, ds.n, lp_got.data(), nullptr);
    EXPECT_TRUE(same_bits(lp_got, lp_want));
  }
  omp_set_num_threads(threads_before);
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

// Memory the primitives hold: device memory in use (cuda/device_checks.hpp) and, on the
// emulated device, pinned host memory (a GPU's runtime does not report it).
struct Held {
  std::size_t device = 0;
  std::size_t pinned = 0;
};
Held held() {
  Held h;
  h.device = cuem::cuda::device_bytes_in_use(0);
#if defined(CUEM_EMULATED_DEVICE)
  h.pinned = cuem::emu::pinned_bytes();
#endif
  return h;
}

TEST(CudaFit, RepeatedFitsDoNotLeakDeviceMemory) {
  REQUIRE_DEVICE();
  const cuem_test::Dataset ds = small_problem(CovarianceType::diag, 100003, 51);
  cuem::FitOptions o = fit_options(CovarianceType::diag, "cuda", Precision::float32);
  o.max_iter = 3;
  // A resident and a streamed fit first: on a GPU the context and the lazily loaded
  // kernels then take what they keep, and what is in use stays the same from here on.
  for (const std::size_t limit : {std::size_t{0}, std::size_t{3} << 20}) {
    o.device_memory_limit = limit;
    cuem::fit(ds.view(), o);
  }
  const Held before = held();
#if defined(CUEM_EMULATED_DEVICE)
  ASSERT_EQ(before.device, 0u);  // the emulated device has no context: nothing is left
  ASSERT_EQ(before.pinned, 0u);
#endif
  for (int i = 0; i < 10; ++i) {
    o.device_memory_limit = i % 2 ? 0 : (std::size_t{3} << 20);  // resident and streamed
    cuem::fit(ds.view(), o);
    const Held left = held();
    ASSERT_EQ(left.device, before.device) << "fit " << i;
    ASSERT_EQ(left.pinned, before.pinned) << "fit " << i;
  }
  // A failing fit releases what it took too.
  o.device_memory_limit = 4096;
  EXPECT_THROW(cuem::fit(ds.view(), o), cuem::DeviceError);
  EXPECT_EQ(held().device, before.device);
  EXPECT_EQ(held().pinned, before.pinned);
}

TEST(CudaFit, InterruptStopsTheFitAndFreesItsWork) {
  REQUIRE_DEVICE();
  const cuem_test::Dataset ds = small_problem(CovarianceType::full, 20000, 61);
  cuem::FitOptions o = fit_options(CovarianceType::full, "cuda", Precision::float32);
  EXPECT_TRUE(std::isfinite(cuem::fit(ds.view(), o).lower_bound));  // and warms up (above)
  const Held before = held();
  int polls = 0;
  o.interrupted = [&] { return ++polls > 3; };
  EXPECT_THROW(cuem::fit(ds.view(), o), cuem::Interrupted);
  EXPECT_EQ(held().device, before.device);
  EXPECT_EQ(held().pinned, before.pinned);
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
        cuem::CpuPrimitives cpu(ds.view());
        cpu.posteriors(params, begin, end, lp_cpu.data(), r_cpu.data());
        const auto gpu = cuda_primitives(ds.view(), p);
        gpu->posteriors(params, begin, end, lp_gpu.data(), r_gpu.data());
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
    const auto resident = cuda_primitives(ds.view(), Precision::float32);
    const cuem::SufficientStats want = resident->gaussian_estep(params);
    // Room for about one 8192-point chunk beside the fixed buffers: streamed.
    const std::size_t per_point = (K + 1 + 2 + 2 * 2 + 2 * D) * sizeof(float) + 8;
    const std::size_t limit = (std::size_t{3} << 19) + 10000 * per_point;
    const auto streamed = cuda_primitives(ds.view(), Precision::float32, limit);
    const cuem::SufficientStats got = streamed->gaussian_estep(params);
    ASSERT_NE(streamed->description().find("streamed"), std::string::npos) << streamed->description();
    EXPECT_TRUE(same_bits(got.nk, want.nk));
    EXPECT_TRUE(same_bits(got.s1, want.s1));
    EXPECT_TRUE(same_bits(got.s2, want.s2));
    EXPECT_EQ(got.log_likelihood, want.log_likelihood);
    std::vector<double> resp(ds.n * static_cast<std::size_t>(K));
    resident->posteriors(params, 0, ds.n, nullptr, resp.data());
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
    // The CPU's labels against the float64 log joints first: the reference is sound.
    EXPECT_TRUE(labels_match_up_to_ties(cuem::predict(m, ds.view()), log_joint_scores(m, ds, Precision::float64)));
    cuem::EvaluateOptions gpu;
    gpu.device = cuem::parse_device("cuda");
    for (Precision p : {Precision::float32, Precision::float64}) {
      SCOPED_TRACE(cuem::to_string(p));
      gpu.precision = p;
      // Labels differ from the float64 argmax only at near ties of the device's precision.
      EXPECT_TRUE(labels_match_up_to_ties(cuem::predict(m, ds.view(), gpu), log_joint_scores(m, ds, p)));
    }
    gpu.precision = Precision::float32;
    EXPECT_NEAR(cuem::score(m, ds.view(), gpu), cuem::score(m, ds.view()), 1e-5 * std::abs(cuem::score(m, ds.view())));
  }
}

// The generic composition on the device (posteriors formed into the responsibility
// buffer, then the statistics kernel about a given shift) against the fused E-step:
// the fused kernel (D <= 2), the deferred normalisation (diag, K > 64), full and tied.
TEST(CudaPrimitives, WeightedStatsOfThePosteriorsAgreeWithTheEstep) {
  REQUIRE_DEVICE();
  struct Case {
    CovarianceType type;
    int D, K;
  };
  for (const Case c : {Case{CovarianceType::full, 2, 3}, Case{CovarianceType::tied, 5, 4},
                       Case{CovarianceType::diag, 9, 70}, Case{CovarianceType::spherical, 3, 5}})
    for (Precision p : {Precision::float32, Precision::float64}) {
      SCOPED_TRACE(std::string(cuem::to_string(c.type)) + " D " + std::to_string(c.D) + " K " + std::to_string(c.K) +
                   " " + cuem::to_string(p));
      const std::uint64_t seed = 300u + static_cast<std::uint64_t>(c.D * 7 + c.K);
      const cuem_test::Mixture mix = cuem_test::make_mixture(c.type, c.K, c.D, 3.0, seed);
      cuem_test::Dataset ds = cuem_test::sample_mixture(mix, 20011, seed + 1);
      for (double& v : ds.x) v += 100.0;
      if (p == Precision::float32) make_float32_exact(ds);
      const cuem::Model model = perturbed_model(mix, c.type, 100.0, seed + 2);
      const cuem::PreparedParams params = cuem::prepare(model);
      const auto gpu = cuda_primitives(ds.view(), p);
      const cuem::SufficientStats want = gpu->gaussian_estep(params);
      cuem::SufficientStats got =
          gpu->weighted_stats(cuem::Responsibilities::posterior(params), c.type, c.K, model.means);
      EXPECT_EQ(got.log_likelihood, 0.0);
      EXPECT_EQ(got.n_points, ds.n);
      EXPECT_EQ(got.weight, static_cast<double>(ds.n));
      // The same rounding of the shift as the E-step's.
      EXPECT_TRUE(same_bits(got.shift, want.shift));
      got.log_likelihood = want.log_likelihood;
      compare_stats(got, want, p == Precision::float32 ? 1e-5 : 1e-10);
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
      cuem::CpuPrimitives cpu(ds.view());
      const auto gpu = cuda_primitives(ds.view(), p);
      const double* c0 = ds.row(17);
      const double* c1 = ds.row(20000);
      const double* c2 = ds.row(5);
      const auto vc = cpu.make_point_values();
      const auto vg = gpu->make_point_values();
      const double reset = cpu.closest(*vc, c0, ClosestMode::reset);
      EXPECT_NEAR(gpu->closest(*vg, c0, ClosestMode::reset), reset, tol * reset);
      const double potential = cpu.closest(*vc, c1, ClosestMode::potential);
      EXPECT_NEAR(gpu->closest(*vg, c1, ClosestMode::potential), potential, tol * potential);
      const double want = cpu.closest(*vc, c2, ClosestMode::update);
      EXPECT_NEAR(gpu->closest(*vg, c2, ClosestMode::update), want, tol * want);
      // The sampled index is where the running sum of the closest distances passes r: the
      // device's may differ from the float64 one only where that sum is within the
      // device's rounding of r (and so few indices qualify that the check has teeth).
      const RunningSum running = closest_running_sum(ds, {c0, c2}, p);
      for (double frac : {0.0, 0.1, 0.5, 0.9, 0.999999}) {
        const double r = frac * want;
        const std::size_t b = cpu.sample_point(*vc, r);
        EXPECT_TRUE(running.may_cross_at(b, r)) << frac << ": the CPU's index " << b;
        const std::size_t a = gpu->sample_point(*vg, r);
        ASSERT_LT(a, ds.n);
        EXPECT_TRUE(running.may_cross_at(a, r)) << frac << ": index " << a << " (the CPU's " << b << "), running sum "
                                                << running.sum[a] << " +- " << running.error[a] << " against " << r;
        std::size_t candidates = 0;
        for (std::size_t i = b > 8 ? b - 8 : 0; i < std::min(ds.n, b + 9); ++i) candidates += running.may_cross_at(i, r);
        EXPECT_LE(candidates, 2u) << frac << ": the rounding bound is too loose";
      }
      // Lloyd steps from the same centres: the counts of the float64 nearest-centre labels,
      // give or take the near ties each centre is a candidate at.
      std::vector<double> centers(mix.means);
      for (double& v : centers) v += 1e3 + 0.5;
      const Scores nearest = distance_scores(ds, centers, mix.k, p);
      const std::vector<double> counts = reference_counts(nearest);
      const std::vector<std::size_t> allow = tie_allowance(nearest);
      const cuem::LloydStep lc = cpu.lloyd_step(centers, mix.k);
      const cuem::LloydStep lg = gpu->lloyd_step(centers, mix.k);
      double total = 0;
      for (int k = 0; k < mix.k; ++k) {
        total += lg.counts[k];
        EXPECT_NEAR(lg.counts[k], counts[k], static_cast<double>(allow[k])) << "k " << k;
      }
      EXPECT_EQ(total, static_cast<double>(ds.n));
      for (int k = 0; k < mix.k; ++k) {
        double extent = 0;  // a flip moves the new centre by |x - c| / N_k at most
        for (std::size_t i = 0; i < ds.n; ++i)
          for (int d = 0; d < D; ++d)
            extent = std::max(extent, std::abs(ds.x[i * D + d] - lc.centers[static_cast<std::size_t>(k) * D + d]));
        const double flips = static_cast<double>(allow[k]) * extent / std::max(1.0, counts[k]);
        for (int d = 0; d < D; ++d) {
          const double want_c = lc.centers[static_cast<std::size_t>(k) * D + d];
          EXPECT_NEAR(lg.centers[static_cast<std::size_t>(k) * D + d], want_c,
                      (p == Precision::float64 ? 1e-12 : 1e-4) * std::max(std::abs(want_c), 1.0) + flips)
              << "k " << k << ", d " << d;
        }
      }
      EXPECT_NEAR(lg.inertia, lc.inertia, 10 * tol * lc.inertia);
      std::vector<int> lab_g(ds.n);
      gpu->nearest_labels(lc.centers, mix.k, 0, ds.n, lab_g.data());
      EXPECT_TRUE(labels_match_up_to_ties(lab_g, distance_scores(ds, lc.centers, mix.k, p)));
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
    const auto whole = cuda_primitives(ds.view(), p);
    const auto streamed = cuda_primitives(ds.view(), p, limit);
    const double* c0 = ds.row(3);
    const double* c1 = ds.row(29000);
    const double* c2 = ds.row(12345);
    const auto vw = whole->make_point_values();
    const auto vs = streamed->make_point_values();
    const double r0 = whole->closest(*vw, c0, ClosestMode::reset);
    EXPECT_GT(r0, 0.0);
    EXPECT_EQ(streamed->closest(*vs, c0, ClosestMode::reset), r0);
    EXPECT_NE(streamed->description().find("streamed"), std::string::npos) << streamed->description();
    EXPECT_NE(whole->description().find("resident"), std::string::npos) << whole->description();
    EXPECT_EQ(streamed->closest(*vs, c1, ClosestMode::potential), whole->closest(*vw, c1, ClosestMode::potential));
    const double r2 = whole->closest(*vw, c2, ClosestMode::update);
    EXPECT_LT(r2, r0);
    EXPECT_EQ(streamed->closest(*vs, c2, ClosestMode::update), r2);
    for (double frac : {0.0, 0.3, 0.7, 0.999})
      EXPECT_EQ(streamed->sample_point(*vs, frac * r2), whole->sample_point(*vw, frac * r2)) << frac;
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

// The k-means initialisation's two passes on the device (two_pass_stats of the nearest
// centres)
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

      cuem::CpuPrimitives cpu(ds.view());
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
        const auto gpu = cuda_primitives(ds.view(), p);
        const cuem::SufficientStats got =
            cuem::two_pass_stats(*gpu, cuem::Responsibilities::nearest_centre(centers), type, K);
        const double tol = p == Precision::float32 ? 1e-5 : 1e-10;
        // No point of these data lies within the device's rounding of a tie between two
        // centres (measured here on the float64 distances, whatever the device), so the
        // partition is determined: the counts must be exact, and the statistics those of
        // the reference partition.
        ASSERT_EQ(near_ties(distance_scores(ds, centers, K, p)), 0u);
        for (int k = 0; k < K; ++k) EXPECT_EQ(got.nk[k], want.nk[k]) << "N_k, k = " << k;
        // The device's shift is the means rounded to S; compare about the host's.
        compare_stats(got, want, tol);
      }
    }
}

// The 'random' initialisation's two passes on the device (two_pass_stats of the draws) against
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
          const auto gpu = cuda_primitives(ds.view(), p, limit);
          const cuem::SufficientStats got =
              cuem::two_pass_stats(*gpu, cuem::Responsibilities::random_draws(seed), type, K);
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
  cuem::CpuPrimitives cpu(ds.view());
  const double want = cpu.mean_feature_variance();
  for (Precision p : {Precision::float32, Precision::float64}) {
    const auto gpu = cuda_primitives(ds.view(), p);
    const double got = gpu->mean_feature_variance();
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
