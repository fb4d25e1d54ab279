#include "cli/outputs.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "cli/common.hpp"
#include "io/atomic_file.hpp"
#include "io/npy.hpp"

namespace cuem::cli {
namespace {

// Where an output would land: stat of the file when it exists (through symbolic links),
// and its canonical path (for a new file: the canonical folder plus the name), so that two
// spellings of one file compare equal.
struct Target {
  bool exists = false;
  struct stat st {};
  std::string canonical;
};

std::string real_path(const std::string& path) {
  char* r = ::realpath(path.c_str(), nullptr);
  if (!r) return {};
  std::string out(r);
  std::free(r);
  return out;
}

Target resolve(const std::string& path) {
  Target t;
  if (::stat(path.c_str(), &t.st) == 0) {
    t.exists = true;
    t.canonical = real_path(path);
    return t;
  }
  const int err = errno;
  struct stat link {};
  if (::lstat(path.c_str(), &link) == 0 && S_ISLNK(link.st_mode))
    throw UsageError("cannot write '" + path + "': it is a symbolic link to a file that does not exist" +
                     (err == ELOOP ? std::string(" (a loop of links)") : std::string()));
  const std::string folder = io::folder_of(path);
  struct stat fs {};
  if (::stat(folder.c_str(), &fs) != 0)
    throw UsageError("cannot write '" + path + "': the folder '" + folder + "' does not exist");
  if (!S_ISDIR(fs.st_mode))
    throw UsageError("cannot write '" + path + "': '" + folder + "' is a file, not a folder");
  if (::access(folder.c_str(), W_OK | X_OK) != 0)
    throw UsageError("cannot write '" + path + "': the folder '" + folder + "' is not writable (" +
                     std::strerror(errno) + ")");
  const std::string real_folder = real_path(folder);
  t.canonical = (real_folder.empty() ? folder : real_folder) + "/" + path.substr(path.find_last_of('/') + 1);
  return t;
}

void check_writable(const std::string& path, const Target& t) {
  if (t.exists) {
    if (S_ISDIR(t.st.st_mode)) throw UsageError("the output path '" + path + "' is a folder; give a file name");
    if (::access(path.c_str(), W_OK) != 0)
      throw UsageError("cannot write '" + path + "': " + std::strerror(errno) + " (the file is read-only?)");
    if (!S_ISREG(t.st.st_mode)) return;  // a device or pipe is written in place
  }
  // A regular file is written as a new file beside it, renamed over it at the end.
  const std::string target = t.canonical.empty() ? path : t.canonical;
  const std::string folder = io::folder_of(target);
  struct stat fs {};
  // In a sticky folder (as /tmp) only a file's owner, the folder's or root may replace it.
  if (t.exists && ::stat(folder.c_str(), &fs) == 0 && (fs.st_mode & S_ISVTX) && ::geteuid() != 0 &&
      t.st.st_uid != ::geteuid() && fs.st_uid != ::geteuid())
    throw UsageError("cannot replace '" + path + "': it belongs to another user, in a folder where only owners may " +
                     "replace files (sticky, as /tmp); write another name");
  // Whether the folder takes that new file: made and removed again now, so that a folder
  // that refuses it (a read-only or special file system, a name too long) fails here and
  // not after the work.
  std::string trial;
  const int fd = io::make_temp_beside(target, &trial);
  if (fd < 0)
    throw UsageError("cannot write '" + path + "': " + std::strerror(errno) + " (in the folder '" + folder + "')");
  ::close(fd);
  ::unlink(trial.c_str());
}

bool same_file(const Target& a, const Target& b) {
  // Devices and pipes (/dev/null, /dev/stdout) take any number of outputs.
  if ((a.exists && !S_ISREG(a.st.st_mode)) || (b.exists && !S_ISREG(b.st.st_mode))) return false;
  if (a.exists && b.exists) return a.st.st_dev == b.st.st_dev && a.st.st_ino == b.st.st_ino;
  return !a.canonical.empty() && a.canonical == b.canonical;
}

enum class Format { npy, csv, tsv, txt, other };

bool is_existing_non_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode);
}

