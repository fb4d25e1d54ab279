#include "core/validate.hpp"

#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "core/data_access.hpp"
#include "core/linalg.hpp"
#include "cuem/errors.hpp"
#include "cuem/fit.hpp"

namespace cuem {
namespace {

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

void require(bool ok, const std::string& message) {
  if (!ok) throw InvalidArgument(message);
}

bool all_finite(const std::vector<double>& v) {
  for (double x : v)
    if (!std::isfinite(x)) return false;
  return true;
}

}  // namespace

bool validate_data(DataView X, MissingPolicy missing) {
  if (X.n_cols == 0) throw DataError("the data has no features (D = 0); every point needs at least one value");
  if (X.n_rows == 0) throw DataError("the data has no points (N = 0)");
  if (X.empty_pointer()) throw DataError("the data pointer is null");
  if (X.row_stride < X.n_cols)
    throw InvalidArgument("the data's row stride (" + std::to_string(X.row_stride) + ") is less than its " +
                          std::to_string(X.n_cols) + " columns: rows would overlap");
  if (X.n_rows > std::numeric_limits<std::size_t>::max() / X.row_stride)
    throw DataError("N x D overflows the address space");
  // The host cannot read values in device memory: the CUDA backend checks them (by
  // column, as it sums them for its origin).
  if (X.on_device()) return false;
  // The first non-finite value in row-major order, found in parallel: each thread keeps
  // the smallest flat index it saw.
  const std::size_t total = X.n_rows * X.n_cols;
  std::size_t first = total;
  const bool allow_nan = missing == MissingPolicy::marginalize;
  // Under marginalize, NaN is a value like any other here (the first one is still found).
  std::size_t first_nan = total;
  visit_rows(X, [&](const auto* data) {
    if (X.contiguous()) {
#pragma omp parallel for schedule(static) reduction(min : first, first_nan) if (total >= (std::size_t{1} << 16))
      for (std::ptrdiff_t i = 0; i < static_cast<std::ptrdiff_t>(total); ++i) {
        if (std::isfinite(data[i])) continue;
        std::size_t& slot = allow_nan && std::isnan(data[i]) ? first_nan : first;
        if (static_cast<std::size_t>(i) < slot) slot = static_cast<std::size_t>(i);
      }
    } else {
      const std::size_t D = X.n_cols;
#pragma omp parallel for schedule(static) reduction(min : first, first_nan) if (total >= (std::size_t{1} << 16))
      for (std::ptrdiff_t i = 0; i < static_cast<std::ptrdiff_t>(X.n_rows); ++i) {
        const auto* row = data + static_cast<std::size_t>(i) * X.row_stride;
        for (std::size_t d = 0; d < D; ++d) {
          if (std::isfinite(row[d])) continue;
          const std::size_t flat = static_cast<std::size_t>(i) * D + d;
          std::size_t& slot = allow_nan && std::isnan(row[d]) ? first_nan : first;
          if (flat < slot) slot = flat;
        }
      }
    }
  });
  if (first < total) {
    const double v = X.value(first / X.n_cols, first % X.n_cols);
    throw DataError(std::string("the data holds ") + (std::isnan(v) ? "NaN" : "Inf") + " at row " +
                    std::to_string(first / X.n_cols) + ", column " + std::to_string(first % X.n_cols) +
                    " (0-based); " +
                    (std::isnan(v) ? "remove or impute missing values, or let cuem marginalise them (missing='marginalize', "
                                     "--missing marginalize)"
                                   : "remove or impute non-finite values (only NaN can mark a missing entry)"));
  }
  return first_nan < total;
}

void validate_weights(WeightView w, DataView X, int n_components) {
  if (w.empty()) return;
  if (w.n != X.n_rows)
    throw InvalidArgument("sample_weight has " + std::to_string(w.n) + " values for " + std::to_string(X.n_rows) +
                          " rows of data; give one weight per row");
  std::size_t positive = 0;
  for (std::size_t i = 0; i < w.n; ++i) {
    const double v = w.data[i];
    if (!std::isfinite(v) || v < 0.0)
      throw InvalidArgument("sample_weight[" + std::to_string(i) + "] is " + num(v) +
                            "; weights must be finite and non-negative");
    positive += v > 0.0 ? 1 : 0;
  }
  if (positive == 0)
    throw InvalidArgument("sample_weight is zero for every row; at least one weight must be positive");
  if (static_cast<std::size_t>(n_components) > positive)
    throw DataError("n_components = " + std::to_string(n_components) + " is more than the " +
                    std::to_string(positive) + " rows with a positive sample_weight; use at most as many components");
}

void validate_block_budget(int max_block_steps, int incremental_blocks) {
  require(max_block_steps >= 0, "max_block_steps must be >= 0 (0: no limit), got " + std::to_string(max_block_steps));
  require(max_block_steps == 0 || incremental_blocks > 1,
          "max_block_steps limits incremental EM's block steps: it needs incremental_blocks > 1");
}

void validate_options(const FitOptions& o, DataView X) {
  require(o.n_components >= 1, "n_components must be at least 1, got " + std::to_string(o.n_components));
  require(std::isfinite(o.tol) && o.tol >= 0.0, "tol must be a finite number >= 0, got " + num(o.tol));
  require(std::isfinite(o.reg_covar) && o.reg_covar >= 0.0,
          "reg_covar must be a finite number >= 0, got " + num(o.reg_covar));
  require(o.max_iter >= 1, "max_iter must be at least 1, got " + std::to_string(o.max_iter));
  require(o.n_init >= 1, "n_init must be at least 1, got " + std::to_string(o.n_init));
  require(o.incremental_blocks >= 1,
          "incremental_blocks must be at least 1 (1: batch EM), got " + std::to_string(o.incremental_blocks));
  require(o.incremental_blocks == 1 || static_cast<std::size_t>(o.incremental_blocks) <= X.n_rows,
          "incremental_blocks = " + std::to_string(o.incremental_blocks) + " is more than the " +
              std::to_string(X.n_rows) + " rows: every block needs a row; use fewer blocks");
  validate_block_budget(o.max_block_steps, o.incremental_blocks);
  require(o.chunk_rows == 0 || o.incremental_blocks == 1,
          "chunk_rows (out of core) and incremental_blocks > 1 cannot be combined: choose one");
  require(o.chunk_rows == 0 || o.chunk_rows >= static_cast<std::size_t>(o.n_components),
          "chunk_rows = " + std::to_string(o.chunk_rows) + " is fewer than n_components = " +
              std::to_string(o.n_components) + ": the start is made from the first chunk; use larger chunks");
  require(o.incremental_blocks == 1 || o.acceleration == Acceleration::none,
          "incremental_blocks > 1 and acceleration='squarem' cannot be combined: choose one");
  require(o.cuda_tuning.diag_stats_components == 2 || o.cuda_tuning.diag_stats_components == 4,
          "cuda_tuning.diag_stats_components must be 2 or 4, got " +
              std::to_string(o.cuda_tuning.diag_stats_components));
  require(o.n_threads >= 0, "n_threads must be >= 0 (0: OpenMP's default), got " + std::to_string(o.n_threads));
  // Component arrays are indexed with int: K x D and, for full and tied, D x D must fit.
  const auto int_max = static_cast<std::size_t>(std::numeric_limits<int>::max());
  const std::size_t Dz = X.n_cols;
  const bool square = o.covariance_type == CovarianceType::full || o.covariance_type == CovarianceType::tied;
  if (Dz > int_max / std::max<std::size_t>(1, static_cast<std::size_t>(std::max(o.n_components, 1))) ||
      (square && Dz > int_max / Dz))
    throw DataError("D = " + std::to_string(Dz) + " features with " + std::to_string(o.n_components) + " '" +
                    to_string(o.covariance_type) + "' components is more than cuem supports; use diag or spherical "
                    "covariances, or fewer features");
  if (static_cast<std::size_t>(o.n_components) > X.n_rows)
    throw DataError("n_components = " + std::to_string(o.n_components) + " is more than the " +
                    std::to_string(X.n_rows) + " points in the data; use at most as many components as points");

  const int K = o.n_components;
  const int D = static_cast<int>(X.n_cols);
  if (!o.weights_init.empty()) {
    require(o.weights_init.size() == static_cast<std::size_t>(K),
            "weights_init has " + std::to_string(o.weights_init.size()) + " values; expected n_components = " +
                std::to_string(K));
    double sum = 0.0;
    for (double w : o.weights_init) {
      require(std::isfinite(w) && w >= 0.0 && w <= 1.0, "weights_init values must lie in [0, 1], got " + num(w));
      sum += w;
    }
    require(std::abs(sum - 1.0) <= 1e-6, "weights_init must sum to 1, sums to " + num(sum));
  }
  if (!o.means_init.empty()) {
    require(o.means_init.size() == static_cast<std::size_t>(K) * D,
            "means_init has " + std::to_string(o.means_init.size()) + " values; expected n_components x n_features = " +
                std::to_string(static_cast<std::size_t>(K) * D));
    require(all_finite(o.means_init), "means_init holds a non-finite value");
  }
  if (!o.precisions_init.empty()) {
    const std::size_t want = covariance_size(o.covariance_type, K, D);
    require(o.precisions_init.size() == want,
            "precisions_init has " + std::to_string(o.precisions_init.size()) + " values; a '" +
                to_string(o.covariance_type) + "' model needs " + std::to_string(want));
    require(all_finite(o.precisions_init), "precisions_init holds a non-finite value");
    if (o.covariance_type == CovarianceType::full || o.covariance_type == CovarianceType::tied) {
      const std::size_t DD = static_cast<std::size_t>(D) * D;
      for (std::size_t off = 0; off < want; off += DD) {
        const double* A = o.precisions_init.data() + off;
        for (int i = 0; i < D; ++i)
          for (int j = 0; j < i; ++j)
            require(std::abs(A[i * D + j] - A[j * D + i]) <= 1e-10 * (std::abs(A[i * D + j]) + std::abs(A[j * D + i]) + 1e-300),
                    "precisions_init matrix " + std::to_string(off / DD) + " is not symmetric");
        std::vector<double> L(A, A + DD);
        require(linalg::cholesky_lower(L.data(), D) < 0,
                "precisions_init matrix " + std::to_string(off / DD) + " is not positive definite");
      }
    } else {
      for (double p : o.precisions_init) require(p > 0.0, "precisions_init values must be positive, got " + num(p));
    }
  }
}

void validate_model(const Model& m) {
  require(m.n_components >= 1 && m.n_features >= 1, "the model is empty (fit it first)");
  const auto K = static_cast<std::size_t>(m.n_components);
  const auto D = static_cast<std::size_t>(m.n_features);
  require(m.weights.size() == K, "model weights have " + std::to_string(m.weights.size()) + " values; expected " +
                                     std::to_string(K));
  require(m.means.size() == K * D, "model means have " + std::to_string(m.means.size()) + " values; expected " +
                                       std::to_string(K * D));
  const std::size_t cs = covariance_size(m.covariance_type, m.n_components, m.n_features);
  require(m.covariances.size() == cs, "model covariances have " + std::to_string(m.covariances.size()) +
                                          " values; expected " + std::to_string(cs));
  require(m.precisions_cholesky.size() == cs, "model precisions_cholesky have " +
                                                  std::to_string(m.precisions_cholesky.size()) + " values; expected " +
                                                  std::to_string(cs));
  double sum = 0.0;
  for (double w : m.weights) {
    require(std::isfinite(w) && w >= 0.0, "model weights must be finite and non-negative");
    sum += w;
  }
  require(std::abs(sum - 1.0) <= 1e-6, "model weights must sum to 1, sum to " + num(sum));
  require(all_finite(m.means), "model means hold a non-finite value");
  require(all_finite(m.covariances), "model covariances hold a non-finite value");
  require(all_finite(m.precisions_cholesky), "model precisions_cholesky hold a non-finite value");
  // The factors must be upper triangular (the E-step reads only that triangle) with a
  // positive diagonal (for the log-determinant).
  const std::size_t DD = D * D;
  switch (m.covariance_type) {
    case CovarianceType::full:
    case CovarianceType::tied:
      for (std::size_t off = 0; off < cs; off += DD)
        for (std::size_t i = 0; i < D; ++i) {
          require(m.precisions_cholesky[off + i * D + i] > 0.0,
                  "model precisions_cholesky has a non-positive diagonal (matrix " + std::to_string(off / DD) + ")");
          for (std::size_t j = 0; j < i; ++j)
            require(m.precisions_cholesky[off + i * D + j] == 0.0,
                    "model precisions_cholesky matrix " + std::to_string(off / DD) +
                        " is not upper triangular (cuem and scikit-learn store P with precision = P P^T, P upper "
                        "triangular)");
        }
      break;
    case CovarianceType::diag:
    case CovarianceType::spherical:
      for (double p : m.precisions_cholesky) require(p > 0.0, "model precisions_cholesky values must be positive");
      for (double c : m.covariances) require(c > 0.0, "model covariances (variances) must be positive");
      break;
  }
}

void check_model_consistency(const Model& m) {
  validate_model(m);
  const auto D = static_cast<std::size_t>(m.n_features);
  const std::size_t DD = D * D;
  // Sigma (P P^T) must be the identity: rounding grows with the condition number, so the
  // bound is loose, but a factor of another matrix is far outside it.
  constexpr double kTolerance = 1e-4;
  switch (m.covariance_type) {
    case CovarianceType::full:
    case CovarianceType::tied:
      for (std::size_t off = 0; off < m.covariances.size(); off += DD) {
        const double* S = m.covariances.data() + off;
        const double* P = m.precisions_cholesky.data() + off;
        for (std::size_t i = 0; i < D; ++i)
          for (std::size_t j = 0; j < D; ++j) {
            double v = 0.0;
            for (std::size_t p = 0; p < D; ++p) {
              double prec_pj = 0.0;  // (P P^T)_pj over the upper triangles
              for (std::size_t q = std::max(p, j); q < D; ++q) prec_pj += P[p * D + q] * P[j * D + q];
              v += S[i * D + p] * prec_pj;
            }
            require(std::abs(v - (i == j ? 1.0 : 0.0)) <= kTolerance,
                    "model covariance " + std::to_string(off / DD) +
                        " does not match its precisions_cholesky (covariance x precision is not the identity)");
          }
      }
      break;
    case CovarianceType::diag:
    case CovarianceType::spherical:
      for (std::size_t i = 0; i < m.covariances.size(); ++i) {
        const double p = m.precisions_cholesky[i];
        require(std::abs(m.covariances[i] * p * p - 1.0) <= kTolerance,
                "model covariance value " + std::to_string(i) + " does not match its precisions_cholesky");
      }
      break;
  }
}

namespace {

void check_feature_count(const Model& m, std::size_t n_features) {
  if (n_features != static_cast<std::size_t>(m.n_features))
    throw DataError("the data has " + std::to_string(n_features) + " features but the model was fitted to " +
                    std::to_string(m.n_features));
}

}  // namespace

void validate_model_for(const Model& m, std::size_t n_features) {
  validate_model(m);
  check_feature_count(m, n_features);
}

bool validate_model_and_data(const Model& m, DataView X, MissingPolicy missing) {
  validate_model(m);
  const bool has_missing = validate_data(X, missing);
  check_feature_count(m, X.n_cols);
  return has_missing;
}

}  // namespace cuem
