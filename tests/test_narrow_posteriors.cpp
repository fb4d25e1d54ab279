// The CPU backend's posteriors (Primitives::posteriors: the HMM's emissions, predict_proba,
// score_samples) for narrow diag and spherical data, which take the narrow kernels' lanes:
// against test_util.hpp's own log joints, K of 8 (its rows through 8 x 8 transposes) and
// others, row counts that end inside a group of 8 lanes and inside a block, ranges,
// float32 and strided rows; bitwise the same on 1 and 2 threads and however the rows are
// split into calls (as the HMM's pipeline splits them into chunks).
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/prepared_params.hpp"
#include "engine/primitives.hpp"
#include "test_util.hpp"

namespace {

using cuem::CovarianceType;
using cuem::Precision;

struct Case {
  CovarianceType type;
  int D, K;
  bool float32;
};

class NarrowPosteriors : public ::testing::TestWithParam<Case> {};

TEST_P(NarrowPosteriors, MatchTheReferenceAndSplitBitwise) {
  const Case c = GetParam();
  const std::size_t N = 2 * 256 + 13, stride = static_cast<std::size_t>(c.D) + 1;
  const std::size_t uK = static_cast<std::size_t>(c.K);
  const cuem_test::Mixture mix = cuem_test::make_mixture(c.type, c.K, c.D, 2.0, 40 + c.K);
  const cuem::Model model = cuem_test::model_from_mixture(mix, c.type);
  cuem_test::Rng rng(7);
  std::vector<double> X(N * stride);
  for (double& v : X) v = rng.uniform(-6.0, 6.0);
  std::vector<float> Xf(X.begin(), X.end());
  if (c.float32)
    for (std::size_t i = 0; i < X.size(); ++i) X[i] = static_cast<double>(Xf[i]);
  const std::size_t uD = static_cast<std::size_t>(c.D);
  const cuem::DataView view = c.float32 ? cuem::DataView(Xf.data(), N, uD, stride) : cuem::DataView(X.data(), N, uD, stride);
  std::vector<double> dense(N * uD);
  for (std::size_t n = 0; n < N; ++n)
    for (std::size_t d = 0; d < uD; ++d) dense[n * uD + d] = X[n * stride + d];
  const cuem::DataView dense_view(dense.data(), N, uD);
  const std::vector<double> want_resp = cuem_test::responsibilities(model, dense_view);
  const std::vector<double> want_lp = cuem_test::log_likelihoods(model, dense_view);

  auto prims = cuem::make_primitives(view, {}, {cuem::parse_device("cpu"), Precision::float64, 0, {}});
  const cuem::PreparedParams p = cuem::prepare(model);
  const int threads_before = omp_get_max_threads();
  std::vector<std::vector<double>> resp, lp;
  for (int threads : {1, 2}) {
    omp_set_num_threads(threads);
    resp.emplace_back(N * uK);
    lp.emplace_back(N);
    prims->posteriors(p, 0, N, lp.back().data(), resp.back().data());
  }
  omp_set_num_threads(threads_before);
  for (std::size_t i = 0; i < N * uK; ++i) ASSERT_NEAR(resp[0][i], want_resp[i], 1e-12) << "entry " << i;
  for (std::size_t n = 0; n < N; ++n) ASSERT_NEAR(lp[0][n], want_lp[n], 1e-12 * std::abs(want_lp[n])) << "row " << n;
  EXPECT_EQ(resp[1], resp[0]);
  EXPECT_EQ(lp[1], lp[0]);
  // The rows in calls of uneven sizes, the log-likelihoods alone in one of them.
  std::vector<double> r2(N * uK, -1.0), l2(N, -1.0);
  const std::vector<std::size_t> cuts{0, 3, 11, 300, 301, N};
  for (std::size_t i = 0; i + 1 < cuts.size(); ++i)
    prims->posteriors(p, cuts[i], cuts[i + 1], l2.data() + cuts[i], i == 2 ? nullptr : r2.data() + cuts[i] * uK);
  EXPECT_EQ(l2, lp[0]);
  for (std::size_t n = 0; n < N; ++n)
    for (std::size_t k = 0; k < uK; ++k) {
      if (n >= cuts[2] && n < cuts[3]) continue;  // not asked for
      ASSERT_EQ(r2[n * uK + k], resp[0][n * uK + k]) << "row " << n;
    }
}

std::vector<Case> cases() {
  std::vector<Case> out;
  for (CovarianceType type : {CovarianceType::diag, CovarianceType::spherical})
    for (int D : {1, 4, 8})
      for (int K : {3, 8}) out.push_back({type, D, K, D == 4});
  return out;
}

INSTANTIATE_TEST_SUITE_P(Shapes, NarrowPosteriors, ::testing::ValuesIn(cases()), [](const auto& info) {
  const Case& c = info.param;
  return std::string(cuem::to_string(c.type)) + "_D" + std::to_string(c.D) + "_K" + std::to_string(c.K) +
         (c.float32 ? "_f32" : "_f64");
});

}  // namespace
