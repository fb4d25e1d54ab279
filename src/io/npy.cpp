// NumPy .npy files. The layout (numpy/lib/format.py): the magic string "\x93NUMPY", a major
// and a minor version byte, the header length (2 bytes little-endian in version 1.0, 4 bytes
// in 2.0 and 3.0), the header -- a Python dict literal such as
//   {'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }
// padded with spaces and ended by '\n' -- then the array's bytes.
//
// Reading parses the header with a small parser for the Python literals numpy writes
// (dicts, tuples, lists, strings, integers, True/False/None), validates every field against
// the file's size with overflow-checked arithmetic, and only then allocates.
#include "io/npy.hpp"

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "cuem/errors.hpp"
#include "io/atomic_file.hpp"

namespace cuem::io {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr std::size_t kMagicSize = 6;
constexpr std::size_t kArrayAlign = 64;           // numpy's ARRAY_ALIGN
constexpr std::size_t kGrowthAxisMaxDigits = 21;  // numpy's GROWTH_AXIS_MAX_DIGITS
constexpr int kMaxNesting = 32;                   // deeper headers are not numpy's
// An empty array (a zero in its shape) has no data to bound its other extent; more columns
// than this in an empty array is taken as a corrupt header rather than allocating names.
constexpr std::size_t kMaxEmptyColumns = std::size_t{1} << 16;

constexpr std::size_t kNpos = std::numeric_limits<std::size_t>::max();

bool host_is_little_endian() {
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__)
  return __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__;
#else
  const std::uint16_t one = 1;
  unsigned char first = 0;
  std::memcpy(&first, &one, 1);
  return first == 1;
#endif
}

template <typename U>
U load_le(const unsigned char* p) {
  U v = 0;
  for (std::size_t i = 0; i < sizeof(U); ++i) v = static_cast<U>(v | static_cast<U>(static_cast<U>(p[i]) << (8 * i)));
  return v;
}

