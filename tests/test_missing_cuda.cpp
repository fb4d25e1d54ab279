// The CUDA E-step over incomplete rows (src/core/cuda_incomplete_rows.hpp) against a
// plain float64 loop written here in covariance form (the observed marginal from
// Sigma_oo, the conditional mean and covariance from Sigma_mo Sigma_oo^-1: independent of
// the precision form the library uses), over every covariance type, with and without
// weights, float32 and float64, MCAR at 10% and 40%, no complete row, more patterns than
// a batch holds, K = 1; and bitwise repeatability. Runs on the emulated device (tests/emu)
// everywhere and on a GPU where one is; without a device it skips with the reason.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "core/cuda_incomplete_rows.hpp"
#include "core/make_incomplete_rows.hpp"
#include "core/sufficient_stats.hpp"
#include "cuem/devices.hpp"
#include "cuem/fit.hpp"
#include "engine/incomplete_rows.hpp"
#include "engine/missing_layout.hpp"
#include "engine/primitives.hpp"
#include "test_util.hpp"
#if defined(CUEM_EMULATED_DEVICE)
#include <cuda_runtime.h>
#endif

namespace {

using cuem::CovarianceType;
using cuem::Precision;
using cuem::engine::MissingLayout;

bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}

// A MissingLayout built here, as missing_layout.hpp describes it: complete rows first,
// then the patterns in order of first appearance, each pattern's rows in order; the
// missing entries hold the observed (weighted) column means; rows with nothing observed
// left out.
MissingLayout build_layout(const std::vector<double>& x, std::size_t N, int D, const std::vector<double>& w) {
  MissingLayout L;
  L.n_cols = static_cast<std::size_t>(D);
  std::vector<double> sum(D, 0.0), count(D, 0.0);
  for (std::size_t i = 0; i < N; ++i)
    for (int d = 0; d < D; ++d)
      if (!std::isnan(x[i * D + d])) {
        const double wi = w.empty() ? 1.0 : w[i];
        sum[d] += wi * x[i * D + d];
        count[d] += wi;
      }
  L.fill.resize(D);
  for (int d = 0; d < D; ++d) L.fill[d] = count[d] > 0 ? sum[d] / count[d] : 0.0;
  std::vector<std::string> keys;
  std::map<std::string, std::size_t> index;
  std::vector<std::vector<std::size_t>> rows;
  for (std::size_t i = 0; i < N; ++i) {
    std::string key(D, 'o');
    int observed = 0;
    for (int d = 0; d < D; ++d) {
      if (std::isnan(x[i * D + d])) key[d] = 'm';
      else ++observed;
    }
    if (observed == 0) continue;
    if (observed == D) {
      L.order.push_back(i);
      continue;
    }
    auto it = index.find(key);
    if (it == index.end()) {
      it = index.emplace(key, keys.size()).first;
      keys.push_back(key);
      rows.emplace_back();
    }
    rows[it->second].push_back(i);
  }
  L.n_complete = L.order.size();
  for (std::size_t p = 0; p < keys.size(); ++p) {
    cuem::engine::MissingPattern pat;
    pat.begin = L.order.size();
    for (int d = 0; d < D; ++d) (keys[p][d] == 'o' ? pat.observed : pat.missing).push_back(d);
    L.order.insert(L.order.end(), rows[p].begin(), rows[p].end());
    pat.end = L.order.size();
    L.patterns.push_back(pat);
  }
  L.n_rows = L.order.size();
  for (std::size_t r = 0; r < L.n_rows; ++r) {
    const std::size_t i = L.order[r];
    for (int d = 0; d < D; ++d) {
      const double v = std::isnan(x[i * D + d]) ? L.fill[d] : x[i * D + d];
      L.values.push_back(v);
    }
    if (!w.empty()) L.weights.push_back(w[i]);
  }
  return L;
}

// The statistics of the layout's incomplete rows about the model's means, and beside
// each entry the sum of its terms' magnitudes (what a sum's rounding scales with).
struct Reference {
  cuem::SufficientStats stats, scale;
};

