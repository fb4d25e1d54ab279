#include "io/csv.hpp"

#include <cerrno>
#include <cstdlib>
#include <fstream>

#include "cuem/errors.hpp"

namespace cuem::io {
namespace {

std::vector<std::string> split(const std::string& line, char delim) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (true) {
    const std::size_t pos = line.find(delim, start);
    out.push_back(line.substr(start, pos == std::string::npos ? std::string::npos : pos - start));
    if (pos == std::string::npos) break;
    start = pos + 1;
  }
  for (std::string& f : out) {
    const auto b = f.find_first_not_of(" \t\"");
    const auto e = f.find_last_not_of(" \t\"");
    f = b == std::string::npos ? std::string() : f.substr(b, e - b + 1);
  }
  return out;
}

bool parse_number(const std::string& s, double* out) {
  if (s.empty()) return false;
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size()) return false;
  *out = v;  // overflow gives +-inf, reported by the fit's finiteness check
  return true;
}

char detect_delimiter(const std::string& line) {
  for (char c : {',', ';', '\t'})
    if (line.find(c) != std::string::npos) return c;
  return ',';
}

}  // namespace

Table read_csv(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw DataError("cannot open '" + path + "': no such file or not readable");
  Table t;
  std::string line;
  std::size_t line_no = 0;
  char delim = ',';
  bool first = true;
  double v = 0.0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    if (first) delim = detect_delimiter(line);
    const std::vector<std::string> fields = split(line, delim);
    if (first) {
      first = false;
      t.cols = fields.size();
      bool numeric = true;
      for (const std::string& f : fields) numeric = numeric && parse_number(f, &v);
      if (!numeric) {  // a header
        t.column_names = fields;
        continue;
      }
    }
    if (fields.size() != t.cols)
      throw DataError(path + ":" + std::to_string(line_no) + ": " + std::to_string(fields.size()) +
                      " fields where the first line has " + std::to_string(t.cols));
    for (std::size_t c = 0; c < fields.size(); ++c) {
      if (!parse_number(fields[c], &v))
        throw DataError(path + ":" + std::to_string(line_no) + ": field " + std::to_string(c + 1) + " ('" +
                        fields[c] + "') is not a number");
      t.values.push_back(v);
    }
    ++t.rows;
  }
  if (in.bad()) throw DataError("error reading '" + path + "'");
  if (t.rows == 0) throw DataError("'" + path + "' holds no data rows");
  if (t.column_names.empty())
    for (std::size_t c = 0; c < t.cols; ++c) t.column_names.push_back("x" + std::to_string(c));
  return t;
}

}  // namespace cuem::io
