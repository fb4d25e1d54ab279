// The CPU k-means++ seeding's passes (cpu_kmeans.cpp, kmeans_kernels.cpp): the trials'
// potentials in one pass (closest_potentials) equal bit for bit the one-candidate pass
// (closest with ClosestMode::potential) they replace, and closest_keep equals
// closest(update), with and without kept distances, weights, float32 rows and strided
// rows; the sums' blocks and their order and the distance kernel against plain loops;
// the mean feature variance against a plain two-pass loop and across thread counts;
// whole seedings against a plain k-means++ written here.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/rng.hpp"
#include "cpu/cpu_primitives.hpp"
#include "cpu/kmeans_kernels.hpp"
#include "engine/primitives.hpp"
#include "init/kmeans.hpp"
#include "test_util.hpp"

namespace {

using cuem::ClosestMode;

struct Case {
  int d;
  std::size_t n;
  bool weighted;
  bool f32;
  std::size_t pad;  // extra values per row (row_stride = d + pad)
};

// Distances are kept for n trials when 4 n float64 values fit in a row: never at D 1 and
// 3, up to n 2 at D 8 (one transposed block), 5 at D 21, 8 at D 33 (4 in float32), 17 at
// D 70 (past the kernels' 64 transposed dimensions), 6 at D 48 in float32; so n from 1 to
// 7 takes both paths. N spans several blocks and is not a multiple of 8 or 32.
const Case kCases[] = {{1, 9001, false, false, 0},  {3, 4097, true, false, 0},  {8, 12289, false, false, 0},
                       {21, 5003, true, false, 2},  {33, 8203, false, false, 0}, {33, 8203, true, true, 0},
                       {70, 4103, false, false, 1}, {70, 2051, true, false, 0},  {48, 3001, false, true, 3}};

struct Data {
  std::vector<double> x64;
  std::vector<float> x32;
  std::vector<double> w;
  cuem::DataView view;
  cuem::WeightView weights;
};

Data make_data(const Case& c, std::uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_real_distribution<double> unit(0.0, 2.0);
  Data out;
  const std::size_t stride = static_cast<std::size_t>(c.d) + c.pad;
  out.x64.resize(c.n * stride);
  for (std::size_t i = 0; i < c.n; ++i)
    for (std::size_t j = 0; j < stride; ++j) out.x64[i * stride + j] = 3.0 * static_cast<double>(i % 7) + normal(gen);
  if (c.f32) {
    out.x32.assign(out.x64.begin(), out.x64.end());
    out.view = cuem::DataView(out.x32.data(), c.n, static_cast<std::size_t>(c.d), stride);
  } else {
    out.view = cuem::DataView(out.x64.data(), c.n, static_cast<std::size_t>(c.d), stride);
  }
  if (c.weighted) {
    out.w.resize(c.n);
    for (std::size_t i = 0; i < c.n; ++i) out.w[i] = i % 11 == 0 ? 0.0 : unit(gen);
    out.weights = cuem::WeightView(out.w.data(), c.n);
  }
  return out;
}

std::vector<double> row_of(const cuem::DataView& X, std::size_t i) {
  std::vector<double> r(X.n_cols);
  for (std::size_t d = 0; d < X.n_cols; ++d) r[d] = X.value(i, d);
  return r;
}

bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

class Seeding : public ::testing::TestWithParam<Case> {};

// n candidates in one pass equal n closest(potential) calls, for n from 1 to 7 (the
// kernel's sweeps of four and its remainder); closest_keep for every candidate t equals
// closest(update) with c_t: the returned potential and every later sample_point.
TEST_P(Seeding, TrialsInOnePassEqualOnePassEach) {
  const Case c = GetParam();
  const Data data = make_data(c, 11 + c.d);
  const std::size_t D = static_cast<std::size_t>(c.d);
  cuem::CpuPrimitives prims(data.view, data.weights);
  for (int n = 1; n <= 7; ++n) {
    std::vector<double> cand(static_cast<std::size_t>(n) * D);
    for (int t = 0; t < n; ++t) {
      const std::vector<double> r = row_of(data.view, (static_cast<std::size_t>(t) * 977 + 5) % c.n);
      std::copy(r.begin(), r.end(), cand.begin() + static_cast<std::ptrdiff_t>(t * D));
    }
    for (int keep = 0; keep < n; ++keep) {
      auto a = prims.make_point_values();
      auto b = prims.make_point_values();
      const std::vector<double> first = row_of(data.view, c.n / 2);
      ASSERT_TRUE(same_bits(prims.closest(*a, first.data(), ClosestMode::reset),
                            prims.closest(*b, first.data(), ClosestMode::reset)));
      std::vector<double> pot(n);
      prims.closest_potentials(*a, cand.data(), n, pot.data());
      for (int t = 0; t < n; ++t) {
        const double one = prims.closest(*b, cand.data() + t * D, ClosestMode::potential);
        ASSERT_TRUE(same_bits(pot[t], one)) << "n " << n << " t " << t << ": " << pot[t] << " vs " << one;
      }
      const double ka = prims.closest_keep(*a, cand.data() + keep * D, keep);
      const double kb = prims.closest(*b, cand.data() + keep * D, ClosestMode::update);
      ASSERT_TRUE(same_bits(ka, kb)) << "n " << n << " keep " << keep;
      for (double u : {0.0, 0.1, 0.37, 0.5, 0.93, 0.999999}) {
        ASSERT_EQ(prims.sample_point(*a, u * ka), prims.sample_point(*b, u * kb)) << "n " << n << " u " << u;
      }
    }
  }
}

// A candidate index the last closest_potentials did not keep (out of range) falls back
// to closest(update) with the given centre.
TEST_P(Seeding, KeepOfAnUnknownCandidateUpdatesFromTheCentre) {
  const Case c = GetParam();
  const Data data = make_data(c, 5);
  cuem::CpuPrimitives prims(data.view, data.weights);
  auto a = prims.make_point_values();
  auto b = prims.make_point_values();
  const std::vector<double> r0 = row_of(data.view, 0), r1 = row_of(data.view, c.n - 1);
  prims.closest(*a, r0.data(), ClosestMode::reset);
  prims.closest(*b, r0.data(), ClosestMode::reset);
  EXPECT_TRUE(same_bits(prims.closest_keep(*a, r1.data(), 3), prims.closest(*b, r1.data(), ClosestMode::update)));
}

// closest()'s sums against a plain loop over the kernel's distances: blocks of 4096 points
// (cpu_kmeans.cpp's kBlock), each summed in point order, the blocks' sums in block order;
// bit for bit, for reset, potential and update, at 1 and 2 threads (a wrong block order
// shows where there are three blocks or more).
TEST_P(Seeding, SumsAddBlocksInOrder) {
  const Case c = GetParam();
  const Data data = make_data(c, 17);
  const std::size_t kBlock = 4096;
  const auto distances = [&](const std::vector<double>& centre) {
    std::vector<double> d(c.n);
    if (c.f32)
      cuem::cpu::dist_sq_rows_multi(data.view.data_f32, data.view.row_stride, c.d, static_cast<int>(c.n),
                                    centre.data(), 1, d.data(), c.n);
    else
      cuem::cpu::dist_sq_rows_multi(data.view.data, data.view.row_stride, c.d, static_cast<int>(c.n), centre.data(),
                                    1, d.data(), c.n);
    return d;
  };
  const auto blocked = [&](const std::vector<double>& v) {
    double total = 0.0;
    for (std::size_t lo = 0; lo < c.n; lo += kBlock) {
      double s = 0.0;
      for (std::size_t i = lo; i < std::min(c.n, lo + kBlock); ++i) s += data.weights.empty() ? v[i] : data.w[i] * v[i];
      total += s;
    }
    return total;
  };
  const std::vector<double> c0 = row_of(data.view, 1), c1 = row_of(data.view, c.n - 2);
  const std::vector<double> d0 = distances(c0), d1 = distances(c1);
  std::vector<double> closest = d0, potential(c.n);
  for (std::size_t i = 0; i < c.n; ++i) potential[i] = std::min(d0[i], d1[i]);
  const double want_reset = blocked(d0), want_min = blocked(potential);
  const int threads = omp_get_max_threads();
  for (int th : {1, 2}) {
    omp_set_num_threads(th);
    cuem::CpuPrimitives prims(data.view, data.weights);
    auto v = prims.make_point_values();
    EXPECT_TRUE(same_bits(prims.closest(*v, c0.data(), ClosestMode::reset), want_reset)) << th << " threads";
    EXPECT_TRUE(same_bits(prims.closest(*v, c1.data(), ClosestMode::potential), want_min)) << th << " threads";
    EXPECT_TRUE(same_bits(prims.closest(*v, c1.data(), ClosestMode::update), want_min)) << th << " threads";
  }
  omp_set_num_threads(threads);
}

// The distance kernel against a plain loop (to rounding: the kernel may fuse the multiply
// and add), and each centre's distances the same bits among 6 at once (a sweep of four
// and the remainder) as alone.
TEST_P(Seeding, DistanceKernelsMatchAPlainLoop) {
  const Case c = GetParam();
  const Data data = make_data(c, 3);
  const int rows = static_cast<int>(std::min<std::size_t>(c.n, 203));
  const int n = 6;
  std::vector<double> cand(static_cast<std::size_t>(n) * c.d);
  std::mt19937_64 gen(9);
  std::normal_distribution<double> normal(0.0, 2.0);
  for (double& v : cand) v = normal(gen);
  std::vector<double> multi(static_cast<std::size_t>(n) * rows);
  std::vector<double> one(rows);
  const auto call = [&](const double* centres, int count, double* out) {
    if (c.f32)
      cuem::cpu::dist_sq_rows_multi(data.view.data_f32, data.view.row_stride, c.d, rows, centres, count, out,
                                    static_cast<std::size_t>(rows));
    else
      cuem::cpu::dist_sq_rows_multi(data.view.data, data.view.row_stride, c.d, rows, centres, count, out,
                                    static_cast<std::size_t>(rows));
  };
  call(cand.data(), n, multi.data());
  for (int t = 0; t < n; ++t) {
    const double* ct = cand.data() + static_cast<std::size_t>(t) * c.d;
    call(ct, 1, one.data());
    for (int r = 0; r < rows; ++r) {
      double plain = 0.0;
      for (int d = 0; d < c.d; ++d) {
        const double u = data.view.value(static_cast<std::size_t>(r), static_cast<std::size_t>(d)) - ct[d];
        plain += u * u;
      }
      ASSERT_TRUE(same_bits(one[r], multi[static_cast<std::size_t>(t) * rows + r])) << "t " << t << " row " << r;
      ASSERT_NEAR(one[r], plain, 1e-13 * plain) << "t " << t << " row " << r;
    }
  }
}

// The mean feature variance against a plain two-pass loop, and the same bits at 1 and 2
// threads.
TEST_P(Seeding, MeanFeatureVarianceMatchesAPlainLoop) {
  const Case c = GetParam();
  const Data data = make_data(c, 21);
  double W = 0.0;
  for (std::size_t i = 0; i < c.n; ++i) W += data.weights.at(i);
  double plain = 0.0;
  for (std::size_t d = 0; d < static_cast<std::size_t>(c.d); ++d) {
    double m = 0.0;
    for (std::size_t i = 0; i < c.n; ++i) m += data.weights.at(i) * data.view.value(i, d);
    m /= W;
    double v = 0.0;
    for (std::size_t i = 0; i < c.n; ++i) {
      const double u = data.view.value(i, d) - m;
      v += data.weights.at(i) * u * u;
    }
    plain += v / W;
  }
  plain /= c.d;
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const double one = cuem::CpuPrimitives(data.view, data.weights).mean_feature_variance();
  omp_set_num_threads(2);
  const double two = cuem::CpuPrimitives(data.view, data.weights).mean_feature_variance();
  omp_set_num_threads(threads);
  EXPECT_NEAR(one, plain, 1e-12 * plain);
  EXPECT_TRUE(same_bits(one, two));
}

// A whole seeding against k-means++ written plainly here (scikit-learn's greedy
// k-means++: 2 + floor(ln K) trials a centre, the first trial of the lowest potential;
// with weights, draws in proportion to w_i and to w_i times the distance): the same draws
// from core/rng.hpp, sequential sums. Sums in another order round differently, which could
// change a choice only on a near-tie, not on these data.
TEST_P(Seeding, KmeansPlusPlusMatchesAPlainLoop) {
  const Case c = GetParam();
  const Data data = make_data(c, 31);
  const cuem::DataView& X = data.view;
  const cuem::WeightView& w = data.weights;
  const std::size_t N = c.n;
  const int K = 9;
  const std::uint64_t seed = 4;
  const auto dist = [&](std::size_t i, std::size_t j) {
    double s = 0.0;
    for (std::size_t d = 0; d < X.n_cols; ++d) {
      const double u = X.value(i, d) - X.value(j, d);
      s += u * u;
    }
    return s;
  };
  // The first index whose running sum of v(i) exceeds r, over points of positive weight.
  const auto draw = [&](double r, auto v) {
    double run = 0.0;
    std::size_t last = 0;
    for (std::size_t i = 0; i < N; ++i) {
      if (!(w.at(i) > 0.0)) continue;
      last = i;
      run += v(i);
      if (run > r) return i;
    }
    return last;
  };
  const int n_trials = 2 + static_cast<int>(std::log(static_cast<double>(K)));
  std::uint64_t counter = 0;
  double W = 0.0;
  for (std::size_t i = 0; i < N; ++i) W += w.at(i);
  const double u0 = cuem::rng::uniform(seed, cuem::rng::kKmeansPlusPlus, counter++);
  std::vector<std::size_t> want{w.empty() ? std::min(static_cast<std::size_t>(u0 * N), N - 1)
                                          : draw(u0 * W, [&](std::size_t i) { return w.at(i); })};
  std::vector<double> closest(N);
  double potential = 0.0;
  for (std::size_t i = 0; i < N; ++i) potential += w.at(i) * (closest[i] = dist(i, want[0]));
  for (int k = 1; k < K; ++k) {
    std::size_t best = 0;
    double best_pot = std::numeric_limits<double>::infinity();
    for (int t = 0; t < n_trials; ++t) {
      const double r = cuem::rng::uniform(seed, cuem::rng::kKmeansPlusPlus, counter++) * potential;
      const std::size_t pick = draw(r, [&](std::size_t i) { return w.at(i) * closest[i]; });
      double pot = 0.0;
      for (std::size_t i = 0; i < N; ++i) pot += w.at(i) * std::min(closest[i], dist(i, pick));
      if (pot < best_pot) {
        best_pot = pot;
        best = pick;
      }
    }
    potential = 0.0;
    for (std::size_t i = 0; i < N; ++i) potential += w.at(i) * (closest[i] = std::min(closest[i], dist(i, best)));
    want.push_back(best);
  }
  cuem::CpuPrimitives prims(X, w);
  EXPECT_EQ(cuem::kmeans_plusplus(prims, X, K, seed, nullptr), want);
}

INSTANTIATE_TEST_SUITE_P(Shapes, Seeding, ::testing::ValuesIn(kCases), [](const auto& info) {
  const Case& c = info.param;
  return "d" + std::to_string(c.d) + "_n" + std::to_string(c.n) + (c.weighted ? "_weighted" : "") +
         (c.f32 ? "_f32" : "") + (c.pad ? "_strided" : "");
});

}  // namespace
