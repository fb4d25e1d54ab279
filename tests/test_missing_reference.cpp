// Missing data (MissingPolicy::marginalize) against an independent reference: EM for a
// Gaussian mixture with NaN entries written here as a plain loop over points, with its
// own Cholesky and triangular solves (no library code), from the same start as cuem::fit.
//
// Per row, with o its observed and m its missing coordinates, for every component k:
//   log p(x_o, k)  = log pi_k + log N(x_o | mu_o, Sigma_oo)
//   E[x_m | x_o,k] = mu_m + Sigma_mo Sigma_oo^-1 (x_o - mu_o)
//   C_k            = Sigma_mm - Sigma_mo Sigma_oo^-1 Sigma_om   (the conditional covariance)
// M-step (scikit-learn's formulas on the completed points x^_k):
//   N_k = sum w g_k (+ 10 eps), mu_k = sum w g_k x^_k / N_k,
//   Sigma_k = sum w g_k ((x^_k - mu_k)(x^_k - mu_k)^T + C_k) / N_k + reg I;
//   tied = sum_k N_k Sigma_k / sum N_k, diag = its diagonal, spherical = the mean of it.
// The bound is sum w log p(x_o) / sum w over rows with an observed entry; rows with none
// are skipped. The fit must agree to 1e-10 relative for every covariance type, MCAR and
// MAR patterns, with and without sample weights; so must score_samples, predict_proba and
// impute (with variances) under EvaluateOptions::missing = marginalize.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuem/fit.hpp"
#include "cuem/missing.hpp"
#include "missing_test_util.hpp"
#include "test_util.hpp"

