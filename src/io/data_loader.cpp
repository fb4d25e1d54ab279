#include "io/data_loader.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "cuem/errors.hpp"
#include "io/input_changed.hpp"
#include "io/mapped_file.hpp"
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

bool text_name(const std::string& path) {
  return ends_with(path, ".csv") || ends_with(path, ".tsv") || ends_with(path, ".txt");
}

bool raw_name(const std::string& path) {
  return ends_with(path, ".bin") || ends_with(path, ".raw") || ends_with(path, ".f32") || ends_with(path, ".f64");
}

bool npy_signature(const std::string& bytes) { return bytes.compare(0, 6, "\x93NUMPY") == 0; }

// Files that users hand over by mistake, told by their signatures, so that the message
// names what the file is instead of quoting its bytes as a text line. Signatures that
// no data text starts with (control bytes or bytes past ASCII; bzip2's printable "BZh"
// only with its binary block magic after it). Not for raw binary, which may start with
// any bytes.
std::string foreign_format(const std::string& head, const std::string& path) {
  const auto starts = [&](const char* sig, std::size_t n) { return head.compare(0, n, sig, n) == 0; };
  const std::string shown = is_stdin_name(path) ? "FILE" : path;
  if (starts("\x1f\x8b", 2))
    return "gzip-compressed: decompress it first (gunzip -k " + shown + "), or pipe it in (gunzip -c " + shown +
           " | cuem ... -)";
  if (starts("\xfd" "7zXZ\x00", 6)) return "xz-compressed: decompress it first (unxz -k " + shown + ")";
  if (starts("\x28\xb5\x2f\xfd", 4)) return "zstd-compressed: decompress it first (unzstd " + shown + ")";
  if (starts("BZh", 3) && head.size() >= 10 && head.compare(4, 6, "\x31\x41\x59\x26\x53\x59") == 0)
    return "bzip2-compressed: decompress it first (bunzip2 -k " + shown + ")";
  if (starts("PK\x03\x04", 4))
    return "a zip archive (as .npz and .xlsx files are): save the array itself with numpy.save (.npy), or the "
           "sheet as CSV";
  if (starts("\x89HDF\r\n\x1a\n", 8)) return "an HDF5 file: write the array out as .npy (numpy.save) or CSV";
  if (starts("\xd0\xcf\x11\xe0", 4)) return "an OLE document (an .xls workbook?): save the sheet as CSV";
  if (starts("\xff\xfe", 2) || starts("\xfe\xff", 2)) return "UTF-16 text: save it as UTF-8 (or ASCII) text";
  return "";
}

// Binary formats carry their own layout: options that would change it are mistakes, not
// something to ignore silently.
void refuse_text_options(const CsvOptions& csv, const std::string& path, const char* what) {
  const bool delim = csv.delimiter != 0;
  const bool header = csv.header != HeaderMode::detect;
  if (!delim && !header) return;
  throw InvalidArgument(std::string(delim && header ? "--delimiter and --header apply" : delim ? "--delimiter applies"
                                                                                              : "--header applies") +
                        " to CSV/text input, and '" + path + "' is read as " + what + "; leave it out");
}

Table select(Table t, const std::vector<std::string>& columns, const std::string& path, const char* what) {
  if (!columns.empty())
    keep_columns(t, resolve_columns(columns, t.cols, nullptr, std::string(what) + " data have no column names", path));
  return t;
}

// Up to `n` bytes from the start of a stream (fewer only at its end).
std::string read_some(std::FILE* in, std::size_t n) {
  std::string out(n, '\0');
  std::size_t got = 0;
  while (got < n) {
    const std::size_t r = std::fread(&out[got], 1, n - got, in);
    if (r == 0) break;
    got += r;
  }
  if (std::ferror(in)) throw DataError(std::string("error reading standard input: ") + std::strerror(errno));
  out.resize(got);
  return out;
}

}  // namespace

bool looks_like_text(const std::string& bytes) {
  std::size_t begin = bytes.compare(0, 3, "\xEF\xBB\xBF") == 0 ? 3 : 0;
  const std::size_t end = std::min(bytes.size(), begin + 1024);
  bool digit = false;
  for (std::size_t i = begin; i < end; ++i) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    if (!((c >= 0x20 && c <= 0x7E) || c == '\t' || c == '\r' || c == '\n')) return false;
    digit = digit || (c >= '0' && c <= '9');
  }
  return digit;
}

