// The host chain's scaling by powers of two (src/engine/hmm_chain.hpp): forward_backward
// and forward_log_likelihood against a plain log-space forward-backward written here, on
// ordinary frames and on a frame whose probability under the chain is subnormal; the
// scales c_t exact powers of two; a pass restarted from what it wrote (a segment's a_prev,
// r_next) and the interleaved steps in chunks give the separate passes' bits.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "engine/hmm_chain.hpp"

namespace {

using cuem::engine::ChainModel;
using cuem::engine::ChainWork;

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

double log_sum_exp(const std::vector<double>& v) {
  double m = kNegInf;
  for (double x : v) m = std::max(m, x);
  if (m == kNegInf) return kNegInf;
  double s = 0.0;
  for (double x : v) s += std::exp(x - m);
  return m + std::log(s);
}

struct Chain {
  int K = 0;
  std::vector<double> pi, A, AT, b, s;  // b: T x K rows summing to 1; s: T log scales
  std::size_t T() const { return s.size(); }
  ChainModel model() const { return {pi.data(), A.data(), AT.data(), K}; }
};

void transpose_into(Chain& c) {
  const std::size_t uK = static_cast<std::size_t>(c.K);
  c.AT.resize(uK * uK);
  for (std::size_t i = 0; i < uK; ++i)
    for (std::size_t j = 0; j < uK; ++j) c.AT[j * uK + i] = c.A[i * uK + j];
}

// A random chain and frames (some entries near zero).
Chain random_chain(int K, std::size_t T, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const std::size_t uK = static_cast<std::size_t>(K);
  Chain c;
  c.K = K;
  const auto row = [&](double* r) {
    double sum = 0.0;
    for (std::size_t k = 0; k < uK; ++k) sum += r[k] = u(rng) < 0.2 ? 1e-4 * u(rng) : u(rng);
    for (std::size_t k = 0; k < uK; ++k) r[k] /= sum;
  };
  c.pi.resize(uK);
  row(c.pi.data());
  c.A.resize(uK * uK);
  for (std::size_t i = 0; i < uK; ++i) row(c.A.data() + i * uK);
  c.b.resize(T * uK);
  c.s.resize(T);
  for (std::size_t t = 0; t < T; ++t) {
    row(c.b.data() + t * uK);
    c.s[t] = -2.0 - 3.0 * u(rng);
  }
  transpose_into(c);
  return c;
}

// States that stay put but for transitions of 1e-310 (subnormal), frames on state 0, then
// one frame that gives state 0 a density of 1e-320 (subnormal), then frames on state 1:
// the switch frame's probability under the chain is about 1e-310, below the normal range.
Chain subnormal_chain(int K) {
  const std::size_t uK = static_cast<std::size_t>(K), T = 120, at_switch = 50;
  Chain c;
  c.K = K;
  c.pi.assign(uK, 0.0);
  c.pi[0] = 1.0;
  c.A.assign(uK * uK, 1e-310);
  for (std::size_t i = 0; i < uK; ++i) c.A[i * uK + i] = 1.0;  // 1 - (K - 1) 1e-310 rounds to 1
  c.b.resize(T * uK);
  c.s.assign(T, -1.5);
  for (std::size_t t = 0; t < T; ++t) {
    double* r = c.b.data() + t * uK;
    const std::size_t on = t < at_switch ? 0 : 1;
    for (std::size_t k = 0; k < uK; ++k) r[k] = 0.2 / static_cast<double>(uK - 1);
    r[on] = 0.8;
    if (t == at_switch) {
      for (std::size_t k = 1; k < uK; ++k) r[k] = 1.0 / static_cast<double>(uK - 1);
      r[0] = 1e-320;
    }
  }
  transpose_into(c);
  return c;
}

// The plain log-space forward-backward: log-likelihood, gamma (T x K), sum_t xi_t (K x K).
struct Reference {
  double ll = 0.0;
  std::vector<double> gamma, xi;
};

Reference log_space(const Chain& c) {
  const std::size_t uK = static_cast<std::size_t>(c.K), T = c.T();
  const auto lg = [](double v) { return v > 0.0 ? std::log(v) : kNegInf; };
  std::vector<double> la(T * uK), lb(T * uK, 0.0), terms(uK);
  for (std::size_t k = 0; k < uK; ++k) la[k] = lg(c.pi[k]) + lg(c.b[k]);
  for (std::size_t t = 1; t < T; ++t)
    for (std::size_t j = 0; j < uK; ++j) {
      for (std::size_t i = 0; i < uK; ++i) terms[i] = la[(t - 1) * uK + i] + lg(c.A[i * uK + j]);
      la[t * uK + j] = log_sum_exp(terms) + lg(c.b[t * uK + j]);
    }
  for (std::size_t t = T - 1; t-- > 0;)
    for (std::size_t i = 0; i < uK; ++i) {
      for (std::size_t j = 0; j < uK; ++j)
        terms[j] = lg(c.A[i * uK + j]) + lg(c.b[(t + 1) * uK + j]) + lb[(t + 1) * uK + j];
      lb[t * uK + i] = log_sum_exp(terms);
    }
  Reference r;
  const double lz = log_sum_exp(std::vector<double>(la.end() - static_cast<std::ptrdiff_t>(uK), la.end()));
  r.ll = lz;
  for (double v : c.s) r.ll += v;
  r.gamma.resize(T * uK);
  for (std::size_t i = 0; i < T * uK; ++i) r.gamma[i] = std::exp(la[i] + lb[i] - lz);
  r.xi.assign(uK * uK, 0.0);
  for (std::size_t t = 1; t < T; ++t)
    for (std::size_t i = 0; i < uK; ++i)
      for (std::size_t j = 0; j < uK; ++j)
        r.xi[i * uK + j] += std::exp(la[(t - 1) * uK + i] + lg(c.A[i * uK + j]) + lg(c.b[t * uK + j]) +
                                     lb[t * uK + j] - lz);
  return r;
}

double max_abs_diff(const std::vector<double>& x, const std::vector<double>& y) {
  double m = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) m = std::max(m, std::abs(x[i] - y[i]));
  return m;
}