namespace {

using cuem::CovarianceType;
using Matrix = std::vector<double>;

constexpr double kLog2Pi = 1.83787706640934548356;  // log(2 pi)
constexpr double kRel = 1e-10;

// ---- the reference's own linear algebra ------------------------------------------------

// In place: the lower Cholesky factor of the n x n SPD matrix a (row-major); the upper
// triangle is left as zeros.
void cholesky_in_place(Matrix& a, int n) {
  for (int j = 0; j < n; ++j) {
    double s = a[j * n + j];
    for (int k = 0; k < j; ++k) s -= a[j * n + k] * a[j * n + k];
    if (!(s > 0)) throw std::domain_error("reference: Sigma_oo not positive definite");
    a[j * n + j] = std::sqrt(s);
    for (int i = j + 1; i < n; ++i) {
      double t = a[i * n + j];
      for (int k = 0; k < j; ++k) t -= a[i * n + k] * a[j * n + k];
      a[i * n + j] = t / a[j * n + j];
    }
    for (int i = 0; i < j; ++i) a[i * n + j] = 0;
  }
}

// Solves L L^T x = b in place (b has n entries).
void cholesky_solve(const Matrix& l, int n, double* b) {
  for (int i = 0; i < n; ++i) {
    double s = b[i];
    for (int k = 0; k < i; ++k) s -= l[i * n + k] * b[k];
    b[i] = s / l[i * n + i];
  }
  for (int i = n - 1; i >= 0; --i) {
    double s = b[i];
    for (int k = i + 1; k < n; ++k) s -= l[k * n + i] * b[k];
    b[i] = s / l[i * n + i];
  }
}

// Inverse of an SPD matrix by Gauss-Jordan elimination with partial pivoting.
Matrix inverse_gauss_jordan(Matrix a, int n) {
  Matrix inv(static_cast<std::size_t>(n) * n, 0.0);
  for (int i = 0; i < n; ++i) inv[i * n + i] = 1;
  for (int c = 0; c < n; ++c) {
    int p = c;
    for (int r = c + 1; r < n; ++r)
      if (std::abs(a[r * n + c]) > std::abs(a[p * n + c])) p = r;
    for (int j = 0; j < n; ++j) {
      std::swap(a[c * n + j], a[p * n + j]);
      std::swap(inv[c * n + j], inv[p * n + j]);
    }
    const double piv = a[c * n + c];
    for (int j = 0; j < n; ++j) {
      a[c * n + j] /= piv;
      inv[c * n + j] /= piv;
    }
    for (int r = 0; r < n; ++r) {
      if (r == c) continue;
      const double f = a[r * n + c];
      for (int j = 0; j < n; ++j) {
        a[r * n + j] -= f * a[c * n + j];
        inv[r * n + j] -= f * inv[c * n + j];
      }
    }
  }
  for (int i = 0; i < n; ++i)  // exactly symmetric
    for (int j = 0; j < i; ++j) inv[i * n + j] = inv[j * n + i] = 0.5 * (inv[i * n + j] + inv[j * n + i]);
  return inv;
}

// ---- the reference mixture and its E-step ------------------------------------------------

// Every covariance held as a full D x D matrix whatever the type (diagonal ones for diag
// and spherical), so one set of formulas serves all four types.
struct RefMixture {
  CovarianceType type = CovarianceType::full;
  int k = 0;
  int d = 0;
  std::vector<double> weights;  // K
  std::vector<double> means;    // K x D
  std::vector<Matrix> cov;      // K of D x D
};

// A row's posterior quantities under a mixture.
struct RowPosterior {
  bool empty = true;          // no observed entry
  double log_p = 0;           // log p(x_o)
  std::vector<double> log_joint;  // K: log pi_k + log N(x_o | mu_o, Sigma_oo)
  std::vector<double> resp;   // K
  std::vector<double> xhat;   // K x D: the row completed by E[x_m | x_o, k]
  std::vector<double> cond;   // K x D x D: C_k on the missing block, 0 elsewhere
};

RowPosterior row_posterior(const RefMixture& m, const double* x) {
  const int d = m.d;
  std::vector<int> obs, mis;
  for (int j = 0; j < d; ++j) (std::isnan(x[j]) ? mis : obs).push_back(j);
  RowPosterior r;
  if (obs.empty()) return r;
  r.empty = false;
  const int no = static_cast<int>(obs.size());
  std::vector<double> log_joint(m.k);
  r.xhat.assign(static_cast<std::size_t>(m.k) * d, 0.0);
  r.cond.assign(static_cast<std::size_t>(m.k) * d * d, 0.0);
  for (int c = 0; c < m.k; ++c) {
    const Matrix& s = m.cov[c];
    const double* mu = m.means.data() + static_cast<std::size_t>(c) * d;
    Matrix l(static_cast<std::size_t>(no) * no);
    for (int a = 0; a < no; ++a)
      for (int b = 0; b < no; ++b) l[a * no + b] = s[obs[a] * d + obs[b]];
    cholesky_in_place(l, no);
    std::vector<double> resid(no), alpha(no);
    for (int a = 0; a < no; ++a) resid[a] = alpha[a] = x[obs[a]] - mu[obs[a]];
    cholesky_solve(l, no, alpha.data());
    double maha = 0, log_det = 0;
    for (int a = 0; a < no; ++a) {
      maha += resid[a] * alpha[a];
      log_det += 2 * std::log(l[a * no + a]);
    }
    log_joint[c] = std::log(m.weights[c]) - 0.5 * (no * kLog2Pi + log_det + maha);

    double* xh = r.xhat.data() + static_cast<std::size_t>(c) * d;
    for (int j = 0; j < d; ++j) xh[j] = x[j];
    for (int mi : mis) {
      double v = mu[mi];
      for (int a = 0; a < no; ++a) v += s[mi * d + obs[a]] * alpha[a];
      xh[mi] = v;
    }
    double* cc = r.cond.data() + static_cast<std::size_t>(c) * d * d;
    for (int m2 : mis) {
      std::vector<double> b(no);  // Sigma_oo^-1 Sigma_o,m2
      for (int a = 0; a < no; ++a) b[a] = s[obs[a] * d + m2];
      cholesky_solve(l, no, b.data());
      for (int m1 : mis) {
        double v = s[m1 * d + m2];
        for (int a = 0; a < no; ++a) v -= s[m1 * d + obs[a]] * b[a];
        cc[m1 * d + m2] = v;
      }
    }
  }
  r.log_p = cuem_test::logsumexp(log_joint.data(), log_joint.size());
  r.log_joint = log_joint;
  r.resp.resize(m.k);
  for (int c = 0; c < m.k; ++c) r.resp[c] = std::exp(log_joint[c] - r.log_p);
  return r;
}

struct RefIteration {
  double bound = 0;   // sum w log p(x_o) / sum w over rows with information
  RefMixture next;    // after the M-step
};

RefIteration em_iteration(const RefMixture& m, const std::vector<double>& x, std::size_t n,
                          const std::vector<double>& w, double reg_covar) {
  const int d = m.d, k = m.k;
  std::vector<RowPosterior> rows(n);
  double ll = 0, total_w = 0;
  std::vector<double> nk(k, 0.0), s1(static_cast<std::size_t>(k) * d, 0.0);
  for (std::size_t i = 0; i < n; ++i) {
    rows[i] = row_posterior(m, x.data() + i * d);
    if (rows[i].empty) continue;
    const double wi = w.empty() ? 1.0 : w[i];
    if (wi == 0) continue;
    ll += wi * rows[i].log_p;
    total_w += wi;
    for (int c = 0; c < k; ++c) {
      const double g = wi * rows[i].resp[c];
      nk[c] += g;
      for (int j = 0; j < d; ++j) s1[c * d + j] += g * rows[i].xhat[c * d + j];
    }
  }
  RefIteration out;
  out.bound = ll / total_w;
  RefMixture& nx = out.next;
  nx.type = m.type;
  nx.k = k;
  nx.d = d;
  const double guard = 10 * std::numeric_limits<double>::epsilon();
  for (double& v : nk) v += guard;
  const double n_total = std::accumulate(nk.begin(), nk.end(), 0.0);
  nx.weights.resize(k);
  nx.means.resize(static_cast<std::size_t>(k) * d);
  for (int c = 0; c < k; ++c) {
    nx.weights[c] = nk[c] / n_total;
    for (int j = 0; j < d; ++j) nx.means[c * d + j] = s1[c * d + j] / nk[c];
  }
  // Second pass: the expected scatter about the new means.
  std::vector<Matrix> scatter(k, Matrix(static_cast<std::size_t>(d) * d, 0.0));
  std::vector<double> dev(d);
  for (std::size_t i = 0; i < n; ++i) {
    if (rows[i].empty) continue;
    const double wi = w.empty() ? 1.0 : w[i];
    if (wi == 0) continue;
    for (int c = 0; c < k; ++c) {
      const double g = wi * rows[i].resp[c];
      for (int j = 0; j < d; ++j) dev[j] = rows[i].xhat[c * d + j] - nx.means[c * d + j];
      const double* cc = rows[i].cond.data() + static_cast<std::size_t>(c) * d * d;
      for (int a = 0; a < d; ++a)
        for (int b = 0; b < d; ++b) scatter[c][a * d + b] += g * (dev[a] * dev[b] + cc[a * d + b]);
    }
  }
  for (int c = 0; c < k; ++c)
    for (double& v : scatter[c]) v /= nk[c];
  nx.cov.assign(k, Matrix(static_cast<std::size_t>(d) * d, 0.0));
  switch (m.type) {
    case CovarianceType::full:
      for (int c = 0; c < k; ++c) nx.cov[c] = scatter[c];
      break;
    case CovarianceType::tied: {
      Matrix t(static_cast<std::size_t>(d) * d, 0.0);
      for (int c = 0; c < k; ++c)
        for (std::size_t e = 0; e < t.size(); ++e) t[e] += nk[c] * scatter[c][e] / n_total;
      for (int c = 0; c < k; ++c) nx.cov[c] = t;
      break;
    }
    case CovarianceType::diag:
      for (int c = 0; c < k; ++c)
        for (int j = 0; j < d; ++j) nx.cov[c][j * d + j] = scatter[c][j * d + j];
      break;
    case CovarianceType::spherical:
      for (int c = 0; c < k; ++c) {
        double s = 0;
        for (int j = 0; j < d; ++j) s += scatter[c][j * d + j];
        for (int j = 0; j < d; ++j) nx.cov[c][j * d + j] = s / d;  // reg_covar added below
      }
      break;
  }
  for (int c = 0; c < k; ++c)
    for (int j = 0; j < d; ++j) nx.cov[c][j * d + j] += reg_covar;
  return out;
}

// ---- conversions to and from the library's model -----------------------------------------

std::vector<double> layout_covariances(const RefMixture& m) {
  const int d = m.d;
  std::vector<double> out;
  switch (m.type) {
    case CovarianceType::full:
      for (const Matrix& s : m.cov) out.insert(out.end(), s.begin(), s.end());
      break;
    case CovarianceType::tied: out = m.cov[0]; break;
    case CovarianceType::diag:
      for (const Matrix& s : m.cov)
        for (int j = 0; j < d; ++j) out.push_back(s[j * d + j]);
      break;
    case CovarianceType::spherical:
      for (const Matrix& s : m.cov) out.push_back(s[0]);
      break;
  }
  return out;
}

// FitOptions::precisions_init: inverse matrices (full, tied) or inverse variances.
std::vector<double> layout_precisions(const RefMixture& m) {
  const int d = m.d;
  std::vector<double> out;
  switch (m.type) {
    case CovarianceType::full:
      for (const Matrix& s : m.cov) {
        const Matrix p = inverse_gauss_jordan(s, d);
        out.insert(out.end(), p.begin(), p.end());
      }
      break;
    case CovarianceType::tied: out = inverse_gauss_jordan(m.cov[0], d); break;
    case CovarianceType::diag:
    case CovarianceType::spherical:
      for (double v : layout_covariances(m)) out.push_back(1.0 / v);
      break;
  }
  return out;
}

cuem::Model to_model(const RefMixture& m) {
  cuem::Model out;
  out.covariance_type = m.type;
  out.n_components = m.k;
  out.n_features = m.d;
  out.weights = m.weights;
  out.means = m.means;
  out.covariances = layout_covariances(m);
  cuem_test::set_precisions_cholesky(out);  // the test helpers' own Cholesky
  return out;
}

// A start away from the truth: the true mixture of `type`'s structure with its means moved
// and its covariances inflated, and unequal weights.
RefMixture start_mixture(const cuem_test::Mixture& truth, CovarianceType type) {
  RefMixture m;
  m.type = type;
  m.k = truth.k;
  m.d = truth.d;
  m.weights = truth.weights;
  m.weights[0] += 0.1;
  for (double& v : m.weights) v /= 1.1;
  m.means = truth.means;
  for (std::size_t i = 0; i < m.means.size(); ++i) m.means[i] += (i % 3 == 0 ? 0.6 : -0.4);
  for (int c = 0; c < m.k; ++c) {
    Matrix s = truth.covariance(c);
    for (double& v : s) v *= 1.0 + 0.2 * c;
    m.cov.push_back(s);
  }
  return m;
}

// ---- the cases -------------------------------------------------------------------------

enum class Mechanism { mcar, mar };

struct Case {
  CovarianceType type;
  Mechanism mechanism;
  bool weighted;
};

std::string case_label(const Case& c) {
  return std::string(cuem::to_string(c.type)) + (c.mechanism == Mechanism::mcar ? "_MCAR" : "_MAR") +
         (c.weighted ? "_weighted" : "");
}

std::string case_name(const testing::TestParamInfo<Case>& info) { return case_label(info.param); }

// gtest prints parameters in failure messages; without this it dumps the struct's bytes.
void PrintTo(const Case& c, std::ostream* os) { *os << case_label(c); }

constexpr int kK = 3, kD = 4;
constexpr std::size_t kN = 600;
constexpr int kIters = 6;
constexpr double kReg = 1e-3;
constexpr std::size_t kEmptyRows[] = {5, 77, 301};

struct MaskedData {
  cuem_test::Mixture truth;
  std::vector<double> x;  // N x D with NaN
  std::vector<double> w;  // empty or N
  std::size_t n_missing = 0;
};

MaskedData make_data(const Case& c) {
  MaskedData md;
  // The truth has full covariances whatever the fitted type (the start takes the type's
  // structure); the clusters overlap (separation 3) so that responsibilities are soft.
  md.truth = cuem_test::make_mixture(CovarianceType::full, kK, kD, 3.0, 11);
  md.x = cuem_test::sample_mixture(md.truth, kN, 12).x;
  if (c.mechanism == Mechanism::mcar) {
    cuem_test::mask_mcar(md.x, 0.2, 13);
  } else {
    const double median_ish = cuem_test::observed_column_mean(md.x, kN, kD, 0);
    cuem_test::mask_mar(md.x, kN, kD, median_ish, 0.05, 0.5, 13);
  }
  for (std::size_t r : kEmptyRows)
    for (int j = 0; j < kD; ++j) md.x[r * kD + j] = cuem_test::kMissing;
  md.n_missing = cuem_test::count_missing(md.x);
  if (c.weighted) {
    cuem_test::Rng rng(14);
    md.w.resize(kN);
    for (double& v : md.w) v = rng.uniform(0.2, 2.5);
    md.w[10] = 0;  // a row of weight 0 adds nothing
    md.w[kEmptyRows[1]] = 9;  // an empty row's weight must not count either
  }
  return md;
}

RefMixture start_for(const Case& c, const MaskedData& md) {
  // A start of the fitted type's structure: full keeps each inflated matrix; tied shares
  // the first; diag and spherical keep the diagonal (its mean).
  RefMixture s = start_mixture(md.truth, CovarianceType::full);
  s.type = c.type;
  for (int k = 0; k < s.k; ++k) {
    Matrix& m = s.cov[k];
    if (c.type == CovarianceType::tied) m = s.cov[0];
    if (c.type == CovarianceType::diag || c.type == CovarianceType::spherical) {
      double mean_var = 0;
      for (int j = 0; j < kD; ++j) mean_var += m[j * kD + j] / kD;
      for (int a = 0; a < kD; ++a)
        for (int b = 0; b < kD; ++b) {
          if (a != b) {
            m[a * kD + b] = 0;
          } else if (c.type == CovarianceType::spherical) {
            m[a * kD + b] = mean_var;
          }
        }
    }
  }
  return s;
}

cuem::FitOptions options_from(const RefMixture& start, int iters) {
  cuem::FitOptions opt;
  opt.n_components = start.k;
  opt.covariance_type = start.type;
  opt.max_iter = iters;
  opt.tol = 0;
  opt.n_init = 1;
  opt.reg_covar = kReg;
  opt.missing = cuem::MissingPolicy::marginalize;
  opt.weights_init = start.weights;
  opt.means_init = start.means;
  opt.precisions_init = layout_precisions(start);
  return opt;
}

void expect_close(const std::vector<double>& got, const std::vector<double>& want, double floor,
                  const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  ASSERT_GT(cuem_test::max_abs(want), 0.0) << what << ": vacuous reference";
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double tol = kRel * std::max(std::abs(want[i]), floor);
    ASSERT_NEAR(got[i], want[i], tol) << what << " [" << i << "]";
  }
}