Reference reference(const MissingLayout& L, const cuem::Model& model) {
  const int K = model.n_components, D = model.n_features;
  const CovarianceType type = model.covariance_type;
  const bool full = type == CovarianceType::full || type == CovarianceType::tied;
  Reference r{cuem::SufficientStats::zeros(type, K, D, model.means), cuem::SufficientStats::zeros(type, K, D, model.means)};
  std::vector<cuem_test::Matrix> sigma(K);
  for (int k = 0; k < K; ++k) sigma[k] = cuem_test::full_covariance(model, k);
  for (const cuem::engine::MissingPattern& pat : L.patterns) {
    const std::vector<int>& o = pat.observed;
    const std::vector<int>& m = pat.missing;
    const int no = static_cast<int>(o.size()), nm = static_cast<int>(m.size());
    // Per component: Sigma_oo^-1, log|Sigma_oo|, B = Sigma_mo Sigma_oo^-1, the
    // conditional covariance.
    std::vector<cuem_test::Matrix> inv(K), B(K), C(K);
    std::vector<double> logdet(K);
    for (int k = 0; k < K; ++k) {
      const cuem_test::Matrix& S = sigma[k];
      cuem_test::Matrix soo(no * no);
      for (int a = 0; a < no; ++a)
        for (int b = 0; b < no; ++b) soo[a * no + b] = S[o[a] * D + o[b]];
      const cuem_test::Matrix chol = cuem_test::cholesky_lower(soo, no);
      logdet[k] = 0;
      for (int a = 0; a < no; ++a) logdet[k] += 2 * std::log(chol[a * no + a]);
      inv[k] = cuem_test::inverse_spd(soo, no);
      B[k].assign(nm * no, 0.0);
      for (int i = 0; i < nm; ++i)
        for (int j = 0; j < no; ++j)
          for (int l = 0; l < no; ++l) B[k][i * no + j] += S[m[i] * D + o[l]] * inv[k][l * no + j];
      C[k].assign(nm * nm, 0.0);
      for (int i = 0; i < nm; ++i)
        for (int j = 0; j < nm; ++j) {
          double v = S[m[i] * D + m[j]];
          for (int l = 0; l < no; ++l) v -= B[k][i * no + l] * S[o[l] * D + m[j]];
          C[k][i * nm + j] = v;
        }
    }
    std::vector<double> v(K), y(static_cast<std::size_t>(K) * D), dev(no);
    for (std::size_t row = pat.begin; row < pat.end; ++row) {
      const double w = L.weights.empty() ? 1.0 : L.weights[row];
      for (int k = 0; k < K; ++k) {
        const double* mu = model.means.data() + static_cast<std::size_t>(k) * D;
        for (int a = 0; a < no; ++a) dev[a] = L.value(row, o[a]) - mu[o[a]];
        double quad = 0;
        for (int a = 0; a < no; ++a)
          for (int b = 0; b < no; ++b) quad += dev[a] * inv[k][a * no + b] * dev[b];
        v[k] = std::log(model.weights[k]) - 0.5 * (no * std::log(2 * cuem_test::kPi) + logdet[k] + quad);
        double* yk = y.data() + static_cast<std::size_t>(k) * D;
        for (int a = 0; a < no; ++a) yk[o[a]] = dev[a];
        for (int i = 0; i < nm; ++i) {
          double s = 0;
          for (int j = 0; j < no; ++j) s += B[k][i * no + j] * dev[j];
          yk[m[i]] = s;  // E[x_m | x_o] - mu_m
        }
      }
      const double lp = cuem_test::logsumexp(v.data(), K);
      if (w != 0.0) {
        r.stats.log_likelihood += w * lp;
        r.scale.log_likelihood += std::abs(w * lp);
      }
      for (int k = 0; k < K; ++k) {
        const double gw = w * std::exp(v[k] - lp);
        const double* yk = y.data() + static_cast<std::size_t>(k) * D;
        r.stats.nk[k] += gw;
        r.scale.nk[k] += gw;
        for (int d = 0; d < D; ++d) {
          r.stats.s1[k * D + d] += gw * yk[d];
          r.scale.s1[k * D + d] += std::abs(gw * yk[d]);
        }
        std::vector<double> cm(static_cast<std::size_t>(D) * D, 0.0);  // C_k on the missing block
        for (int i = 0; i < nm; ++i)
          for (int j = 0; j < nm; ++j) cm[m[i] * D + m[j]] = C[k][i * nm + j];
        for (int a = 0; a < D; ++a)
          for (int b = a; b < (full ? D : a + 1); ++b) {
            const std::size_t e = type == CovarianceType::tied ? static_cast<std::size_t>(a) * D + b
                                  : full                       ? (static_cast<std::size_t>(k) * D + a) * D + b
                                                               : static_cast<std::size_t>(k) * D + a;
            const double t = gw * (yk[a] * yk[b] + cm[a * D + b]);
            r.stats.s2[e] += t;
            r.scale.s2[e] += std::abs(t);
          }
      }
      r.stats.n_points += w != 0.0;  // a row of weight 0 is absent
      r.stats.weight += w;
    }
  }
  return r;
}

