#pragma once
// Shared helpers of the cuem tests: synthetic mixtures with known parameters, dense
// float64 linear algebra written independently of the library (so the tests do not
// check the library against itself), the M-step and log-densities by the textbook
// formulas, and matching of fitted components to true ones.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuem/covariance_type.hpp"
#include "cuem/data_view.hpp"
#include "cuem/devices.hpp"
#include "cuem/model.hpp"

namespace cuem_test {

/// Empty when a CUDA device is usable, else why not: the reason the GPU tests skip with
/// (they wait for a machine with a device; scripts/gpu_check.sh runs them there).
inline std::string no_device_reason() {
  std::string reason;
  if (!cuem::cuda_devices(&reason).empty()) return {};
  return "no CUDA device: " + reason;
}

/// Skips the calling test, with the reason, where no CUDA device is usable.
#define REQUIRE_DEVICE()                                   \
  do {                                                     \
    const std::string why = cuem_test::no_device_reason(); \
    if (!why.empty()) GTEST_SKIP() << why;                 \
  } while (0)

using Matrix = std::vector<double>;  // row-major, square D x D unless said otherwise

constexpr double kPi = 3.14159265358979323846;

inline const std::vector<cuem::CovarianceType>& all_covariance_types() {
  static const std::vector<cuem::CovarianceType> types = {
      cuem::CovarianceType::full, cuem::CovarianceType::tied, cuem::CovarianceType::diag,
      cuem::CovarianceType::spherical};
  return types;
}

// ---- random numbers -------------------------------------------------------------------

// mt19937_64 is specified bit for bit by the standard, its distributions are not; the
// uniforms and normals are made here so the test data are the same on every library.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : gen_(seed) {}

  double uniform() { return static_cast<double>(gen_() >> 11) * 0x1.0p-53; }  // [0, 1)
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }

  double normal() {  // Box-Muller, both values used
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    double u1 = 0;
    while (u1 <= 0) u1 = uniform();
    const double u2 = uniform();
    const double r = std::sqrt(-2.0 * std::log(u1));
    spare_ = r * std::sin(2.0 * kPi * u2);
    has_spare_ = true;
    return r * std::cos(2.0 * kPi * u2);
  }

 private:
  std::mt19937_64 gen_;
  bool has_spare_ = false;
  double spare_ = 0;
};

// ---- dense linear algebra ------------------------------------------------------------

inline Matrix identity(int d) {
  Matrix m(static_cast<std::size_t>(d) * d, 0.0);
  for (int i = 0; i < d; ++i) m[static_cast<std::size_t>(i) * d + i] = 1.0;
  return m;
}

inline Matrix matmul(const Matrix& a, const Matrix& b, int d) {
  Matrix c(static_cast<std::size_t>(d) * d, 0.0);
  for (int i = 0; i < d; ++i)
    for (int k = 0; k < d; ++k)
      for (int j = 0; j < d; ++j) c[i * d + j] += a[i * d + k] * b[k * d + j];
  return c;
}

inline Matrix transpose(const Matrix& a, int d) {
  Matrix t(a.size());
  for (int i = 0; i < d; ++i)
    for (int j = 0; j < d; ++j) t[j * d + i] = a[i * d + j];
  return t;
}

/// Lower-triangular L with A = L L^T; throws std::domain_error if A is not positive definite.
inline Matrix cholesky_lower(const Matrix& a, int d) {
  Matrix l(static_cast<std::size_t>(d) * d, 0.0);
  for (int j = 0; j < d; ++j) {
    double s = a[j * d + j];
    for (int k = 0; k < j; ++k) s -= l[j * d + k] * l[j * d + k];
    if (!(s > 0)) throw std::domain_error("cholesky_lower: matrix not positive definite");
    const double ljj = std::sqrt(s);
    l[j * d + j] = ljj;
    for (int i = j + 1; i < d; ++i) {
      double t = a[i * d + j];
      for (int k = 0; k < j; ++k) t -= l[i * d + k] * l[j * d + k];
      l[i * d + j] = t / ljj;
    }
  }
  return l;
}