template <typename U>
void store_le(U v, char* p) {
  for (std::size_t i = 0; i < sizeof(U); ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

// ---- the header's Python literal --------------------------------------------------------

struct PyValue {
  enum class Kind { none, boolean, integer, string, tuple, list, dict };
  Kind kind = Kind::none;
  bool boolean = false;
  bool negative = false;      // integer < 0
  bool too_big = false;       // integer beyond 64 bits
  std::uint64_t integer = 0;  // magnitude
  std::string text;
  std::vector<PyValue> items;  // tuple and list; dict: key, value, key, value, ...
};

class HeaderParser {
 public:
  HeaderParser(const char* begin, std::size_t size, const std::string& name)
      : begin_(begin), p_(begin), end_(begin + size), name_(name) {}

  PyValue parse_document() {
    skip_space();
    PyValue v = parse_value(0);
    skip_space();
    if (p_ != end_) fail("unexpected text after the dict");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw DataError(name_ + ": the .npy header is malformed (" + what + " at byte " + std::to_string(p_ - begin_) +
                    " of the header); the file is corrupt or was not written by numpy.save -- save the array again "
                    "with numpy.save");
  }

  void skip_space() {
    while (p_ != end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r' || *p_ == '\f')) ++p_;
  }

  void expect(char c) {
    skip_space();
    if (p_ == end_ || *p_ != c) fail(std::string("expected '") + c + "'");
    ++p_;
  }

  PyValue parse_value(int depth) {
    if (depth > kMaxNesting) fail("nesting too deep");
    skip_space();
    if (p_ == end_) fail("unexpected end");
    const char c = *p_;
    if (c == '{') return parse_dict(depth);
    if (c == '(') return parse_tuple(depth);
    if (c == '[') return parse_list(depth);
    if (c == '\'' || c == '"') return parse_string();
    if ((c == 'u' || c == 'U') && p_ + 1 != end_ && (p_[1] == '\'' || p_[1] == '"')) {
      ++p_;  // a Python 2 unicode literal
      return parse_string();
    }
    if (c == '-' || c == '+' || (c >= '0' && c <= '9')) return parse_integer();
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_') return parse_name();
    fail(std::string("unexpected character '") + printable(c) + "'");
  }

  static std::string printable(char c) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) return std::string(1, c);
    static const char hex[] = "0123456789abcdef";
    return std::string("\\x") + hex[u >> 4] + hex[u & 15];
  }

  PyValue parse_dict(int depth) {
    ++p_;  // '{'
    PyValue v;
    v.kind = PyValue::Kind::dict;
    skip_space();
    while (p_ != end_ && *p_ != '}') {
      v.items.push_back(parse_value(depth + 1));
      expect(':');
      v.items.push_back(parse_value(depth + 1));
      skip_space();
      if (p_ != end_ && *p_ == ',') {
        ++p_;
        skip_space();
      } else if (p_ == end_ || *p_ != '}') {
        fail("expected ',' or '}'");
      }
    }
    expect('}');
    return v;
  }

  // "(x)" is x itself; "()", "(x,)" and "(x, y)" are tuples.
  PyValue parse_tuple(int depth) {
    ++p_;  // '('
    PyValue v;
    v.kind = PyValue::Kind::tuple;
    skip_space();
    if (p_ != end_ && *p_ == ')') {
      ++p_;
      return v;
    }
    PyValue first = parse_value(depth + 1);
    skip_space();
    if (p_ != end_ && *p_ == ')') {
      ++p_;
      return first;
    }
    v.items.push_back(std::move(first));
    parse_sequence_tail(&v, ')', depth);
    return v;
  }

  PyValue parse_list(int depth) {
    ++p_;  // '['
    PyValue v;
    v.kind = PyValue::Kind::list;
    skip_space();
    if (p_ != end_ && *p_ == ']') {
      ++p_;
      return v;
    }
    v.items.push_back(parse_value(depth + 1));
    parse_sequence_tail(&v, ']', depth);
    return v;
  }

  // After the first item: (',' item)* ','? close
  void parse_sequence_tail(PyValue* v, char close, int depth) {
    while (true) {
      skip_space();
      if (p_ != end_ && *p_ == close) {
        ++p_;
        return;
      }
      expect(',');
      skip_space();
      if (p_ != end_ && *p_ == close) {
        ++p_;
        return;
      }
      v->items.push_back(parse_value(depth + 1));
    }
  }

  PyValue parse_string() {
    const char quote = *p_++;
    PyValue v;
    v.kind = PyValue::Kind::string;
    while (true) {
      if (p_ == end_ || *p_ == '\n') fail("unterminated string");
      const char c = *p_++;
      if (c == quote) break;
      if (c == '\\') {
        if (p_ == end_) fail("unterminated string");
        const char e = *p_++;
        switch (e) {
          case 'n':
            v.text += '\n';
            break;
          case 't':
            v.text += '\t';
            break;
          case 'r':
            v.text += '\r';
            break;
          case '0':
            v.text += '\0';
            break;
          default:
            v.text += e;
            break;  // \\ \' \" and anything else: the character
        }
      } else {
        v.text += c;
      }
    }
    return v;
  }

  PyValue parse_integer() {
    PyValue v;
    v.kind = PyValue::Kind::integer;
    if (*p_ == '-' || *p_ == '+') v.negative = *p_++ == '-';
    if (p_ == end_ || *p_ < '0' || *p_ > '9') fail("expected a digit");
    while (p_ != end_ && *p_ >= '0' && *p_ <= '9') {
      const auto digit = static_cast<std::uint64_t>(*p_++ - '0');
      if (__builtin_mul_overflow(v.integer, std::uint64_t{10}, &v.integer) ||
          __builtin_add_overflow(v.integer, digit, &v.integer))
        v.too_big = true;
    }
    if (p_ != end_ && (*p_ == 'L' || *p_ == 'l')) ++p_;  // Python 2 long suffix
    if (v.integer == 0) v.negative = false;
    if (p_ != end_ && (*p_ == '.' || *p_ == 'e' || *p_ == 'E' || *p_ == 'x' || *p_ == 'j' || *p_ == '_'))
      fail("expected an integer");
    return v;
  }

  PyValue parse_name() {
    const char* start = p_;
    while (p_ != end_ &&
           ((*p_ >= 'A' && *p_ <= 'Z') || (*p_ >= 'a' && *p_ <= 'z') || (*p_ >= '0' && *p_ <= '9') || *p_ == '_'))
      ++p_;
    const std::string word(start, p_);
    PyValue v;
    if (word == "True" || word == "False") {
      v.kind = PyValue::Kind::boolean;
      v.boolean = word == "True";
    } else if (word == "None") {
      v.kind = PyValue::Kind::none;
    } else {
      p_ = start;
      fail("unexpected name '" + word.substr(0, 40) + "'");
    }
    return v;
  }

  const char* begin_;
  const char* p_;
  const char* end_;
  const std::string& name_;
};

// ---- dtypes -----------------------------------------------------------------------------

enum class Kind { float_, signed_int, unsigned_int, boolean };

struct Dtype {
  Kind kind = Kind::float_;
  std::size_t size = 8;
  std::string descr;  // as written in the file, for messages
  std::string name;   // numpy's name: float64, int32, bool, ...
};

std::string quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s.substr(0, 60)) {
    const auto u = static_cast<unsigned char>(c);
    out += u >= 0x20 && u < 0x7f ? std::string(1, c) : "?";
  }
  return out + (s.size() > 60 ? "...'" : "'");
}