// The name's extension in lower case, without the dot ("" where it has none).
std::string extension_of(const std::string& path) {
  const auto dot = path.find_last_of('.');
  const auto slash = path.find_last_of('/');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return "";
  std::string ext = path.substr(dot + 1);
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

Format format_of(const std::string& path) {
  if (is_existing_non_file(path)) return Format::npy;
  const std::string ext = extension_of(path);
  if (ext == "npy") return Format::npy;
  if (ext == "csv") return Format::csv;
  if (ext == "tsv") return Format::tsv;
  if (ext == "txt") return Format::txt;
  return Format::other;
}

char delimiter_of(Format f) { return f == Format::csv ? ',' : f == Format::tsv ? '\t' : ' '; }

}  // namespace

void check_outputs(const std::vector<std::string>& outputs, const std::vector<std::string>& inputs) {
  std::vector<std::pair<std::string, Target>> seen;
  for (const std::string& out : outputs) {
    if (out.empty()) continue;
    const Target t = resolve(out);
    check_writable(out, t);
    for (const std::string& in : inputs) {
      struct stat si {};
      if (t.exists && ::stat(in.c_str(), &si) == 0 && si.st_dev == t.st.st_dev && si.st_ino == t.st.st_ino)
        throw UsageError("the output '" + out + "' is the input '" + in + "'; choose another output path");
    }
    for (const auto& [other, ot] : seen)
      if (same_file(t, ot))
        throw UsageError("the outputs '" + other + "' and '" + out +
                         "' are the same file; give each output its own file name");
    seen.emplace_back(out, t);
  }
}

void check_data_output_name(const std::string& path, const std::string& option) {
  if (path.empty() || format_of(path) != Format::other) return;
  throw UsageError(option + " '" + path + "': name the format by the extension: .npy, or text as .csv, .tsv or .txt");
}

void check_model_output_name(const std::string& path, const std::string& option) {
  if (path.empty() || is_existing_non_file(path)) return;
  const std::string ext = extension_of(path);
  if (ext == "npy" || ext == "csv" || ext == "tsv")
    throw UsageError(option + " '" + path + "': a model is written as JSON, not ." + ext + "; name it .json");
}

std::string matrix_file_start(const std::string& path, std::size_t rows, std::size_t cols,
                              const std::vector<std::string>& header, bool float32) {
  const Format f = format_of(path);
  if (f == Format::npy || f == Format::other) return io::npy_header_bytes(float32 ? "<f4" : "<f8", rows, cols);
  const char delim = delimiter_of(f);
  std::string out;
  for (std::size_t j = 0; j < header.size(); ++j) out += header[j] + (j + 1 < header.size() ? delim : '\n');
  return out;
}

void append_matrix_rows(std::string& out, const std::string& path, const double* values, std::size_t rows,
                        std::size_t cols, bool float32) {
  const Format f = format_of(path);
  const std::size_t n = rows * cols;
  if (f == Format::npy || f == Format::other) {
    if (!float32) return io::append_le(out, values, n);
    const std::vector<float> narrow(values, values + n);
    return io::append_le(out, narrow.data(), n);
  }
  const char delim = delimiter_of(f);
  char buf[32];
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < cols; ++j) {
      // %.17g round-trips a double, %.9g a float
      std::snprintf(buf, sizeof buf, float32 ? "%.9g" : "%.17g",
                    float32 ? static_cast<double>(static_cast<float>(values[i * cols + j])) : values[i * cols + j]);
      out += buf;
      out += j + 1 < cols ? delim : '\n';
    }
}

std::string matrix_file_bytes(const std::string& path, const double* values, std::size_t rows, std::size_t cols,
                              const std::vector<std::string>& header) {
  std::string out = matrix_file_start(path, rows, cols, header, false);
  append_matrix_rows(out, path, values, rows, cols, false);
  return out;
}

std::string labels_file_start(const std::string& path, std::size_t n) {
  const Format f = format_of(path);
  return f == Format::npy || f == Format::other ? io::npy_header_bytes("<i8", n, 0) : std::string();
}

void append_label_rows(std::string& out, const std::string& path, const int* labels, std::size_t n) {
  const Format f = format_of(path);
  if (f == Format::npy || f == Format::other) {
    const std::vector<std::int64_t> wide(labels, labels + n);
    return io::append_le(out, wide.data(), n);
  }
  for (std::size_t i = 0; i < n; ++i) out += std::to_string(labels[i]) + '\n';
}

std::string labels_file_bytes(const std::string& path, const std::vector<int>& labels) {
  std::string out = labels_file_start(path, labels.size());
  append_label_rows(out, path, labels.data(), labels.size());
  return out;
}

}  // namespace cuem::cli
