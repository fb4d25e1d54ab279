#pragma once
// A one-page SVG report of a fit: the log-likelihood trace of every restart, and for
// D >= 2 a scatter of (a sample of) the points coloured by their most probable component
// with each component's 1- and 2-sigma ellipses, on the first two features or on the
// data's top two principal axes.
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
  std::size_t max_points = 5000;  ///< points drawn in the scatter (a seeded sample)
  std::uint64_t seed = 0;
  std::string title;               ///< e.g. the data file's name
  std::vector<std::string> feature_names;  ///< axis labels for first_two
};

/// The SVG document. X is the data the model was fitted to (its labels are computed
/// here with predict).
std::string render_svg(const FitResult& result, DataView X, const ReportOptions& options);

}  // namespace cuem::report