/// Inverse of a lower-triangular matrix.
inline Matrix invert_lower(const Matrix& l, int d) {
  Matrix inv(static_cast<std::size_t>(d) * d, 0.0);
  for (int c = 0; c < d; ++c) {  // forward substitution for column c of the identity
    for (int i = c; i < d; ++i) {
      double s = (i == c) ? 1.0 : 0.0;
      for (int k = c; k < i; ++k) s -= l[i * d + k] * inv[k * d + c];
      inv[i * d + c] = s / l[i * d + i];
    }
  }
  return inv;
}

inline Matrix inverse_spd(const Matrix& a, int d) {
  const Matrix li = invert_lower(cholesky_lower(a, d), d);
  return matmul(transpose(li, d), li, d);  // A^-1 = L^-T L^-1
}

/// Q diag(eig) Q^T with Q a random orthogonal matrix (Gram-Schmidt of a Gaussian matrix)
/// and eigenvalues uniform in [lo, hi]: a covariance of known conditioning.
inline Matrix random_spd(Rng& rng, int d, double lo, double hi) {
  Matrix q(static_cast<std::size_t>(d) * d);
  for (double& v : q) v = rng.normal();
  for (int c = 0; c < d; ++c) {  // orthonormalise the columns
    for (int p = 0; p < c; ++p) {
      double dot = 0;
      for (int i = 0; i < d; ++i) dot += q[i * d + c] * q[i * d + p];
      for (int i = 0; i < d; ++i) q[i * d + c] -= dot * q[i * d + p];
    }
    double norm = 0;
    for (int i = 0; i < d; ++i) norm += q[i * d + c] * q[i * d + c];
    norm = std::sqrt(norm);
    for (int i = 0; i < d; ++i) q[i * d + c] /= norm;
  }
  Matrix a(static_cast<std::size_t>(d) * d, 0.0);
  for (int e = 0; e < d; ++e) {
    const double lambda = rng.uniform(lo, hi);
    for (int i = 0; i < d; ++i)
      for (int j = 0; j < d; ++j) a[i * d + j] += lambda * q[i * d + e] * q[j * d + e];
  }
  for (int i = 0; i < d; ++i)  // exactly symmetric
    for (int j = 0; j < i; ++j) a[i * d + j] = a[j * d + i];
  return a;
}

// ---- synthetic mixtures --------------------------------------------------------------

/// A mixture with every covariance stored as a full D x D matrix, whatever its structure.
struct Mixture {
  int k = 0;
  int d = 0;
  Matrix weights;      // K
  Matrix means;        // K x D
  Matrix covariances;  // K x D x D

  const double* mean(int c) const { return means.data() + static_cast<std::size_t>(c) * d; }
  Matrix covariance(int c) const {
    const std::size_t dd = static_cast<std::size_t>(d) * d;
    return Matrix(covariances.begin() + c * dd, covariances.begin() + (c + 1) * dd);
  }
};

struct Dataset {
  std::size_t n = 0;
  int d = 0;
  std::vector<double> x;  // N x D row-major
  std::vector<int> labels;

  cuem::DataView view() const { return cuem::DataView(x.data(), n, static_cast<std::size_t>(d)); }
  const double* row(std::size_t i) const { return x.data() + i * d; }
};

