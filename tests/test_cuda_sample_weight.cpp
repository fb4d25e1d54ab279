// The CUDA primitives with point weights (sample_weight) against plain float64 loops: the
// weighted E-step on each of its paths, unit weights against no weights, streamed
// chunks against resident data, and weighted k-means. Runs on the emulated device
// (tests/emu) everywhere and on a GPU where one is; without a device it skips with the
// reason.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "core/cuda_primitives.hpp"
#include "core/prepared_params.hpp"
#include "cuem/devices.hpp"
#include "cuem/errors.hpp"
#include "engine/primitives.hpp"
#include "test_util.hpp"

namespace {

using cuem::ClosestMode;
using cuem::CovarianceType;
using cuem::Precision;

bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}

// The data as the float32 path stores them (x - origin rounded to float, the origin the
// weighted column means), so that the comparisons measure the kernels' arithmetic, not
// storage.
void make_float32_exact(cuem_test::Dataset& ds, const std::vector<double>& w) {
  const std::size_t D = ds.d;
  std::vector<double> m(D, 0.0);
  double total = 0;
  for (std::size_t i = 0; i < ds.n; ++i) {
    total += w[i];
    for (std::size_t d = 0; d < D; ++d) m[d] += w[i] * ds.x[i * D + d];
  }
  for (double& v : m) v /= total;
  for (std::size_t i = 0; i < ds.n; ++i)
    for (std::size_t d = 0; d < D; ++d)
      ds.x[i * D + d] = m[d] + static_cast<double>(static_cast<float>(ds.x[i * D + d] - m[d]));
}

// Zeros (dropped points, a run of them longer than a closest block's thread share),
// integers (repeats) and fractions float32 holds exactly, so that float32 and float64
// weight the same points by the same amounts.
std::vector<double> test_weights(std::size_t n, std::uint64_t seed) {
  cuem_test::Rng rng(seed);
  std::vector<double> w(n);
  for (std::size_t i = 0; i < n; ++i) {
    const double u = rng.uniform();
    w[i] = u < 0.2 ? 0.0 : u < 0.5 ? 1.0 + static_cast<int>(rng.uniform() * 4) : std::ldexp(std::floor(rng.uniform(1, 1024)), -8);
  }
  for (std::size_t i = 1000; i < 1500 && i < n; ++i) w[i] = 0.0;
  return w;
}

cuem::Model perturbed_model(const cuem_test::Mixture& mix, CovarianceType type, double offset, std::uint64_t seed) {
  cuem::Model m = cuem_test::model_from_mixture(mix, type);
  cuem_test::Rng rng(seed);
  for (double& v : m.means) v += offset + 0.3 * rng.normal();
  return m;
}

// The weighted statistics about `shift` in `type`'s layout, in float64, and beside each
// entry the sum of its terms' magnitudes (what a sum's rounding error scales with).
struct Reference {
  cuem::SufficientStats stats, scale;
};

Reference weighted_reference(const cuem::Model& m, const cuem_test::Dataset& ds, const std::vector<double>& w,
                             const std::vector<double>& shift) {
  const int K = m.n_components, D = ds.d;
  const CovarianceType type = m.covariance_type;
  const bool full = type == CovarianceType::full || type == CovarianceType::tied;
  const std::vector<double> g = cuem_test::responsibilities(m, ds.view());
  const std::vector<double> lp = cuem_test::log_likelihoods(m, ds.view());
  Reference r{cuem::SufficientStats::zeros(type, K, D, shift), cuem::SufficientStats::zeros(type, K, D, shift)};
  std::vector<double> y(D);
  for (std::size_t i = 0; i < ds.n; ++i) {
    if (w[i] == 0.0) continue;
    for (int k = 0; k < K; ++k) {
      const double gw = w[i] * g[i * K + k];
      r.stats.nk[k] += gw;
      r.scale.nk[k] += gw;
      for (int d = 0; d < D; ++d) {
        y[d] = ds.x[i * D + d] - shift[static_cast<std::size_t>(k) * D + d];
        r.stats.s1[k * D + d] += gw * y[d];
        r.scale.s1[k * D + d] += std::abs(gw * y[d]);
      }
      for (int a = 0; a < D; ++a)
        for (int b = a; b < (full ? D : a + 1); ++b) {
          const std::size_t e = type == CovarianceType::tied ? static_cast<std::size_t>(a) * D + b
                                : full                       ? (static_cast<std::size_t>(k) * D + a) * D + b
                                                             : static_cast<std::size_t>(k) * D + a;
          r.stats.s2[e] += gw * y[a] * y[b];
          r.scale.s2[e] += std::abs(gw * y[a] * y[b]);
        }
    }
    r.stats.log_likelihood += w[i] * lp[i];
    r.scale.log_likelihood += std::abs(w[i] * lp[i]);
  }
  return r;
}

