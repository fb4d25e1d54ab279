#pragma once
// Headerless binary files of little-endian float32 or float64 values, row-major, with the
// number of features given by the user (--dims D).
#include <cstddef>
#include <memory>
#include <string>

#include "io/table.hpp"

namespace cuem::io {

enum class RawType { float32, float64 };

/// Parses raw bytes; DataError when the size is not a whole number of rows of `dims`
/// values, or when there is nothing to read.
/// With `keep` (what keeps `data` alive) on a little-endian machine, aligned values are
/// used in place (Table::in_place), not copied.
Table parse_raw(const unsigned char* data, std::size_t size, std::size_t dims, RawType type,
                const std::string& name, std::shared_ptr<const void> keep = {});

Table read_raw(const std::string& path, std::size_t dims, RawType type);

}  // namespace cuem::io