// Every entry within tol of its terms' magnitude, after the result is re-centred on the
// reference's shift (the device names the means it used); not vacuous.
void expect_near_reference(const cuem::SufficientStats& result, const Reference& want, double tol) {
  const cuem::SufficientStats got = result.recentred(want.stats.shift);
  ASSERT_EQ(got.s2.size(), want.stats.s2.size());
  ASSERT_GT(cuem_test::max_abs(want.stats.s2), 0.0);
  ASSERT_GT(cuem_test::max_abs(got.s2), 0.0);
  EXPECT_EQ(got.n_points, want.stats.n_points);
  EXPECT_NEAR(got.weight, want.stats.weight, 1e-12 * want.stats.weight);
  for (int k = 0; k < got.K; ++k)
    ASSERT_NEAR(got.nk[k], want.stats.nk[k], tol * want.scale.nk[k] + 1e-300) << "N_k " << k;
  for (std::size_t j = 0; j < got.s1.size(); ++j)
    ASSERT_NEAR(got.s1[j], want.stats.s1[j], tol * want.scale.s1[j] + 1e-300) << "S1 entry " << j;
  for (std::size_t j = 0; j < got.s2.size(); ++j)
    ASSERT_NEAR(got.s2[j], want.stats.s2[j], tol * want.scale.s2[j] + 1e-300) << "S2 entry " << j;
  EXPECT_NEAR(got.log_likelihood, want.stats.log_likelihood, tol * want.scale.log_likelihood) << "log-likelihood";
}

// Data from a mixture of `type`, each entry missing with probability `rate` (a row with
// nothing observed is left out by the layout; with `no_complete_row` a row that drew no
// missing entry loses one at random).
struct Problem {
  cuem::Model model;
  std::vector<double> x;
  std::size_t n = 0;
  int d = 0;
  std::vector<double> w;
};

Problem make_problem(CovarianceType type, int K, int D, std::size_t N, double rate, bool weighted,
                     bool no_complete_row, std::uint64_t seed) {
  std::printf("seed %llu\n", static_cast<unsigned long long>(seed));
  const cuem_test::Mixture mix = cuem_test::make_mixture(type, K, D, 3.0, seed);
  const cuem_test::Dataset ds = cuem_test::sample_mixture(mix, N, seed + 1);
  Problem p;
  p.n = N;
  p.d = D;
  p.x = ds.x;
  cuem_test::Rng rng(seed + 2);
  for (std::size_t i = 0; i < N; ++i) {
    bool any = false;
    for (int d = 0; d < D; ++d)
      if (rng.uniform() < rate) {
        p.x[i * D + d] = NAN;
        any = true;
      }
    if (no_complete_row && !any) p.x[i * D + static_cast<int>(rng.uniform() * D)] = NAN;
  }
  if (weighted) {
    p.w.resize(N);
    for (double& v : p.w) {
      const double u = rng.uniform();
      v = u < 0.15 ? 0.0 : u < 0.5 ? 1.0 + static_cast<int>(rng.uniform() * 3) : rng.uniform(0.1, 2.0);
    }
  }
  // The means moved off the truth, so that responsibilities are not all 0 or 1.
  p.model = cuem_test::model_from_mixture(mix, type);
  for (double& v : p.model.means) v += 0.4 * rng.normal();
  return p;
}