void expect_same_mixture(const cuem::Model& got, const RefMixture& want) {
  const std::vector<double> cov = layout_covariances(want);
  expect_close(got.weights, want.weights, 0.0, "weights");
  expect_close(got.means, want.means, 1.0, "means");
  expect_close(got.covariances, cov, cuem_test::max_abs(cov), "covariances");
}

class MissingReference : public testing::TestWithParam<Case> {};

TEST_P(MissingReference, FitEqualsPlainLoopEm) {
  const Case& c = GetParam();
  SCOPED_TRACE("mixture seed 11, data seed 12, mask seed 13, weight seed 14");
  const MaskedData md = make_data(c);
  ASSERT_GT(md.n_missing, kN * kD / 20) << "too few missing entries for the test to mean anything";
  const RefMixture start = start_for(c, md);
  const cuem::FitOptions opt = options_from(start, kIters);
  const cuem::WeightView wv = md.w.empty() ? cuem::WeightView() : cuem::WeightView(md.w.data(), kN);
  const cuem::FitResult r = cuem::fit(cuem::DataView(md.x.data(), kN, kD), opt, wv);

  std::vector<double> bounds;
  RefMixture ref = start;
  for (int it = 0; it < kIters; ++it) {
    RefIteration step = em_iteration(ref, md.x, kN, md.w, kReg);
    bounds.push_back(step.bound);
    ref = step.next;
  }
  // EM moved the model (so agreement is not agreement of two copies of the start).
  EXPECT_GT(cuem_test::max_rel_diff(ref.means, start.means), 0.05);

  expect_same_mixture(r.model, ref);
  EXPECT_EQ(r.n_iter, kIters);
  ASSERT_EQ(r.trace.size(), static_cast<std::size_t>(kIters));
  for (int it = 0; it < kIters; ++it) {
    EXPECT_NEAR(r.trace[it].mean_log_likelihood, bounds[it], kRel * std::max(1.0, std::abs(bounds[it])))
        << "iteration " << it + 1;
    if (it > 0) {  // EM never lowers the observed-data likelihood
      EXPECT_GE(r.trace[it].mean_log_likelihood,
                r.trace[it - 1].mean_log_likelihood - 1e-12 * std::abs(bounds[it]))
          << "iteration " << it + 1;
    }
  }
  EXPECT_NEAR(r.lower_bound, bounds.back(), kRel * std::abs(bounds.back()));
  EXPECT_EQ(r.n_decreases, 0);
  EXPECT_GT(bounds.back(), bounds.front() + 1e-3) << "the reference's bound did not rise";

  std::vector<int> masks;  // the distinct patterns of the incomplete rows that are not empty
  std::size_t incomplete = 0;
  for (std::size_t i = 0; i < kN; ++i) {
    int mask = 0;
    for (int j = 0; j < kD; ++j) mask |= std::isnan(md.x[i * kD + j]) ? 1 << j : 0;
    incomplete += mask != 0 ? 1 : 0;
    if (mask != 0 && mask != (1 << kD) - 1 && std::find(masks.begin(), masks.end(), mask) == masks.end())
      masks.push_back(mask);
  }
  EXPECT_EQ(r.missing.n_patterns, masks.size());
  EXPECT_EQ(r.missing.incomplete_rows, incomplete);
  EXPECT_EQ(r.missing.missing_entries, md.n_missing);
  EXPECT_EQ(r.missing.empty_rows, std::size(kEmptyRows));
  ASSERT_FALSE(r.missing.first_empty_rows.empty());
  EXPECT_EQ(r.missing.first_empty_rows.front(), kEmptyRows[0]);
}

