#pragma once
// Reading a numeric table from CSV text: one point per line, the same number of fields on
// every line, an optional header line, a delimiter (',' ';' tab, or whitespace),
// optional column selection. A field in double quotes may hold the delimiter, and "" in
// it is a quote (RFC 4180; a quoted field cannot span lines). Values are decimal numbers
// (optional sign, point and exponent) or inf/nan words; hexadecimal is not a number.
// With CsvOptions::missing, an empty field, NA, N/A and NaN (any case) are missing values,
// read as NaN; otherwise NaN is an error and an empty field is not a number.
#include <cstddef>
#include <cstdio>
#include <functional>
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
  /// Columns to keep, by 0-based number or header name (see resolve_columns); empty keeps
  /// all.
  std::vector<std::string> columns;
  /// Missing values allowed (--missing marginalize): an empty field, NA, N/A or NaN (any
  /// case) is read as NaN. Inf is an error either way.
  bool missing = false;
  /// Where `missing` is off but could be on (the data of fit, predict, score, select):
  /// messages about NaN and missing-looking fields suggest --missing marginalize.
  bool suggest_missing = false;
};

/// Parses CSV text; `name` is used in messages. Throws DataError naming the file line and
/// the 0-based column of the first problem (empty input, ragged line, bad quoting, a field
/// that is not a number, NaN unless missing values are allowed, or Inf), InvalidArgument for a bad column selection.
/// `done_with`, when given, is told now and then that the text before an offset will not
/// be read again (a mapped file can then give those pages back).
Table parse_csv(std::string_view text, const CsvOptions& options, const std::string& name,
                const std::function<void(std::size_t)>& done_with = {});

/// Parses CSV text as it streams in from `in` (standard input), after `head`, the bytes
/// already read from it: memory holds the values and one chunk of text, not the whole
/// text (`chunk_bytes` at a time). The same results and errors as parse_csv.
Table parse_csv_stream(std::FILE* in, std::string head, const CsvOptions& options, const std::string& name,
                       std::size_t chunk_bytes = std::size_t{8} << 20);

/// Reads and parses a file; a missing or unreadable file is a DataError.
Table read_csv(const std::string& path, const CsvOptions& options = {});

}  // namespace cuem::io
