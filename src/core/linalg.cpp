#include "core/linalg.hpp"

#include <cmath>
#include <vector>

namespace cuem::linalg {

int cholesky_lower(double* A, int D) {
  for (int j = 0; j < D; ++j) {
    double diag = A[j * D + j];
    for (int p = 0; p < j; ++p) diag -= A[j * D + p] * A[j * D + p];
    if (!(diag > 0.0) || !std::isfinite(diag)) return j;
    const double ljj = std::sqrt(diag);
    A[j * D + j] = ljj;
    for (int i = j + 1; i < D; ++i) {
      double s = A[i * D + j];
      for (int p = 0; p < j; ++p) s -= A[i * D + p] * A[j * D + p];
      A[i * D + j] = s / ljj;
    }
    for (int i = 0; i < j; ++i) A[i * D + j] = 0.0;
  }
  return -1;
}

void invert_lower(const double* L, double* Linv, int D) {
  for (int i = 0; i < D * D; ++i) Linv[i] = 0.0;
  // Column by column forward substitution of L * Linv = I.
  for (int c = 0; c < D; ++c) {
    Linv[c * D + c] = 1.0 / L[c * D + c];
    for (int i = c + 1; i < D; ++i) {
      double s = 0.0;
      for (int p = c; p < i; ++p) s += L[i * D + p] * Linv[p * D + c];
      Linv[i * D + c] = -s / L[i * D + i];
    }
  }
}

int precision_cholesky_from_covariance(const double* cov, double* P, int D) {
  std::vector<double> L(cov, cov + static_cast<std::size_t>(D) * D);
  const int bad = cholesky_lower(L.data(), D);
  if (bad >= 0) return bad;
  std::vector<double> Linv(static_cast<std::size_t>(D) * D);
  invert_lower(L.data(), Linv.data(), D);
  for (int i = 0; i < D; ++i)
    for (int j = 0; j < D; ++j) P[i * D + j] = Linv[j * D + i];  // transpose: upper
  return -1;
}

int spd_inverse(const double* A, double* inv, int D) {
  std::vector<double> L(A, A + static_cast<std::size_t>(D) * D);
  const int bad = cholesky_lower(L.data(), D);
  if (bad >= 0) return bad;
  std::vector<double> Linv(static_cast<std::size_t>(D) * D);
  invert_lower(L.data(), Linv.data(), D);
  // A^-1 = L^-T L^-1.
  for (int i = 0; i < D; ++i)
    for (int j = 0; j <= i; ++j) {
      double s = 0.0;
      for (int p = i; p < D; ++p) s += Linv[p * D + i] * Linv[p * D + j];
      inv[i * D + j] = s;
      inv[j * D + i] = s;
    }
  return -1;
}

double log_det_triangular(const double* P, int D) {
  double s = 0.0;
  for (int i = 0; i < D; ++i) s += std::log(P[i * D + i]);
  return s;
}

}  // namespace cuem::linalg