/// A random mixture whose covariances have the structure of `type` (full: each its own
/// dense matrix; tied: one shared; diag: diagonal; spherical: a multiple of I), with
/// variances in [var_lo, var_hi] and means at least `separation` apart; weights in
/// proportion 1 : 2 at the extremes.
inline Mixture make_mixture(cuem::CovarianceType type, int k, int d, double separation,
                            std::uint64_t seed, double var_lo = 0.5, double var_hi = 2.0) {
  Rng rng(seed);
  Mixture m;
  m.k = k;
  m.d = d;
  m.weights.resize(k);
  for (double& w : m.weights) w = rng.uniform(1.0, 2.0);
  const double wsum = std::accumulate(m.weights.begin(), m.weights.end(), 0.0);
  for (double& w : m.weights) w /= wsum;

  // Rejection sampling in a box that grows until K means fit `separation` apart.
  double box = separation * std::max(1.0, std::pow(static_cast<double>(k), 1.0 / d));
  m.means.assign(static_cast<std::size_t>(k) * d, 0.0);
  for (int c = 0; c < k; ++c) {
    for (int attempt = 0;; ++attempt) {
      if (attempt > 0 && attempt % 200 == 0) box *= 1.5;
      for (int i = 0; i < d; ++i) m.means[c * d + i] = rng.uniform(-box, box);
      bool ok = true;
      for (int p = 0; p < c && ok; ++p) {
        double dist2 = 0;
        for (int i = 0; i < d; ++i) {
          const double diff = m.means[c * d + i] - m.means[p * d + i];
          dist2 += diff * diff;
        }
        ok = dist2 >= separation * separation;
      }
      if (ok) break;
    }
  }

  const std::size_t dd = static_cast<std::size_t>(d) * d;
  m.covariances.assign(k * dd, 0.0);
  const Matrix shared = random_spd(rng, d, var_lo, var_hi);
  for (int c = 0; c < k; ++c) {
    Matrix cov;
    switch (type) {
      case cuem::CovarianceType::full: cov = random_spd(rng, d, var_lo, var_hi); break;
      case cuem::CovarianceType::tied: cov = shared; break;
      case cuem::CovarianceType::diag:
        cov.assign(dd, 0.0);
        for (int i = 0; i < d; ++i) cov[i * d + i] = rng.uniform(var_lo, var_hi);
        break;
      case cuem::CovarianceType::spherical: {
        cov = identity(d);
        const double v = rng.uniform(var_lo, var_hi);
        for (double& e : cov) e *= v;
        break;
      }
    }
    std::copy(cov.begin(), cov.end(), m.covariances.begin() + c * dd);
  }
  return m;
}

/// N points from the mixture: a label drawn from the weights, then mean + L z.
inline Dataset sample_mixture(const Mixture& m, std::size_t n, std::uint64_t seed) {
  Rng rng(seed);
  const int d = m.d;
  std::vector<Matrix> chol;
  for (int c = 0; c < m.k; ++c) chol.push_back(cholesky_lower(m.covariance(c), d));
  Dataset ds;
  ds.n = n;
  ds.d = d;
  ds.x.assign(n * d, 0.0);
  ds.labels.assign(n, 0);
  std::vector<double> z(d);
  for (std::size_t p = 0; p < n; ++p) {
    const double u = rng.uniform();
    int c = 0;
    double cum = m.weights[0];
    while (c + 1 < m.k && u >= cum) cum += m.weights[++c];
    ds.labels[p] = c;
    for (double& v : z) v = rng.normal();
    for (int i = 0; i < d; ++i) {
      double v = m.mean(c)[i];
      for (int j = 0; j <= i; ++j) v += chol[c][i * d + j] * z[j];
      ds.x[p * d + i] = v;
    }
  }
  return ds;
}

// ---- statistics -----------------------------------------------------------------------

/// Weighted mean (D) and biased weighted covariance (D x D) of the rows of X; unit
/// weights when w is empty. Two passes about the mean, as exact as float64 allows.
inline void weighted_moments(const double* x, std::size_t n, int d, const std::vector<double>& w,
                             Matrix& mean, Matrix& cov) {
  mean.assign(d, 0.0);
  cov.assign(static_cast<std::size_t>(d) * d, 0.0);
  double total = 0;
  for (std::size_t p = 0; p < n; ++p) {
    const double wp = w.empty() ? 1.0 : w[p];
    total += wp;
    for (int i = 0; i < d; ++i) mean[i] += wp * x[p * d + i];
  }
  for (double& v : mean) v /= total;
  std::vector<double> diff(d);
  for (std::size_t p = 0; p < n; ++p) {
    const double wp = w.empty() ? 1.0 : w[p];
    for (int i = 0; i < d; ++i) diff[i] = x[p * d + i] - mean[i];
    for (int i = 0; i < d; ++i)
      for (int j = 0; j < d; ++j) cov[i * d + j] += wp * diff[i] * diff[j];
  }
  for (double& v : cov) v /= total;
}

inline Matrix sample_mean(const double* x, std::size_t n, int d) {
  Matrix mean, cov;
  weighted_moments(x, n, d, {}, mean, cov);
  return mean;
}

inline Matrix biased_covariance(const double* x, std::size_t n, int d) {
  Matrix mean, cov;
  weighted_moments(x, n, d, {}, mean, cov);
  return cov;
}

inline double logsumexp(const double* v, std::size_t n) {
  const double mx = *std::max_element(v, v + n);
  if (!std::isfinite(mx)) return mx;
  double s = 0;
  for (std::size_t i = 0; i < n; ++i) s += std::exp(v[i] - mx);
  return mx + std::log(s);
}

