// The float64 CPU primitives' vector kernels (src/cpu/cpu_kernels.*) and statistics
// passes (gaussian_estep, weighted_stats, two_pass_stats) against plain textbook loops,
// and their independence of the thread count: every covariance type,
// D from 1 (one padded vector) to 33 (several vectors and a ragged tile), K from 1 to 64
// (several chunks), N not a multiple of the 16-row blocks or the 64-row sub-blocks,
// float32 input, an outlier whose other responsibilities underflow, offset data.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "core/point_math.hpp"
#include "core/prepared_params.hpp"
#include "core/rng.hpp"
#include "core/sufficient_stats.hpp"
#include "cpu/cpu_kernels.hpp"
#include "cpu/cpu_primitives.hpp"
#include "engine/primitives.hpp"
#include "stats_reference.hpp"
#include "test_util.hpp"

namespace {

using cuem::CovarianceType;

struct Shape {
  int d;
  int k;
  std::size_t n;
};

// Enough work in each that worth_threads lets the threads in.
const Shape kShapes[] = {{1, 4, 9001}, {2, 8, 3001}, {5, 3, 3001}, {9, 2, 2001},
                         {16, 16, 301}, {33, 5, 257}, {3, 64, 9001}, {1, 1, 40001}, {4, 6, 2049}};

// Statistics about the model's means from the reference responsibilities of test_util.
cuem::SufficientStats reference_stats(const cuem::Model& m, const cuem_test::Dataset& ds) {
  const int K = m.n_components, D = m.n_features;
  const std::vector<double> resp = cuem_test::responsibilities(m, ds.view());
  const std::vector<double> ll = cuem_test::log_likelihoods(m, ds.view());
  cuem::SufficientStats s = cuem::SufficientStats::zeros(m.covariance_type, K, D, m.means);
  for (std::size_t p = 0; p < ds.n; ++p) {
    s.log_likelihood += ll[p];
    for (int k = 0; k < K; ++k) cuem_test::add_pair_stats(s, m, ds.row(p), k, resp[p * K + k]);
  }
  return s;
}

// Statistics about `shift` (K x D) of responsibilities g (N x K), in `type`'s layout.
cuem::SufficientStats plain_stats(CovarianceType type, int K, const cuem_test::Dataset& ds,
                                  const std::vector<double>& g, const std::vector<double>& shift) {
  const int D = ds.d;
  cuem::SufficientStats s = cuem::SufficientStats::zeros(type, K, D, shift);
  const bool full = type == CovarianceType::full || type == CovarianceType::tied;
  const std::size_t DD = static_cast<std::size_t>(D) * D;
  for (std::size_t p = 0; p < ds.n; ++p)
    for (int k = 0; k < K; ++k) {
      const double w = g[p * K + k];
      s.nk[k] += w;
      for (int i = 0; i < D; ++i) {
        const double di = ds.row(p)[i] - shift[k * D + i];
        s.s1[k * D + i] += w * di;
        if (!full) {
          s.s2[k * D + i] += w * di * di;
          continue;
        }
        double* row = s.s2.data() + (type == CovarianceType::full ? k * DD : 0) + i * D;
        for (int j = i; j < D; ++j) row[j] += w * di * (ds.row(p)[j] - shift[k * D + j]);
      }
    }
  return s;
}

// The two passes written out: each part's mean from g (0 for a part without mass), then
// the statistics about the means.
cuem::SufficientStats plain_two_pass(CovarianceType type, int K, const cuem_test::Dataset& ds,
                                     const std::vector<double>& g) {
  const int D = ds.d;
  std::vector<double> means(static_cast<std::size_t>(K) * D, 0.0);
  for (int k = 0; k < K; ++k) {
    double nk = 0;
    std::vector<double> sum(D, 0.0);
    for (std::size_t p = 0; p < ds.n; ++p) {
      nk += g[p * K + k];
      for (int i = 0; i < D; ++i) sum[i] += g[p * K + k] * ds.row(p)[i];
    }
    if (nk > 0)
      for (int i = 0; i < D; ++i) means[k * D + i] = sum[i] / nk;
  }
  return plain_stats(type, K, ds, g, means);
}

// One-hot responsibilities of the nearest centre (the lowest index on ties).
std::vector<double> nearest_one_hot(const cuem_test::Dataset& ds, const std::vector<double>& centres, int K) {
  std::vector<double> g(ds.n * K, 0.0);
  for (std::size_t p = 0; p < ds.n; ++p) {
    int best = 0;
    double best_d = INFINITY;
    for (int k = 0; k < K; ++k) {
      double d2 = 0;
      for (int i = 0; i < ds.d; ++i) d2 += (ds.row(p)[i] - centres[k * ds.d + i]) * (ds.row(p)[i] - centres[k * ds.d + i]);
      if (d2 < best_d) {
        best_d = d2;
        best = k;
      }
    }
    g[p * K + best] = 1.0;
  }
  return g;
}

// The 'random' start's draws: uniform(seed, kRandomResp, n K + k), normalised per point.
std::vector<double> random_draws(std::size_t n, int K, std::uint64_t seed) {
  std::vector<double> g(n * K);
  for (std::size_t p = 0; p < n; ++p) {
    double sum = 0;
    for (int k = 0; k < K; ++k) sum += g[p * K + k] = cuem::rng::uniform(seed, cuem::rng::kRandomResp, p * K + k);
    for (int k = 0; k < K; ++k) g[p * K + k] /= sum;
  }
  return g;
}

// A model of the mixture that generated the data, moved a little so that it is not exact.
cuem::Model perturbed_model(const cuem_test::Mixture& mix, CovarianceType type) {
  cuem::Model m = cuem_test::model_from_mixture(mix, type);
  for (std::size_t i = 0; i < m.means.size(); ++i) m.means[i] += 0.1 * std::sin(1.3 * static_cast<double>(i));
  return m;
}

cuem::SufficientStats estep_with_threads(cuem::DataView X, const cuem::PreparedParams& p, int threads) {
  const int previous = omp_get_max_threads();
  omp_set_num_threads(threads);
  cuem::CpuPrimitives backend(X);
  cuem::SufficientStats s = backend.gaussian_estep(p);
  omp_set_num_threads(previous);
  return s;
}

void expect_bitwise_equal(const cuem::SufficientStats& a, const cuem::SufficientStats& b) {
  EXPECT_EQ(a.nk, b.nk);
  EXPECT_EQ(a.s1, b.s1);
  EXPECT_EQ(a.s2, b.s2);
  EXPECT_EQ(a.log_likelihood, b.log_likelihood);
  EXPECT_EQ(a.n_points, b.n_points);
}

class CpuKernels : public testing::TestWithParam<std::tuple<CovarianceType, Shape>> {
 protected:
  void SetUp() override {
    type = std::get<0>(GetParam());
    shape = std::get<1>(GetParam());
    const cuem_test::Mixture mix = cuem_test::make_mixture(type, shape.k, shape.d, 3.0, 1000 + shape.d * 7 + shape.k);
    ds = cuem_test::sample_mixture(mix, shape.n, 2000 + shape.d);
    // An outlier far from every component: all but one responsibility underflow to 0.
    for (int i = 0; i < shape.d; ++i) ds.x[5 * static_cast<std::size_t>(shape.d) + i] = 60.0 + i;
    model = perturbed_model(mix, type);
    SCOPED_TRACE("seeds 1000 + 7 d + k (mixture), 2000 + d (data)");
  }
  CovarianceType type{};
  Shape shape{};
  cuem_test::Dataset ds;
  cuem::Model model;
};

TEST_P(CpuKernels, StatisticsMatchTextbookLoops) {
  const cuem::SufficientStats ref = reference_stats(model, ds);
  const cuem::SufficientStats got = estep_with_threads(ds.view(), cuem::prepare(model), 2);
  ASSERT_GT(cuem_test::max_abs(got.s2), 0.0);
  ASSERT_GT(cuem_test::max_abs(got.nk), 0.0);
  const double n = static_cast<double>(ds.n);
  EXPECT_LT(cuem_test::max_rel_diff(got.nk, ref.nk, 1e-3 * n), 1e-12);
  EXPECT_LT(cuem_test::max_rel_diff(got.s1, ref.s1, cuem_test::max_abs(ref.s1)), 1e-11);
  EXPECT_LT(cuem_test::max_rel_diff(got.s2, ref.s2, cuem_test::max_abs(ref.s2)), 1e-11);
  EXPECT_NEAR(got.log_likelihood, ref.log_likelihood, 1e-12 * std::abs(ref.log_likelihood));
  EXPECT_EQ(got.n_points, ds.n);
}

TEST_P(CpuKernels, EvaluateMatchesTextbookPosteriors) {
  std::vector<double> resp(ds.n * shape.k), log_prob(ds.n);
  cuem::CpuPrimitives(ds.view()).posteriors(cuem::prepare(model), 0, ds.n, log_prob.data(), resp.data());
  const std::vector<double> ref_resp = cuem_test::responsibilities(model, ds.view());
  const std::vector<double> ref_ll = cuem_test::log_likelihoods(model, ds.view());
  EXPECT_LT(cuem_test::max_rel_diff(resp, ref_resp), 1e-12);
  EXPECT_LT(cuem_test::max_rel_diff(log_prob, ref_ll), 1e-12);
  for (std::size_t p = 0; p < ds.n; ++p) {
    double sum = 0;
    for (int k = 0; k < shape.k; ++k) {
      ASSERT_GE(resp[p * shape.k + k], 0.0) << "point " << p;
      sum += resp[p * shape.k + k];
    }
    ASSERT_NEAR(sum, 1.0, 1e-14) << "point " << p;
  }
}

TEST_P(CpuKernels, BitwiseTheSameForAnyThreadCount) {
  const cuem::PreparedParams p = cuem::prepare(model);
  const cuem::SufficientStats one = estep_with_threads(ds.view(), p, 1);
  for (int threads : {2, 3, 7}) {
    SCOPED_TRACE(std::to_string(threads) + " threads");
    expect_bitwise_equal(estep_with_threads(ds.view(), p, threads), one);
  }
  // Posteriors over a range that starts off the block grid, split differently.
  const std::size_t begin = 3, end = ds.n - 2;
  std::vector<double> r1((end - begin) * shape.k), l1(end - begin), r7 = r1, l7 = l1;
  const int previous = omp_get_max_threads();
  omp_set_num_threads(1);
  cuem::CpuPrimitives(ds.view()).posteriors(p, begin, end, l1.data(), r1.data());
  omp_set_num_threads(7);
  cuem::CpuPrimitives(ds.view()).posteriors(p, begin, end, l7.data(), r7.data());
  omp_set_num_threads(previous);
  EXPECT_EQ(r1, r7);
  EXPECT_EQ(l1, l7);
}

TEST_P(CpuKernels, Float32InputEqualsItsFloat64Conversion) {
  std::vector<float> xf(ds.x.begin(), ds.x.end());
  const std::vector<double> xd(xf.begin(), xf.end());
  const cuem::PreparedParams p = cuem::prepare(model);
  const cuem::DataView Xf(xf.data(), ds.n, static_cast<std::size_t>(shape.d));
  const cuem::DataView Xd(xd.data(), ds.n, static_cast<std::size_t>(shape.d));
  expect_bitwise_equal(estep_with_threads(Xf, p, 2), estep_with_threads(Xd, p, 2));
}

TEST_P(CpuKernels, OffsetDataGivesTheSameScatter) {
  // Data and means moved by 1e4: the statistics about the means barely change; an
  // expansion about zero would lose ~8 digits of the scatter.
  cuem_test::Dataset moved = ds;
  for (double& v : moved.x) v += 1e4;
  cuem::Model m2 = model;
  for (double& v : m2.means) v += 1e4;
  const cuem::SufficientStats a = estep_with_threads(ds.view(), cuem::prepare(model), 2);
  const cuem::SufficientStats b = estep_with_threads(moved.view(), cuem::prepare(m2), 2);
  EXPECT_LT(cuem_test::max_rel_diff(b.s2, a.s2, cuem_test::max_abs(a.s2)), 1e-9);
  EXPECT_LT(cuem_test::max_rel_diff(b.nk, a.nk, 1.0), 1e-9);
}

// The generic composition (posteriors as the responsibilities of weighted_stats) is the
// fused E-step's statistics, bitwise: on the CPU the E-step is that composition.
TEST_P(CpuKernels, WeightedStatsOfThePosteriorsEqualTheEstep) {
  const cuem::PreparedParams p = cuem::prepare(model);
  cuem::CpuPrimitives prims(ds.view());
  const cuem::SufficientStats estep = prims.gaussian_estep(p);
  cuem::SufficientStats got =
      prims.weighted_stats(cuem::Responsibilities::posterior(p), type, shape.k, model.means);
  ASSERT_GT(cuem_test::max_abs(got.s2), 0.0);
  EXPECT_EQ(got.log_likelihood, 0.0);
  EXPECT_EQ(got.shift, model.means);
  got.log_likelihood = estep.log_likelihood;
  expect_bitwise_equal(got, estep);
  EXPECT_EQ(got.weight, static_cast<double>(ds.n));
  EXPECT_EQ(estep.weight, static_cast<double>(ds.n));
}

// two_pass_stats on the CPU against the two passes written out in float64, for each
// source of responsibilities: nearest centres (one made empty), the 'random' draws and
// the posteriors.
TEST_P(CpuKernels, TwoPassStatsMatchAPlainLoop) {
  const int K = shape.k, D = shape.d;
  cuem::CpuPrimitives prims(ds.view());
  std::vector<double> centres(model.means);
  if (K > 1)
    for (int i = 0; i < D; ++i) centres[(K - 1) * D + i] += 1e6;  // no point is nearest to it
  const cuem::PreparedParams p = cuem::prepare(model);
  const std::uint64_t seed = 11;
  const std::vector<std::pair<cuem::Responsibilities, std::vector<double>>> sources = {
      {cuem::Responsibilities::nearest_centre(centres), nearest_one_hot(ds, centres, K)},
      {cuem::Responsibilities::random_draws(seed), random_draws(ds.n, K, seed)},
      {cuem::Responsibilities::posterior(p), cuem_test::responsibilities(model, ds.view())}};
  for (const auto& [g, ref_g] : sources) {
    SCOPED_TRACE("responsibilities kind " + std::to_string(static_cast<int>(g.kind)));
    const cuem::SufficientStats want = plain_two_pass(type, K, ds, ref_g);
    const cuem::SufficientStats got = cuem::two_pass_stats(prims, g, type, K);
    ASSERT_GT(cuem_test::max_abs(want.s2), 0.0);
    EXPECT_EQ(got.log_likelihood, 0.0);
    EXPECT_EQ(got.n_points, ds.n);
    EXPECT_LT(cuem_test::max_rel_diff(got.shift, want.shift, cuem_test::max_abs(want.shift) + 1.0), 1e-12);
    EXPECT_LT(cuem_test::max_rel_diff(got.nk, want.nk, 1e-3 * static_cast<double>(ds.n)), 1e-12);
    EXPECT_LT(cuem_test::max_rel_diff(got.s1, want.s1, cuem_test::max_abs(want.s2) + 1.0), 1e-11);
    EXPECT_LT(cuem_test::max_rel_diff(got.s2, want.s2, cuem_test::max_abs(want.s2)), 1e-11);
    if (g.kind == cuem::Responsibilities::Kind::nearest && K > 1) {
      EXPECT_EQ(got.nk[K - 1], 0.0);
      for (int i = 0; i < D; ++i) EXPECT_EQ(got.shift[(K - 1) * D + i], 0.0);
    }
  }
}

std::string shape_name(const testing::TestParamInfo<CpuKernels::ParamType>& info) {
  const Shape s = std::get<1>(info.param);
  return std::string(cuem::to_string(std::get<0>(info.param))) + "_d" + std::to_string(s.d) + "_k" +
         std::to_string(s.k) + "_n" + std::to_string(s.n);
}

// The 32-row full log joints against two calls of the 16-row kernel: the same bits for
// every row, including ragged column blocks (D not a multiple of 4) and one dimension.
// Full log joints written out: c_k - (D log 2 pi + |(x - mu_k) P_k|^2) / 2, P_k upper
// triangular in the kernels' padded layout (K x D x pad4(D)).
double reference_full_log_joint(const double* x, int D, int k, const std::vector<double>& means,
                                const std::vector<double>& factors, double constant) {
  const int Dp = cuem::cpu::pad4(D);
  double maha = 0.0;
  for (int j = 0; j < D; ++j) {
    double y = 0.0;
    for (int i = 0; i <= j; ++i)
      y += (x[i] - means[static_cast<std::size_t>(k) * D + i]) *
           factors[(static_cast<std::size_t>(k) * D + i) * Dp + j];
    maha += y * y;
  }
  return constant - 0.5 * (D * cuem::math::kLog2Pi + maha);
}

// The two full kernels (32 rows for the row-block pass, 16 for the missing-data path)
// against the loop above, and a row's bits independent of the lane it takes and of the
// rows beside it: the row-block pass relies on that, not on the two kernels agreeing
// (which depends on how the compiler contracts their products and sums).
TEST(CpuKernelsFull, MatchAPlainLoopAndDoNotDependOnTheLane) {
  for (int D : {1, 3, 4, 5, 17, 33, 64}) {
    for (int K : {1, 3}) {
      SCOPED_TRACE("D " + std::to_string(D) + " K " + std::to_string(K));
      const int Dp = cuem::cpu::pad4(D);
      std::mt19937_64 gen(static_cast<std::uint64_t>(100 * D + K));
      std::normal_distribution<double> normal;
      std::uniform_real_distribution<double> uniform;
      std::vector<double> means(static_cast<std::size_t>(K) * D), factors(static_cast<std::size_t>(K) * D * Dp, 0.0),
          constants(K);
      for (double& m : means) m = normal(gen);
      for (int k = 0; k < K; ++k) {
        constants[k] = normal(gen);
        for (int i = 0; i < D; ++i)
          for (int j = i; j < D; ++j)
            factors[(static_cast<std::size_t>(k) * D + i) * Dp + j] = i == j ? 1.0 + uniform(gen) : 0.3 * normal(gen);
      }
      std::vector<double> panels(static_cast<std::size_t>(K) * cuem::cpu::full_panel_size(D));
      cuem::cpu::pack_full_panels(factors.data(), D, K, panels.data());
      // 64 rows; block s holds rows s .. s + 31 (mod 64) in lanes 0..31.
      std::vector<double> rows(static_cast<std::size_t>(64) * D);
      for (double& x : rows) x = 3.0 * normal(gen);
      auto block32 = [&](int s) {
        std::vector<double> xt(static_cast<std::size_t>(D) * 32), yt(xt.size()), lj0(K * 16), lj1(K * 16);
        for (int d = 0; d < D; ++d)
          for (int r = 0; r < 32; ++r) xt[d * 32 + r] = rows[static_cast<std::size_t>((s + r) % 64) * D + d];
        cuem::cpu::log_joints_full32(xt.data(), D, K, means.data(), panels.data(), constants.data(), yt.data(),
                                     lj0.data(), lj1.data());
        std::vector<double> out(static_cast<std::size_t>(64) * K, std::nan(""));  // row-major, rows of the block only
        for (int r = 0; r < 32; ++r)
          for (int k = 0; k < K; ++k)
            out[static_cast<std::size_t>((s + r) % 64) * K + k] = (r < 16 ? lj0 : lj1)[k * 16 + r % 16];
        return out;
      };
      const std::vector<double> first = block32(0);
      for (int s : {5, 16, 21, 40}) {
        const std::vector<double> moved = block32(s);
        for (int r = 0; r < 64; ++r)
          for (int k = 0; k < K; ++k) {
            const std::size_t i = static_cast<std::size_t>(r) * K + k;
            if (!std::isnan(first[i]) && !std::isnan(moved[i])) {
              ASSERT_EQ(moved[i], first[i]) << "row " << r << " k " << k << " block start " << s;
            }
          }
      }
      for (int s : {0, 32}) {
        const std::vector<double> got = block32(s);
        std::vector<double> xt(static_cast<std::size_t>(D) * 16), yt(xt.size()), lj(K * 16);
        for (int d = 0; d < D; ++d)
          for (int r = 0; r < 16; ++r) xt[d * 16 + r] = rows[static_cast<std::size_t>(s + r) * D + d];
        cuem::cpu::log_joints_full(xt.data(), D, K, means.data(), factors.data(), constants.data(), yt.data(),
                                   lj.data());
        for (int r = 0; r < 32; ++r)
          for (int k = 0; k < K; ++k) {
            const double ref = reference_full_log_joint(&rows[static_cast<std::size_t>(s + r) * D], D, k, means,
                                                        factors, constants[k]);
            const double v32 = got[static_cast<std::size_t>(s + r) * K + k];
            ASSERT_TRUE(std::isfinite(v32));
            EXPECT_NEAR(v32, ref, 1e-12 * std::abs(ref)) << "32 rows: row " << s + r << " k " << k;
            if (r < 16) {
              EXPECT_NEAR(lj[k * 16 + r], ref, 1e-12 * std::abs(ref)) << "16 rows: row " << s + r << " k " << k;
            }
          }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllTypesAndShapes, CpuKernels,
                         testing::Combine(testing::ValuesIn(cuem_test::all_covariance_types()),
                                          testing::ValuesIn(kShapes)),
                         shape_name);

}  // namespace
