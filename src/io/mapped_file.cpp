#include "io/mapped_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "cuem/errors.hpp"
#include "io/table.hpp"

namespace cuem::io {

std::shared_ptr<const FileBytes> FileBytes::open(const std::string& path) {
  std::shared_ptr<FileBytes> f(new FileBytes());
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw DataError("cannot open '" + path + "': " + std::strerror(errno));
  if (S_ISDIR(st.st_mode)) throw DataError("cannot read '" + path + "': it is a folder, not a file");
  if (S_ISREG(st.st_mode) && st.st_size > 0) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw DataError("cannot open '" + path + "': " + std::strerror(errno));
    // The size and time mapped are the descriptor's, not the path's earlier stat.
    struct stat at {};
    void* p = ::fstat(fd, &at) == 0 && at.st_size > 0
                  ? ::mmap(nullptr, static_cast<std::size_t>(at.st_size), PROT_READ, MAP_PRIVATE, fd, 0)
                  : MAP_FAILED;
    if (p != MAP_FAILED) {
      f->data_ = static_cast<const unsigned char*>(p);
      f->size_ = static_cast<std::size_t>(at.st_size);
      f->mapped_ = true;
      f->fd_ = fd;
      f->mtime_sec_ = static_cast<long long>(at.st_mtim.tv_sec);
      f->mtime_nsec_ = static_cast<long long>(at.st_mtim.tv_nsec);
      return f;
    }
    ::close(fd);
  }
  // Empty, not mappable (a pipe, some file systems): read it.
  f->copy_ = read_file_bytes(path);
  f->data_ = reinterpret_cast<const unsigned char*>(f->copy_.data());
  f->size_ = f->copy_.size();
  return f;
}

std::shared_ptr<const FileBytes> FileBytes::adopt(std::string bytes) {
  std::shared_ptr<FileBytes> f(new FileBytes());
  f->copy_ = std::move(bytes);
  f->data_ = reinterpret_cast<const unsigned char*>(f->copy_.data());
  f->size_ = f->copy_.size();
  return f;
}

void FileBytes::done_with(std::size_t offset) const noexcept { release(0, offset); }

void FileBytes::release(std::size_t begin, std::size_t end) const noexcept {
  if (!mapped_) return;
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  // Whole pages only: the mapping starts on a page, so offsets round as addresses do.
  const std::size_t first = (begin + page - 1) / page * page, last = std::min(end, size_) / page * page;
  if (last > first) ::madvise(const_cast<unsigned char*>(data_) + first, last - first, MADV_DONTNEED);
}

std::string FileBytes::change() const {
  if (!mapped_) return {};
  struct stat st {};
  if (::fstat(fd_, &st) != 0) return std::string("can no longer be read (") + std::strerror(errno) + ")";
  const auto now = static_cast<std::size_t>(st.st_size);
  if (now > size_) return "grew by " + std::to_string(now - size_) + " bytes (" + std::to_string(size_) + " when opened)";
  if (now < size_) return "shrank by " + std::to_string(size_ - now) + " bytes (" + std::to_string(size_) + " when opened)";
  if (static_cast<long long>(st.st_mtim.tv_sec) != mtime_sec_ || static_cast<long long>(st.st_mtim.tv_nsec) != mtime_nsec_)
    return "was written to (same size, modified after it was opened)";
  return {};
}

FileBytes::~FileBytes() {
  if (mapped_) {
    ::munmap(const_cast<unsigned char*>(data_), size_);
    ::close(fd_);
  }
}

}  // namespace cuem::io