[[noreturn]] void dtype_error(const std::string& name, const std::string& what) { throw DataError(name + ": " + what); }

Dtype parse_descr(const std::string& descr, const std::string& name) {
  Dtype d;
  d.descr = descr;
  const std::string q = quoted(descr);
  std::size_t pos = 0;
  char order = '=';
  if (!descr.empty() && (descr[0] == '<' || descr[0] == '>' || descr[0] == '|' || descr[0] == '='))
    order = descr[pos++];
  if (pos >= descr.size())
    dtype_error(name, "the .npy header has an invalid dtype " + q + "; save the array again with numpy.save");
  const char kind = descr[pos++];
  const std::string rest = descr.substr(pos);
  const std::string to_number = "convert the array to numbers first, e.g. arr.astype(np.float64), and save it again";
  switch (kind) {
    case 'O':
      dtype_error(name, "the array holds Python objects (dtype " + q + "), not numbers: " + to_number);
    case 'U':
    case 'S':
    case 'a':
      dtype_error(name, "the array holds strings (dtype " + q + "), not numbers: " + to_number);
    case 'c':
      dtype_error(
          name,
          "the array holds complex numbers (dtype " + q +
              "): save the real and imaginary parts as separate features, e.g. np.column_stack([arr.real, arr.imag])");
    case 'M':
    case 'm':
      dtype_error(name, "the array holds dates or time spans (dtype " + q +
                            "), not numbers: convert them to numbers first, e.g. "
                            "arr.astype(np.int64).astype(np.float64), and save again");
    case 'V':
      dtype_error(name, "the array has a structured or raw-bytes dtype (" + q +
                            "): convert it to a plain numeric array, e.g. "
                            "numpy.lib.recfunctions.structured_to_unstructured(arr).astype(np.float64)");
    default:
      break;
  }
  std::size_t size = 0;
  if (rest.empty() || rest.size() > 2 || rest.find_first_not_of("0123456789") != std::string::npos)
    dtype_error(name, "the .npy header has an unsupported dtype " + q +
                          "; save float64 or float32 data, e.g. arr.astype('<f8')");
  size = static_cast<std::size_t>(std::stoi(rest));
  d.size = size;
  switch (kind) {
    case 'f':
      d.kind = Kind::float_;
      if (size == 12 || size == 16)
        dtype_error(name, "the array holds extended-precision floats (dtype " + q +
                              "): convert with arr.astype('<f8') and save again");
      if (size != 2 && size != 4 && size != 8) dtype_error(name, "unsupported float dtype " + q);
      d.name = "float" + std::to_string(size * 8);
      break;
    case 'i':
    case 'u':
      d.kind = kind == 'i' ? Kind::signed_int : Kind::unsigned_int;
      if (size != 1 && size != 2 && size != 4 && size != 8)
        dtype_error(name, "unsupported integer dtype " + q + "; convert with arr.astype('<f8') and save again");
      d.name = std::string(kind == 'i' ? "int" : "uint") + std::to_string(size * 8);
      break;
    case 'b':
      d.kind = Kind::boolean;
      if (size != 1) dtype_error(name, "unsupported boolean dtype " + q);
      d.name = "bool";
      break;
    default:
      dtype_error(name, "the .npy header has an unsupported dtype " + q +
                            "; save float64 or float32 data, e.g. arr.astype('<f8')");
  }
  // '=' is the writer's native order; every host cuem runs on is little-endian.
  const bool big = order == '>' || (order == '=' && !host_is_little_endian());
  if (big && size > 1) {
    std::string little = descr;
    little[0] = '<';
    dtype_error(name, "the array is big-endian " + d.name + " (" + q + "): convert it with arr.astype('" + little +
                          "') and save again");
  }
  return d;
}