cuem::PrimitivesRequest request(Precision precision) {
  cuem::PrimitivesRequest r;
  r.device.kind = cuem::DeviceKind::cuda;
  r.device.index = 0;
  r.precision = precision;
  return r;
}

double tolerance(Precision p) { return p == Precision::float32 ? 1e-5 : 1e-10; }

struct Case {
  CovarianceType type;
  Precision precision;
  bool weighted;
  double rate;
};

std::string describe(const Case& c) {
  return std::string(cuem::to_string(c.type)) + "_" + cuem::to_string(c.precision) + (c.weighted ? "_weighted" : "") +
         "_mcar" + std::to_string(static_cast<int>(c.rate * 100));
}

std::string case_name(const testing::TestParamInfo<Case>& info) { return describe(info.param); }

void PrintTo(const Case& c, std::ostream* os) { *os << describe(c); }

std::vector<Case> all_cases() {
  std::vector<Case> out;
  for (CovarianceType t : cuem_test::all_covariance_types())
    for (Precision p : {Precision::float64, Precision::float32})
      for (bool w : {false, true})
        for (double rate : {0.1, 0.4}) out.push_back({t, p, w, rate});
  return out;
}

class MissingCuda : public testing::TestWithParam<Case> {};

TEST_P(MissingCuda, MatchesAFloat64Loop) {
  REQUIRE_DEVICE();
  const Case c = GetParam();
  const int D = 6, K = 3;
  const Problem p = make_problem(c.type, K, D, 700, c.rate, c.weighted, false,
                                 900u + static_cast<std::uint64_t>(c.type) * 10 + (c.weighted ? 1 : 0));
  const MissingLayout L = build_layout(p.x, p.n, D, p.w);
  ASSERT_GT(L.n_complete, 0u);
  ASSERT_GT(L.patterns.size(), 3u);
  const auto rows = cuem::make_cuda_incomplete_rows(L, request(c.precision), nullptr);
  EXPECT_EQ(rows->unit_roundoff(), c.precision == Precision::float32 ? 0x1p-24 : 0x1p-53);
  expect_near_reference(rows->estep(p.model), reference(L, p.model), tolerance(c.precision));
}

INSTANTIATE_TEST_SUITE_P(AllTypes, MissingCuda, testing::ValuesIn(all_cases()), case_name);

// X given in float32 (the library's layout holds its float64 conversion).
TEST(MissingCudaLayout, Float32Data) {
  REQUIRE_DEVICE();
  for (CovarianceType type : {CovarianceType::full, CovarianceType::diag}) {
    SCOPED_TRACE(cuem::to_string(type));
    const Problem p = make_problem(type, 3, 5, 400, 0.3, true, false, 950);
    const std::vector<float> x32(p.x.begin(), p.x.end());
    const MissingLayout L =
        cuem::engine::make_missing_layout(cuem::DataView(x32.data(), p.n, 5), cuem::WeightView(p.w.data(), p.n), true);
    ASSERT_GT(L.patterns.size(), 3u);
    const auto rows = cuem::make_cuda_incomplete_rows(L, request(Precision::float32), nullptr);
    expect_near_reference(rows->estep(p.model), reference(L, p.model), 1e-5);
  }
}

// Data centred at 1e4 with unit spread (DESIGN.md's numerical rules): the rows are
// stored about the fill and the means go up in two parts, so float32 keeps the spread.
TEST(MissingCudaLayout, OffsetData) {
  REQUIRE_DEVICE();
  for (CovarianceType type : {CovarianceType::full, CovarianceType::diag})
    for (Precision prec : {Precision::float64, Precision::float32}) {
      SCOPED_TRACE(std::string(cuem::to_string(type)) + " " + cuem::to_string(prec));
      Problem p = make_problem(type, 3, 5, 600, 0.3, true, false, 955);
      for (double& v : p.x) v += 1e4;
      for (double& v : p.model.means) v += 1e4;
      const MissingLayout L = build_layout(p.x, p.n, 5, p.w);
      const auto rows = cuem::make_cuda_incomplete_rows(L, request(prec), nullptr);
      expect_near_reference(rows->estep(p.model), reference(L, p.model), tolerance(prec));
    }
}

