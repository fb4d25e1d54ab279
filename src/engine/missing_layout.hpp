#pragma once
// Data with missing entries, rearranged once for a fit or an evaluation (cuem/missing.hpp):
// a copy of the rows that carry information, complete rows first in X's order, then the
// incomplete rows grouped by missingness pattern (patterns in order of first appearance,
// each pattern's rows in X's order). Missing entries of the copy hold their column's
// observed (weighted) mean, so that k-means can initialise on it; every E-step reads only
// a row's observed entries. Rows with every entry missing are left out.
#include <cstddef>
#include <vector>

#include "cuem/data_view.hpp"
#include "cuem/missing.hpp"

namespace cuem::engine {

struct MissingPattern {
  std::size_t begin = 0;      ///< layout rows [begin, end), all with this pattern
  std::size_t end = 0;
  std::vector<int> observed;  ///< ascending column indices, not empty
  std::vector<int> missing;   ///< ascending column indices, not empty
};

struct MissingLayout {
  MissingSummary summary;
  std::size_t n_rows = 0;      ///< rows with information (X's rows less the empty ones)
  std::size_t n_cols = 0;
  std::size_t n_complete = 0;  ///< layout rows [0, n_complete) are complete
  /// Layout row i is row order[i] of X (n_rows entries).
  std::vector<std::size_t> order;
  /// The incomplete rows' patterns, covering layout rows [n_complete, n_rows) in order.
  std::vector<MissingPattern> patterns;
  /// The column means that fill the missing entries (D).
  std::vector<double> fill;
  /// The rearranged copy, n_rows x D, packed, float64 whatever X's type (so that float32
  /// data fit as their float64 conversion, fill values included).
  std::vector<double> values;
  /// The rearranged sample weights (empty without weights).
  std::vector<double> weights;

  /// The whole copy, and its complete rows alone.
  DataView view() const noexcept;
  DataView complete_view() const noexcept;
  WeightView weight_view() const noexcept;
  WeightView complete_weight_view() const noexcept;
  /// Entry (i, d) of the copy as a double.
  double value(std::size_t i, std::size_t d) const noexcept { return values[i * n_cols + d]; }
};

/// The layout of host data X (NaN = missing) with weights w (empty for none). Throws
/// DataError at an infinite value. With `require_columns`, a column with no observed
/// entry is a DataError naming it (a fit cannot estimate it).
MissingLayout make_missing_layout(DataView X, WeightView w, bool require_columns);

}  // namespace cuem::engine
