#include "io/csv.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
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

// A missing value where they are allowed: an empty field, NA, N/A, or NaN in any case
// (signed or not, as pandas writes -nan); any of them is read as NaN.
bool is_missing_token(std::string_view s) {
  if (s.empty() || iequals(s, "na") || iequals(s, "n/a")) return true;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) s.remove_prefix(1);
  return iequals(s, "nan");
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

// Whether a line (its '\n' removed) holds data or a header; blank and '#' lines do not.
// Removes a trailing '\r' (CRLF files).
bool content_line(std::string_view& line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  // A stray '\r' counts as blank, as it does in the whole text's emptiness test.
  return line.find_first_not_of(" \t\r") != std::string_view::npos && line.front() != '#';
}

// The first line is a header when none of its fields is a number: a line that mixes
// numbers and text (such as "1,NA" or "5.1,3.5,setosa") is data, and a bad field in it is
// reported rather than silently dropped with the line. Where missing values are allowed,
// a line of nothing but missing values (",," or "NA,NA") is data too: a row with every
// entry missing.
bool looks_like_header(const std::vector<std::string_view>& first, bool missing) {
  double v = 0.0;
  bool all_missing = missing;
  for (std::string_view f : first) {
    if (parse_number(f, &v)) return false;
    all_missing = all_missing && is_missing_token(f);
  }
  return !all_missing;
}

std::string fields_text(std::size_t n) { return std::to_string(n) + (n == 1 ? " field" : " fields"); }

bool all_blank(std::string_view s) { return s.find_first_not_of(" \t\r\n") == std::string_view::npos; }

// Takes the content lines of a text one at a time, in order: the first decides the
// delimiter, the header and the columns; every later one is a row.
class Parser {
 public:
  /// `total_bytes`: the whole text's size where it is known (0 where it streams in).
  Parser(const CsvOptions& o, const std::string& name, std::size_t total_bytes)
      : o_(o), name_(name), total_bytes_(total_bytes) {}

  /// The text's next line, its '\n' removed; `read` bytes of the text lie before its end.
  void take(std::string_view text_line, std::size_t read) {
    ++line_no_;
    blank_ = blank_ && all_blank(text_line);
    if (content_line(text_line)) line(text_line, line_no_, read);
  }

  /// The table; DataError when the text held no data row.
  Table finish() {
    if (blank_) throw DataError(name_ + ": the file is empty");
    if (first_) throw DataError(name_ + ": no data rows (only comment lines)");
    if (t_.rows == 0) throw DataError(name_ + ": no data rows (only a header line)");
    return std::move(t_);
  }

 private:
  // One content line with its file line number.
  void line(std::string_view line, std::size_t line_no, std::size_t read) {
    if (first_ && o_.delimiter == 0) delim_ = detect_delimiter(line);
    if (const char* problem = split(line, delim_, fields_, scratch_)) throw DataError(where(name_, line_no) + problem);
    if (first_) {
      first_ = false;
      if (!start()) return;  // a header
    }
    if (fields_.size() != n_fields_)
      throw DataError(where(name_, line_no) + fields_text(fields_.size()) + " where the first line has " +
                      fields_text(n_fields_) + " (ragged rows are not allowed)");
    if (t_.values.size() + t_.cols > t_.values.capacity()) grow(read);
    double v = 0.0;
    // Columns are numbered from 0 in every message, as --columns counts them.
    for (std::size_t c : keep_) {
      const std::string_view f = fields_[c];
      if (o_.missing && is_missing_token(f)) {
        t_.values.push_back(std::numeric_limits<double>::quiet_NaN());
        continue;
      }
      if (!parse_number(f, &v)) not_a_number(f, c, line_no);
      // Here, where the file line is known: the fit's own check could only name the row.
      if (!std::isfinite(v))
        throw DataError(where(name_, line_no) + (std::isnan(v) ? "NaN" : "Inf") + " at row " +
                        std::to_string(t_.rows) + ", column " + std::to_string(c) +
                        " (0-based, rows counting data lines only" +
                        (is_word(f) ? "" : "; '" + shown(f) + "' is beyond the float64 range") +
                        "); remove or impute non-finite values" +
                        (std::isnan(v) && o_.suggest_missing ? ", or read NaN as missing with --missing marginalize"
                                                              : ""));
      t_.values.push_back(v);
    }
    ++t_.rows;
  }

  // The first line: the delimiter, whether it is a header, the columns to keep. Returns
  // whether the line is data.
  bool start() {
    n_fields_ = fields_.size();
    const bool header =
        o_.header == HeaderMode::present || (o_.header == HeaderMode::detect && looks_like_header(fields_, o_.missing));
    if (header) {
      for (std::string_view f : fields_) t_.column_names.emplace_back(f);
      t_.named_columns = true;
    } else {
      t_.column_names = default_column_names(n_fields_);
    }
    if (o_.columns.empty()) {
      for (std::size_t i = 0; i < n_fields_; ++i) keep_.push_back(i);
    } else {
      keep_ = resolve_columns(o_.columns, n_fields_, header ? &t_.column_names : nullptr,
                              "the file has no header line to take names from (--header yes reads one)", name_);
      std::vector<std::string> kept;
      for (std::size_t i : keep_) kept.push_back(t_.column_names[i]);
      t_.column_names = kept;
    }
    t_.cols = keep_.size();
    return !header;
  }

