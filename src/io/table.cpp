#include "io/table.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "cuem/errors.hpp"

namespace cuem::io {

std::vector<std::string> default_column_names(std::size_t cols) {
  std::vector<std::string> names;
  names.reserve(cols);
  for (std::size_t c = 0; c < cols; ++c) names.push_back("x" + std::to_string(c));
  return names;
}

std::string read_file_bytes(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    throw DataError("cannot open '" + path + "': " + std::strerror(errno));
  if (S_ISDIR(st.st_mode)) throw DataError("cannot read '" + path + "': it is a folder, not a file");
  const std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) throw DataError("cannot open '" + path + "': " + std::strerror(errno));
  std::string out;
  if (st.st_size > 0) out.reserve(static_cast<std::size_t>(st.st_size));
  char buf[1 << 16];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f.get())) > 0) out.append(buf, n);
  if (std::ferror(f.get())) throw DataError("error reading '" + path + "': " + std::strerror(errno));
  return out;
}

}  // namespace cuem::io
