#include "io/csv.hpp"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "cuem/errors.hpp"

namespace cuem::io {
namespace {

bool is_blank(char c) { return c == ' ' || c == '\t'; }

// Splits one line into fields, each trimmed of blanks. A space delimiter means runs of
// blanks (whitespace-separated text). A field in double quotes may hold the delimiter and
// "" stands for one quote (RFC 4180); such a field is unescaped into `scratch`, which is
// reserved up front so that the views into it stay valid. Returns what is wrong with the
// line, or nullptr.
const char* split(std::string_view line, char delim, std::vector<std::string_view>& out, std::string& scratch) {
  out.clear();
  scratch.clear();
  scratch.reserve(line.size());
  const bool blanks = delim == ' ';
  const auto separates = [&](char c) { return blanks ? is_blank(c) : c == delim; };
  const auto padding = [&](char c) { return is_blank(c) && (blanks || c != delim); };
  const std::size_t n = line.size();
  std::size_t i = 0;
  while (true) {
    while (i < n && padding(line[i])) ++i;
    if (blanks && i == n) break;  // trailing blanks end the line, not an empty field
    if (i < n && line[i] == '"') {
      const std::size_t start = scratch.size();
      for (++i;; ++i) {
        if (i == n) return "a quoted field is not closed on its line (fields cannot span lines)";
        if (line[i] != '"') {
          scratch += line[i];
        } else if (i + 1 < n && line[i + 1] == '"') {
          scratch += '"';
          ++i;
        } else {
          ++i;
          break;
        }
      }
      out.push_back(std::string_view(scratch).substr(start));
      if (!blanks)
        while (i < n && padding(line[i])) ++i;
      if (i < n && !separates(line[i])) return "text follows a closing quote (write \"\" for a quote inside a quoted field)";
    } else {
      const std::size_t start = i;
      while (i < n && !separates(line[i])) ++i;
      std::size_t end = i;
      while (end > start && is_blank(line[end - 1])) --end;
      out.push_back(line.substr(start, end - start));
    }
    if (i == n) break;
    if (!blanks) ++i;  // past the delimiter; a delimiter at the end leaves an empty last field
  }
  return nullptr;
}

bool iequals(std::string_view a, const char* b) {
  const std::string_view bv(b);
  if (a.size() != bv.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != bv[i]) return false;
  return true;
}

// Decimal numbers only, as numpy.loadtxt and pandas read them: [+-]digits[.digits][e[+-]digits]
// (digits on at least one side of the point), or inf, infinity, nan. strtod alone would
// also take hexadecimal ("0x10" as 16), hex floats and "nan(...)".
bool is_decimal(std::string_view s) {
  std::size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  const std::string_view word = s.substr(i);
  if (iequals(word, "inf") || iequals(word, "infinity") || iequals(word, "nan")) return true;
  const auto digits = [&] {
    std::size_t d = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++d;
    return d;
  };
  std::size_t mantissa = digits();
  if (i < s.size() && s[i] == '.') {
    ++i;
    mantissa += digits();
  }
  if (mantissa == 0) return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (digits() == 0) return false;
  }
  return i == s.size();
}

// inf, infinity or nan, signed or not: written as such rather than overflowing.
bool is_word(std::string_view s) {
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) s.remove_prefix(1);
  return !s.empty() && (s[0] < '0' || s[0] > '9') && s[0] != '.';
}

bool parse_number(std::string_view s, double* out) {
  if (s.empty() || s.size() > 1024 || !is_decimal(s)) return false;
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
  *out = v;  // overflow gives +-inf, which the caller reports with its place
  return true;
}

// The first of ',' ';' tab found outside quotes, else whitespace.
char detect_delimiter(std::string_view line) {
  bool quoted = false;
  bool seen[3] = {false, false, false};
  for (char c : line) {
    if (c == '"') quoted = !quoted;
    if (quoted) continue;
    seen[0] = seen[0] || c == ',';
    seen[1] = seen[1] || c == ';';
    seen[2] = seen[2] || c == '\t';
  }
  return seen[0] ? ',' : seen[1] ? ';' : seen[2] ? '\t' : ' ';
}

std::string where(const std::string& name, std::size_t line_no) { return name + ":" + std::to_string(line_no) + ": "; }

