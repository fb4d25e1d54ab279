#pragma once
// Missingness mechanisms for the missing-data tests (NaN = missing), seeded and written
// without the library: MCAR (every entry independently), MAR (column 0 always observed,
// the other columns missing more often where column 0 is large), MNAR (an entry missing
// more often where its own value is large), and "one entry per row" (no complete row).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "test_util.hpp"

namespace cuem_test {

constexpr double kMissing = std::numeric_limits<double>::quiet_NaN();

inline bool is_missing(double v) { return std::isnan(v); }

inline std::size_t count_missing(const std::vector<double>& x) {
  std::size_t n = 0;
  for (double v : x) n += is_missing(v) ? 1 : 0;
  return n;
}

/// Every entry missing independently with probability p.
inline void mask_mcar(std::vector<double>& x, double p, std::uint64_t seed) {
  Rng rng(seed);
  for (double& v : x)
    if (rng.uniform() < p) v = kMissing;
}

/// MAR: column 0 is always observed; an entry of column j >= 1 is missing with
/// probability p_high where the row's column 0 exceeds `threshold`, else p_low. Whether
/// an entry is missing depends only on an observed value.
inline void mask_mar(std::vector<double>& x, std::size_t n, int d, double threshold, double p_low,
                     double p_high, std::uint64_t seed) {
  Rng rng(seed);
  for (std::size_t i = 0; i < n; ++i) {
    const double p = x[i * d] > threshold ? p_high : p_low;
    for (int j = 1; j < d; ++j)
      if (rng.uniform() < p) x[i * d + j] = kMissing;
  }
}

/// MNAR on one column: an entry of column `col` is missing with probability p_high where
/// its own value exceeds `threshold`, else p_low. The other columns are complete.
inline void mask_mnar(std::vector<double>& x, std::size_t n, int d, int col, double threshold, double p_low,
                      double p_high, std::uint64_t seed) {
  Rng rng(seed);
  for (std::size_t i = 0; i < n; ++i) {
    const double p = x[i * d + col] > threshold ? p_high : p_low;
    if (rng.uniform() < p) x[i * d + col] = kMissing;
  }
}

/// Exactly one entry missing in every row (its column uniform), so that no row is complete.
inline void mask_one_per_row(std::vector<double>& x, std::size_t n, int d, std::uint64_t seed) {
  Rng rng(seed);
  for (std::size_t i = 0; i < n; ++i) {
    int j = static_cast<int>(rng.uniform() * d);
    if (j >= d) j = d - 1;
    x[i * d + j] = kMissing;
  }
}

/// Mean of column j over its observed entries.
inline double observed_column_mean(const std::vector<double>& x, std::size_t n, int d, int j) {
  double s = 0;
  std::size_t c = 0;
  for (std::size_t i = 0; i < n; ++i)
    if (!is_missing(x[i * d + j])) {
      s += x[i * d + j];
      ++c;
    }
  return s / static_cast<double>(c);
}

}  // namespace cuem_test
