// The wide lanes pass's skip of negligible weights (cpu/narrow_estep.hpp, cpu/wide_kernels.hpp):
// the statistics it keeps against a plain loop that applies the same rule to independently
// computed responsibilities, the same bits for any thread count, the rerun that keeps a dying
// component exact, and the skipped path within its documented bound of the unskipped one.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include "core/prepared_params.hpp"
#include "core/sufficient_stats.hpp"
#include "cpu/cpu_primitives.hpp"
#include "cpu/narrow_estep.hpp"
#include "cpu/narrow_kernels.hpp"
#include "cpu/wide_kernels.hpp"
#include "stats_reference.hpp"
#include "test_util.hpp"

namespace {

using cuem::CovarianceType;
using cuem::cpu::NarrowParams;

constexpr double kNoRerun = std::numeric_limits<double>::infinity();

// The lanes pass's parameter layout (cpu/narrow_kernels.hpp), built here from the prepared
// parameters: full and tied factors padded to pad4(D) columns.
struct Layout {
  std::vector<double> factors, constants;
  NarrowParams params;

  explicit Layout(const cuem::PreparedParams& p, double negligible) {
    const int D = p.D, Dp = cuem::cpu::pad4(D);
    for (int k = 0; k < p.K; ++k) constants.push_back(p.log_weights[k] + p.log_det[k]);
    for (int k = 0; k < p.K; ++k) {
      const double* P = p.factor(k);
      if (p.type == CovarianceType::full || p.type == CovarianceType::tied) {
        std::vector<double> f(static_cast<std::size_t>(D) * Dp, 0.0);
        for (int i = 0; i < D; ++i)
          for (int j = i; j < D; ++j) f[i * Dp + j] = P[i * D + j];
        factors.insert(factors.end(), f.begin(), f.end());
      } else {
        factors.insert(factors.end(), P, P + (p.type == CovarianceType::diag ? D : 1));
      }
    }
    params = NarrowParams{p.type, p.K, p.D, p.means.data(), factors.data(), constants.data(), p.means.data(), negligible};
  }
};

cuem::SufficientStats pass(const cuem_test::Dataset& ds, const cuem::PreparedParams& p, double negligible,
                           double tolerance, std::vector<double>* skipped, int threads = 2) {
  const Layout L(p, negligible);
  const int previous = omp_get_max_threads();
  omp_set_num_threads(threads);
  cuem::SufficientStats s = cuem::cpu::lanes_estep(ds.view(), L.params, {}, {}, tolerance, skipped);
  omp_set_num_threads(previous);
  return s;
}

// Statistics about the means from test_util's responsibilities, leaving out the pairs the
// wide pass leaves out: component k of each group of 8 consecutive rows whose
// responsibilities for k are all <= negligible. The weight so left out goes to skipped.
cuem::SufficientStats plain_skipped(const cuem::Model& m, const cuem_test::Dataset& ds, double negligible,
                                    std::vector<double>& skipped) {
  const int K = m.n_components, D = m.n_features;
  const std::vector<double> resp = cuem_test::responsibilities(m, ds.view());
  cuem::SufficientStats s = cuem::SufficientStats::zeros(m.covariance_type, K, D, m.means);
  skipped.assign(K, 0.0);
  for (std::size_t g0 = 0; g0 < ds.n; g0 += 8) {
    const std::size_t g1 = std::min(ds.n, g0 + 8);
    for (int k = 0; k < K; ++k) {
      double top = 0.0;
      for (std::size_t p = g0; p < g1; ++p) top = std::max(top, resp[p * K + k]);
      for (std::size_t p = g0; p < g1; ++p) {
        const double g = resp[p * K + k];
        if (top <= negligible) {
          skipped[k] += g;
          continue;
        }
        cuem_test::add_pair_stats(s, m, ds.row(p), k, g);
      }
    }
  }
  return s;
}

// Mean and covariance (upper triangle, or the diagonal) of component k from statistics about
// the shift; spherical keeps its D variances.
struct Moments {
  std::vector<double> mean, cov;
};
Moments moments(const cuem::SufficientStats& s, CovarianceType type, int k, int D, const std::vector<double>& shift) {
  Moments m;
  const double n = s.nk[k];
  for (int i = 0; i < D; ++i) m.mean.push_back(shift[k * D + i] + s.s1[k * D + i] / n);
  const bool full = type == CovarianceType::full || type == CovarianceType::tied;
  for (int i = 0; i < D; ++i) {
    const double ai = s.s1[k * D + i] / n;
    if (!full) {
      m.cov.push_back(s.s2[k * D + i] / n - ai * ai);
      continue;
    }
    if (type == CovarianceType::tied) continue;  // one scatter for all: not per component
    for (int j = i; j < D; ++j) m.cov.push_back(s.s2[(k * D + i) * D + j] / n - ai * s.s1[k * D + j] / n);
  }
  return m;
}

struct Case {
  CovarianceType type;
  int d, k;
  std::size_t n;
};

class NegligibleSkip : public testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    c = GetParam();
    ASSERT_TRUE(cuem::cpu::wide_applies(c.type, c.d));
    const cuem_test::Mixture mix = cuem_test::make_mixture(c.type, c.k, c.d, 2.5, 300 + c.d + c.k);
    ds = cuem_test::sample_mixture(mix, c.n, 400 + c.d);
    model = cuem_test::model_from_mixture(mix, c.type);
    for (std::size_t i = 0; i < model.means.size(); ++i) model.means[i] += 0.05 * std::sin(1.7 * static_cast<double>(i));
    SCOPED_TRACE("seeds 300 + d + k (mixture), 400 + d (data)");
  }
  Case c{};
  cuem_test::Dataset ds;
  cuem::Model model;
};

