// sample_weight in the primitives and in the init code on them (docs/ARCHITECTURE.md,
// "Sample weights, path by path"): integer weights against the rows repeated in place, zero weights against the
// rows dropped, weights of one against none (bitwise), and relocation's weighted donor.
//
// Built twice: against the library (the CPU; the CUDA cases skip with the reason where
// no GPU is) and against the emulated device (tests/emu).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/prepared_params.hpp"
#include "cpu/cpu_primitives.hpp"
#include "cpu/narrow_estep.hpp"
#include "cpu/narrow_kernels.hpp"
#include "cpu/wide_kernels.hpp"
#include "cuem/devices.hpp"
#include "cuem/errors.hpp"
#include "engine/primitives.hpp"
#include "init/initialize.hpp"
#include "init/kmeans.hpp"
#include "test_util.hpp"
#if defined(CUEM_HAVE_CUDA)
#include "core/cuda_primitives.hpp"
#endif

namespace {

using cuem::CovarianceType;
using cuem::DataView;
using cuem::Responsibilities;
using cuem::WeightView;

enum class Kind { cpu, cuda_float32, cuda_float64 };

std::string kind_name(const testing::TestParamInfo<Kind>& info) {
  switch (info.param) {
    case Kind::cpu: return "cpu";
    case Kind::cuda_float32: return "cuda_float32";
    case Kind::cuda_float64: return "cuda_float64";
  }
  return "unknown";
}

// The primitives of `kind` for X and w, or null with `why` set when they cannot run here.
std::unique_ptr<cuem::Primitives> make(Kind kind, DataView X, WeightView w, std::string* why) {
  if (kind == Kind::cpu) return std::make_unique<cuem::CpuPrimitives>(X, w);
#if defined(CUEM_HAVE_CUDA)
  std::string reason;
  if (cuem::cuda_devices(&reason).empty()) {
    *why = "no CUDA device: " + reason;
    return nullptr;
  }
  return cuem::cuda::make_primitives(
      X, w, {0, kind == Kind::cuda_float32 ? cuem::Precision::float32 : cuem::Precision::float64, 0});
#else
  *why = "built without CUDA";
  return nullptr;
#endif
}

// A data set with integer weights, and the same points repeated w times in place.
struct Repeated {
  cuem_test::Dataset ds;
  std::vector<double> w;
  cuem_test::Dataset repeated;
  cuem_test::Mixture mix;
};

// Weights drawn from {lo, ..., hi} (seeded); the first point always has weight.
Repeated make_repeated(CovarianceType type, int K, int D, std::size_t n, std::uint64_t seed, int lo, int hi) {
  Repeated r;
  r.mix = cuem_test::make_mixture(type, K, D, 4.0, seed);
  r.ds = cuem_test::sample_mixture(r.mix, n, seed + 1);
  for (double& v : r.ds.x) v += 10.0;  // off the origin
  cuem_test::Rng rng(seed + 2);
  r.w.resize(n);
  for (std::size_t i = 0; i < n; ++i)
    r.w[i] = static_cast<double>(std::min(hi, lo + static_cast<int>(rng.uniform() * (hi - lo + 1))));
  r.w[0] = std::max(r.w[0], 1.0);
  r.repeated.d = D;
  for (std::size_t i = 0; i < n; ++i)
    for (int c = 0; c < static_cast<int>(r.w[i]); ++c) {
      r.repeated.x.insert(r.repeated.x.end(), r.ds.row(i), r.ds.row(i) + D);
      ++r.repeated.n;
    }
  return r;
}

cuem::Model perturbed_model(const cuem_test::Mixture& mix, CovarianceType type, std::uint64_t seed) {
  cuem::Model m = cuem_test::model_from_mixture(mix, type);
  cuem_test::Rng rng(seed);
  for (double& v : m.means) v += 10.0 + 0.3 * rng.normal();
  return m;
}

bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}

bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

