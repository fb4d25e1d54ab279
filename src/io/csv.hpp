#pragma once
// Reading a numeric table from CSV text: one point per line, the same number of fields on
// every line, an optional header line, a delimiter (',' ';' tab, or whitespace),
// optional column selection.
#include <string>
#include <string_view>
#include <vector>

#include "io/table.hpp"

namespace cuem::io {

enum class HeaderMode { detect, present, absent };

struct CsvOptions {
  char delimiter = 0;  ///< 0: detect from the first line (',' then ';' then tab, else ' ')
  HeaderMode header = HeaderMode::detect;  ///< detect: the first line is a header when
                                           ///< any of its fields is not a number
  /// Columns to keep, by 0-based index or header name; empty keeps all.
  std::vector<std::string> columns;
};

/// Parses CSV text; `name` is used in messages. Throws DataError naming the line and field
/// of the first problem (empty input, ragged line, non-numeric field, unknown column).
Table parse_csv(std::string_view text, const CsvOptions& options, const std::string& name);

/// Reads and parses a file; a missing or unreadable file is a DataError.
Table read_csv(const std::string& path, const CsvOptions& options = {});

}  // namespace cuem::io
