#pragma once
// A data file's bytes without copying them: the file is memory-mapped read-only where it
// can be (a regular file), else read into memory (a pipe). A reader that can use the
// bytes in place (a little-endian float64 or float32 .npy in C order, raw binary) keeps
// the mapping alive in its Table, so a large data set costs no copy and no anonymous
// memory: the kernel pages it in as the fit reads it, and may drop it again.
#include <cstddef>
#include <memory>
#include <string>

namespace cuem::io {

class FileBytes {
 public:
  /// DataError, naming the path and the reason, when it is missing, a folder, or unreadable.
  static std::shared_ptr<const FileBytes> open(const std::string& path);
  /// Bytes already in memory (read from standard input), held as a file's would be. (open
  /// takes paths; load_data reads standard input itself, so as to sniff it first.)
  static std::shared_ptr<const FileBytes> adopt(std::string bytes);
  ~FileBytes();
  FileBytes(const FileBytes&) = delete;
  FileBytes& operator=(const FileBytes&) = delete;

  const unsigned char* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  bool mapped() const noexcept { return mapped_; }
  /// Tells the kernel that a mapped file's bytes before `offset` will not be read again:
  /// their pages leave this process's memory (reading them later would page them in
  /// again). Nothing happens for bytes that were read rather than mapped.
  void done_with(std::size_t offset) const noexcept;
  /// The same for the bytes in [begin, end) (whole pages inside it): a reader that goes
  /// through a large mapping in order releases what it passed, at a cost in proportion to
  /// the range, not to the offset.
  void release(std::size_t begin, std::size_t end) const noexcept;
  /// How a mapped file differs now from when it was mapped: "" when unchanged (or not
  /// mapped: a copy cannot change), else a phrase such as "is 10 bytes longer". The file
  /// is asked through its descriptor, so the mapped bytes themselves are judged: a file
  /// renamed over the path or deleted leaves them as they were; one written to in place
  /// (its size or modification time moved) does not.
  std::string change() const;

 private:
  FileBytes() = default;
  const unsigned char* data_ = nullptr;
  std::size_t size_ = 0;
  bool mapped_ = false;
  int fd_ = -1;  // kept open while mapped, for change()
  long long mtime_sec_ = 0, mtime_nsec_ = 0;
  std::string copy_;  // the bytes, where the file could not be mapped
};

}  // namespace cuem::io
