// The CPU kernels' vector exp and log (src/cpu/simd.hpp) against the C library in long
// double, through functions compiled as the kernels are (one clone per instruction-set
// level), so the level this machine runs is the one tested.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "cpu/simd.hpp"

namespace {

using cuem::cpu::simd::load;
using cuem::cpu::simd::store;

CUEM_CLONES
void vector_exp(const double* t, double* out, std::size_t n) {
  for (std::size_t i = 0; i < n; i += 8) store(out + i, cuem::cpu::simd::exp_nonpositive(load(t + i)));
}

CUEM_CLONES
void vector_log(const double* s, double* out, std::size_t n) {
  for (std::size_t i = 0; i < n; i += 8) store(out + i, cuem::cpu::simd::log_positive(load(s + i)));
}

// |got - ref| in units of the last place of the double nearest ref.
double ulps(double got, long double ref) {
  const double r = static_cast<double>(ref);
  const double ulp = std::nextafter(std::fabs(r), std::numeric_limits<double>::infinity()) - std::fabs(r);
  return static_cast<double>(std::fabs(static_cast<long double>(got) - ref)) / ulp;
}

TEST(CpuSimd, ExpWithinTwoUlpsOverItsRange) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> wide(-708.0, 0.0), near(-2.0, 0.0);
  std::vector<double> t(1 << 16), e(t.size());
  for (std::size_t i = 0; i < t.size(); ++i) t[i] = i % 2 ? wide(rng) : near(rng);
  vector_exp(t.data(), e.data(), t.size());
  double worst = 0.0;
  for (std::size_t i = 0; i < t.size(); ++i) worst = std::max(worst, ulps(e[i], std::exp(static_cast<long double>(t[i]))));
  EXPECT_LT(worst, 2.0);
}

TEST(CpuSimd, ExpAtItsEdges) {
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> t = {0.0, -0.0, -1e-300, -708.0, -708.0001, -745.2, -inf, std::nan("")};
  std::vector<double> e(t.size());
  vector_exp(t.data(), e.data(), t.size());
  EXPECT_EQ(e[0], 1.0);
  EXPECT_EQ(e[1], 1.0);
  EXPECT_EQ(e[2], 1.0);
  EXPECT_LT(ulps(e[3], std::exp(static_cast<long double>(-708.0))), 2.0);  // the last normal results
  EXPECT_EQ(e[4], 0.0);  // below -708: 0, never a subnormal
  EXPECT_EQ(e[5], 0.0);
  EXPECT_EQ(e[6], 0.0);
  EXPECT_TRUE(std::isnan(e[7]));  // a NaN log joint stays visible
}

TEST(CpuSimd, LogWithinTwoUlpsFromTinyToHuge) {
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> exponent(-1000.0, 1000.0), near(0.5, 2.0);
  std::vector<double> s(1 << 16), l(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) s[i] = i % 2 ? std::exp2(exponent(rng)) : near(rng);
  s[0] = 1.0;
  s[2] = std::numeric_limits<double>::min();
  s[4] = std::numeric_limits<double>::max();
  vector_log(s.data(), l.data(), s.size());
  EXPECT_EQ(l[0], 0.0);
  double worst = 0.0;
  for (std::size_t i = 1; i < s.size(); ++i) {
    worst = std::max(worst, ulps(l[i], std::log(static_cast<long double>(s[i]))));
  }
  EXPECT_LT(worst, 2.0);
}

}  // namespace
