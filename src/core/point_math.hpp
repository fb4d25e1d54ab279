#pragma once
// Per-point Gaussian-mixture math shared by the CPU backend and the CUDA kernels.
//
// Notation (DESIGN.md): for component k with mean mu and precision Cholesky factor P
// (precision = P P^T; P upper triangular, scikit-learn's precisions_cholesky_),
//   log p(x, k) = log pi_k - D/2 log(2 pi) + log|P| - 1/2 ||P^T (x - mu)||^2.
// Everything here is a small inline function without allocation, so that nvcc can
// compile it for the device as well as the host.
#include <cmath>

#if defined(__CUDACC__)
#define CUEM_HD __host__ __device__ __forceinline__
#else
#define CUEM_HD inline
#endif

namespace cuem::math {

constexpr double kLog2Pi = 1.8378770664093454835606594728112;

/// ||P^T y||^2 for an upper-triangular D x D row-major P, with y_i = diff(i) (x_i - mu_i
/// in whatever form a caller computes it). Row i of P holds the coefficients of y_i;
/// column j of P^T y uses rows 0..j.
template <typename S, typename Diff>
CUEM_HD S mahalanobis_sq_full_of(Diff diff, const S* P, int D) {
  S sum = 0;
  for (int j = 0; j < D; ++j) {
    S y = 0;
    for (int i = 0; i <= j; ++i) y += diff(i) * P[i * D + j];
    sum += y * y;
  }
  return sum;
}

/// sum_d (y_d p_d)^2 for a diagonal factor p (1 / sigma per dimension), y_d = diff(d).
template <typename S, typename Diff>
CUEM_HD S mahalanobis_sq_diag_of(Diff diff, const S* p, int D) {
  S sum = 0;
  for (int d = 0; d < D; ++d) {
    const S y = diff(d) * p[d];
    sum += y * y;
  }
  return sum;
}

/// ||y||^2 p^2 for a spherical factor p (1 / sigma), y_d = diff(d).
template <typename S, typename Diff>
CUEM_HD S mahalanobis_sq_spherical_of(Diff diff, S p, int D) {
  S sum = 0;
  for (int d = 0; d < D; ++d) {
    const S y = diff(d);
    sum += y * y;
  }
  return sum * p * p;
}

/// The same with y = x - mu. T is the data's type; S, the parameters' type, is also the
/// arithmetic's (double on the CPU, float or double in the CUDA kernels).
template <typename T, typename S>
CUEM_HD S mahalanobis_sq_full(const T* x, const S* mu, const S* P, int D) {
  return mahalanobis_sq_full_of([&](int i) { return static_cast<S>(x[i]) - mu[i]; }, P, D);
}

template <typename T, typename S>
CUEM_HD S mahalanobis_sq_diag(const T* x, const S* mu, const S* p, int D) {
  return mahalanobis_sq_diag_of([&](int d) { return static_cast<S>(x[d]) - mu[d]; }, p, D);
}

template <typename T, typename S>
CUEM_HD S mahalanobis_sq_spherical(const T* x, const S* mu, S p, int D) {
  return mahalanobis_sq_spherical_of([&](int d) { return static_cast<S>(x[d]) - mu[d]; }, p, D);
}

/// log pi + log N(x | mu, Sigma) from a squared Mahalanobis distance; log_det_factor is
/// log|P| = sum of the logs of the factor's diagonal (= -1/2 log|Sigma|).
template <typename S>
CUEM_HD S log_joint(S log_weight, S log_det_factor, S maha_sq, int D) {
  return log_weight + log_det_factor - S(0.5) * (static_cast<S>(D) * static_cast<S>(kLog2Pi) + maha_sq);
}

/// log sum_k exp(v_k), stable for any finite inputs (and -inf entries).
CUEM_HD double logsumexp(const double* v, int K) {
  double m = v[0];
  for (int k = 1; k < K; ++k) m = v[k] > m ? v[k] : m;
  if (!(m > -INFINITY)) return m;  // all -inf (or NaN): nothing to normalise
  double s = 0.0;
  for (int k = 0; k < K; ++k) s += exp(v[k] - m);
  return m + log(s);
}

/// Turns log joints into responsibilities in place and returns log sum_k exp(v_k).
/// gamma_k = exp(v_k - max) / sum_j exp(v_j - max): dividing by the sum, rather than
/// subtracting the log-sum, keeps each row summing to 1 within a few ulps even when the
/// log joints are large (their ulp would otherwise enter every gamma).
CUEM_HD double normalize_log_joints(double* v, int K) {
  double m = v[0];
  for (int k = 1; k < K; ++k) m = v[k] > m ? v[k] : m;
  if (!(m > -INFINITY)) {  // no component can explain the point: share it evenly
    for (int k = 0; k < K; ++k) v[k] = 1.0 / K;
    return m;
  }
  double s = 0.0;
  for (int k = 0; k < K; ++k) s += v[k] = exp(v[k] - m);
  const double inv = 1.0 / s;
  for (int k = 0; k < K; ++k) v[k] *= inv;
  return m + log(s);
}

/// Row i of add_point_full below: s1_i += w d_i and s2_row[j] += w d_i d_j for j >= i,
/// with d = x - c. Rows are independent, so a caller may own and update them in parallel.
template <typename T>
CUEM_HD void add_point_full_row(double* s1_i, double* s2_row, const T* x, const double* c, double w, int D, int i) {
  const double wdi = w * (static_cast<double>(x[i]) - c[i]);
  *s1_i += wdi;
  for (int j = i; j < D; ++j) s2_row[j] += wdi * (static_cast<double>(x[j]) - c[j]);
}

/// Adds one point with weight w to shifted statistics of one component:
///   s1 += w (x - c),  s2 += w (x - c)(x - c)^T (upper triangle, row-major D x D).
template <typename T>
CUEM_HD void add_point_full(double* s1, double* s2, const T* x, const double* c, double w, int D) {
  for (int i = 0; i < D; ++i) add_point_full_row(s1 + i, s2 + i * D, x, c, w, D, i);
}

/// Dimension d of add_point_diag below: s1_d += w (x_d - c_d), s2_d += w (x_d - c_d)^2.
template <typename T>
CUEM_HD void add_point_diag_dim(double* s1_d, double* s2_d, const T* x, const double* c, double w, int d) {
  const double dd = static_cast<double>(x[d]) - c[d];
  *s1_d += w * dd;
  *s2_d += w * dd * dd;
}

/// Diagonal version: s1 += w (x - c), s2_d += w (x_d - c_d)^2.
template <typename T>
CUEM_HD void add_point_diag(double* s1, double* s2, const T* x, const double* c, double w, int D) {
  for (int d = 0; d < D; ++d) add_point_diag_dim(s1 + d, s2 + d, x, c, w, d);
}

}  // namespace cuem::math
