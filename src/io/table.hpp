#pragma once
// A numeric table read from a file: the common result of every data reader.
#include <cstddef>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cuem/data_view.hpp"

namespace cuem::io {

struct Table {
  std::vector<double> values;  ///< rows x cols, row-major, float64 (empty when in place)
  std::size_t rows = 0;
  std::size_t cols = 0;
  /// The values used in place, where the file's bytes are already rows of little-endian
  /// float64 or float32 (mapped_file.hpp): `in_place` views them and `storage` keeps them
  /// mapped; `values` is then empty.
  DataView in_place;
  std::shared_ptr<const void> storage;
  std::vector<std::string> column_names;  ///< from a CSV header, else "x0", "x1", ...
  bool named_columns = false;             ///< column_names come from a header line
  /// Things the user should know but that are not errors, one line each (e.g. "int64
  /// values converted to float64").
  std::vector<std::string> notices;

  /// The rows as the library reads them (in place, or `values`).
  DataView view() const {
    return in_place.empty_pointer() ? DataView(values.data(), rows, cols) : in_place;
  }
};

/// "x0", "x1", ... for a table without a header.
std::vector<std::string> default_column_names(std::size_t cols);

/// Resolves --columns entries to 0-based indices into a table of `n_cols` columns, in
/// the order given. An entry (blanks around it ignored) made of digits is a 0-based
/// column number, anything else a name from `header`; `header` is null when the file has
/// none, and `no_names` then says why names cannot be used (e.g. ".npy files have no
/// column names"). InvalidArgument (a usage error) for an empty entry, a repeated column,
/// a number out of range or an unknown name; `name` (the file) prefixes the message.
std::vector<std::size_t> resolve_columns(const std::vector<std::string>& spec, std::size_t n_cols,
                                         const std::vector<std::string>* header, const std::string& no_names,
                                         const std::string& name);

/// Keeps the columns `idx` of `t`, in that order, with their names (as float64 values,
/// also where `t` was in place).
void keep_columns(Table& t, const std::vector<std::size_t>& idx);

/// "-" names standard input where a data file is read.
inline bool is_stdin_name(const std::string& path) { return path == "-"; }

/// A path as messages name it: "-" is "(standard input)".
inline std::string display_name(const std::string& path) { return is_stdin_name(path) ? "(standard input)" : path; }

/// Appends the rest of a stream to `out`, growing it by half at a time (not doubling).
/// DataError when reading fails.
void read_stream(std::FILE* in, std::string& out);

/// The whole content of a file ("-": standard input, to its end). DataError, naming the
/// path and the reason, when it is missing, a folder, or unreadable.
std::string read_file_bytes(const std::string& path);

}  // namespace cuem::io
