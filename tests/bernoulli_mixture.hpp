#pragma once
// A second model on the engine for the driver tests: a mixture of independent Bernoulli
// features, written against the batch driver's model interface (src/engine/model.hpp) in a
// few dozen lines and nothing Gaussian. e_step can take a row range, so drivers that sum
// statistics over parts of the data can be tested on it too.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "core/rng.hpp"

namespace cuem_test {

struct BernoulliParams {
  std::vector<double> log_pi;  // K
  std::vector<double> p;       // K x D: P(x_d = 1 | k)
};

// The monoid: zero (a default-constructed set of the right shape), add; its statistics
// are plain sums, so they need no shift.
struct BernoulliStats {
  std::vector<double> nk;  // K: sum_n w_n g_nk
  std::vector<double> s;   // K x D: sum_n w_n g_nk x_nd
  double log_likelihood = 0;
  double weight = 0;
  void add(const BernoulliStats& o) {
    for (std::size_t i = 0; i < nk.size(); ++i) nk[i] += o.nk[i];
    for (std::size_t i = 0; i < s.size(); ++i) s[i] += o.s[i];
    log_likelihood += o.log_likelihood;
    weight += o.weight;
  }
};

class BernoulliMixture {
 public:
  using Params = BernoulliParams;
  using Stats = BernoulliStats;

  BernoulliMixture(const std::vector<int>& x, int n, int d, int k) : x_(x), N_(n), D_(d), K_(k) {}

  // Random feature probabilities in (0.25, 0.75), equal weights.
  Params initialize(std::uint64_t seed, std::vector<std::string>*) const {
    Params p{std::vector<double>(K_, -std::log(static_cast<double>(K_))), std::vector<double>(K_ * D_)};
    for (int i = 0; i < K_ * D_; ++i) p.p[i] = 0.25 + 0.5 * cuem::rng::uniform(seed, 0, i);
    return p;
  }

  Stats e_step(const Params& p, int begin = 0, int end = -1) const {
    if (end < 0) end = N_;
    Stats s{std::vector<double>(K_, 0.0), std::vector<double>(K_ * D_, 0.0), 0.0, 0.0};
    std::vector<double> lj(K_);
    for (int n = begin; n < end; ++n) {
      for (int k = 0; k < K_; ++k) {
        lj[k] = p.log_pi[k];
        for (int d = 0; d < D_; ++d) lj[k] += std::log(x_[n * D_ + d] ? p.p[k * D_ + d] : 1 - p.p[k * D_ + d]);
      }
      const double top = *std::max_element(lj.begin(), lj.end());
      double sum = 0;
      for (int k = 0; k < K_; ++k) sum += std::exp(lj[k] - top);
      const double lp = top + std::log(sum);
      for (int k = 0; k < K_; ++k) {
        const double g = std::exp(lj[k] - lp);
        s.nk[k] += g;
        for (int d = 0; d < D_; ++d) s.s[k * D_ + d] += g * x_[n * D_ + d];
      }
      s.log_likelihood += lp;
      s.weight += 1;
    }
    return s;
  }

  Params m_step(const Stats& s) const {
    Params p{std::vector<double>(K_), std::vector<double>(K_ * D_)};
    double total = 0;
    for (double v : s.nk) total += v;
    for (int k = 0; k < K_; ++k) {
      p.log_pi[k] = std::log(s.nk[k] / total);
      for (int d = 0; d < D_; ++d) p.p[k * D_ + d] = std::clamp(s.s[k * D_ + d] / s.nk[k], 1e-12, 1 - 1e-12);
    }
    return p;
  }

  double unit_roundoff() const { return 0x1p-53; }

 private:
  const std::vector<int>& x_;
  int N_, D_, K_;
};

}  // namespace cuem_test