// ---- models ---------------------------------------------------------------------------

/// Covariance of component c of a model as a full D x D matrix, whatever its type.
inline Matrix full_covariance(const cuem::Model& m, int c) {
  const int d = m.n_features;
  const std::size_t dd = static_cast<std::size_t>(d) * d;
  Matrix cov(dd, 0.0);
  switch (m.covariance_type) {
    case cuem::CovarianceType::full:
      std::copy(m.covariances.begin() + c * dd, m.covariances.begin() + (c + 1) * dd, cov.begin());
      break;
    case cuem::CovarianceType::tied: cov = m.covariances; break;
    case cuem::CovarianceType::diag:
      for (int i = 0; i < d; ++i) cov[i * d + i] = m.covariances[static_cast<std::size_t>(c) * d + i];
      break;
    case cuem::CovarianceType::spherical:
      for (int i = 0; i < d; ++i) cov[i * d + i] = m.covariances[c];
      break;
  }
  return cov;
}

/// scikit-learn's precisions_cholesky of full D x D covariances: P = L^-T (upper).
inline Matrix precision_cholesky_full(const Matrix& cov, int d) {
  return transpose(invert_lower(cholesky_lower(cov, d), d), d);
}

/// Fills precisions_cholesky from covariances, as scikit-learn does.
inline void set_precisions_cholesky(cuem::Model& m) {
  const int d = m.n_features;
  const std::size_t dd = static_cast<std::size_t>(d) * d;
  m.precisions_cholesky.assign(m.covariances.size(), 0.0);
  switch (m.covariance_type) {
    case cuem::CovarianceType::full:
      for (int c = 0; c < m.n_components; ++c) {
        const Matrix p = precision_cholesky_full(full_covariance(m, c), d);
        std::copy(p.begin(), p.end(), m.precisions_cholesky.begin() + c * dd);
      }
      break;
    case cuem::CovarianceType::tied:
      m.precisions_cholesky = precision_cholesky_full(m.covariances, d);
      break;
    case cuem::CovarianceType::diag:
    case cuem::CovarianceType::spherical:
      for (std::size_t i = 0; i < m.covariances.size(); ++i)
        m.precisions_cholesky[i] = 1.0 / std::sqrt(m.covariances[i]);
      break;
  }
}

/// The precision parameters that FitOptions::precisions_init expects for a model's
/// covariances: inverse matrices (full, tied) or inverse variances (diag, spherical).
inline std::vector<double> precisions_of(const cuem::Model& m) {
  if (m.covariance_type == cuem::CovarianceType::full) {
    const int d = m.n_features;
    const std::size_t dd = static_cast<std::size_t>(d) * d;
    std::vector<double> out(m.covariances.size());
    for (int c = 0; c < m.n_components; ++c) {
      const Matrix p = inverse_spd(full_covariance(m, c), d);
      std::copy(p.begin(), p.end(), out.begin() + c * dd);
    }
    return out;
  }
  if (m.covariance_type == cuem::CovarianceType::tied) return inverse_spd(m.covariances, m.n_features);
  std::vector<double> out(m.covariances.size());
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = 1.0 / m.covariances[i];
  return out;
}

/// A model of `type` holding a mixture's parameters (its covariances must have that
/// type's structure, as make_mixture gives them), precisions_cholesky filled.
inline cuem::Model model_from_mixture(const Mixture& mix, cuem::CovarianceType type) {
  cuem::Model m;
  m.covariance_type = type;
  m.n_components = mix.k;
  m.n_features = mix.d;
  m.weights = mix.weights;
  m.means = mix.means;
  const int d = mix.d;
  switch (type) {
    case cuem::CovarianceType::full: m.covariances = mix.covariances; break;
    case cuem::CovarianceType::tied: m.covariances = mix.covariance(0); break;
    case cuem::CovarianceType::diag:
      for (int c = 0; c < mix.k; ++c)
        for (int i = 0; i < d; ++i) m.covariances.push_back(mix.covariance(c)[i * d + i]);
      break;
    case cuem::CovarianceType::spherical:
      for (int c = 0; c < mix.k; ++c) m.covariances.push_back(mix.covariance(c)[0]);
      break;
  }
  set_precisions_cholesky(m);
  return m;
}