// ---- conversion -------------------------------------------------------------------------

double half_to_double(std::uint16_t h) {
  const int sign = h >> 15;
  const int exponent = (h >> 10) & 0x1f;
  const int mantissa = h & 0x3ff;
  double v = 0;
  if (exponent == 0)
    v = std::ldexp(mantissa, -24);  // zero and subnormals
  else if (exponent == 31)
    v = mantissa == 0 ? std::numeric_limits<double>::infinity() : std::numeric_limits<double>::quiet_NaN();
  else
    v = std::ldexp(mantissa + 1024, exponent - 25);
  return sign ? -v : v;
}

// Copies n = rows * cols items into row-major dst; `fortran` items are column-major.
template <typename Decode>
void copy_items(const unsigned char* src, std::size_t itemsize, std::size_t rows, std::size_t cols, bool fortran,
                double* dst, Decode decode) {
  const std::size_t n = rows * cols;
  if (!fortran || rows == 1 || cols == 1) {
    for (std::size_t i = 0; i < n; ++i) dst[i] = decode(src + i * itemsize);
    return;
  }
  // Transpose in blocks of rows so that the writes stay within a few cache lines.
  constexpr std::size_t kBlock = 64;
  for (std::size_t r0 = 0; r0 < rows; r0 += kBlock) {
    const std::size_t r1 = r0 + kBlock < rows ? r0 + kBlock : rows;
    for (std::size_t c = 0; c < cols; ++c)
      for (std::size_t r = r0; r < r1; ++r) dst[r * cols + c] = decode(src + (c * rows + r) * itemsize);
  }
}

// Decodes the items; returns true when some 64-bit integer had no exact float64 (beyond 2^53).
bool convert(const unsigned char* src, const Dtype& d, std::size_t rows, std::size_t cols, bool fortran, double* dst) {
  bool rounded = false;
  switch (d.kind) {
    case Kind::float_:
      if (d.size == 8) {
        if (host_is_little_endian() && !(fortran && rows > 1 && cols > 1)) {
          std::memcpy(dst, src, rows * cols * 8);
          return false;
        }
        copy_items(src, 8, rows, cols, fortran, dst, [](const unsigned char* p) {
          const auto bits = load_le<std::uint64_t>(p);
          double v;
          std::memcpy(&v, &bits, 8);
          return v;
        });
      } else if (d.size == 4) {
        copy_items(src, 4, rows, cols, fortran, dst, [](const unsigned char* p) {
          const auto bits = load_le<std::uint32_t>(p);
          float v;
          std::memcpy(&v, &bits, 4);
          return static_cast<double>(v);
        });
      } else {
        copy_items(src, 2, rows, cols, fortran, dst,
                   [](const unsigned char* p) { return half_to_double(load_le<std::uint16_t>(p)); });
      }
      break;
    case Kind::boolean:
      copy_items(src, 1, rows, cols, fortran, dst, [](const unsigned char* p) { return *p != 0 ? 1.0 : 0.0; });
      break;
    case Kind::unsigned_int:
      switch (d.size) {
        case 1:
          copy_items(src, 1, rows, cols, fortran, dst, [](const unsigned char* p) { return double(*p); });
          break;
        case 2:
          copy_items(src, 2, rows, cols, fortran, dst,
                     [](const unsigned char* p) { return double(load_le<std::uint16_t>(p)); });
          break;
        case 4:
          copy_items(src, 4, rows, cols, fortran, dst,
                     [](const unsigned char* p) { return double(load_le<std::uint32_t>(p)); });
          break;
        default:
          copy_items(src, 8, rows, cols, fortran, dst, [&rounded](const unsigned char* p) {
            const auto v = load_le<std::uint64_t>(p);
            const double x = double(v);
            if (x >= 18446744073709551616.0 || static_cast<std::uint64_t>(x) != v) rounded = true;  // 2^64
            return x;
          });
          break;
      }
      break;
    case Kind::signed_int:
      switch (d.size) {
        case 1:
          copy_items(src, 1, rows, cols, fortran, dst,
                     [](const unsigned char* p) { return double(static_cast<std::int8_t>(*p)); });
          break;
        case 2:
          copy_items(src, 2, rows, cols, fortran, dst, [](const unsigned char* p) {
            return double(static_cast<std::int16_t>(load_le<std::uint16_t>(p)));
          });
          break;
        case 4:
          copy_items(src, 4, rows, cols, fortran, dst, [](const unsigned char* p) {
            return double(static_cast<std::int32_t>(load_le<std::uint32_t>(p)));
          });
          break;
        default:
          copy_items(src, 8, rows, cols, fortran, dst, [&rounded](const unsigned char* p) {
            const auto v = static_cast<std::int64_t>(load_le<std::uint64_t>(p));
            const double x = double(v);
            if (x >= 9223372036854775808.0 || static_cast<std::int64_t>(x) != v) rounded = true;  // 2^63
            return x;
          });
          break;
      }
      break;
  }
  return rounded;
}

