#pragma once
// Writing an output file atomically: the bytes go to a temporary file in the target's
// folder, which is renamed over the target only on commit(). An error, an exception or
// Ctrl-C before that leaves no partial file and never clobbers an existing good one.
// A target that exists and is not a regular file (/dev/null, a pipe) is written directly:
// replacing it would be wrong, and atomicity means nothing there. A symbolic link is
// written through (its target is replaced, as shell redirection would write it), and a
// replaced file keeps its permissions (and owner, where the process may set it); a
// read-only file is refused.
#include <cstddef>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace cuem::io {

class AtomicFile {
 public:
  /// Creates the temporary file; throws OutputError when the folder is not writable.
  explicit AtomicFile(std::string path);
  ~AtomicFile();  ///< removes the temporary file unless committed
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, std::size_t size);
  void write(const std::string& text) { write(text.data(), text.size()); }
  /// Flushes, syncs and renames over the target; throws OutputError on failure.
  void commit();

  const std::string& path() const noexcept { return path_; }

  /// Before commit: a second name (hard link) for the file about to be replaced, "" where
  /// there is none (a new file, a device, no hard links). After commit, put_back(name)
  /// restores the old file (or removes a new one): OutputBatch's rollback.
  std::string keep_old();
  void put_back(const std::string& old);

 private:
  std::string path_;    // as given, for messages
  std::string target_;  // the file replaced: path_ with a symbolic link resolved
  std::string temp_;
  std::FILE* file_ = nullptr;
  bool committed_ = false;
  bool direct_ = false;
  bool replaces_ = false;  // target_ existed (a regular file)
};

/// Several outputs of one command, all or nothing: every temporary file is created and
/// filled before any is renamed, so an unwritable second path leaves no first file, and a
/// rename that fails puts the files already renamed back as they were.
class OutputBatch {
 public:
  void add(std::string path, std::string contents);
  /// A file already written in parts (a streamed output), committed with the others.
  void add(std::unique_ptr<AtomicFile> filled);
  void commit();
  bool empty() const noexcept { return items_.empty() && filled_.empty(); }

 private:
  std::vector<std::pair<std::string, std::string>> items_;
  std::vector<std::unique_ptr<AtomicFile>> filled_;
};

/// The folder part of a path ("." for a bare name).
std::string folder_of(const std::string& path);

/// Creates a temporary file beside `target` (target + ".tmp-XXXXXX", or a short hidden
/// name in its folder where the name is too long for a suffix); returns its descriptor
/// and sets *name, or -1 with errno set.
int make_temp_beside(const std::string& target, std::string* name);

/// Writes a whole file atomically.
void write_file_atomically(const std::string& path, const std::string& contents);

/// Installs SIGINT/SIGTERM handlers (unless the signal arrives ignored) that remove every
/// live temporary file and exit with 128 + signal (130 for Ctrl-C), and a SIGBUS handler (a memory-mapped input truncated
/// while read) that does the same and exits 6, as an input that changed while read. Call
/// once from main.
void install_interrupt_cleanup();

}  // namespace cuem::io