bool is_power_of_two(double v) {
  int e = 0;
  return v > 0.0 && std::frexp(v, &e) == 0.5;
}

// K 2 and 3 take a compile-time chain written out, 5 and 8 the four-partial-sum steps,
// 9 and 20 the run-time K.
class HmmChainScaling : public ::testing::TestWithParam<int> {};

// posteriors: also gamma and xi (not where G_t = sum_k a_t(k) r_t(k) is below the
// reciprocal's range, which needs transition probabilities at the bottom of the range).
void expect_matches_log_space(const Chain& c, double tol, bool posteriors) {
  const Reference ref = log_space(c);
  const std::size_t uK = static_cast<std::size_t>(c.K);
  for (bool parallel : {false, true}) {
    SCOPED_TRACE(parallel ? "parallel" : "serial");
    ChainWork work;
    std::vector<double> gamma = c.b, xi(uK * uK, 0.0);
    const double ll = cuem::engine::forward_backward(c.model(), c.T(), gamma.data(), c.s.data(), xi.data(), work,
                                                     parallel);
    EXPECT_NEAR(ll, ref.ll, tol * std::abs(ref.ll));
    if (posteriors) {
      EXPECT_LT(max_abs_diff(gamma, ref.gamma), tol);
      EXPECT_LT(max_abs_diff(xi, ref.xi), tol * static_cast<double>(c.T()));
    }
    for (std::size_t t = 0; t < c.T(); ++t) {
      EXPECT_TRUE(is_power_of_two(work.c[t])) << "c_" << t << " = " << work.c[t];
      EXPECT_LE(work.c[t], 2.0) << "c_" << t;
    }
    ChainWork fwd;
    EXPECT_EQ(cuem::engine::forward_log_likelihood(c.model(), c.T(), c.b.data(), c.s.data(), fwd), ll);
  }
}