/// N x K matrix of log w_k + log N(x_n | mu_k, Sigma_k), from the model's covariances
/// through this file's own Cholesky (not from the library's precisions_cholesky).
inline std::vector<double> log_joint(const cuem::Model& m, cuem::DataView x) {
  const int d = m.n_features;
  const int k = m.n_components;
  std::vector<double> out(x.n_rows * k);
  std::vector<double> y(d);
  for (int c = 0; c < k; ++c) {
    const Matrix l = cholesky_lower(full_covariance(m, c), d);
    double log_det = 0;
    for (int i = 0; i < d; ++i) log_det += 2.0 * std::log(l[i * d + i]);
    const double constant = std::log(m.weights[c]) - 0.5 * (d * std::log(2.0 * kPi) + log_det);
    for (std::size_t p = 0; p < x.n_rows; ++p) {
      double maha = 0;
      for (int i = 0; i < d; ++i) {  // solve L y = x - mu
        double s = x.row(p)[i] - m.means[static_cast<std::size_t>(c) * d + i];
        for (int j = 0; j < i; ++j) s -= l[i * d + j] * y[j];
        y[i] = s / l[i * d + i];
        maha += y[i] * y[i];
      }
      out[p * k + c] = constant - 0.5 * maha;
    }
  }
  return out;
}

/// log p(x_n) of every point.
inline std::vector<double> log_likelihoods(const cuem::Model& m, cuem::DataView x) {
  const std::vector<double> lj = log_joint(m, x);
  const std::size_t k = static_cast<std::size_t>(m.n_components);
  std::vector<double> out(x.n_rows);
  for (std::size_t p = 0; p < x.n_rows; ++p) out[p] = logsumexp(lj.data() + p * k, k);
  return out;
}

inline double mean_log_likelihood(const cuem::Model& m, cuem::DataView x) {
  const std::vector<double> ll = log_likelihoods(m, x);
  return std::accumulate(ll.begin(), ll.end(), 0.0) / static_cast<double>(ll.size());
}

/// Responsibilities (N x K) of a model's components for the points.
inline std::vector<double> responsibilities(const cuem::Model& m, cuem::DataView x) {
  std::vector<double> r = log_joint(m, x);
  const std::size_t k = static_cast<std::size_t>(m.n_components);
  for (std::size_t p = 0; p < x.n_rows; ++p) {
    const double norm = logsumexp(r.data() + p * k, k);
    for (std::size_t c = 0; c < k; ++c) r[p * k + c] = std::exp(r[p * k + c] - norm);
  }
  return r;
}

/// scikit-learn's M-step from responsibilities: N_k = sum resp + 10 eps, weights N_k / sum
/// N_k, weighted means, covariances about the new means plus reg_covar on the diagonal;
/// tied pools the scatter over sum N_k, spherical averages the diagonal variances.
inline cuem::Model m_step(cuem::DataView x, const std::vector<double>& resp, int k,
                          cuem::CovarianceType type, double reg_covar) {
  const int d = static_cast<int>(x.n_cols);
  const std::size_t n = x.n_rows;
  const std::size_t dd = static_cast<std::size_t>(d) * d;
  cuem::Model m;
  m.covariance_type = type;
  m.n_components = k;
  m.n_features = d;
  m.weights.assign(k, 0.0);
  m.means.assign(static_cast<std::size_t>(k) * d, 0.0);
  std::vector<Matrix> scatter(k);
  const double eps10 = 10.0 * std::numeric_limits<double>::epsilon();
  for (int c = 0; c < k; ++c) {
    std::vector<double> w(n);
    for (std::size_t p = 0; p < n; ++p) w[p] = resp[p * k + c];
    Matrix mean, cov;
    weighted_moments(x.data, n, d, w, mean, cov);
    const double nk_raw = std::accumulate(w.begin(), w.end(), 0.0);
    const double nk = nk_raw + eps10;
    m.weights[c] = nk;
    for (int i = 0; i < d; ++i) m.means[static_cast<std::size_t>(c) * d + i] = mean[i] * nk_raw / nk;
    for (double& v : cov) v *= nk_raw / nk;  // scatter / N_k with N_k carrying the 10 eps
    scatter[c] = cov;
  }
  const double total = std::accumulate(m.weights.begin(), m.weights.end(), 0.0);
  switch (type) {
    case cuem::CovarianceType::full:
      for (int c = 0; c < k; ++c) {
        for (int i = 0; i < d; ++i) scatter[c][i * d + i] += reg_covar;
        m.covariances.insert(m.covariances.end(), scatter[c].begin(), scatter[c].end());
      }
      break;
    case cuem::CovarianceType::tied: {
      m.covariances.assign(dd, 0.0);
      for (int c = 0; c < k; ++c)
        for (std::size_t e = 0; e < dd; ++e) m.covariances[e] += scatter[c][e] * m.weights[c] / total;
      for (int i = 0; i < d; ++i) m.covariances[i * d + i] += reg_covar;
      break;
    }
    case cuem::CovarianceType::diag:
      for (int c = 0; c < k; ++c)
        for (int i = 0; i < d; ++i) m.covariances.push_back(scatter[c][i * d + i] + reg_covar);
      break;
    case cuem::CovarianceType::spherical:
      for (int c = 0; c < k; ++c) {
        double s = 0;
        for (int i = 0; i < d; ++i) s += scatter[c][i * d + i] + reg_covar;
        m.covariances.push_back(s / d);
      }
      break;
  }
  for (double& w : m.weights) w /= total;
  set_precisions_cholesky(m);
  return m;
}

