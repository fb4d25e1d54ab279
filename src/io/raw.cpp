// Headerless little-endian float32/float64 files: nothing in the file says how many features
// a point has, so the user gives it (--dims D) and the size must be a whole number of rows.
#include "io/raw.hpp"

#include <cstdint>
#include <cstring>
#include <limits>

#include "cuem/errors.hpp"

namespace cuem::io {
namespace {

template <typename U>
U load_le(const unsigned char* p) {
  U v = 0;
  for (std::size_t i = 0; i < sizeof(U); ++i) v = static_cast<U>(v | static_cast<U>(static_cast<U>(p[i]) << (8 * i)));
  return v;
}

const char* type_name(RawType type) { return type == RawType::float32 ? "float32" : "float64"; }

}  // namespace

Table parse_raw(const unsigned char* data, std::size_t size, std::size_t dims, RawType type, const std::string& name,
                std::shared_ptr<const void> keep) {
  if (dims == 0) throw InvalidArgument("--dims must be at least 1 (the number of features of each point)");
  const std::size_t item = type == RawType::float32 ? 4 : 8;
  std::size_t row_bytes = 0;
  if (__builtin_mul_overflow(dims, item, &row_bytes))
    throw InvalidArgument("--dims " + std::to_string(dims) + " is too large");
  if (size == 0) throw DataError(name + ": the file is empty; there are no points to read");
  if (size >= 6 && std::memcmp(data, "\x93NUMPY", 6) == 0)
    throw DataError(name + ": this is a .npy file, not raw binary: read it without --dims");
  if (size % row_bytes != 0) {
    // Say so when the other value type fits (a common mix-up).
    std::string hint;
    const bool other_fits = item == 8 || row_bytes <= std::numeric_limits<std::size_t>::max() / 2;
    const std::size_t other_row = item == 8 ? row_bytes / 2 : row_bytes * 2;
    if (other_fits && size % other_row == 0)
      hint = " (it would be " + std::to_string(size / other_row) + " rows of " +
             type_name(item == 4 ? RawType::float64 : RawType::float32) + ")";
    throw DataError(name + ": " + std::to_string(size) + " bytes is not a whole number of rows of " +
                    std::to_string(dims) + " " + type_name(type) + " values (" + std::to_string(row_bytes) +
                    " bytes per row)" + hint + "; check --dims and the value type");
  }
  Table t;
  t.cols = dims;
  t.rows = size / row_bytes;
  t.column_names = default_column_names(t.cols);
  const bool little_endian = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__;
  if (keep && little_endian && reinterpret_cast<std::uintptr_t>(data) % item == 0) {
    t.in_place = item == 8 ? DataView(reinterpret_cast<const double*>(data), t.rows, t.cols)
                           : DataView(reinterpret_cast<const float*>(data), t.rows, t.cols);
    t.storage = std::move(keep);
    return t;
  }
  const std::size_t n = size / item;
  t.values.resize(n);
  if (type == RawType::float64) {
    for (std::size_t i = 0; i < n; ++i) {
      const auto bits = load_le<std::uint64_t>(data + 8 * i);
      std::memcpy(&t.values[i], &bits, 8);
    }
  } else {
    for (std::size_t i = 0; i < n; ++i) {
      const auto bits = load_le<std::uint32_t>(data + 4 * i);
      float v;
      std::memcpy(&v, &bits, 4);
      t.values[i] = v;
    }
  }
  return t;
}

Table read_raw(const std::string& path, std::size_t dims, RawType type) {
  if (dims == 0) throw InvalidArgument("--dims must be at least 1 (the number of features of each point)");
  const std::string bytes = read_file_bytes(path);
  return parse_raw(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), dims, type, path);
}

}  // namespace cuem::io
