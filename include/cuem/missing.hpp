#pragma once
// Data with missing entries (NaN), under MissingPolicy::marginalize (options.hpp).
//
// A fit maximises the likelihood of the observed coordinates, which is the right
// objective when the data are missing at random (MAR: whether an entry is missing may
// depend on the observed entries, not on the missing value itself); docs/MISSING.md says
// what happens otherwise and what to do. Rows are grouped by which entries they miss, so
// that each pattern's conditional factors are computed once per component and iteration;
// complete rows take the ordinary E-step, and data without NaN give the same model,
// bit for bit, as with MissingPolicy::error.
#include <cstddef>
#include <vector>

#include "cuem/data_view.hpp"
#include "cuem/model.hpp"

namespace cuem {

/// What is missing in a data set.
struct MissingSummary {
  std::size_t missing_entries = 0;  ///< NaN entries
  std::size_t incomplete_rows = 0;  ///< rows with at least one NaN (the empty rows included)
  /// Rows with every entry missing: they carry no information and a fit skips them.
  std::size_t empty_rows = 0;
  std::vector<std::size_t> first_empty_rows;  ///< the first few of them (0-based), for messages
  /// Distinct sets of missing entries among the incomplete rows that are not empty.
  std::size_t n_patterns = 0;
};

/// Counts X's NaN entries; throws DataError at an infinite value (naming its row and column).
MissingSummary describe_missing(DataView X);

struct Imputation {
  /// N x D row-major: observed entries as given; a missing one is its conditional
  /// expectation under the mixture, sum_k P(k | x_o) E[x_m | x_o, k].
  std::vector<double> X;
  /// N x D when asked for: the conditional variance of each missing entry (the law of
  /// total variance over the components), 0 where the entry was observed.
  std::vector<double> variance;
};

/// Fills X's missing entries from a fitted model, in float64 on the CPU. A row with every
/// entry missing gets the mixture's mean (and its marginal variance). Throws DataError
/// at an infinite value or when X's number of features is not the model's (as predict
/// does), InvalidArgument for an invalid model.
Imputation impute(const Model& model, DataView X, bool with_variance = false);

}  // namespace cuem