inline bool all_finite(const std::vector<double>& v) {
  return std::all_of(v.begin(), v.end(), [](double e) { return std::isfinite(e); });
}

inline bool all_finite(const cuem::Model& m) {
  return all_finite(m.weights) && all_finite(m.means) && all_finite(m.covariances) &&
         all_finite(m.precisions_cholesky);
}

// ---- matching and comparison ----------------------------------------------------------

/// perm[j] = index of the fitted component matched to true component j, minimising the
/// total squared distance between means: brute force over all K! orders for K <= 8,
/// greedy closest pair first beyond.
inline std::vector<int> best_permutation(const std::vector<double>& fitted_means,
                                         const std::vector<double>& true_means, int k, int d) {
  auto dist2 = [&](int t, int f) {
    double s = 0;
    for (int i = 0; i < d; ++i) {
      const double diff = true_means[static_cast<std::size_t>(t) * d + i] -
                          fitted_means[static_cast<std::size_t>(f) * d + i];
      s += diff * diff;
    }
    return s;
  };
  std::vector<int> perm(k);
  std::iota(perm.begin(), perm.end(), 0);
  if (k <= 8) {
    std::vector<int> best = perm;
    double best_cost = std::numeric_limits<double>::infinity();
    do {
      double cost = 0;
      for (int t = 0; t < k; ++t) cost += dist2(t, perm[t]);
      if (cost < best_cost) {
        best_cost = cost;
        best = perm;
      }
    } while (std::next_permutation(perm.begin(), perm.end()));
    return best;
  }
  std::vector<bool> used_t(k, false), used_f(k, false);
  for (int step = 0; step < k; ++step) {
    int bt = -1, bf = -1;
    double bd = std::numeric_limits<double>::infinity();
    for (int t = 0; t < k; ++t)
      for (int f = 0; f < k; ++f)
        if (!used_t[t] && !used_f[f] && dist2(t, f) < bd) {
          bd = dist2(t, f);
          bt = t;
          bf = f;
        }
    used_t[bt] = used_f[bf] = true;
    perm[bt] = bf;
  }
  return perm;
}

/// Largest |a_i - b_i| / max(|b_i|, floor); sizes must match.
inline double max_rel_diff(const std::vector<double>& a, const std::vector<double>& b, double floor = 1.0) {
  if (a.size() != b.size()) return std::numeric_limits<double>::infinity();
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    worst = std::max(worst, std::abs(a[i] - b[i]) / std::max(std::abs(b[i]), floor));
  return worst;
}

inline double max_abs(const std::vector<double>& a) {
  double m = 0;
  for (double v : a) m = std::max(m, std::abs(v));
  return m;
}

/// Whether `text` contains `word` followed by the number `value` (and not a longer number).
inline bool mentions_number(const std::string& text, const std::string& word, long value) {
  const std::string needle = word + std::to_string(value);
  for (std::size_t pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) {
    const std::size_t end = pos + needle.size();
    if (end == text.size() || !std::isdigit(static_cast<unsigned char>(text[end]))) return true;
  }
  return false;
}

}  // namespace cuem_test
