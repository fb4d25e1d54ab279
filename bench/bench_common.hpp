#pragma once
// The standard benchmark configurations (issue 5) and their seeded data and start
// parameters, shared by the CPU and CUDA suites.
#include <cmath>
#include <cstddef>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "core/m_step.hpp"
#include "cuem/model.hpp"

namespace cuem::bench {

struct Config {
  std::string name;
  std::size_t N;
  int D;
  int K;
  CovarianceType type;
};

/// What a benchmark times.
enum class Work { em_iteration, estep, score_samples, predict_proba };

/// "<prefix>_em_iteration" and so on: the suite names of both backends.
inline std::string work_name(const std::string& prefix, Work w) {
  switch (w) {
    case Work::em_iteration: return prefix + "_em_iteration";
    case Work::estep: return prefix + "_estep";
    case Work::score_samples: return prefix + "_score_samples";
    case Work::predict_proba: return prefix + "_predict_proba";
  }
  return prefix;
}

/// predict_proba returns N x K float64: the suites evaluate at most this many points.
inline constexpr std::size_t kProbaPoints = std::size_t{1} << 18;

/// A-E: the CPU comparison set; G1-G5: GPU scale.
inline std::vector<Config> cpu_configs() {
  return {{"A", 1000000, 2, 8, CovarianceType::full},
          {"B", 200000, 16, 16, CovarianceType::full},
          {"C", 1000000, 32, 32, CovarianceType::diag},
          {"D", 100000, 64, 64, CovarianceType::full},
          {"E", 2000000, 1, 4, CovarianceType::full}};
}

inline std::vector<Config> gpu_configs() {
  return {{"G1", 16000000, 2, 8, CovarianceType::full},
          {"G2", 4000000, 32, 64, CovarianceType::full},
          {"G3", 16000000, 32, 32, CovarianceType::diag},
          {"G4s", 1000000, 128, 1024, CovarianceType::spherical},
          {"G4d", 1000000, 128, 1024, CovarianceType::diag},
          {"G5", 100000000, 1, 4, CovarianceType::full}};
}

/// K Gaussian blobs with unit spread around centres drawn from N(0, 5^2 I), point i in
/// blob i mod K; float64, seeded, cached per shape.
inline const std::vector<double>& data_for(const Config& c) {
  static std::map<std::tuple<std::size_t, int, int>, std::vector<double>> cache;
  auto& X = cache[{c.N, c.D, c.K}];
  if (X.empty()) {
    std::mt19937_64 gen(42);
    std::normal_distribution<double> z;
    std::vector<double> centres(static_cast<std::size_t>(c.K) * c.D);
    for (double& m : centres) m = 5.0 * z(gen);
    X.resize(c.N * c.D);
    for (std::size_t i = 0; i < c.N; ++i) {
      const std::size_t k = i % static_cast<std::size_t>(c.K);
      for (int d = 0; d < c.D; ++d) X[i * c.D + d] = centres[k * c.D + d] + z(gen);
    }
  }
  return X;
}

/// Start parameters that cost O(N D) to make (compare_peers' protocol): K points spread
/// through the data as means, equal weights, and every component the variance of the
/// data (per dimension; full and tied get it as a diagonal matrix).
inline Model start_model(const Config& c, const std::vector<double>& X) {
  const std::size_t D = static_cast<std::size_t>(c.D);
  Model m;
  m.covariance_type = c.type;
  m.n_components = c.K;
  m.n_features = c.D;
  m.weights.assign(c.K, 1.0 / c.K);
  for (int k = 0; k < c.K; ++k) {
    const std::size_t row = (static_cast<std::size_t>(k) * 7919u * 104729u + 13u) % c.N;
    m.means.insert(m.means.end(), X.begin() + static_cast<std::ptrdiff_t>(row * D),
                   X.begin() + static_cast<std::ptrdiff_t>((row + 1) * D));
  }
  std::vector<double> mean(D, 0.0), var(D, 0.0);
  for (std::size_t i = 0; i < c.N; ++i)
    for (std::size_t d = 0; d < D; ++d) mean[d] += X[i * D + d];
  for (double& v : mean) v /= static_cast<double>(c.N);
  for (std::size_t i = 0; i < c.N; ++i)
    for (std::size_t d = 0; d < D; ++d) var[d] += (X[i * D + d] - mean[d]) * (X[i * D + d] - mean[d]);
  for (double& v : var) v /= static_cast<double>(c.N);
  double avg = 0;
  for (double v : var) avg += v / static_cast<double>(D);
  const auto diag_matrix = [&] {
    std::vector<double> S(D * D, 0.0);
    for (std::size_t d = 0; d < D; ++d) S[d * D + d] = var[d];
    return S;
  };
  switch (c.type) {
    case CovarianceType::full:
      for (int k = 0; k < c.K; ++k) {
        const auto S = diag_matrix();
        m.covariances.insert(m.covariances.end(), S.begin(), S.end());
      }
      break;
    case CovarianceType::tied: m.covariances = diag_matrix(); break;
    case CovarianceType::diag:
      for (int k = 0; k < c.K; ++k) m.covariances.insert(m.covariances.end(), var.begin(), var.end());
      break;
    case CovarianceType::spherical: m.covariances.assign(c.K, avg); break;
  }
  compute_precision_cholesky(m, 0.0);
  return m;
}

}  // namespace cuem::bench
