#pragma once
// NumPy .npy files (format versions 1.0, 2.0 and 3.0).
//
// Reading: 1-D (N points of one feature) or 2-D arrays of little-endian float64 or
// float32, C or Fortran order; other little-endian numeric dtypes (signed and unsigned
// integers of 1-8 bytes, bool, float16) are converted to float64 with a notice in
// Table::notices; anything else (big-endian, object, string, complex, structured,
// more than 2 dimensions) is a DataError that says what was found and how to convert it.
// Every header field is validated before any allocation: a truncated file, a wrong magic
// string or an absurd header length or shape is a DataError, never a crash. The data must
// fill the file exactly (bytes after it are an error, not ignored). A shape with a zero
// gives a Table with 0 rows or 0 columns, for the fit to report.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/table.hpp"

namespace cuem::io {

/// Parses .npy bytes; `name` is used in messages. With `keep` (what keeps `data` alive, e.g.
/// a FileBytes mapping) a little-endian float64 or float32 array in C order (or one
/// column) whose data are aligned is used in place (Table::in_place), not copied.
Table parse_npy(const unsigned char* data, std::size_t size, const std::string& name,
                std::shared_ptr<const void> keep = {});

/// Reads a .npy file (DataError if missing or unreadable).
Table read_npy(const std::string& path);

/// The bytes of a .npy file (version 1.0, C order, little-endian) holding a rows x cols
/// float64 array, or a 1-D array of `rows` values when cols == 0: the same bytes as
/// numpy.save writes, the data starting on a 64-byte boundary.
std::string npy_bytes_f64(const double* values, std::size_t rows, std::size_t cols);
/// Same for int64 values (labels).
std::string npy_bytes_i64(const std::int64_t* values, std::size_t rows, std::size_t cols);

/// The pieces of a .npy file written in parts (a streamed writer): the header of a rows x
/// cols array of `descr` ("<f8", "<f4", "<i8"; cols == 0: 1-D), as npy_bytes_f64 starts,
/// and values appended as little-endian bytes whatever the host's order.
std::string npy_header_bytes(const char* descr, std::size_t rows, std::size_t cols);
void append_le(std::string& out, const double* values, std::size_t n);
void append_le(std::string& out, const float* values, std::size_t n);
void append_le(std::string& out, const std::int64_t* values, std::size_t n);

/// Writes the arrays above atomically (OutputError when the path is not writable).
void write_npy(const std::string& path, const double* values, std::size_t rows, std::size_t cols);
void write_npy(const std::string& path, const std::int64_t* values, std::size_t rows, std::size_t cols);

}  // namespace cuem::io