TEST_P(HmmChainScaling, MatchesTheLogSpaceLoop) {
  const int K = GetParam();
  const Chain c = random_chain(K, 700, 40 + static_cast<std::uint64_t>(K));
  expect_matches_log_space(c, 1e-11, true);
  // a_{t-1} / c_t sums to [1, 2): the scale is the power of two of a_{t-1}'s sum.
  ChainWork work;
  std::vector<double> gamma = c.b;
  cuem::engine::forward_backward(c.model(), c.T(), gamma.data(), c.s.data(), nullptr, work, false);
  const std::size_t uK = static_cast<std::size_t>(K);
  for (std::size_t t = 1; t < c.T(); ++t) {
    double sum = 0.0;
    for (std::size_t k = 0; k < uK; ++k) sum += work.a[(t - 1) * uK + k];
    EXPECT_GE(sum / work.c[t], 1.0) << "t " << t;
    EXPECT_LT(sum / work.c[t], 2.0) << "t " << t;
  }
}

TEST_P(HmmChainScaling, SubnormalFrameProbability) {
  const Chain c = subnormal_chain(GetParam());
  expect_matches_log_space(c, 1e-10, false);
  // The switch frame's scale from a subnormal sum: the largest, 2^1022 (c = 2^-1022).
  ChainWork work;
  std::vector<double> gamma = c.b;
  cuem::engine::forward_backward(c.model(), c.T(), gamma.data(), c.s.data(), nullptr, work, false);
  EXPECT_EQ(work.c[51], 0x1p-1022);
}

// The passes restarted from what they wrote, and interleaved in chunks: the same bits.
TEST_P(HmmChainScaling, RestartsAndInterleavedChunksAreBitwiseTheSame) {
  const int K = GetParam();
  for (const Chain& c : {random_chain(K, 1000, 7), subnormal_chain(K)}) {
    const ChainModel m = c.model();
    const std::size_t uK = static_cast<std::size_t>(K), T = c.T();
    std::vector<double> a(T * uK), cs(T), r(T * uK);
    ASSERT_EQ(cuem::engine::forward_segment(m, c.b.data(), T, nullptr, a.data(), cs.data()), T);
    cuem::engine::backward_segment(m, c.b.data(), T, nullptr, nullptr, r.data());
    for (std::size_t cut : {std::size_t{1}, std::size_t{37}, T / 2, T - 1}) {
      SCOPED_TRACE("cut " + std::to_string(cut));
      std::vector<double> a2(T * uK), c2(T), r2(T * uK);
      ASSERT_EQ(cuem::engine::forward_segment(m, c.b.data(), cut, nullptr, a2.data(), c2.data()), cut);
      ASSERT_EQ(cuem::engine::forward_segment(m, c.b.data() + cut * uK, T - cut, a2.data() + (cut - 1) * uK,
                                              a2.data() + cut * uK, c2.data() + cut),
                T - cut);
      cuem::engine::backward_segment(m, c.b.data() + cut * uK, T - cut, nullptr, nullptr, r2.data() + cut * uK);
      cuem::engine::backward_segment(m, c.b.data(), cut, c.b.data() + cut * uK, r2.data() + cut * uK, r2.data());
      EXPECT_EQ(a2, a);
      EXPECT_EQ(c2, cs);
      EXPECT_EQ(r2, r);
    }
    for (std::size_t chunk : {std::size_t{1}, std::size_t{3}, std::size_t{256}}) {
      SCOPED_TRACE("chunk " + std::to_string(chunk));
      std::vector<double> a3(T * uK), c3(T), r3(T * uK);
      for (std::size_t done = 0; done < T; done += chunk) {
        const std::size_t n = std::min(chunk, T - done);
        ASSERT_EQ(cuem::engine::interleaved_steps(m, c.b.data(), T, done, done + n, T - done - n, T - done,
                                                  a3.data(), c3.data(), r3.data()),
                  done + n);
      }
      EXPECT_EQ(a3, a);
      EXPECT_EQ(c3, cs);
      EXPECT_EQ(r3, r);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(States, HmmChainScaling, ::testing::Values(2, 3, 5, 8, 9, 20),
                         [](const auto& info) { return "K" + std::to_string(info.param); });

}  // namespace