// A field as a message quotes it: at most 40 bytes, and bytes outside printable ASCII as
// \xNN, so that binary content or a stray encoding cannot garble the terminal.
std::string shown(std::string_view f) {
  std::string out;
  char buf[8];
  for (const char ch : f.substr(0, 40)) {
    const auto c = static_cast<unsigned char>(ch);
    if (c >= 0x20 && c < 0x7f) {
      out += ch;
    } else {
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
    }
  }
  return out + (f.size() > 40 ? "..." : "");
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

Table parse_csv(std::string_view text, const CsvOptions& o, const std::string& name,
                const std::function<void(std::size_t)>& done_with) {
  Table t;
  const char* const begin = text.data();
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // UTF-8 byte-order mark (Excel)
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) throw DataError(name + ": the file is empty");
  LineReader lines(text);
  std::string_view line;
  std::size_t line_no = 0;
  if (!lines.next(line, line_no)) throw DataError(name + ": no data rows (only comment lines)");
  const char delim = o.delimiter != 0 ? o.delimiter : detect_delimiter(line);
  std::vector<std::string_view> fields;
  std::string scratch;
  const auto split_line = [&] {
    if (const char* problem = split(line, delim, fields, scratch)) throw DataError(where(name, line_no) + problem);
  };
  split_line();
  const std::size_t n_fields = fields.size();

  const bool header = o.header == HeaderMode::present || (o.header == HeaderMode::detect && looks_like_header(fields));
  if (header) {
    for (std::string_view f : fields) t.column_names.emplace_back(f);
    t.named_columns = true;
  } else {
    t.column_names = default_column_names(n_fields);
  }
  std::vector<std::size_t> keep;
  if (o.columns.empty()) {
    for (std::size_t i = 0; i < n_fields; ++i) keep.push_back(i);
  } else {
    keep = resolve_columns(o.columns, n_fields, header ? &t.column_names : nullptr,
                           "the file has no header line to take names from (--header yes reads one)", name);
    std::vector<std::string> kept;
    for (std::size_t i : keep) kept.push_back(t.column_names[i]);
    t.column_names = kept;
  }
  t.cols = keep.size();

  // Past the first MiB, the values grow to the size that the bytes read so far project
  // for the whole text, not by doubling: a vector that doubles can hold twice the data at
  // its last step. (Before it, the sample would be too small to project from.)
  const auto grow = [&] {
    const auto read = static_cast<std::size_t>(line.data() + line.size() - text.data()) + 1;
    if (read < (std::size_t{1} << 20)) return;
    const double projected =
        static_cast<double>(t.values.size()) * static_cast<double>(text.size()) / static_cast<double>(read);
    t.values.reserve(static_cast<std::size_t>(projected * 1.02) + 64 * t.cols + 1024);
  };
  constexpr std::size_t kReleaseBytes = std::size_t{32} << 20;
  std::size_t released = 0;
  // Columns are numbered from 0 in every message, as --columns counts them.
  double v = 0.0;
  bool have_line = !header;  // without a header the first line is data
  while (have_line || lines.next(line, line_no)) {
    if (!have_line) split_line();
    have_line = false;
    if (t.values.size() + t.cols > t.values.capacity()) grow();
    if (done_with) {
      const auto offset = static_cast<std::size_t>(line.data() - begin);
      if (offset - released >= kReleaseBytes) done_with(released = offset);
    }
    if (fields.size() != n_fields)
      throw DataError(where(name, line_no) + fields_text(fields.size()) + " where the first line has " +
                      fields_text(n_fields) + " (ragged rows are not allowed)");
    for (std::size_t c : keep) {
      const std::string_view f = fields[c];
      if (!parse_number(f, &v)) {
        const std::string_view u = !f.empty() && (f[0] == '+' || f[0] == '-') ? f.substr(1) : f;
        const bool hex = u.size() > 2 && u[0] == '0' && (u[1] == 'x' || u[1] == 'X');
        // "5,1" from a locale that writes a decimal comma (with ';' between fields).
        std::string dotted(f);
        const auto comma = dotted.find(',');
        if (comma != std::string::npos) dotted[comma] = '.';
        const bool decimal_comma = comma != std::string::npos && parse_number(dotted, &v);
        throw DataError(where(name, line_no) + "column " + std::to_string(c) + " ('" + shown(f) +
                        "') is not a number" + (hex ? " (only decimal numbers are read)" : "") +
                        (decimal_comma ? " (a decimal comma? only a decimal point is read: write " + dotted + ")" : "") +
                        (o.columns.empty() ? "; choose numeric columns with --columns, 0-based" : ""));
      }
      // Here, where the file line is known: the fit's own check could only name the row.
      if (!std::isfinite(v))
        throw DataError(where(name, line_no) + (std::isnan(v) ? "NaN" : "Inf") + " at row " + std::to_string(t.rows) +
                        ", column " + std::to_string(c) + " (0-based, rows counting data lines only" +
                        (is_word(f) ? "" : "; '" + shown(f) + "' is beyond the float64 range") +
                        "); remove or impute non-finite values");
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