// A large threshold, no rerun: what is kept and what is left out are those of the plain loop.
TEST_P(NegligibleSkip, KeepsWhatAPlainLoopWithTheSameRuleKeeps) {
  constexpr double kLimit = 1e-3;
  std::vector<double> skipped, ref_skipped;
  const cuem::SufficientStats got = pass(ds, cuem::prepare(model), kLimit, kNoRerun, &skipped);
  const cuem::SufficientStats ref = plain_skipped(model, ds, kLimit, ref_skipped);
  const cuem::SufficientStats all = pass(ds, cuem::prepare(model), 0.0, kNoRerun, nullptr);
  // The rule left out enough here that leaving out nothing would fail the comparison below.
  ASSERT_GT(cuem_test::max_abs(ref_skipped), 1e-6);
  ASSERT_GT(cuem_test::max_rel_diff(all.s1, ref.s1, cuem_test::max_abs(ref.s1)), 1e-8);
  EXPECT_LT(cuem_test::max_rel_diff(skipped, ref_skipped, cuem_test::max_abs(ref_skipped)), 1e-12);
  EXPECT_LT(cuem_test::max_rel_diff(got.nk, ref.nk, cuem_test::max_abs(ref.nk)), 1e-12);
  EXPECT_LT(cuem_test::max_rel_diff(got.s1, ref.s1, cuem_test::max_abs(ref.s1)), 1e-11);
  EXPECT_LT(cuem_test::max_rel_diff(got.s2, ref.s2, cuem_test::max_abs(ref.s2)), 1e-11);
  EXPECT_EQ(got.log_likelihood, all.log_likelihood);  // the skip leaves the E-step's own sums alone
}

TEST_P(NegligibleSkip, BitwiseTheSameForAnyThreadCount) {
  const cuem::PreparedParams p = cuem::prepare(model);
  std::vector<double> sk1;
  const cuem::SufficientStats one = pass(ds, p, 1e-3, kNoRerun, &sk1, 1);
  for (int threads : {2, 3, 7}) {
    SCOPED_TRACE(std::to_string(threads) + " threads");
    std::vector<double> sk;
    const cuem::SufficientStats s = pass(ds, p, 1e-3, kNoRerun, &sk, threads);
    EXPECT_EQ(s.nk, one.nk);
    EXPECT_EQ(s.s1, one.s1);
    EXPECT_EQ(s.s2, one.s2);
    EXPECT_EQ(s.log_likelihood, one.log_likelihood);
    EXPECT_EQ(sk, sk1);
  }
}