  // Past the first MiB of a text of known size, the values grow to the size that the bytes
  // read so far project for the whole, not by doubling: a vector that doubles can hold
  // twice the data at its last step. (Before it, the sample is too small to project from;
  // a stream's size is unknown, and it grows as vectors do.)
  void grow(std::size_t read) {
    if (total_bytes_ == 0 || read < (std::size_t{1} << 20)) return;
    const double projected =
        static_cast<double>(t_.values.size()) * static_cast<double>(total_bytes_) / static_cast<double>(read);
    // Every value takes at least two bytes of text (a digit and a separator): a bound
    // however odd the text (one 200 MB line of CR-separated rows, say).
    const std::size_t most = total_bytes_ / 2 + t_.cols;
    t_.values.reserve(std::min(most, static_cast<std::size_t>(projected * 1.02) + 64 * t_.cols + 1024));
  }

  [[noreturn]] void not_a_number(std::string_view f, std::size_t c, std::size_t line_no) const {
    const std::string_view u = !f.empty() && (f[0] == '+' || f[0] == '-') ? f.substr(1) : f;
    const bool hex = u.size() > 2 && u[0] == '0' && (u[1] == 'x' || u[1] == 'X');
    // "5,1" from a locale that writes a decimal comma (with ';' between fields).
    std::string dotted(f);
    const auto comma = dotted.find(',');
    if (comma != std::string::npos) dotted[comma] = '.';
    double v = 0.0;
    // Only where commas do not separate fields: ';' and tab files of such locales.
    const bool decimal_comma = (delim_ == ';' || delim_ == '\t') && comma != std::string::npos &&
                               parse_number(dotted, &v);
    throw DataError(where(name_, line_no) + "column " + std::to_string(c) + " ('" + shown(f) + "') is not a number" +
                    (hex ? " (only decimal numbers are read)" : "") +
                    (decimal_comma ? " (a decimal comma? only a decimal point is read: write " + dotted + ")" : "") +
                    (o_.suggest_missing && is_missing_token(f)
                         ? "; a missing value? --missing marginalize reads empty fields, NA and NaN as missing"
                         : o_.columns.empty() ? "; choose numeric columns with --columns, 0-based"
                                              : ""));
  }

  const CsvOptions& o_;
  const std::string& name_;
  const std::size_t total_bytes_;
  Table t_;
  std::size_t line_no_ = 0;
  bool blank_ = true;  // only white space so far
  bool first_ = true;
  char delim_ = o_.delimiter;
  std::size_t n_fields_ = 0;
  std::vector<std::size_t> keep_;
  std::vector<std::string_view> fields_;
  std::string scratch_;
};

// Gives `parser` the lines of `text` that a '\n' ends, and where `last`, the rest too; a
// '\n' is looked for from `scan` on (the text before it holds none). `base`: bytes of the
// whole text before `text`. `after` is called with each line's start once the parser has
// it. Returns the bytes given.
template <typename After>
std::size_t feed_lines(Parser& parser, std::string_view text, std::size_t scan, std::size_t base, bool last,
                       After&& after) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t eol = text.find('\n', std::max(pos, scan));
    if (eol == std::string_view::npos) {
      if (!last) break;
      eol = text.size();
    }
    parser.take(text.substr(pos, eol - pos), base + eol);
    after(pos);
    pos = eol + 1;
  }
  return std::min(pos, text.size());
}

constexpr std::string_view kByteOrderMark = "\xEF\xBB\xBF";  // UTF-8's, as Excel writes it

}  // namespace

Table parse_csv(std::string_view text, const CsvOptions& o, const std::string& name,
                const std::function<void(std::size_t)>& done_with) {
  const std::size_t bom = text.substr(0, 3) == kByteOrderMark ? 3 : 0;
  text.remove_prefix(bom);
  Parser parser(o, name, text.size());
  constexpr std::size_t kReleaseBytes = std::size_t{32} << 20;
  std::size_t released = 0;
  feed_lines(parser, text, 0, 0, true, [&](std::size_t start) {
    const std::size_t offset = bom + start;  // the parsed line's start in the caller's text
    if (done_with && offset - released >= kReleaseBytes) done_with(released = offset);
  });
  return parser.finish();
}

Table parse_csv_stream(std::FILE* in, std::string head, const CsvOptions& o, const std::string& name,
                       std::size_t chunk_bytes) {
  Parser parser(o, name, 0);
  bool bom_checked = false;
  std::string pending = std::move(head);  // bytes whose line has not ended yet
  std::size_t read = 0, scanned = 0;      // scanned: bytes of `pending` known to hold no '\n'
  std::vector<char> chunk(std::max<std::size_t>(chunk_bytes, 1));
  for (bool more = true; more;) {
    const std::size_t n = std::fread(chunk.data(), 1, chunk.size(), in);
    if (n < chunk.size()) {
      if (std::ferror(in)) throw DataError("error reading " + name + ": " + std::strerror(errno));
      more = false;
    }
    pending.append(chunk.data(), n);
    if (!bom_checked && (pending.size() >= 3 || !more)) {
      bom_checked = true;
      if (std::string_view(pending).substr(0, 3) == kByteOrderMark) pending.erase(0, 3);
    }
    if (!bom_checked) continue;
    const std::size_t used = feed_lines(parser, pending, scanned, read, !more, [](std::size_t) {});
    read += used;
    pending.erase(0, used);
    scanned = pending.size();
  }
  return parser.finish();
}

Table read_csv(const std::string& path, const CsvOptions& o) {
  return parse_csv(read_file_bytes(path), o, path);
}

}  // namespace cuem::io