// score_samples, predict_proba, criteria and impute of a model (the start, as a
// cuem::Model) on the masked data, against the reference's per-row posteriors. A row with
// no observed entry: score 0, posteriors = weights, imputed as the mixture's mean with its
// marginal variance, and left out of score, bic and aic (as the fit leaves it out).
TEST_P(MissingReference, EvaluationsEqualPlainLoop) {
  const Case& c = GetParam();
  const MaskedData md = make_data(c);
  const RefMixture ref = start_for(c, md);
  const cuem::Model model = to_model(ref);
  const cuem::DataView X(md.x.data(), kN, kD);
  cuem::EvaluateOptions where;
  where.missing = cuem::MissingPolicy::marginalize;

  const std::vector<double> lp = cuem::score_samples(model, X, where);
  const std::vector<double> proba = cuem::predict_proba(model, X, where);
  const cuem::Imputation imp = cuem::impute(model, X, true);

  std::vector<double> want_lp(kN), want_proba(kN * kK), want_x(kN * kD), want_var(kN * kD, 0.0);
  std::vector<double> mix_mean(kD, 0.0), mix_var(kD, 0.0);
  for (int k = 0; k < kK; ++k)
    for (int j = 0; j < kD; ++j) mix_mean[j] += ref.weights[k] * ref.means[k * kD + j];
  for (int k = 0; k < kK; ++k)
    for (int j = 0; j < kD; ++j) {
      const double dev = ref.means[k * kD + j] - mix_mean[j];
      mix_var[j] += ref.weights[k] * (ref.cov[k][j * kD + j] + dev * dev);
    }
  std::size_t n_imputed = 0;
  for (std::size_t i = 0; i < kN; ++i) {
    const double* x = md.x.data() + i * kD;
    const RowPosterior rp = row_posterior(ref, x);
    if (rp.empty) {
      want_lp[i] = 0;
      for (int k = 0; k < kK; ++k) want_proba[i * kK + k] = ref.weights[k];
      for (int j = 0; j < kD; ++j) {
        want_x[i * kD + j] = mix_mean[j];
        want_var[i * kD + j] = mix_var[j];
      }
      continue;
    }
    want_lp[i] = rp.log_p;
    for (int k = 0; k < kK; ++k) want_proba[i * kK + k] = rp.resp[k];
    for (int j = 0; j < kD; ++j) {
      if (!std::isnan(x[j])) {
        want_x[i * kD + j] = x[j];
        continue;
      }
      ++n_imputed;
      double mean = 0;
      for (int k = 0; k < kK; ++k) mean += rp.resp[k] * rp.xhat[k * kD + j];
      double var = 0;  // law of total variance: E[Var] + Var[E]
      for (int k = 0; k < kK; ++k) {
        const double dev = rp.xhat[k * kD + j] - mean;
        var += rp.resp[k] * (rp.cond[(static_cast<std::size_t>(k) * kD + j) * kD + j] + dev * dev);
      }
      want_x[i * kD + j] = mean;
      want_var[i * kD + j] = var;
    }
  }
  ASSERT_GT(n_imputed, 0u);
  // criteria (score, bic, aic) over the rows with an observed entry, as the fit's bound:
  // sum w lp / sum w, bic = -2 sum w lp + p log(sum w), aic = -2 sum w lp + 2 p, with
  // scikit-learn's parameter count p.
  double sum_wlp = 0, sum_w = 0;
  for (std::size_t i = 0; i < kN; ++i) {
    if (row_posterior(ref, md.x.data() + i * kD).empty) continue;
    const double wi = md.w.empty() ? 1.0 : md.w[i];
    sum_wlp += wi * want_lp[i];
    sum_w += wi;
  }
  double n_cov = 0;
  switch (c.type) {
    case CovarianceType::full: n_cov = kK * kD * (kD + 1) / 2.0; break;
    case CovarianceType::tied: n_cov = kD * (kD + 1) / 2.0; break;
    case CovarianceType::diag: n_cov = kK * kD; break;
    case CovarianceType::spherical: n_cov = kK; break;
  }
  const double n_params = n_cov + kK * kD + kK - 1;
  const cuem::WeightView wv = md.w.empty() ? cuem::WeightView() : cuem::WeightView(md.w.data(), kN);
  const cuem::Criteria crit = cuem::criteria(model, X, where, wv);
  EXPECT_NEAR(crit.total_weight, sum_w, kRel * sum_w);
  EXPECT_NEAR(crit.score, sum_wlp / sum_w, kRel * std::abs(sum_wlp / sum_w));
  EXPECT_NEAR(crit.bic, -2 * sum_wlp + n_params * std::log(sum_w), kRel * std::abs(crit.bic));
  EXPECT_NEAR(crit.aic, -2 * sum_wlp + 2 * n_params, kRel * std::abs(crit.aic));
  EXPECT_NEAR(cuem::score(model, X, where, wv), sum_wlp / sum_w, kRel * std::abs(sum_wlp / sum_w));
  expect_close(lp, want_lp, 1.0, "score_samples");
  expect_close(proba, want_proba, 1.0, "predict_proba");
  expect_close(imp.X, want_x, 1.0, "impute X");
  expect_close(imp.variance, want_var, 1.0, "impute variance");
  for (std::size_t i = 0; i < kN * kD; ++i) {
    if (!std::isnan(md.x[i])) {
      ASSERT_EQ(imp.X[i], md.x[i]) << "an observed entry changed at " << i;
    }
  }
}

