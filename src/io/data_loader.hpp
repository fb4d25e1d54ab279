#pragma once
// Loading a data set for the command line. The content decides where it can: a file that
// starts with the NPY signature is read as .npy whatever its name. Otherwise the name does:
// .npy, raw binary (.bin/.raw/.f32/.f64, or any file when --dims is given), else text
// (CSV/TSV/whitespace). Column selection works for every format. "-" reads standard input
// (NPY by its signature, else text). Compressed files, zip archives (.npz), HDF5, UTF-16
// text and OLE documents are named in a DataError instead of being parsed as text.
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "io/csv.hpp"
#include "io/raw.hpp"
#include "io/table.hpp"

namespace cuem::io {

struct LoadOptions {
  /// Text input only: a delimiter or header mode other than detect given for .npy or raw
  /// binary input is an InvalidArgument. load_data ignores csv.columns (see `columns`).
  CsvOptions csv;
  /// Columns to keep, by 0-based number, or by header name for text with a header; empty
  /// keeps all.
  std::vector<std::string> columns;
  std::size_t raw_dims = 0;  ///< > 0: read as raw binary with this many features
  RawType raw_type = RawType::float64;
};

Table load_data(const std::string& path, const LoadOptions& options);

/// For a table that load_data read in place from a mapped file (.npy or raw binary, no
/// --columns): what a fit in chunks calls after each chunk (FitOptions::release_rows).
/// Given the row a pass has read up to, it releases the mapped pages of the rows since the
/// previous call (a smaller row starts a new pass), so that resident memory stays about
/// one chunk, not the file. It throws InputChangedError (input_changed.hpp) when the mapped
/// file grew, shrank or was written to since it was opened (FileBytes::change): when it is
/// made, and at every call. Null for any other table.
std::function<void(std::size_t)> row_releaser(const Table& table, const std::string& path);

/// For the same tables: throws InputChangedError when the mapped file changed since it was
/// opened, as row_releaser's check; nothing for any other table. An in-memory fit of a
/// mapped file calls it before writing its outputs.
void check_unchanged(const Table& table, const std::string& path);

/// Whether bytes are evidently text rather than raw binary numbers: the first KiB (the whole
/// content if shorter), after an optional UTF-8 byte-order mark, is only printable ASCII,
/// tabs and line breaks, with at least one digit. Raw float data practically never passes:
/// every byte of every value would have to be printable, and values near 1 (exponent bytes
/// 0x3F 0xF0-0xFF or 0x40 0x00-0x0F in float64) already fail.
bool looks_like_text(const std::string& bytes);

}  // namespace cuem::io