std::string shape_text(const std::vector<std::uint64_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

// ---- writing ----------------------------------------------------------------------------

// numpy.save's version 1.0 header for a C-order array: the dict, spare spaces for growing
// the first axis in place, then spaces and '\n' so that the data starts on a 64-byte
// boundary.
std::string npy_header(const char* descr, std::size_t rows, std::size_t cols) {
  std::string dict = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': (" +
                     std::to_string(rows) + (cols == 0 ? ",)" : ", " + std::to_string(cols) + ")") + ", }";
  dict.append(kGrowthAxisMaxDigits - std::to_string(rows).size(), ' ');
  const std::size_t hlen = dict.size() + 1;
  const std::size_t pad = kArrayAlign - (kMagicSize + 2 + 2 + hlen) % kArrayAlign;
  const std::size_t total = hlen + pad;  // < 200, fits the 2-byte length of version 1.0
  std::string out(kMagic, kMagicSize);
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(total & 0xff);
  out += static_cast<char>(total >> 8);
  out += dict;
  out.append(pad, ' ');
  out += '\n';
  return out;
}

std::size_t item_count(std::size_t rows, std::size_t cols) {
  std::size_t n = 0;
  if (__builtin_mul_overflow(rows, cols == 0 ? std::size_t{1} : cols, &n) || n > kNpos / 8)
    throw InvalidArgument("an array of " + std::to_string(rows) + " x " + std::to_string(cols) +
                          " values is too large to write");
  return n;
}

template <typename T, typename U>
void append_bits(std::string& out, const T* values, std::size_t n) {
  static_assert(sizeof(T) == sizeof(U), "bit pattern type");
  const std::size_t offset = out.size();
  out.resize(offset + n * sizeof(T));
  for (std::size_t i = 0; i < n; ++i) {
    U bits;
    std::memcpy(&bits, &values[i], sizeof(T));
    store_le(bits, &out[offset + i * sizeof(T)]);
  }
}

template <typename T, typename U>
std::string npy_bytes(const char* descr, const T* values, std::size_t rows, std::size_t cols) {
  const std::size_t n = item_count(rows, cols);
  std::string out = npy_header(descr, rows, cols);
  append_bits<T, U>(out, values, n);
  return out;
}

template <typename T, typename U>
void write_npy_file(const std::string& path, const char* descr, const T* values, std::size_t rows, std::size_t cols) {
  const std::size_t n = item_count(rows, cols);
  AtomicFile file(path);
  file.write(npy_header(descr, rows, cols));
  if (host_is_little_endian()) {
    if (n > 0) file.write(values, n * sizeof(T));
  } else {
    constexpr std::size_t kChunk = 8192;
    std::string buf;
    for (std::size_t i0 = 0; i0 < n; i0 += kChunk) {
      const std::size_t i1 = i0 + kChunk < n ? i0 + kChunk : n;
      buf.resize((i1 - i0) * sizeof(T));
      for (std::size_t i = i0; i < i1; ++i) {
        U bits;
        std::memcpy(&bits, &values[i], sizeof(T));
        store_le(bits, &buf[(i - i0) * sizeof(T)]);
      }
      file.write(buf);
    }
  }
  file.commit();
}

}  // namespace