// Every entry within tol of its terms' magnitude (and not all of them zero).
void expect_near_reference(const cuem::SufficientStats& got, const Reference& want, double tol) {
  ASSERT_EQ(got.s2.size(), want.stats.s2.size());
  ASSERT_GT(cuem_test::max_abs(want.stats.s2), 0.0);
  ASSERT_TRUE(same_bits(got.shift, want.stats.shift));
  for (int k = 0; k < got.K; ++k) ASSERT_NEAR(got.nk[k], want.stats.nk[k], tol * want.scale.nk[k] + 1e-300) << "N_k " << k;
  for (std::size_t j = 0; j < got.s1.size(); ++j)
    ASSERT_NEAR(got.s1[j], want.stats.s1[j], tol * want.scale.s1[j] + 1e-300) << "S1 entry " << j;
  for (std::size_t j = 0; j < got.s2.size(); ++j)
    ASSERT_NEAR(got.s2[j], want.stats.s2[j], tol * want.scale.s2[j] + 1e-300) << "S2 entry " << j;
  EXPECT_NEAR(got.log_likelihood, want.stats.log_likelihood, tol * want.scale.log_likelihood) << "log-likelihood";
}

// Each path of the E-step (the unweighted fused kernel's shape D <= 2, the deferred
// normalisation's diag K > 64, the tiled posteriors' diag K >= 8, full, tied,
// spherical) with weights, against the float64 loop; weight = sum w.
TEST(CudaSampleWeight, EstepMatchesAFloat64Loop) {
  REQUIRE_DEVICE();
  struct Case {
    CovarianceType type;
    int D, K;
  };
  for (const Case c : {Case{CovarianceType::full, 2, 3}, Case{CovarianceType::tied, 5, 4},
                       Case{CovarianceType::diag, 9, 70}, Case{CovarianceType::diag, 16, 12},
                       Case{CovarianceType::spherical, 3, 5}})
    for (Precision p : {Precision::float32, Precision::float64}) {
      SCOPED_TRACE(std::string(cuem::to_string(c.type)) + " D " + std::to_string(c.D) + " K " + std::to_string(c.K) +
                   " " + cuem::to_string(p));
      const std::uint64_t seed = 500u + static_cast<std::uint64_t>(c.D * 7 + c.K);
      std::printf("seed %llu\n", static_cast<unsigned long long>(seed));
      const cuem_test::Mixture mix = cuem_test::make_mixture(c.type, c.K, c.D, 3.0, seed);
      cuem_test::Dataset ds = cuem_test::sample_mixture(mix, 20011, seed + 1);
      for (double& v : ds.x) v += 100.0;
      const std::vector<double> w = test_weights(ds.n, seed + 2);
      if (p == Precision::float32) make_float32_exact(ds, w);
      const cuem::Model model = perturbed_model(mix, c.type, 100.0, seed + 3);
      const auto gpu = cuem::cuda::make_primitives(ds.view(), {w.data(), w.size()}, {0, p, 0});
      ASSERT_TRUE(gpu->weighted());
      double total = 0;
      for (double v : w) total += v;
      EXPECT_EQ(gpu->total_weight(), total);
      const cuem::SufficientStats got = gpu->gaussian_estep(cuem::prepare(model));
      EXPECT_EQ(got.weight, total);
      EXPECT_EQ(got.n_points, ds.n);
      expect_near_reference(got, weighted_reference(model, ds, w, got.shift), p == Precision::float32 ? 2e-5 : 1e-10);
    }
}