// Within `tol` relative, about the same shift (two passes take their means from sums that
// differ by rounding).
void expect_close(const cuem::SufficientStats& got_raw, const cuem::SufficientStats& want, double tol) {
  ASSERT_GT(cuem_test::max_abs(want.s2), 0.0);  // not vacuous
  EXPECT_LT(cuem_test::max_rel_diff(got_raw.shift, want.shift, cuem_test::max_abs(want.shift) + 1.0), tol);
  const cuem::SufficientStats got = got_raw.recentred(want.shift);
  ASSERT_EQ(got.s2.size(), want.s2.size());
  const double scale = cuem_test::max_abs(want.s2) + 1.0;
  EXPECT_LT(cuem_test::max_rel_diff(got.nk, want.nk, 1.0), tol);
  EXPECT_LT(cuem_test::max_rel_diff(got.s1, want.s1, scale), tol);
  EXPECT_LT(cuem_test::max_rel_diff(got.s2, want.s2, scale), tol);
  EXPECT_NEAR(got.log_likelihood, want.log_likelihood, tol * std::abs(want.log_likelihood));
  EXPECT_EQ(got.weight, want.weight);
}

void expect_bitwise(const cuem::SufficientStats& got, const cuem::SufficientStats& want) {
  ASSERT_GT(cuem_test::max_abs(want.s2), 0.0);
  EXPECT_TRUE(same_bits(got.nk, want.nk));
  EXPECT_TRUE(same_bits(got.s1, want.s1));
  EXPECT_TRUE(same_bits(got.s2, want.s2));
  EXPECT_TRUE(same_bits(got.shift, want.shift));
  EXPECT_TRUE(same_bits(got.log_likelihood, want.log_likelihood)) << got.log_likelihood << " " << want.log_likelihood;
  EXPECT_EQ(got.weight, want.weight);
}

class SampleWeight : public testing::TestWithParam<Kind> {
 protected:
  // The primitives for X and w, or skip.
  std::unique_ptr<cuem::Primitives> prims(DataView X, WeightView w = {}) {
    std::string why;
    std::unique_ptr<cuem::Primitives> p = make(GetParam(), X, w, &why);
    if (!p) skip_ = why;
    return p;
  }
  double tol() const { return GetParam() == Kind::cuda_float32 ? 1e-5 : 1e-12; }
  std::string skip_;
};

#define PRIMS_OR_SKIP(name, ...)                  \
  const auto name = prims(__VA_ARGS__);           \
  if (!name) GTEST_SKIP() << skip_

constexpr int K = 4;
constexpr int D = 3;
constexpr std::size_t N = 5003;  // with repeats about 10k: several k-means++ blocks

TEST_P(SampleWeight, EstepIntegerWeightsEqualRepeatedRows) {
  for (CovarianceType type : cuem_test::all_covariance_types()) {
    SCOPED_TRACE(cuem::to_string(type));
    const Repeated r = make_repeated(type, K, D, N, 41, 0, 3);
    PRIMS_OR_SKIP(weighted, r.ds.view(), WeightView(r.w.data(), N));
    PRIMS_OR_SKIP(repeated, r.repeated.view());
    const cuem::PreparedParams p = cuem::prepare(perturbed_model(r.mix, type, 43));
    const cuem::SufficientStats got = weighted->gaussian_estep(p);
    const cuem::SufficientStats want = repeated->gaussian_estep(p);
    EXPECT_EQ(got.weight, static_cast<double>(r.repeated.n));
    EXPECT_EQ(weighted->total_weight(), static_cast<double>(r.repeated.n));
    expect_close(got, want, tol());
  }
}