Table parse_npy(const unsigned char* data, std::size_t size, const std::string& name,
                std::shared_ptr<const void> keep) {
  const std::string resave = "; save the array again with numpy.save";
  if (size == 0) throw DataError(name + ": the file is empty (0 bytes); expected a .npy file");
  const std::size_t magic_seen = size < kMagicSize ? size : kMagicSize;
  if (std::memcmp(data, kMagic, magic_seen) != 0)
    throw DataError(name +
                    ": not a .npy file (it does not start with the magic string \"\\x93NUMPY\"); a .npy file is "
                    "written by numpy.save, text data belongs in a .csv file");
  if (size < kMagicSize + 2) throw DataError(name + ": the .npy file is truncated within its preamble" + resave);
  const unsigned major = data[6];
  const unsigned minor = data[7];
  if ((major != 1 && major != 2 && major != 3) || minor != 0)
    throw DataError(name + ": unsupported .npy format version " + std::to_string(major) + "." + std::to_string(minor) +
                    " (cuem reads 1.0, 2.0 and 3.0)" + resave);
  const std::size_t length_bytes = major == 1 ? 2 : 4;
  const std::size_t header_start = kMagicSize + 2 + length_bytes;
  if (size < header_start) throw DataError(name + ": the .npy file is truncated within its preamble" + resave);
  const std::size_t header_len =
      major == 1 ? load_le<std::uint16_t>(data + 8) : static_cast<std::size_t>(load_le<std::uint32_t>(data + 8));
  if (header_len > size - header_start)
    throw DataError(name + ": the .npy header claims " + std::to_string(header_len) + " bytes but only " +
                    std::to_string(size - header_start) + " follow; the file is truncated or corrupt" + resave);
  const std::size_t data_start = header_start + header_len;

  HeaderParser parser(reinterpret_cast<const char*>(data + header_start), header_len, name);
  const PyValue dict = parser.parse_document();
  const std::string bad_header = name + ": the .npy header ";
  if (dict.kind != PyValue::Kind::dict) throw DataError(bad_header + "is not a dict" + resave);

  const PyValue* descr = nullptr;
  const PyValue* fortran = nullptr;
  const PyValue* shape = nullptr;
  for (std::size_t i = 0; i + 1 < dict.items.size(); i += 2) {
    const PyValue& key = dict.items[i];
    if (key.kind != PyValue::Kind::string) throw DataError(bad_header + "has a key that is not a string" + resave);
    const PyValue** slot = key.text == "descr"           ? &descr
                           : key.text == "fortran_order" ? &fortran
                           : key.text == "shape"         ? &shape
                                                         : nullptr;
    if (slot == nullptr)
      throw DataError(bad_header + "has an unexpected key " + quoted(key.text) +
                      " (expected 'descr', 'fortran_order' and 'shape')" + resave);
    if (*slot != nullptr) throw DataError(bad_header + "repeats the key " + quoted(key.text) + resave);
    *slot = &dict.items[i + 1];
  }
  if (!descr || !fortran || !shape)
    throw DataError(bad_header + "lacks the key '" +
                    std::string(!descr     ? "descr"
                                : !fortran ? "fortran_order"
                                           : "shape") +
                    "'" + resave);

  if (fortran->kind != PyValue::Kind::boolean)
    throw DataError(bad_header + "has a 'fortran_order' that is not True or False" + resave);
  if (shape->kind != PyValue::Kind::tuple) throw DataError(bad_header + "has a 'shape' that is not a tuple" + resave);
  std::vector<std::uint64_t> dims;
  for (const PyValue& v : shape->items) {
    if (v.kind != PyValue::Kind::integer || v.negative || v.too_big)
      throw DataError(bad_header + "has an invalid 'shape' (every extent must be a non-negative integer)" + resave);
    dims.push_back(v.integer);
  }
  // The dtype first: an object or string array is best explained by its dtype, whatever
  // its shape.
  if (descr->kind == PyValue::Kind::list)
    throw DataError(name +
                    ": the array has a structured dtype (record fields): convert it to a plain numeric array, e.g. "
                    "numpy.lib.recfunctions.structured_to_unstructured(arr).astype(np.float64)");
  if (descr->kind != PyValue::Kind::string) throw DataError(bad_header + "has a 'descr' that is not a string" + resave);
  const Dtype dtype = parse_descr(descr->text, name);

  if (dims.empty())
    throw DataError(name +
                    ": the array is 0-dimensional (a single value); cuem needs a 1-D array of N values or a 2-D array "
                    "of N points x D features");
  if (dims.size() > 2)
    throw DataError(name + ": the array has " + std::to_string(dims.size()) + " dimensions, shape " + shape_text(dims) +
                    "; cuem needs N points x D features: reshape it, e.g. arr.reshape(len(arr), -1)");
  const std::uint64_t rows64 = dims[0];
  const std::uint64_t cols64 = dims.size() == 2 ? dims[1] : 1;
  std::uint64_t count = 0;
  std::uint64_t bytes = 0;
  if (__builtin_mul_overflow(rows64, cols64, &count) ||
      __builtin_mul_overflow(count, std::uint64_t{dtype.size}, &bytes) || rows64 > kNpos || cols64 > kNpos)
    throw DataError(name + ": the .npy shape " + shape_text(dims) + " is absurdly large; the header is corrupt" +
                    resave);
  const std::size_t available = size - data_start;
  if (bytes > available)
    throw DataError(name + ": the .npy data is truncated: shape " + shape_text(dims) + " of " + dtype.name + " needs " +
                    std::to_string(bytes) + " bytes but only " + std::to_string(available) + " follow the header" +
                    resave);
  if (bytes < available)
    throw DataError(name + ": " + std::to_string(available - bytes) + " unexpected bytes follow the data of shape " +
                    shape_text(dims) + " of " + dtype.name +
                    "; the file is corrupt or holds several arrays -- save one array per file with numpy.save");
  if (count == 0 && cols64 > kMaxEmptyColumns)
    throw DataError(name + ": the .npy shape " + shape_text(dims) +
                    " is empty and claims an implausible number of columns; the header is corrupt" + resave);

  Table t;
  t.rows = static_cast<std::size_t>(rows64);
  t.cols = static_cast<std::size_t>(cols64);
  t.column_names = default_column_names(t.cols);
  // Rows of float64 or float32 already, aligned: read them where they lie.
  const unsigned char* first = data + data_start;
  const bool row_major = !fortran->boolean || t.cols == 1 || t.rows <= 1;
  if (keep && count > 0 && dtype.kind == Kind::float_ && (dtype.size == 8 || dtype.size == 4) && row_major &&
      reinterpret_cast<std::uintptr_t>(first) % dtype.size == 0) {
    t.in_place = dtype.size == 8 ? DataView(reinterpret_cast<const double*>(first), t.rows, t.cols)
                                 : DataView(reinterpret_cast<const float*>(first), t.rows, t.cols);
    t.storage = std::move(keep);
    return t;
  }
  t.values.resize(static_cast<std::size_t>(count));
  if (count > 0) {
    const bool rounded = convert(data + data_start, dtype, t.rows, t.cols, fortran->boolean, t.values.data());
    if (!(dtype.kind == Kind::float_ && dtype.size >= 4)) {
      std::string notice = dtype.name + " values converted to float64";
      if (dtype.kind == Kind::boolean) notice += " (False = 0, True = 1)";
      if (rounded) notice += "; some beyond 2^53 in magnitude were rounded";
      t.notices.push_back(notice);
    }
  }
  return t;
}