// Every row misses something: the layout has no complete row, and every row goes
// through the kernel.
TEST(MissingCudaLayout, NoCompleteRow) {
  REQUIRE_DEVICE();
  for (CovarianceType type : cuem_test::all_covariance_types())
    for (Precision prec : {Precision::float64, Precision::float32}) {
      SCOPED_TRACE(std::string(cuem::to_string(type)) + " " + cuem::to_string(prec));
      const Problem p = make_problem(type, 4, 5, 500, 0.1, false, true, 960);
      const MissingLayout L = build_layout(p.x, p.n, 5, p.w);
      ASSERT_EQ(L.n_complete, 0u);
      ASSERT_EQ(L.n_rows, p.n);
      const auto rows = cuem::make_cuda_incomplete_rows(L, request(prec), nullptr);
      expect_near_reference(rows->estep(p.model), reference(L, p.model), tolerance(prec));
    }
}

// Every row its own pattern (D = 12 has thousands), more than a batch holds: the
// patterns go through the factor table in many batches (tiny limits), and in one batch
// of 400 one-row tiles spread over 200 segments (the defaults).
TEST(MissingCudaLayout, MorePatternsThanABatch) {
  REQUIRE_DEVICE();
  const int D = 12;
  for (CovarianceType type : cuem_test::all_covariance_types()) {
    SCOPED_TRACE(cuem::to_string(type));
    Problem p = make_problem(type, 3, D, 400, 0.0, true, false, 970);
    cuem_test::Rng rng(971);
    std::map<std::vector<bool>, int> seen;
    for (std::size_t i = 0; i < p.n; ++i) {
      std::vector<bool> mask(D);
      do {  // a new pattern, 1 to D - 1 entries missing
        int missing = 0;
        for (int d = 0; d < D; ++d) missing += (mask[d] = rng.uniform() < 0.4);
        if (missing == 0 || missing == D) continue;
        if (seen.emplace(mask, 0).second) break;
      } while (true);
      for (int d = 0; d < D; ++d)
        if (mask[d]) p.x[i * D + d] = NAN;
    }
    const MissingLayout L = build_layout(p.x, p.n, D, p.w);
    ASSERT_EQ(L.patterns.size(), p.n);
    const Reference want = reference(L, p.model);
    for (Precision prec : {Precision::float64, Precision::float32}) {
      SCOPED_TRACE(cuem::to_string(prec));
      cuem::MissingBatchLimits tiny;
      tiny.factor_values = 100;  // a full pattern's K |m| |o| is up to 108: one or two a batch
      tiny.patterns = 7;
      const auto batched = cuem::make_cuda_incomplete_rows(L, request(prec), nullptr, tiny);
      expect_near_reference(batched->estep(p.model), want, tolerance(prec));
      const auto whole = cuem::make_cuda_incomplete_rows(L, request(prec), nullptr);
      expect_near_reference(whole->estep(p.model), want, tolerance(prec));
    }
  }
}

// A pattern with more rows than a tile holds (tile_rows is 128 at D = 4), and K = 1.
TEST(MissingCudaLayout, OneComponentAndLargePatterns) {
  REQUIRE_DEVICE();
  for (CovarianceType type : cuem_test::all_covariance_types())
    for (Precision prec : {Precision::float64, Precision::float32}) {
      SCOPED_TRACE(std::string(cuem::to_string(type)) + " " + cuem::to_string(prec));
      Problem p = make_problem(type, 1, 4, 1200, 0.0, true, false, 980);
      cuem_test::Rng rng(981);
      for (std::size_t i = 0; i < p.n; ++i)
        if (rng.uniform() < 0.6) p.x[i * 4 + (rng.uniform() < 0.8 ? 0 : 2)] = NAN;
      const MissingLayout L = build_layout(p.x, p.n, 4, p.w);
      ASSERT_GT(L.patterns[0].end - L.patterns[0].begin, 300u);
      const auto rows = cuem::make_cuda_incomplete_rows(L, request(prec), nullptr);
      const cuem::SufficientStats got = rows->estep(p.model);
      expect_near_reference(got, reference(L, p.model), tolerance(prec));
      EXPECT_NEAR(got.nk[0], got.weight, 1e-12 * got.weight);  // g = 1
    }
}