// Each responsibility source but 'random' (whose draws follow the point's index).
TEST_P(SampleWeight, WeightedStatsIntegerWeightsEqualRepeatedRows) {
  for (CovarianceType type : cuem_test::all_covariance_types()) {
    SCOPED_TRACE(cuem::to_string(type));
    const Repeated r = make_repeated(type, K, D, N, 51, 0, 3);
    PRIMS_OR_SKIP(weighted, r.ds.view(), WeightView(r.w.data(), N));
    PRIMS_OR_SKIP(repeated, r.repeated.view());
    const cuem::Model model = perturbed_model(r.mix, type, 53);
    const cuem::PreparedParams p = cuem::prepare(model);
    for (const Responsibilities& g : {Responsibilities::nearest_centre(model.means), Responsibilities::posterior(p)}) {
      SCOPED_TRACE("kind " + std::to_string(static_cast<int>(g.kind)));
      expect_close(weighted->weighted_stats(g, type, K, model.means),
                   repeated->weighted_stats(g, type, K, model.means), tol());
      expect_close(cuem::two_pass_stats(*weighted, g, type, K), cuem::two_pass_stats(*repeated, g, type, K), tol());
    }
  }
}

TEST_P(SampleWeight, LloydStepAndVarianceIntegerWeightsEqualRepeatedRows) {
  const Repeated r = make_repeated(CovarianceType::diag, K, D, N, 61, 0, 3);
  PRIMS_OR_SKIP(weighted, r.ds.view(), WeightView(r.w.data(), N));
  PRIMS_OR_SKIP(repeated, r.repeated.view());
  std::vector<double> centres(r.mix.means);
  for (double& v : centres) v += 10.5;
  const cuem::LloydStep got = weighted->lloyd_step(centres, K);
  const cuem::LloydStep want = repeated->lloyd_step(centres, K);
  ASSERT_GT(want.inertia, 0.0);
  EXPECT_EQ(got.counts, want.counts);  // integer sums
  EXPECT_LT(cuem_test::max_rel_diff(got.centers, want.centers), tol());
  EXPECT_NEAR(got.inertia, want.inertia, tol() * want.inertia);
  const double var = repeated->mean_feature_variance();
  ASSERT_GT(var, 0.0);
  EXPECT_NEAR(weighted->mean_feature_variance(), var, tol() * var);
}

// k-means from the same draws: the repeats sit in place of their point, so the search
// over the cumulative weight picks the same points as the search over the repeats.
TEST_P(SampleWeight, KMeansIntegerWeightsEqualRepeatedRows) {
  const Repeated r = make_repeated(CovarianceType::full, K, D, N, 71, 1, 3);
  PRIMS_OR_SKIP(weighted, r.ds.view(), WeightView(r.w.data(), N));
  PRIMS_OR_SKIP(repeated, r.repeated.view());
  for (std::uint64_t seed : {1u, 2u, 3u}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    const std::vector<std::size_t> a = cuem::kmeans_plusplus(*weighted, r.ds.view(), K, seed);
    const std::vector<std::size_t> b = cuem::kmeans_plusplus(*repeated, r.repeated.view(), K, seed);
    for (int k = 0; k < K; ++k)
      for (int d = 0; d < D; ++d) EXPECT_EQ(r.ds.row(a[k])[d], r.repeated.row(b[k])[d]) << "seed " << k;
    const cuem::KMeansResult got = cuem::kmeans(*weighted, r.ds.view(), K, seed);
    const cuem::KMeansResult want = cuem::kmeans(*repeated, r.repeated.view(), K, seed);
    EXPECT_EQ(got.n_iter, want.n_iter);
    EXPECT_LT(cuem_test::max_rel_diff(got.centers, want.centers), tol());
    EXPECT_NEAR(got.inertia, want.inertia, tol() * want.inertia);
  }
}

