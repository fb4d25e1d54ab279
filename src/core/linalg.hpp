#pragma once
// Small dense float64 linear algebra for the host M-step (D x D, row-major).
#include <vector>

namespace cuem::linalg {

/// In-place lower Cholesky factor of a symmetric matrix (only the lower triangle is read;
/// the upper triangle is zeroed). Returns -1 on success, else the index of the first
/// pivot that is not positive (the matrix is not positive definite).
int cholesky_lower(double* A, int D);

/// Inverse of a lower-triangular matrix (zeros above the diagonal in the result).
void invert_lower(const double* L, double* Linv, int D);

/// scikit-learn's precisions_cholesky_ of one covariance: P = (chol_lower(Sigma))^-T,
/// upper triangular, with P P^T = Sigma^-1. Returns the failing pivot as cholesky_lower.
int precision_cholesky_from_covariance(const double* cov, double* P, int D);

/// Sigma = A^-1 of a symmetric positive definite A (used for precisions given by the
/// user). Returns the failing pivot as cholesky_lower.
int spd_inverse(const double* A, double* inv, int D);

/// sum_i log P_ii of a triangular factor.
double log_det_triangular(const double* P, int D);

}  // namespace cuem::linalg
