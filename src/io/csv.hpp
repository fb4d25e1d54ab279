#pragma once
// Reading a numeric table from CSV: one point per line, the same number of fields on
// every line, an optional header line (detected: any field of the first line that is not
// a number), delimiter ',' ';' or tab (detected from the first line).
#include <string>
#include <vector>

namespace cuem::io {

struct Table {
  std::vector<double> values;  ///< rows x cols, row-major
  std::size_t rows = 0;
  std::size_t cols = 0;
  std::vector<std::string> column_names;  ///< from the header, or "x0", "x1", ...
};

/// Throws DataError naming the file, line and field of the first problem (missing file,
/// empty file, ragged line, non-numeric field). Non-finite values are read as they are;
/// the fit's own check reports them with their position.
Table read_csv(const std::string& path);

}  // namespace cuem::io