// The E-step with weights 0 or 1 against the rows of weight 1 alone, in D dimensions. On
// the CPU a point of weight 0 adds exactly nothing. The general path sums the points in
// order, so there it is bitwise; the lanes passes (cpu/narrow_kernels.hpp and
// cpu/wide_kernels.hpp) sum in the lanes of fixed units, which each dropped row shifts:
// equal to rounding.
void expect_zero_weights_are_dropped_rows(const std::unique_ptr<cuem::Primitives>& weighted,
                                          const std::unique_ptr<cuem::Primitives>& dropped, const Repeated& r, int D,
                                          bool cpu, double tol) {
  for (CovarianceType type : cuem_test::all_covariance_types()) {
    SCOPED_TRACE(cuem::to_string(type));
    const cuem::Model model = perturbed_model(r.mix, type, 83);
    const cuem::PreparedParams p = cuem::prepare(model);
    if (cpu && !cuem::cpu::lanes_applies(type, D)) {
      expect_bitwise(weighted->gaussian_estep(p), dropped->gaussian_estep(p));
      expect_bitwise(weighted->weighted_stats(Responsibilities::posterior(p), type, K, model.means),
                     dropped->weighted_stats(Responsibilities::posterior(p), type, K, model.means));
    } else {
      expect_close(weighted->gaussian_estep(p), dropped->gaussian_estep(p), tol);
      expect_close(weighted->weighted_stats(Responsibilities::posterior(p), type, K, model.means),
                   dropped->weighted_stats(Responsibilities::posterior(p), type, K, model.means), tol);
    }
  }
}

// Weights 0 or 1: the points of weight 0 are not there.
TEST_P(SampleWeight, ZeroWeightsEqualDroppedRows) {
  const Repeated r = make_repeated(CovarianceType::full, K, D, N, 81, 0, 1);
  ASSERT_LT(r.repeated.n, N);  // some dropped
  PRIMS_OR_SKIP(weighted, r.ds.view(), WeightView(r.w.data(), N));
  PRIMS_OR_SKIP(dropped, r.repeated.view());
  const bool cpu = GetParam() == Kind::cpu;
  expect_zero_weights_are_dropped_rows(weighted, dropped, r, D, cpu, tol());
  for (CovarianceType type : cuem_test::all_covariance_types()) {
    SCOPED_TRACE(cuem::to_string(type));
    const cuem::Model model = perturbed_model(r.mix, type, 83);
    expect_close(cuem::two_pass_stats(*weighted, Responsibilities::nearest_centre(model.means), type, K),
                 cuem::two_pass_stats(*dropped, Responsibilities::nearest_centre(model.means), type, K), tol());
  }
  const cuem::KMeansResult got = cuem::kmeans(*weighted, r.ds.view(), K, 5);
  const cuem::KMeansResult want = cuem::kmeans(*dropped, r.repeated.view(), K, 5);
  EXPECT_EQ(got.n_iter, want.n_iter);
  EXPECT_LT(cuem_test::max_rel_diff(got.centers, want.centers), tol());
  const double var = dropped->mean_feature_variance();
  EXPECT_NEAR(weighted->mean_feature_variance(), var, tol() * var);
  // random_from_data draws among the rows that are there.
  cuem::FitOptions o;
  o.n_components = K;
  o.covariance_type = CovarianceType::diag;
  o.init = cuem::InitMethod::random_from_data;
  for (std::uint64_t seed : {7u, 8u}) {
    const cuem::Model a = cuem::initialize(*weighted, r.ds.view(), o, seed);
    const cuem::Model b = cuem::initialize(*dropped, r.repeated.view(), o, seed);
    EXPECT_TRUE(same_bits(a.means, b.means)) << "seed " << seed;
    EXPECT_TRUE(same_bits(a.covariances, b.covariances)) << "seed " << seed;
  }
}

// The same in 9 dimensions, where every covariance type takes the general path (bitwise on
// the CPU).
TEST_P(SampleWeight, ZeroWeightsEqualDroppedRowsWide) {
  constexpr int kWide = 9;
  static_assert(!cuem::cpu::narrow_applies(CovarianceType::diag, kWide) &&
                cuem::cpu::wide_applies(CovarianceType::diag, kWide));
  const Repeated r = make_repeated(CovarianceType::full, K, kWide, N, 87, 0, 1);
  ASSERT_LT(r.repeated.n, N);
  PRIMS_OR_SKIP(weighted, r.ds.view(), WeightView(r.w.data(), N));
  PRIMS_OR_SKIP(dropped, r.repeated.view());
  expect_zero_weights_are_dropped_rows(weighted, dropped, r, kWide, GetParam() == Kind::cpu, tol());
}