// The same E-step twice on one object, and on a second object, gives the same bits; on
// the emulated device the second runs its blocks and threads in the opposite order.
TEST(MissingCudaLayout, BitwiseRepeatable) {
  REQUIRE_DEVICE();
  for (CovarianceType type : {CovarianceType::full, CovarianceType::spherical})
    for (Precision prec : {Precision::float64, Precision::float32}) {
      SCOPED_TRACE(std::string(cuem::to_string(type)) + " " + cuem::to_string(prec));
      const Problem p = make_problem(type, 3, 7, 2000, 0.3, true, false, 990);
      const MissingLayout L = build_layout(p.x, p.n, 7, p.w);
      cuem::MissingBatchLimits limits;
      limits.patterns = 20;  // several batches and launches
      const auto one = cuem::make_cuda_incomplete_rows(L, request(prec), nullptr, limits);
      const cuem::SufficientStats a = one->estep(p.model);
      cuem::SufficientStats b, c;
      {
#if defined(CUEM_EMULATED_DEVICE)
        const cuem::emu::ScheduleScope reverse(cuem::emu::Schedule::reverse);
#endif
        b = one->estep(p.model);
        const auto two = cuem::make_cuda_incomplete_rows(L, request(prec), nullptr, limits);
        c = two->estep(p.model);
      }
      ASSERT_GT(cuem_test::max_abs(a.s2), 0.0);
      for (const cuem::SufficientStats* o : {&b, &c}) {
        EXPECT_TRUE(same_bits(a.shift, o->shift));
        EXPECT_TRUE(same_bits(a.nk, o->nk));
        EXPECT_TRUE(same_bits(a.s1, o->s1));
        EXPECT_TRUE(same_bits(a.s2, o->s2));
        EXPECT_EQ(std::memcmp(&a.log_likelihood, &o->log_likelihood, sizeof(double)), 0);
      }
    }
}

// The library's own layout (make_missing_layout) and the float64 CPU implementation from
// the same model: the CUDA statistics match the CPU's as they match the loop above (whose
// per-entry magnitudes set the tolerance), and the CPU's match the loop.
TEST(MissingCudaAgainstCpu, EveryTypeAndPrecision) {
  REQUIRE_DEVICE();
  const int D = 6, K = 3;
  for (CovarianceType type : cuem_test::all_covariance_types())
    for (bool weighted : {false, true})
      for (double rate : {0.1, 0.4}) {
        const Problem p = make_problem(type, K, D, 600, rate, weighted, false,
                                       1000u + static_cast<std::uint64_t>(type) * 10 + (weighted ? 1 : 0));
        const MissingLayout L = cuem::engine::make_missing_layout(
            cuem::DataView(p.x.data(), p.n, static_cast<std::size_t>(D)),
            weighted ? cuem::WeightView(p.w.data(), p.n) : cuem::WeightView(), true);
        ASSERT_GT(L.patterns.size(), 3u);
        const Reference loop = reference(L, p.model);
        const cuem::SufficientStats cpu = cuem::engine::make_cpu_incomplete_rows(L)->estep(p.model);
        {
          SCOPED_TRACE(std::string("cpu against the loop, ") + cuem::to_string(type));
          expect_near_reference(cpu, loop, 1e-10);
        }
        const Reference want{cpu.recentred(p.model.means), loop.scale};
        for (Precision prec : {Precision::float64, Precision::float32}) {
          SCOPED_TRACE(std::string(cuem::to_string(type)) + " " + cuem::to_string(prec) +
                       (weighted ? " weighted" : "") + " mcar " + std::to_string(rate));
          expect_near_reference(cuem::make_cuda_incomplete_rows(L, request(prec), nullptr)->estep(p.model), want,
                                tolerance(prec));
        }
      }
}

