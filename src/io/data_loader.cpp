#include "io/data_loader.hpp"

#include <cctype>

#include "cuem/errors.hpp"
#include "io/npy.hpp"

namespace cuem::io {
namespace {

bool ends_with(const std::string& s, const char* suffix) {
  const std::string t(suffix);
  if (s.size() < t.size()) return false;
  for (std::size_t i = 0; i < t.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(s[s.size() - t.size() + i])) != t[i]) return false;
  return true;
}

}  // namespace

Table load_data(const std::string& path, const LoadOptions& o) {
  if (o.raw_dims > 0) return read_raw(path, o.raw_dims, o.raw_type);
  if (ends_with(path, ".npy")) return read_npy(path);
  if (ends_with(path, ".csv") || ends_with(path, ".tsv") || ends_with(path, ".txt") || ends_with(path, ".dat"))
    return read_csv(path, o.csv);
  if (ends_with(path, ".bin") || ends_with(path, ".raw") || ends_with(path, ".f32") || ends_with(path, ".f64"))
    throw DataError("'" + path + "' looks like raw binary: give the number of features with --dims D (and "
                    "--dtype float32 or float64)");
  // Unknown extension: sniff the npy magic, else treat as text.
  const std::string bytes = read_file_bytes(path);
  if (bytes.size() >= 6 && bytes.compare(0, 6, "\x93NUMPY") == 0)
    return parse_npy(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), path);
  return parse_csv(bytes, o.csv, path);
}

}  // namespace cuem::io