// Full covariances past the lanes passes: the general path, bitwise on the CPU.
TEST_P(SampleWeight, ZeroWeightsEqualDroppedRowsGeneral) {
  constexpr int kGeneral = 17;
  static_assert(!cuem::cpu::wide_applies(CovarianceType::full, kGeneral));
  const Repeated r = make_repeated(CovarianceType::full, K, kGeneral, N, 89, 0, 1);
  ASSERT_LT(r.repeated.n, N);
  PRIMS_OR_SKIP(weighted, r.ds.view(), WeightView(r.w.data(), N));
  PRIMS_OR_SKIP(dropped, r.repeated.view());
  expect_zero_weights_are_dropped_rows(weighted, dropped, r, kGeneral, GetParam() == Kind::cpu, tol());
}

// A point no component can explain (log p = -inf) with weight 0 leaves the log-likelihood
// finite, as if it were not there (0 * -inf would be NaN).
TEST_P(SampleWeight, ZeroWeightOnAPointOfZeroDensityIsDropped) {
  Repeated r = make_repeated(CovarianceType::diag, K, D, N, 91, 1, 1);
  for (int d = 0; d < D; ++d) r.ds.x[7 * D + d] = 1e300;
  r.w[7] = 0.0;
  cuem_test::Dataset kept;
  kept.d = D;
  for (std::size_t i = 0; i < N; ++i)
    if (r.w[i] > 0) {
      kept.x.insert(kept.x.end(), r.ds.row(i), r.ds.row(i) + D);
      ++kept.n;
    }
  PRIMS_OR_SKIP(weighted, r.ds.view(), WeightView(r.w.data(), N));
  PRIMS_OR_SKIP(dropped, kept.view());
  const cuem::PreparedParams p = cuem::prepare(perturbed_model(r.mix, CovarianceType::diag, 93));
  std::vector<double> lp(N);
  weighted->posteriors(p, 0, N, lp.data(), nullptr);
  ASSERT_EQ(lp[7], -INFINITY);  // the case is what it claims
  const cuem::SufficientStats got = weighted->gaussian_estep(p);
  ASSERT_TRUE(std::isfinite(got.log_likelihood));
  expect_close(got, dropped->gaussian_estep(p), tol());
}

