#pragma once
// The numerical pieces of svg_report.cpp, declared here so its tests can check them
// directly: axis ticks, a symmetric eigensolver, the principal axes of a data set, the
// seeded sample of rows and XML escaping. All are defined in svg_report.cpp.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cuem/data_view.hpp"

namespace cuem::report::detail {

/// Ticks of one plot axis over [lo, hi] (already padded by the caller). Labels are
/// (value - offset) / 10^exponent with just enough decimals to tell the ticks apart. The
/// offset is a round number, non-zero only when the range is narrow beside its distance
/// from zero (1e12 + [0, 8]), where plain labels would need a dozen digits; the exponent
/// is non-zero only for very large or very small (offset) values. Both are shown once, in
/// the axis title (axis_suffix).
struct Ticks {
  double lo = 0, hi = 1;            ///< the axis range
  std::vector<double> values;
  std::vector<std::string> labels;  ///< UTF-8, negative numbers with a true minus sign
  int exponent = 0;
  double offset = 0;
};

/// [lo, hi] widened to a usable range: a zero-width or non-finite range becomes one of
/// positive width around its centre, then both ends move out by pad * width.
void widen_range(double& lo, double& hi, double pad);

/// "Nice" ticks (1, 2, 2.5 or 5 times a power of ten) inside [lo, hi], about `target`
/// of them; `integer` keeps the step a whole number (iteration counts).
Ticks nice_ticks(double lo, double hi, int target, bool integer);

/// " (×10⁶)" for exponent 6; empty for 0.
std::string exponent_suffix(int exponent);

/// What an axis title needs after the name for its tick labels to read as values: the
/// offset taken away, then the exponent: " − 10¹² (×10⁻³)", " + 16.813", " (×10⁶)", or
/// empty.
std::string axis_suffix(const Ticks& ticks);

/// All eigenpairs of a symmetric n x n matrix (row-major) by cyclic Jacobi rotations, in
/// float64: eigenvalues in descending order, eigenvectors as the matching rows of
/// `vectors` (n x n). O(n^3) per sweep; meant for n up to a few hundred.
void jacobi_eigen(std::vector<double> A, int n, std::vector<double>& values, std::vector<double>& vectors);

/// The `count` largest eigenpairs of a symmetric positive semi-definite n x n matrix by
/// power iteration, each vector kept orthogonal to those already found (deflation).
void power_eigen(const std::vector<double>& A, int n, int count, std::vector<double>& values,
                 std::vector<double>& vectors);

/// The data's top two principal axes: unit vectors (rows of `axes`, 2 x D, sign fixed so
/// the largest-magnitude entry is positive), the share of the total variance along each,
/// and the mean they are centred on. The covariance is formed in float64 from centred
/// data; for very large N x D^2 it is estimated from a seeded sample of rows
/// (`rows_used` says how many).
struct PrincipalAxes {
  std::vector<double> axes;      ///< 2 x D
  double fraction[2] = {0, 0};   ///< of the total variance; 0 when the data is constant
  std::vector<double> mean;      ///< D
  std::size_t rows_used = 0;
};
PrincipalAxes principal_axes(DataView X, std::uint64_t seed);

/// min(m, N) distinct row indices drawn uniformly without replacement (Floyd's
/// algorithm), sorted ascending; a pure function of (N, m, seed, stream).
std::vector<std::size_t> sample_rows(std::size_t N, std::size_t m, std::uint64_t seed, std::uint64_t stream);

/// Text made safe for XML character data and attribute values: & < > " ' escaped,
/// control characters that XML 1.0 forbids dropped, invalid UTF-8 replaced by U+FFFD.
std::string xml_escape(std::string_view text);

}  // namespace cuem::report::detail