std::vector<Case> cases() {
  std::vector<Case> out;
  for (CovarianceType t : cuem_test::all_covariance_types())
    for (Mechanism m : {Mechanism::mcar, Mechanism::mar})
      for (bool w : {false, true}) out.push_back({t, m, w});
  return out;
}

INSTANTIATE_TEST_SUITE_P(AllTypes, MissingReference, testing::ValuesIn(cases()), case_name);

// The reference checks itself on complete data against the established complete-data
// fit (MissingPolicy::error), so that its M-step formulas are not only checked against
// the code under test's missing-data path.
TEST(MissingReferenceSelfCheck, CompleteDataEqualsCompleteDataFit) {
  for (CovarianceType t : cuem_test::all_covariance_types()) {
    SCOPED_TRACE(cuem::to_string(t));
    const cuem_test::Mixture truth = cuem_test::make_mixture(CovarianceType::full, kK, kD, 3.0, 11);
    const std::vector<double> x = cuem_test::sample_mixture(truth, kN, 12).x;
    MaskedData md;
    md.truth = truth;
    const RefMixture start = start_for({t, Mechanism::mcar, false}, md);
    cuem::FitOptions opt = options_from(start, kIters);
    opt.missing = cuem::MissingPolicy::error;
    const cuem::FitResult r = cuem::fit(cuem::DataView(x.data(), kN, kD), opt);
    RefMixture ref = start;
    double bound = 0;
    for (int it = 0; it < kIters; ++it) {
      RefIteration step = em_iteration(ref, x, kN, {}, kReg);
      bound = step.bound;
      ref = step.next;
    }
    expect_same_mixture(r.model, ref);
    EXPECT_NEAR(r.lower_bound, bound, kRel * std::abs(bound));
  }
}

