#pragma once
// A numeric table read from a file: the common result of every data reader.
#include <cstddef>
#include <string>
#include <vector>

namespace cuem::io {

struct Table {
  std::vector<double> values;  ///< rows x cols, row-major, float64
  std::size_t rows = 0;
  std::size_t cols = 0;
  std::vector<std::string> column_names;  ///< from a CSV header, else "x0", "x1", ...
  /// Things the user should know but that are not errors, one line each (e.g. "int64
  /// values converted to float64").
  std::vector<std::string> notices;
};

/// "x0", "x1", ... for a table without a header.
std::vector<std::string> default_column_names(std::size_t cols);

/// The whole content of a file. DataError, naming the path and the reason, when it is
/// missing, a folder, or unreadable.
std::string read_file_bytes(const std::string& path);

}  // namespace cuem::io