// Unit weights: where the unweighted E-step takes the two-kernel path (posteriors, then
// the statistics kernel) the weighted one is the same sums times 1.0, bitwise; where it
// takes the fused kernel or defers the normalisation, the same within float32 rounding.
TEST(CudaSampleWeight, UnitWeightsAreNoWeights) {
  REQUIRE_DEVICE();
  struct Case {
    CovarianceType type;
    int D, K;
    bool two_kernel;  // the unweighted E-step's path
  };
  for (const Case c : {Case{CovarianceType::tied, 5, 4, true}, Case{CovarianceType::diag, 16, 12, true},
                       Case{CovarianceType::full, 2, 3, false}, Case{CovarianceType::diag, 9, 70, false}})
    for (Precision p : {Precision::float32, Precision::float64}) {
      SCOPED_TRACE(std::string(cuem::to_string(c.type)) + " D " + std::to_string(c.D) + " K " + std::to_string(c.K) +
                   " " + cuem::to_string(p));
      const std::uint64_t seed = 600u + static_cast<std::uint64_t>(c.D * 7 + c.K);
      const cuem_test::Mixture mix = cuem_test::make_mixture(c.type, c.K, c.D, 3.0, seed);
      cuem_test::Dataset ds = cuem_test::sample_mixture(mix, 20011, seed + 1);
      const std::vector<double> ones(ds.n, 1.0);
      const cuem::PreparedParams params = cuem::prepare(perturbed_model(mix, c.type, 0.0, seed + 3));
      const auto plain = cuem::cuda::make_primitives(ds.view(), {}, {0, p, 0});
      const auto unit = cuem::cuda::make_primitives(ds.view(), {ones.data(), ones.size()}, {0, p, 0});
      const cuem::SufficientStats a = plain->gaussian_estep(params);
      const cuem::SufficientStats b = unit->gaussian_estep(params);
      EXPECT_EQ(a.weight, b.weight);
      ASSERT_GT(cuem_test::max_abs(a.s2), 0.0);
      if (c.two_kernel) {
        EXPECT_TRUE(same_bits(a.nk, b.nk));
        EXPECT_TRUE(same_bits(a.s1, b.s1));
        EXPECT_TRUE(same_bits(a.s2, b.s2));
        EXPECT_EQ(a.log_likelihood, b.log_likelihood);
        continue;
      }
      const double tol = p == Precision::float32 ? 1e-5 : 1e-11;
      EXPECT_NEAR(a.log_likelihood, b.log_likelihood, tol * std::abs(a.log_likelihood));
      for (std::size_t j = 0; j < a.nk.size(); ++j) EXPECT_NEAR(a.nk[j], b.nk[j], tol * ds.n) << j;
      for (std::size_t j = 0; j < a.s1.size(); ++j)
        EXPECT_NEAR(a.s1[j], b.s1[j], tol * cuem_test::max_abs(a.s2) + tol * ds.n) << j;
      for (std::size_t j = 0; j < a.s2.size(); ++j) EXPECT_NEAR(a.s2[j], b.s2[j], tol * cuem_test::max_abs(a.s2)) << j;
    }
}