// The reference's per-component quantities check themselves by the chain rule
// p(x) = p(x_o) p(x_m | x_o): for a complete row x and any mask,
//   log N(x | mu, Sigma) = log N(x_o | mu_o, Sigma_oo) + log N(x_m | E[x_m | x_o], C),
// which holds only with the right conditional mean and covariance.
TEST(MissingReferenceSelfCheck, ChainRuleHoldsForEveryMask) {
  const cuem_test::Mixture truth = cuem_test::make_mixture(CovarianceType::full, kK, kD, 3.0, 11);
  MaskedData md;
  md.truth = truth;
  const RefMixture m = start_for({CovarianceType::full, Mechanism::mcar, false}, md);
  const std::vector<double> x = cuem_test::sample_mixture(truth, 20, 12).x;
  int checked = 0;
  for (std::size_t i = 0; i < 20; ++i) {
    const double* row = x.data() + i * kD;
    const RowPosterior full = row_posterior(m, row);
    for (int mask = 1; mask < (1 << kD) - 1; ++mask) {
      std::vector<double> masked(row, row + kD);
      std::vector<int> mis;
      for (int j = 0; j < kD; ++j)
        if (mask & (1 << j)) {
          masked[j] = cuem_test::kMissing;
          mis.push_back(j);
        }
      const RowPosterior part = row_posterior(m, masked.data());
      const int nm = static_cast<int>(mis.size());
      for (int c = 0; c < kK; ++c) {
        Matrix l(static_cast<std::size_t>(nm) * nm);
        std::vector<double> resid(nm), alpha(nm);
        for (int a = 0; a < nm; ++a) {
          for (int b = 0; b < nm; ++b) l[a * nm + b] = part.cond[(static_cast<std::size_t>(c) * kD + mis[a]) * kD + mis[b]];
          resid[a] = alpha[a] = row[mis[a]] - part.xhat[c * kD + mis[a]];
        }
        cholesky_in_place(l, nm);
        cholesky_solve(l, nm, alpha.data());
        double maha = 0, log_det = 0;
        for (int a = 0; a < nm; ++a) {
          maha += resid[a] * alpha[a];
          log_det += 2 * std::log(l[a * nm + a]);
        }
        const double log_cond = -0.5 * (nm * kLog2Pi + log_det + maha);
        EXPECT_NEAR(part.log_joint[c] + log_cond, full.log_joint[c], 1e-11 * std::abs(full.log_joint[c]))
            << "row " << i << " mask " << mask << " component " << c;
        ++checked;
      }
    }
  }
  EXPECT_EQ(checked, 20 * ((1 << kD) - 2) * kK);
}

}  // namespace
