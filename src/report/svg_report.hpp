#pragma once
// A one-page SVG report of a fit: the log-likelihood trace of every restart, and for
// D >= 2 a scatter of (a sample of) the points coloured by their most probable component
// with each component's 1- and 2-sigma ellipses, on the first two features or on the
// data's top two principal axes; for D == 1 a histogram of the data under the fitted
// mixture density and each component's weighted density.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "cuem/data_view.hpp"
#include "cuem/fit.hpp"
#include "cuem/model.hpp"

namespace cuem::report {

enum class Axes { first_two, principal };

struct ReportOptions {
  Axes axes = Axes::first_two;
  /// Points drawn in the scatter: all of them up to this many, else a sample without
  /// replacement drawn with `seed`.
  std::size_t max_points = 5000;
  std::uint64_t seed = 0;
  std::string title;               ///< e.g. the data file's name; any UTF-8 text
  /// Axis labels, by column: the first two for first_two, the first for D == 1 (the
  /// principal axes are labelled "PC1 (xx% of variance)"). Missing names read "feature j".
  std::vector<std::string> feature_names;
};

/// The SVG document (UTF-8, well-formed XML, the same bytes for the same inputs). X is
/// the data the model was fitted to (the sampled points' labels are computed here with
/// predict). Throws DataError when X is empty, holds a non-finite value or does not have
/// the model's D, and InvalidArgument when the model itself is invalid.
std::string render_svg(const FitResult& result, DataView X, const ReportOptions& options);

}  // namespace cuem::report