namespace {

// The mapping of a table that load_data read in place from a file (it keeps the mapping as
// the table's storage: parse_npy, parse_raw), else null.
std::shared_ptr<const FileBytes> in_place_mapping(const Table& t, const std::string& path) {
  if (t.in_place.empty_pointer() || !t.storage || is_stdin_name(path)) return nullptr;
  std::shared_ptr<const FileBytes> file = std::static_pointer_cast<const FileBytes>(t.storage);
  return file->mapped() ? file : nullptr;
}

void throw_if_changed(const FileBytes& file, const std::string& name) {
  const std::string change = file.change();
  if (!change.empty())
    throw InputChangedError("'" + name + "' changed while it was read: it " + change +
                            "; the command stopped, and nothing was written");
}

}  // namespace

void check_unchanged(const Table& t, const std::string& path) {
  if (const std::shared_ptr<const FileBytes> file = in_place_mapping(t, path)) throw_if_changed(*file, display_name(path));
}

std::function<void(std::size_t)> row_releaser(const Table& t, const std::string& path) {
  std::shared_ptr<const FileBytes> file = in_place_mapping(t, path);
  if (!file) return {};
  const auto* base = file->data();
  const auto* first = t.in_place.is_float32() ? reinterpret_cast<const unsigned char*>(t.in_place.data_f32)
                                              : reinterpret_cast<const unsigned char*>(t.in_place.data);
  const std::size_t row_bytes = t.in_place.row_stride * (t.in_place.is_float32() ? sizeof(float) : sizeof(double));
  const auto start = static_cast<std::size_t>(first - base);
  auto released = std::make_shared<std::size_t>(0);
  // Checked now (between the parse and the first chunk) and after every chunk: rows read
  // from a file that changed under the mapping are not the data the fit started on.
  const auto check = [file, name = display_name(path)] { throw_if_changed(*file, name); };
  check();
  return [file, start, row_bytes, released, check](std::size_t row) {
    check();
    const std::size_t offset = start + row * row_bytes;
    if (offset < *released) *released = 0;  // a new pass
    file->release(*released, offset);
    *released = offset;
  };
}

Table load_data(const std::string& path, const LoadOptions& o) {
  const std::string name = display_name(path);
  if (o.raw_dims > 0 && text_name(path))
    throw InvalidArgument("--dims reads raw binary, and '" + name +
                          "' is a text file by its name; read it without --dims (and --dtype)");
  // Mapped, not read: the binary formats keep their float rows in place (mapped_file.hpp).
  // Standard input is known by its first bytes alone: text is parsed as it streams in,
  // and anything else is read whole.
  const bool from_stdin = is_stdin_name(path);
  std::shared_ptr<const FileBytes> file = from_stdin ? nullptr : FileBytes::open(path);
  // What the sniffing looks at: the signature, and text's first KiB after a byte-order mark.
  std::string head = from_stdin ? read_some(stdin, 1024 + 3)
                                : std::string(reinterpret_cast<const char*>(file->data()),
                                              std::min<std::size_t>(file->size(), 1024 + 3));
  // Raw binary (--dims) can start with any bytes: its values are not tested as signatures.
  const bool npy = npy_signature(head);
  if (o.raw_dims == 0 && !npy) {
    const std::string foreign = foreign_format(head, path);
    if (!foreign.empty()) throw DataError("'" + name + "' is " + foreign);
  }
  CsvOptions csv = o.csv;
  csv.columns = o.columns;
  if (from_stdin) {
    if (o.raw_dims == 0 && !npy) return parse_csv_stream(stdin, std::move(head), csv, name);
    std::string bytes = head;
    read_stream(stdin, bytes);
    file = FileBytes::adopt(std::move(bytes));
  }
  const unsigned char* data = file->data();
  const std::size_t size = file->size();
  if (o.raw_dims > 0) {
    // parse_raw names an NPY signature itself (a data error: the file is not what --dims says).
    if (!npy && looks_like_text(head))
      throw InvalidArgument("--dims reads raw binary, and '" + name +
                            "' holds text (printable characters and digits only); read it without --dims (and "
                            "--dtype)");
    refuse_text_options(o.csv, name, "raw binary (--dims)");
    return select(parse_raw(data, size, o.raw_dims, o.raw_type, name, file), o.columns, name, "raw binary");
  }
  if (npy || ends_with(path, ".npy")) {
    refuse_text_options(o.csv, name, ".npy");
    return select(parse_npy(data, size, name, file), o.columns, name, ".npy");
  }
  if (raw_name(path) && !looks_like_text(head))
    throw DataError("'" + name + "' looks like raw binary: give the number of features with --dims D (and "
                    "--dtype float32 or float64)");
  // Parsed where it lies, and given back as it is parsed: a text file costs about the
  // values it holds, not the file's size on top.
  return parse_csv(std::string_view(reinterpret_cast<const char*>(data), size), csv, name,
                   [&file](std::size_t offset) { file->done_with(offset); });
}

}  // namespace cuem::io
