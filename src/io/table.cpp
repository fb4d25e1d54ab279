#include "io/table.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
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

namespace {

std::string trim_blanks(const std::string& s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return {};
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

std::string column_range(std::size_t n_cols) {
  if (n_cols == 0) return "the data has no columns";
  return "the data has " + std::to_string(n_cols) + (n_cols == 1 ? " column, 0" : " columns, 0 to " + std::to_string(n_cols - 1));
}

}  // namespace

std::vector<std::size_t> resolve_columns(const std::vector<std::string>& spec, std::size_t n_cols,
                                         const std::vector<std::string>* header, const std::string& no_names,
                                         const std::string& name) {
  std::vector<std::size_t> idx;
  std::vector<std::string> given;  // the entry that chose each index, for the duplicate message
  for (const std::string& entry : spec) {
    const std::string c = trim_blanks(entry);
    if (c.empty())
      throw InvalidArgument("--columns has an empty entry: give 0-based column numbers or header names separated by "
                            "single commas, such as --columns 0,2");
    std::size_t found = n_cols;
    if (c.find_first_not_of("0123456789") == std::string::npos) {
      // Numbers are always positions, even where a header has numeric names: one meaning
      // for every format.
      if (c.size() <= 18) found = static_cast<std::size_t>(std::strtoull(c.c_str(), nullptr, 10));
      if (found >= n_cols)
        throw InvalidArgument(name + ": no column '" + c + "': --columns counts from 0 and " + column_range(n_cols));
    } else if (header == nullptr) {
      throw InvalidArgument(name + ": --columns '" + c + "' is not a column number, and " + no_names +
                            "; give 0-based numbers (" + column_range(n_cols) + ")");
    } else {
      std::size_t matches = 0;
      for (std::size_t i = 0; i < header->size(); ++i)
        if ((*header)[i] == c && matches++ == 0) found = i;
      if (matches > 1)
        throw InvalidArgument(name + ": the header names " + std::to_string(matches) + " columns '" + c +
                              "'; choose by 0-based number instead");
      if (found >= n_cols) {
        std::string names;
        for (std::size_t i = 0; i < header->size() && i < 20; ++i) names += (i ? ", " : "") + (*header)[i];
        if (header->size() > 20) names += ", ...";
        throw InvalidArgument(name + ": no column '" + c + "' (the header has " + names +
                              "; or give 0-based numbers: " + column_range(n_cols) + ")");
      }
    }
    for (std::size_t j = 0; j < idx.size(); ++j)
      if (idx[j] == found)
        throw InvalidArgument(name + ": --columns selects column " + std::to_string(found) + " twice ('" + given[j] +
                              "' and '" + c + "'); list each column once");
    idx.push_back(found);
    given.push_back(c);
  }
  return idx;
}

void keep_columns(Table& t, const std::vector<std::size_t>& idx) {
  const DataView from = t.view();
  std::vector<double> values;
  values.reserve(t.rows * idx.size());
  for (std::size_t r = 0; r < t.rows; ++r)
    for (std::size_t c : idx) values.push_back(from.value(r, c));
  std::vector<std::string> names;
  for (std::size_t c : idx) names.push_back(c < t.column_names.size() ? t.column_names[c] : "x" + std::to_string(c));
  t.values = std::move(values);
  t.in_place = DataView();
  t.storage.reset();
  t.column_names = std::move(names);
  t.cols = idx.size();
}

void read_stream(std::FILE* in, std::string& out) {
  constexpr std::size_t kStep = std::size_t{1} << 20;
  for (;;) {
    if (out.capacity() - out.size() < kStep) out.reserve(out.size() + out.size() / 2 + kStep);
    const std::size_t got = out.size();
    out.resize(out.capacity());
    const std::size_t r = std::fread(&out[got], 1, out.size() - got, in);
    out.resize(got + r);
    if (r == 0) break;
  }
  if (std::ferror(in)) throw DataError(std::string("error reading standard input: ") + std::strerror(errno));
}

std::string read_file_bytes(const std::string& path) {
  if (is_stdin_name(path)) {
    std::string out;
    read_stream(stdin, out);
    return out;
  }
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