// Streamed chunks carry their weights beside their rows: every weighted primitive gives
// bitwise what the resident data give.
TEST(CudaSampleWeight, StreamedEqualsResidentBitwise) {
  REQUIRE_DEVICE();
  for (Precision p : {Precision::float32, Precision::float64}) {
    SCOPED_TRACE(cuem::to_string(p));
    const cuem_test::Mixture mix = cuem_test::make_mixture(CovarianceType::diag, 6, 5, 4.0, 93);
    cuem_test::Dataset ds = cuem_test::sample_mixture(mix, 30011, 94);
    for (double& v : ds.x) v += 1e3;
    const std::vector<double> w = test_weights(ds.n, 95);
    const cuem::WeightView wv(w.data(), w.size());
    // As CudaKMeans.StreamedEqualsResidentBitwise: room for a few 8192-point chunks.
    const std::size_t limit = p == Precision::float32 ? (std::size_t{7} << 20) / 4 : (std::size_t{5} << 20) / 2;
    const auto whole = cuem::cuda::make_primitives(ds.view(), wv, {0, p, 0});
    const auto streamed = cuem::cuda::make_primitives(ds.view(), wv, {0, p, limit});
    const cuem::Model model = perturbed_model(mix, CovarianceType::diag, 1e3, 96);
    const cuem::PreparedParams params = cuem::prepare(model);
    const cuem::SufficientStats ea = whole->gaussian_estep(params);
    const cuem::SufficientStats eb = streamed->gaussian_estep(params);
    EXPECT_NE(streamed->description().find("streamed"), std::string::npos) << streamed->description();
    EXPECT_NE(whole->description().find("resident"), std::string::npos) << whole->description();
    EXPECT_TRUE(same_bits(ea.nk, eb.nk));
    EXPECT_TRUE(same_bits(ea.s1, eb.s1));
    EXPECT_TRUE(same_bits(ea.s2, eb.s2));
    EXPECT_EQ(ea.log_likelihood, eb.log_likelihood);
    const cuem::SufficientStats ra =
        whole->weighted_stats(cuem::Responsibilities::random_draws(5), CovarianceType::diag, mix.k, model.means);
    const cuem::SufficientStats rb =
        streamed->weighted_stats(cuem::Responsibilities::random_draws(5), CovarianceType::diag, mix.k, model.means);
    EXPECT_TRUE(same_bits(ra.nk, rb.nk));
    EXPECT_TRUE(same_bits(ra.s2, rb.s2));
    const auto vw = whole->make_point_values();
    const auto vs = streamed->make_point_values();
    const double r0 = whole->closest(*vw, ds.row(3), ClosestMode::reset);
    EXPECT_EQ(streamed->closest(*vs, ds.row(3), ClosestMode::reset), r0);
    EXPECT_EQ(streamed->closest(*vs, ds.row(29000), ClosestMode::potential),
              whole->closest(*vw, ds.row(29000), ClosestMode::potential));
    const double r2 = whole->closest(*vw, ds.row(12345), ClosestMode::update);
    EXPECT_EQ(streamed->closest(*vs, ds.row(12345), ClosestMode::update), r2);
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
  }
}

