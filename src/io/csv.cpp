#include "io/csv.hpp"

#include <cstdlib>
#include <limits>

#include "cuem/errors.hpp"

namespace cuem::io {
namespace {

std::string_view trim(std::string_view f) {
  const auto b = f.find_first_not_of(" \t\"");
  if (b == std::string_view::npos) return {};
  const auto e = f.find_last_not_of(" \t\"");
  return f.substr(b, e - b + 1);
}

// Splits one line. A space delimiter means runs of blanks (whitespace-separated text).
void split(std::string_view line, char delim, std::vector<std::string_view>& out) {
  out.clear();
  if (delim == ' ') {
    std::size_t i = 0;
    while (i < line.size()) {
      while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
      if (i == line.size()) break;
      const std::size_t start = i;
      while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
      out.push_back(line.substr(start, i - start));
    }
    return;
  }
  std::size_t start = 0;
  while (true) {
    const std::size_t pos = line.find(delim, start);
    out.push_back(trim(line.substr(start, pos == std::string_view::npos ? std::string_view::npos : pos - start)));
    if (pos == std::string_view::npos) break;
    start = pos + 1;
  }
}

bool parse_number(std::string_view s, double* out) {
  if (s.empty() || s.size() > 1024) return false;
  char small[96];
  std::string large;
  char* buf = small;
  if (s.size() >= sizeof small) {
    large.assign(s);
    buf = large.data();
  } else {
    s.copy(small, s.size());
    small[s.size()] = '\0';
  }
  char* end = nullptr;
  const double v = std::strtod(buf, &end);
  if (end != buf + s.size()) return false;
  *out = v;  // overflow gives +-inf, which the fit's finiteness check reports with its place
  return true;
}

char detect_delimiter(std::string_view line) {
  for (char c : {',', ';', '\t'})
    if (line.find(c) != std::string_view::npos) return c;
  return ' ';
}

std::string where(const std::string& name, std::size_t line_no) { return name + ":" + std::to_string(line_no) + ": "; }

// Indices of the selected columns, by number or by header name.
std::vector<std::size_t> select_columns(const CsvOptions& o, const std::vector<std::string>& names,
                                        const std::string& name) {
  std::vector<std::size_t> idx;
  for (const std::string& c : o.columns) {
    std::size_t found = names.size();
    for (std::size_t i = 0; i < names.size(); ++i)
      if (names[i] == c) found = i;
    if (found == names.size() && !c.empty() && c.find_first_not_of("0123456789") == std::string::npos &&
        c.size() < 10) {
      found = static_cast<std::size_t>(std::strtoul(c.c_str(), nullptr, 10));
      if (found >= names.size()) found = names.size();
    }
    if (found == names.size())
      throw DataError(name + ": no column '" + c + "' (the file has " + std::to_string(names.size()) +
                      " columns; give 0-based numbers or header names)");
    idx.push_back(found);
  }
  return idx;
}

}  // namespace

namespace {

// Iterates over the lines that hold data or a header: blank and '#' lines are skipped.
class LineReader {
 public:
  explicit LineReader(std::string_view text) : text_(text) {}
  bool next(std::string_view& line, std::size_t& line_no) {
    while (pos_ < text_.size()) {
      std::size_t eol = text_.find('\n', pos_);
      if (eol == std::string_view::npos) eol = text_.size();
      line = text_.substr(pos_, eol - pos_);
      pos_ = eol + 1;
      ++line_no_;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.find_first_not_of(" \t") == std::string_view::npos || line.front() == '#') continue;
      line_no = line_no_;
      return true;
    }
    return false;
  }

 private:
  std::string_view text_;
  std::size_t pos_ = 0;
  std::size_t line_no_ = 0;
};

// The first line is a header when none of its fields is a number: a line that mixes
// numbers and text (such as "1,NA" or "5.1,3.5,setosa") is data, and a bad field in it is
// reported rather than silently dropped with the line.
bool looks_like_header(const std::vector<std::string_view>& first) {
  double v = 0.0;
  for (std::string_view f : first)
    if (parse_number(f, &v)) return false;
  return true;
}

std::string fields_text(std::size_t n) { return std::to_string(n) + (n == 1 ? " field" : " fields"); }

}  // namespace

Table parse_csv(std::string_view text, const CsvOptions& o, const std::string& name) {
  Table t;
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // UTF-8 byte-order mark (Excel)
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) throw DataError(name + ": the file is empty");
  LineReader lines(text);
  std::string_view line;
  std::size_t line_no = 0;
  if (!lines.next(line, line_no)) throw DataError(name + ": no data rows (only comment lines)");
  const char delim = o.delimiter != 0 ? o.delimiter : detect_delimiter(line);
  std::vector<std::string_view> fields;
  split(line, delim, fields);
  const std::size_t n_fields = fields.size();

  const bool header = o.header == HeaderMode::present || (o.header == HeaderMode::detect && looks_like_header(fields));
  if (header) {
    for (std::string_view f : fields) t.column_names.emplace_back(f);
  } else {
    t.column_names = default_column_names(n_fields);
  }
  std::vector<std::size_t> keep;
  if (o.columns.empty()) {
    for (std::size_t i = 0; i < n_fields; ++i) keep.push_back(i);
  } else {
    keep = select_columns(o, t.column_names, name);
    std::vector<std::string> kept;
    for (std::size_t i : keep) kept.push_back(t.column_names[i]);
    t.column_names = kept;
  }
  t.cols = keep.size();

  double v = 0.0;
  bool have_line = !header;  // without a header the first line is data
  while (have_line || lines.next(line, line_no)) {
    have_line = false;
    split(line, delim, fields);
    if (fields.size() != n_fields)
      throw DataError(where(name, line_no) + fields_text(fields.size()) + " where the first line has " +
                      fields_text(n_fields) + " (ragged rows are not allowed)");
    for (std::size_t c : keep) {
      if (!parse_number(fields[c], &v))
        throw DataError(where(name, line_no) + "field " + std::to_string(c + 1) + " ('" +
                        std::string(fields[c].substr(0, 40)) + "') is not a number" +
                        (o.columns.empty() ? "; choose numeric columns with --columns" : ""));
      t.values.push_back(v);
    }
    ++t.rows;
  }
  if (t.rows == 0) throw DataError(name + ": no data rows (only a header line)");
  return t;
}

Table read_csv(const std::string& path, const CsvOptions& o) {
  return parse_csv(read_file_bytes(path), o, path);
}

}  // namespace cuem::io