// The same blocks grouped into launches of one segment (a pattern's tiles then span
// launches, and so do the segments' and the patterns' running sums) give the same bits.
TEST(MissingCudaLayout, LaunchGroupingDoesNotMoveBits) {
  REQUIRE_DEVICE();
  for (CovarianceType type : {CovarianceType::tied, CovarianceType::diag})
    for (Precision prec : {Precision::float64, Precision::float32}) {
      SCOPED_TRACE(std::string(cuem::to_string(type)) + " " + cuem::to_string(prec));
      Problem p = make_problem(type, 2, 4, 1500, 0.05, true, false, 997);
      cuem_test::Rng rng(998);
      for (std::size_t i = 0; i < p.n; ++i)  // one pattern of ~600 rows: 5 tiles
        if (rng.uniform() < 0.4) p.x[i * 4 + 1] = NAN;
      const MissingLayout L = build_layout(p.x, p.n, 4, p.w);
      cuem::MissingBatchLimits one;
      one.segments_per_launch = 1;
      const cuem::SufficientStats a = cuem::make_cuda_incomplete_rows(L, request(prec), nullptr)->estep(p.model);
      const cuem::SufficientStats b =
          cuem::make_cuda_incomplete_rows(L, request(prec), nullptr, one)->estep(p.model);
      expect_near_reference(b, reference(L, p.model), tolerance(prec));
      EXPECT_TRUE(same_bits(a.nk, b.nk));
      EXPECT_TRUE(same_bits(a.s1, b.s1));
      EXPECT_TRUE(same_bits(a.s2, b.s2));
      EXPECT_EQ(std::memcmp(&a.log_likelihood, &b.log_likelihood, sizeof(double)), 0);
    }
}

// make_incomplete_rows follows the fit's primitives: CUDA beside CUDA primitives (cuda or
// 'auto' with a device), on the Resources' context, in the request's precision; the CPU
// beside CPU primitives.
TEST(MissingCudaFactory, FollowsThePrimitives) {
  REQUIRE_DEVICE();
  const Problem p = make_problem(CovarianceType::full, 3, 5, 400, 0.3, true, false, 1010);
  const MissingLayout L = cuem::engine::make_missing_layout(cuem::DataView(p.x.data(), p.n, 5),
                                                            cuem::WeightView(p.w.data(), p.n), true);
  const Reference want = reference(L, p.model);
  for (cuem::DeviceKind kind : {cuem::DeviceKind::cuda, cuem::DeviceKind::automatic}) {
    cuem::PrimitivesRequest r = request(Precision::float64);
    r.device.kind = kind;
    std::shared_ptr<cuem::cuda::DeviceContext> context;
    const auto prims = cuem::make_primitives(L.view(), L.weight_view(), r, nullptr, &context);
    ASSERT_STREQ(prims->name(), "cuda");
    ASSERT_TRUE(context);
    const std::shared_ptr<cuem::cuda::DeviceContext> before = context;
    const auto rows = cuem::make_incomplete_rows(L, r, *prims, &context);
    EXPECT_EQ(context, before);
    EXPECT_STREQ(rows->name(), "cuda");
    EXPECT_EQ(rows->unit_roundoff(), 0x1p-53);
    expect_near_reference(rows->estep(p.model), want, 1e-10);
  }
  cuem::PrimitivesRequest f32 = request(Precision::float32);
  const auto prims32 = cuem::make_primitives(L.view(), L.weight_view(), f32);
  EXPECT_EQ(cuem::make_incomplete_rows(L, f32, *prims32)->unit_roundoff(), 0x1p-24);
  cuem::PrimitivesRequest cpu;
  cpu.device.kind = cuem::DeviceKind::cpu;
  const auto cpu_prims = cuem::make_primitives(L.view(), L.weight_view(), cpu);
  const auto on_cpu = cuem::make_incomplete_rows(L, cpu, *cpu_prims);
  EXPECT_STREQ(on_cpu->name(), "cpu");
  expect_near_reference(on_cpu->estep(p.model), want, 1e-10);
}