Table read_npy(const std::string& path) {
  const std::string bytes = read_file_bytes(path);
  return parse_npy(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), path);
}

std::string npy_bytes_f64(const double* values, std::size_t rows, std::size_t cols) {
  return npy_bytes<double, std::uint64_t>("<f8", values, rows, cols);
}

std::string npy_bytes_i64(const std::int64_t* values, std::size_t rows, std::size_t cols) {
  return npy_bytes<std::int64_t, std::uint64_t>("<i8", values, rows, cols);
}

std::string npy_header_bytes(const char* descr, std::size_t rows, std::size_t cols) {
  return npy_header(descr, rows, cols);
}

void append_le(std::string& out, const double* values, std::size_t n) { append_bits<double, std::uint64_t>(out, values, n); }
void append_le(std::string& out, const float* values, std::size_t n) { append_bits<float, std::uint32_t>(out, values, n); }
void append_le(std::string& out, const std::int64_t* values, std::size_t n) {
  append_bits<std::int64_t, std::uint64_t>(out, values, n);
}

void write_npy(const std::string& path, const double* values, std::size_t rows, std::size_t cols) {
  write_npy_file<double, std::uint64_t>(path, "<f8", values, rows, cols);
}

void write_npy(const std::string& path, const std::int64_t* values, std::size_t rows, std::size_t cols) {
  write_npy_file<std::int64_t, std::uint64_t>(path, "<i8", values, rows, cols);
}

}  // namespace cuem::io