// Weighted k-means: the closest sums are sum w min d, sampling never lands on a
// zero-weight point and follows the running sum of w v, Lloyd's counts are sums of
// weights, its centres weighted means and its inertia sum w d; the feature variance is
// the weighted one.
TEST(CudaSampleWeight, KMeansMatchesAFloat64Loop) {
  REQUIRE_DEVICE();
  const int K = 5, D = 4;
  const cuem_test::Mixture mix = cuem_test::make_mixture(CovarianceType::diag, K, D, 4.0, 71);
  cuem_test::Dataset ds = cuem_test::sample_mixture(mix, 20011, 72);
  for (double& v : ds.x) v += 50.0;
  const std::vector<double> w = test_weights(ds.n, 73);
  for (Precision p : {Precision::float32, Precision::float64}) {
    SCOPED_TRACE(cuem::to_string(p));
    const double tol = p == Precision::float32 ? 1e-5 : 1e-12;
    const auto gpu = cuem::cuda::make_primitives(ds.view(), {w.data(), w.size()}, {0, p, 0});
    const auto dist = [&](std::size_t i, const double* c) {
      double s = 0;
      for (int d = 0; d < D; ++d) s += (ds.x[i * D + d] - c[d]) * (ds.x[i * D + d] - c[d]);
      return s;
    };
    const double* c0 = ds.row(17);
    const double* c1 = ds.row(15000);
    std::vector<double> v(ds.n), running(ds.n);
    double reset = 0, potential = 0, update = 0;
    for (std::size_t i = 0; i < ds.n; ++i) {
      v[i] = dist(i, c0);
      reset += w[i] * v[i];
      potential += w[i] * std::min(v[i], dist(i, c1));
    }
    for (std::size_t i = 0; i < ds.n; ++i) {
      v[i] = std::min(v[i], dist(i, c1));
      update += w[i] * v[i];
      running[i] = (i ? running[i - 1] : 0.0) + w[i] * v[i];
    }
    const auto values = gpu->make_point_values();
    EXPECT_NEAR(gpu->closest(*values, c0, ClosestMode::reset), reset, tol * reset);
    EXPECT_NEAR(gpu->closest(*values, c1, ClosestMode::potential), potential, tol * potential);
    EXPECT_NEAR(gpu->closest(*values, c1, ClosestMode::update), update, tol * update);
    for (double frac : {0.0, 0.05, 0.3, 0.5, 0.9, 0.999999}) {
      const double r = frac * update;
      const std::size_t a = gpu->sample_point(*values, r);
      ASSERT_LT(a, ds.n);
      EXPECT_GT(w[a], 0.0) << frac << ": index " << a << " has no weight";
      // Where the float64 running sum passes r, within the device's rounding of it.
      EXPECT_LE((a ? running[a - 1] : 0.0), r + tol * update) << frac << ": index " << a;
      EXPECT_GT(running[a], r - tol * update) << frac << ": index " << a;
    }

    std::vector<double> centers(mix.means);
    for (double& v2 : centers) v2 += 50.0 + 0.5;
    std::vector<int> labels(ds.n);
    gpu->nearest_labels(centers, K, 0, ds.n, labels.data());
    std::vector<double> count(K, 0.0), sum(static_cast<std::size_t>(K) * D, 0.0);
    double inertia = 0;
    for (std::size_t i = 0; i < ds.n; ++i) {
      const int k = labels[i];
      count[k] += w[i];
      for (int d = 0; d < D; ++d) sum[k * D + d] += w[i] * ds.x[i * D + d];
      inertia += w[i] * dist(i, centers.data() + static_cast<std::size_t>(k) * D);
    }
    const cuem::LloydStep l = gpu->lloyd_step(centers, K);
    for (int k = 0; k < K; ++k) {
      ASSERT_GT(count[k], 0.0);
      EXPECT_NEAR(l.counts[k], count[k], tol * count[k]) << "k " << k;
      for (int d = 0; d < D; ++d)
        EXPECT_NEAR(l.centers[k * D + d], sum[k * D + d] / count[k], 10 * tol * (std::abs(sum[k * D + d] / count[k]) + 1))
            << "k " << k << ", d " << d;
    }
    EXPECT_NEAR(l.inertia, inertia, tol * inertia);

    cuem_test::Matrix mean, cov;
    cuem_test::weighted_moments(ds.x.data(), ds.n, D, w, mean, cov);
    double variance = 0;
    for (int d = 0; d < D; ++d) variance += cov[d * D + d] / D;
    EXPECT_NEAR(gpu->mean_feature_variance(), variance, tol * variance);
  }
}

// Weights of another length than the data are refused.
TEST(CudaSampleWeight, WeightsOfTheWrongLengthAreRefused) {
  REQUIRE_DEVICE();
  const std::vector<double> x(12, 1.0), w(5, 1.0);
  EXPECT_THROW(cuem::cuda::make_primitives(cuem::DataView(x.data(), 6, 2), {w.data(), w.size()},
                                           {0, Precision::float32, 0}),
               cuem::InvalidArgument);
}

}  // namespace
