// The CPU backend's statistics under given weights (weighted_stats and weighted_stats_rows
// with Responsibilities::given_weights: the HMM's emission statistics): against a plain
// loop written here, every covariance type, narrow shapes (the lanes pass) and wider ones
// (the general pass), float64 and float32 rows, strided rows, sample weights, rows of zero
// weight, row ranges that cut the lanes' blocks and units; bitwise the same on 1 and 2 threads.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "core/sufficient_stats.hpp"
#include "cuem/data_view.hpp"
#include "engine/primitives.hpp"
#include "test_util.hpp"

namespace {

using cuem::CovarianceType;
using cuem::Precision;

struct Case {
  CovarianceType type;
  int D;
  bool float32;
  bool weights;
};

std::string name_of(const Case& c) {
  return std::string(cuem::to_string(c.type)) + "_D" + std::to_string(c.D) + (c.float32 ? "_f32" : "_f64") +
         (c.weights ? "_weighted" : "");
}

// The statistics of rows [begin, end) by their definition (sufficient_stats.hpp).
cuem::SufficientStats plain_stats(const std::vector<double>& X, std::size_t stride, int D, const double* g, int K,
                                  const std::vector<double>& shift, const std::vector<double>& w, CovarianceType type,
                                  std::size_t begin, std::size_t end) {
  cuem::SufficientStats s = cuem::SufficientStats::zeros(type, K, D, shift);
  const std::size_t uD = static_cast<std::size_t>(D), uK = static_cast<std::size_t>(K);
  const bool full = type == CovarianceType::full || type == CovarianceType::tied;
  for (std::size_t n = begin; n < end; ++n)
    for (std::size_t k = 0; k < uK; ++k) {
      const double gw = g[(n - begin) * uK + k] * (w.empty() ? 1.0 : w[n]);
      const double* x = X.data() + n * stride;
      const double* c = shift.data() + k * uD;
      s.nk[k] += gw;
      for (std::size_t i = 0; i < uD; ++i) {
        s.s1[k * uD + i] += gw * (x[i] - c[i]);
        if (!full) s.s2[k * uD + i] += gw * (x[i] - c[i]) * (x[i] - c[i]);
      }
      if (full) {
        double* s2 = s.s2.data() + (type == CovarianceType::full ? k * uD * uD : 0);
        for (std::size_t i = 0; i < uD; ++i)
          for (std::size_t j = i; j < uD; ++j) s2[i * uD + j] += gw * (x[i] - c[i]) * (x[j] - c[j]);
      }
    }
  return s;
}

double rel(const std::vector<double>& got, const std::vector<double>& want) {
  double scale = 0.0, diff = 0.0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    scale = std::max(scale, std::abs(want[i]));
    diff = std::max(diff, std::abs(got[i] - want[i]));
  }
  return diff / std::max(scale, 1e-300);
}

class GivenStats : public ::testing::TestWithParam<Case> {};

TEST_P(GivenStats, MatchThePlainLoopOnAnyThreadCount) {
  const Case c = GetParam();
  const int K = 5, D = c.D;
  const std::size_t N = 9000 + 13, stride = static_cast<std::size_t>(D) + 2;  // strided rows
  const std::size_t uK = static_cast<std::size_t>(K);
  std::mt19937_64 rng(17 + static_cast<std::uint64_t>(D));
  std::normal_distribution<double> z(0.0, 1.0);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<double> X(N * stride);
  for (double& v : X) v = 50.0 + 3.0 * z(rng);
  std::vector<float> Xf(X.begin(), X.end());
  if (c.float32)  // the plain loop reads what the backend reads
    for (std::size_t i = 0; i < X.size(); ++i) X[i] = static_cast<double>(Xf[i]);
  std::vector<double> g(N * uK);
  for (std::size_t n = 0; n < N; ++n) {
    double sum = 0.0;
    for (std::size_t k = 0; k < uK; ++k) sum += g[n * uK + k] = u(rng) < 0.3 ? 0.0 : u(rng);
    for (std::size_t k = 0; k < uK; ++k) g[n * uK + k] = sum > 0.0 ? g[n * uK + k] / sum : 0.0;  // some rows all 0
  }
  std::vector<double> w;
  if (c.weights) {
    w.resize(N);
    for (double& v : w) v = u(rng) < 0.1 ? 0.0 : 3.0 * u(rng);
  }
  std::vector<double> shift(uK * static_cast<std::size_t>(D));
  for (std::size_t i = 0; i < shift.size(); ++i) shift[i] = 50.0 + 0.1 * static_cast<double>(i % 7);
  const cuem::DataView view = c.float32 ? cuem::DataView(Xf.data(), N, static_cast<std::size_t>(D), stride)
                                        : cuem::DataView(X.data(), N, static_cast<std::size_t>(D), stride);
  auto prims = cuem::make_primitives(view, w.empty() ? cuem::WeightView{} : cuem::WeightView(w.data(), N),
                                     {cuem::parse_device("cpu"), Precision::float64, 0, {}});
  const int threads_before = omp_get_max_threads();
  // Whole data, then ranges cutting the lanes' blocks (256 rows) and units (4096 rows).
  const std::vector<std::pair<std::size_t, std::size_t>> ranges{{0, N}, {0, 1}, {5, 262}, {4000, 8999}, {8990, N}};
  for (const auto& [begin, end] : ranges) {
    SCOPED_TRACE("rows " + std::to_string(begin) + " to " + std::to_string(end));
    const cuem::SufficientStats want = plain_stats(X, stride, D, g.data() + begin * uK, K, shift, w, c.type, begin, end);
    std::vector<cuem::SufficientStats> got;
    for (int threads : {1, 2}) {
      omp_set_num_threads(threads);
      const auto given = cuem::Responsibilities::given_weights(g.data() + begin * uK);
      got.push_back(begin == 0 && end == N ? prims->weighted_stats(cuem::Responsibilities::given_weights(g.data()), c.type,
                                                                     K, shift)
                                           : prims->weighted_stats_rows(given, c.type, K, shift, begin, end));
    }
    omp_set_num_threads(threads_before);
    const cuem::SufficientStats& s = got[0];
    EXPECT_EQ(s.shift, shift);
    EXPECT_LT(rel(s.nk, want.nk), 1e-12);
    EXPECT_LT(rel(s.s1, want.s1), 1e-10);
    EXPECT_LT(rel(s.s2, want.s2), 1e-12);
    EXPECT_EQ(s.log_likelihood, 0.0);
    double weight = static_cast<double>(end - begin);
    if (!w.empty()) {
      weight = 0.0;
      for (std::size_t n = begin; n < end; ++n) weight += w[n];
    }
    EXPECT_NEAR(s.weight, weight, 1e-9 * weight);
    EXPECT_EQ(got[1].nk, s.nk);
    EXPECT_EQ(got[1].s1, s.s1);
    EXPECT_EQ(got[1].s2, s.s2);
  }
}

std::vector<Case> cases() {
  std::vector<Case> out;
  for (CovarianceType type : cuem_test::all_covariance_types()) {
    const bool full = type == CovarianceType::full || type == CovarianceType::tied;
    // Lanes: full and tied to 4 dimensions, diag and spherical to 8; then the general pass.
    for (int D : full ? std::vector<int>{1, 3, 4, 5} : std::vector<int>{1, 4, 8, 9})
      for (bool f32 : {false, true}) out.push_back({type, D, f32, D == 4});
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Shapes, GivenStats, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return name_of(info.param); });

}  // namespace