// Skipping at the library's rule (rerun past kSkippedTolerance), here with a large threshold
// and tolerance so that it leaves out something measurable: within the header's bound.
TEST_P(NegligibleSkip, WithinItsBoundOfTheUnskippedPass) {
  constexpr double kLimit = 1e-6, kTol = 1e-3;
  const cuem::PreparedParams p = cuem::prepare(model);
  std::vector<double> skipped;
  const cuem::SufficientStats got = pass(ds, p, kLimit, kTol, &skipped);
  const cuem::SufficientStats exact = pass(ds, p, 0.0, kNoRerun, nullptr);
  ASSERT_GT(cuem_test::max_abs(skipped), 0.0) << "no rerun expected on this data";
  const int D = c.d;
  for (int k = 0; k < c.k; ++k) {
    SCOPED_TRACE("component " + std::to_string(k));
    EXPECT_LE(skipped[k], kTol * got.nk[k]);
    EXPECT_LE(exact.nk[k] - got.nk[k], kTol * got.nk[k] * (1 + 1e-12));
    EXPECT_GE(exact.nk[k] - got.nk[k], -1e-12 * exact.nk[k]);
    const Moments a = moments(got, c.type, k, D, model.means), b = moments(exact, c.type, k, D, model.means);
    double far = 0.0;  // max |x_i - mu_k| over all points: at least that over the points left out
    for (std::size_t i = 0; i < ds.n; ++i)
      for (int d = 0; d < D; ++d) far = std::max(far, std::abs(ds.row(i)[d] - a.mean[d]));
    for (int d = 0; d < D; ++d) EXPECT_LE(std::abs(a.mean[d] - b.mean[d]), kTol * far + 1e-12 * far);
    double biggest = 0.0;
    for (double v : a.cov) biggest = std::max(biggest, std::abs(v));
    const double far2 = D * far * far;
    for (std::size_t e = 0; e < a.cov.size(); ++e)
      EXPECT_LE(std::abs(a.cov[e] - b.cov[e]), kTol * (biggest + far2) * (1 + 10 * kTol)) << "entry " << e;
  }
}

// A component of tiny weight with none of its points left in the data: all its pairs fall
// under the threshold, so the pass leaving them out would lose it; the rerun keeps it,
// bitwise as the unskipped pass.
TEST_P(NegligibleSkip, ADyingComponentIsKeptExactly) {
  cuem::Model m = model;
  m.weights[0] = 1e-30;
  double sum = 0.0;
  for (double v : m.weights) sum += v;
  for (double& v : m.weights) v /= sum;
  const cuem::PreparedParams p = cuem::prepare(m);
  cuem_test::Dataset rest;
  rest.d = ds.d;
  for (std::size_t i = 0; i < ds.n; ++i)
    if (ds.labels[i] != 0) {
      rest.x.insert(rest.x.end(), ds.row(i), ds.row(i) + ds.d);
      rest.labels.push_back(ds.labels[i]);
      ++rest.n;
    }
  ds = rest;
  std::vector<double> skipped;
  const cuem::SufficientStats got = pass(ds, p, cuem::cpu::kNegligibleWeight, cuem::cpu::kSkippedTolerance, &skipped);
  const cuem::SufficientStats exact = pass(ds, p, 0.0, kNoRerun, nullptr);
  ASSERT_GT(exact.nk[0], 0.0);
  ASSERT_LT(exact.nk[0], 1e-20);
  EXPECT_EQ(got.nk, exact.nk);
  EXPECT_EQ(got.s1, exact.s1);
  EXPECT_EQ(got.s2, exact.s2);
  EXPECT_EQ(skipped, std::vector<double>(c.k, 0.0));
  // Through the library's E-step too, against test_util's responsibilities.
  std::vector<double> none;
  const cuem::SufficientStats ref = plain_skipped(m, ds, 0.0, none);
  const cuem::SufficientStats lib = cuem::CpuPrimitives(ds.view()).gaussian_estep(p);
  EXPECT_NEAR(lib.nk[0], ref.nk[0], 1e-10 * ref.nk[0]);
}

std::string case_name(const testing::TestParamInfo<Case>& info) {
  const char* t = info.param.type == CovarianceType::full   ? "full"
                  : info.param.type == CovarianceType::tied ? "tied"
                  : info.param.type == CovarianceType::diag ? "diag"
                                                            : "spherical";
  return std::string(t) + "_d" + std::to_string(info.param.d) + "_k" + std::to_string(info.param.k);
}

INSTANTIATE_TEST_SUITE_P(WideShapes, NegligibleSkip,
                         testing::Values(Case{CovarianceType::full, 16, 16, 3001}, Case{CovarianceType::full, 7, 5, 2049},
                                         Case{CovarianceType::tied, 9, 6, 2001},
                                         Case{CovarianceType::diag, 32, 12, 3001},
                                         Case{CovarianceType::spherical, 11, 7, 2001}),
                         case_name);

}  // namespace