// Unit weights are no weights, bit for bit (w g with w = 1 is g).
TEST(MissingCudaLayout, UnitWeightsAreNoWeights) {
  REQUIRE_DEVICE();
  const Problem p = make_problem(CovarianceType::tied, 3, 5, 500, 0.3, false, false, 995);
  const MissingLayout plain = build_layout(p.x, p.n, 5, {});
  const MissingLayout unit = build_layout(p.x, p.n, 5, std::vector<double>(p.n, 1.0));
  for (Precision prec : {Precision::float64, Precision::float32}) {
    const cuem::SufficientStats a = cuem::make_cuda_incomplete_rows(plain, request(prec), nullptr)->estep(p.model);
    const cuem::SufficientStats b = cuem::make_cuda_incomplete_rows(unit, request(prec), nullptr)->estep(p.model);
    ASSERT_GT(cuem_test::max_abs(a.s2), 0.0);
    EXPECT_TRUE(same_bits(a.nk, b.nk));
    EXPECT_TRUE(same_bits(a.s1, b.s1));
    EXPECT_TRUE(same_bits(a.s2, b.s2));
    EXPECT_EQ(a.log_likelihood, b.log_likelihood);
    EXPECT_EQ(a.weight, b.weight);
  }
}

}  // namespace

namespace {

// fit() end to end on the device: the complete rows through the CUDA primitives, the
// incomplete ones through the CUDA incomplete rows; float64 agrees with the CPU fit to
// rounding, float32 to its own, and the trace never falls.
TEST(MissingCudaFit, FitsAsTheCpuDoes) {
  REQUIRE_DEVICE();
  const cuem_test::Dataset d =
      cuem_test::sample_mixture(cuem_test::make_mixture(cuem::CovarianceType::full, 3, 5, 3.0, 941), 3000, 942);
  std::vector<double> x = d.x;
  cuem_test::Rng rng(943);
  for (double& v : x)
    if (rng.uniform() < 0.2) v = std::numeric_limits<double>::quiet_NaN();
  for (cuem::CovarianceType type : cuem_test::all_covariance_types()) {
    cuem::FitOptions o;
    o.n_components = 3;
    o.covariance_type = type;
    o.missing = cuem::MissingPolicy::marginalize;
    o.max_iter = 15;
    o.tol = 0;
    const cuem::FitResult cpu = cuem::fit(cuem::DataView(x.data(), d.n, 5), o);
    o.device = cuem::parse_device("cuda");
    o.precision = cuem::Precision::float64;
    const cuem::FitResult gpu64 = cuem::fit(cuem::DataView(x.data(), d.n, 5), o);
    o.precision = cuem::Precision::float32;
    const cuem::FitResult gpu32 = cuem::fit(cuem::DataView(x.data(), d.n, 5), o);
    EXPECT_NE(gpu64.device.find("cuda"), std::string::npos) << gpu64.device;
    EXPECT_LT(cuem_test::max_rel_diff(gpu64.model.means, cpu.model.means), 1e-8) << cuem::to_string(type);
    EXPECT_LT(cuem_test::max_rel_diff(gpu64.model.covariances, cpu.model.covariances), 1e-8) << cuem::to_string(type);
    EXPECT_NEAR(gpu64.lower_bound, cpu.lower_bound, 1e-9 * std::abs(cpu.lower_bound));
    EXPECT_LT(cuem_test::max_rel_diff(gpu32.model.means, cpu.model.means), 1e-3) << cuem::to_string(type);
    EXPECT_EQ(gpu64.n_decreases, 0);
    EXPECT_EQ(gpu32.n_decreases, 0);
    EXPECT_EQ(gpu64.missing.n_patterns, cpu.missing.n_patterns);
  }
}

}  // namespace