// Weights of one take the unweighted arithmetic: bitwise the same everywhere.
TEST_P(SampleWeight, OnesEqualNoWeightsBitwise) {
  const Repeated r = make_repeated(CovarianceType::full, K, D, N, 101, 1, 1);
  PRIMS_OR_SKIP(ones, r.ds.view(), WeightView(r.w.data(), N));
  PRIMS_OR_SKIP(none, r.ds.view());
  for (CovarianceType type : cuem_test::all_covariance_types()) {
    SCOPED_TRACE(cuem::to_string(type));
    const cuem::Model model = perturbed_model(r.mix, type, 103);
    const cuem::PreparedParams p = cuem::prepare(model);
    expect_bitwise(ones->gaussian_estep(p), none->gaussian_estep(p));
    for (const Responsibilities& g : {Responsibilities::nearest_centre(model.means), Responsibilities::random_draws(9),
                                      Responsibilities::posterior(p)}) {
      SCOPED_TRACE("kind " + std::to_string(static_cast<int>(g.kind)));
      expect_bitwise(ones->weighted_stats(g, type, K, model.means), none->weighted_stats(g, type, K, model.means));
      expect_bitwise(cuem::two_pass_stats(*ones, g, type, K), cuem::two_pass_stats(*none, g, type, K));
    }
  }
  std::vector<double> centres(r.mix.means);
  for (double& v : centres) v += 10.5;
  const cuem::LloydStep a = ones->lloyd_step(centres, K);
  const cuem::LloydStep b = none->lloyd_step(centres, K);
  EXPECT_TRUE(same_bits(a.centers, b.centers));
  EXPECT_TRUE(same_bits(a.counts, b.counts));
  EXPECT_TRUE(same_bits(a.inertia, b.inertia));
  EXPECT_TRUE(same_bits(ones->mean_feature_variance(), none->mean_feature_variance()));
  const auto va = ones->make_point_values();
  const auto vb = none->make_point_values();
  const double s0 = ones->closest(*va, r.ds.row(3), cuem::ClosestMode::reset);
  EXPECT_TRUE(same_bits(s0, none->closest(*vb, r.ds.row(3), cuem::ClosestMode::reset)));
  EXPECT_TRUE(same_bits(ones->closest(*va, r.ds.row(9), cuem::ClosestMode::potential),
                        none->closest(*vb, r.ds.row(9), cuem::ClosestMode::potential)));
  const double s1 = ones->closest(*va, r.ds.row(4000), cuem::ClosestMode::update);
  EXPECT_TRUE(same_bits(s1, none->closest(*vb, r.ds.row(4000), cuem::ClosestMode::update)));
  for (double frac : {0.0, 0.25, 0.5, 0.999})
    EXPECT_EQ(ones->sample_point(*va, frac * s1), none->sample_point(*vb, frac * s1)) << frac;
  cuem::FitOptions o;
  o.n_components = K;
  o.covariance_type = CovarianceType::full;
  for (cuem::InitMethod init : {cuem::InitMethod::kmeans, cuem::InitMethod::kmeans_plusplus,
                                cuem::InitMethod::random, cuem::InitMethod::random_from_data}) {
    SCOPED_TRACE(cuem::to_string(init));
    o.init = init;
    const cuem::Model ma = cuem::initialize(*ones, r.ds.view(), o, 17);
    const cuem::Model mb = cuem::initialize(*none, r.ds.view(), o, 17);
    EXPECT_TRUE(same_bits(ma.weights, mb.weights));
    EXPECT_TRUE(same_bits(ma.means, mb.means));
    EXPECT_TRUE(same_bits(ma.covariances, mb.covariances));
  }
}

// Relocation moves a point of positive weight with its weight, and the donor's mean
// becomes the weighted mean of the points it keeps; a farther point of zero weight stays.
//   x = 0 (w 1), 1 (w 2), 2 (w 1), 10 (w 3), 20 (w 0); centres 1 and 100: every point is
//   nearest to 1, so cluster 1 empties; 10 moves there with weight 3, and cluster 0 keeps
//   0, 1, 1, 2: mean 1, weight 4.
TEST_P(SampleWeight, RelocationMovesWeightedPointsAndKeepsTheDonorsWeightedMean) {
  const std::vector<double> x{0.0, 1.0, 2.0, 10.0, 20.0};
  const std::vector<double> w{1.0, 2.0, 1.0, 3.0, 0.0};
  const DataView X(x.data(), 5, 1);
  PRIMS_OR_SKIP(p, X, WeightView(w.data(), 5));
  const std::vector<double> centres{1.0, 100.0};
  const cuem::LloydStep plain = p->lloyd_step(centres, 2);
  ASSERT_EQ(plain.counts[1], 0.0);  // the case empties cluster 1
  ASSERT_EQ(plain.counts[0], 7.0);
  const cuem::LloydStep step = cuem::lloyd_step_relocating(*p, X, centres, 2);
  EXPECT_EQ(step.centers[1], 10.0);
  EXPECT_EQ(step.counts[1], 3.0);
  EXPECT_NEAR(step.centers[0], 1.0, tol());
  EXPECT_EQ(step.counts[0], 4.0);
}

INSTANTIATE_TEST_SUITE_P(Backends, SampleWeight,
                         testing::Values(Kind::cpu, Kind::cuda_float32, Kind::cuda_float64), kind_name);

}  // namespace
