#include "io/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "io/io_error.hpp"

namespace cuem::io {
namespace {

// Live temporary files, readable from a signal handler: fixed slots of fixed-size paths,
// each claimed and released with atomics (no allocation or locking in the handler).
constexpr int kSlots = 32;
constexpr std::size_t kPathMax = 4096;
std::array<std::atomic<bool>, kSlots> g_used{};   // claimed by an AtomicFile
std::array<std::atomic<bool>, kSlots> g_ready{};  // path written: the handler may read it
std::array<std::array<char, kPathMax>, kSlots> g_paths{};

int claim_slot(const std::string& temp) {
  if (temp.size() >= kPathMax) return -1;
  for (int i = 0; i < kSlots; ++i) {
    bool expected = false;
    if (g_used[i].load() || !g_used[i].compare_exchange_strong(expected, true)) continue;
    std::memcpy(g_paths[i].data(), temp.c_str(), temp.size() + 1);
    g_ready[i].store(true);
    return i;
  }
  return -1;
}

void release_slot(const std::string& temp) {
  for (int i = 0; i < kSlots; ++i)
    if (g_ready[i].load() && temp == g_paths[i].data()) {
      g_ready[i].store(false);
      g_used[i].store(false);
      return;
    }
}

void remove_temporary_files() {
  for (int i = 0; i < kSlots; ++i)
    if (g_ready[i].load()) ::unlink(g_paths[i].data());
}

extern "C" void on_interrupt(int sig) {
  remove_temporary_files();
  static const char msg[] = "\ncuem: interrupted; no output written\n";
  (void)!::write(STDERR_FILENO, msg, sizeof msg - 1);
  ::_exit(128 + sig);
}

// A memory-mapped input (mapped_file.hpp) that shrinks while it is read: its pages past
// the new end raise SIGBUS. Said plainly, not a crash, with the exit code of an input that
// changed while read (6, src/cli/main.cpp; the check between chunks gives the same).
extern "C" void on_bus_error(int) {
  remove_temporary_files();
  static const char msg[] =
      "\ncuem: input changed: an input file was truncated or became unreadable while it was being read (bus "
      "error); no output written\n";
  (void)!::write(STDERR_FILENO, msg, sizeof msg - 1);
  ::_exit(6);
}

}  // namespace

std::string folder_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

int make_temp_beside(const std::string& target, std::string* name) {
  // target + ".tmp-XXXXXX", or a short hidden name in its folder where the name is near
  // the file system's 255-byte limit and leaves no room for a suffix.
  const std::size_t base = target.size() - (target.find_last_of('/') + 1);
  const std::string pattern = base + 11 <= 255 ? target + ".tmp-XXXXXX" : folder_of(target) + "/.cuem.tmp-XXXXXX";
  std::vector<char> tmpl(pattern.begin(), pattern.end());
  tmpl.push_back('\0');
  const int fd = ::mkstemp(tmpl.data());
  if (fd >= 0) *name = tmpl.data();
  return fd;
}

namespace {

// A new, unused name beside `target` (the file made and removed again).
std::string fresh_name(const std::string& target) {
  std::string name;
  const int fd = make_temp_beside(target, &name);
  if (fd < 0) return {};
  ::close(fd);
  ::unlink(name.c_str());
  return name;
}

}  // namespace

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)), target_(path_) {
  if (path_.empty()) throw OutputError("an output path is empty");
  struct stat st {};
  const bool exists = ::stat(path_.c_str(), &st) == 0;
  if (exists && !S_ISREG(st.st_mode)) {
    if (S_ISDIR(st.st_mode)) throw OutputError("cannot write '" + path_ + "': it is a folder; give a file name");
    file_ = std::fopen(path_.c_str(), "wb");
    if (!file_) throw OutputError("cannot write '" + path_ + "': " + std::strerror(errno));
    direct_ = true;
    return;
  }
  struct stat link {};
  if (::lstat(path_.c_str(), &link) == 0 && S_ISLNK(link.st_mode)) {
    // Replace the file the link names, not the link itself.
    char* real = exists ? ::realpath(path_.c_str(), nullptr) : nullptr;
    if (!real) throw OutputError("cannot write '" + path_ + "': it is a symbolic link to a file that does not exist");
    target_ = real;
    std::free(real);
  }
  if (exists && ::access(target_.c_str(), W_OK) != 0)
    throw OutputError("cannot write '" + path_ + "': " + std::strerror(errno) + " (the file is read-only?)");
  replaces_ = exists;
  const int fd = make_temp_beside(target_, &temp_);
  if (fd < 0)
    throw OutputError("cannot write '" + path_ + "': " + std::strerror(errno) + " (is the folder '" +
                      folder_of(target_) + "' there and writable?)");
  claim_slot(temp_);  // with every slot taken, only Ctrl-C cleanup of this file is lost
  if (exists) {  // the replacement keeps the old file's permissions and, where allowed, owner
    ::fchmod(fd, st.st_mode & 07777);
    if (st.st_uid != ::geteuid() || st.st_gid != ::getegid()) (void)!::fchown(fd, st.st_uid, st.st_gid);
  } else {  // mkstemp makes 0600; give the usual 0666 & ~umask
    const mode_t mask = ::umask(0);
    ::umask(mask);
    ::fchmod(fd, 0666 & ~mask);
  }
  file_ = ::fdopen(fd, "wb");
  if (!file_) {
    ::close(fd);
    ::unlink(temp_.c_str());
    release_slot(temp_);
    throw OutputError("cannot write '" + path_ + "': " + std::strerror(errno));
  }
}

AtomicFile::~AtomicFile() {
  if (file_) std::fclose(file_);
  if (direct_) return;
  if (!committed_) ::unlink(temp_.c_str());
  release_slot(temp_);
}

void AtomicFile::write(const void* data, std::size_t size) {
  if (size > 0 && std::fwrite(data, 1, size, file_) != size)
    throw OutputError("cannot write '" + path_ + "': " + std::strerror(errno));
}

void AtomicFile::commit() {
  if (direct_) {
    const bool ok = std::fflush(file_) == 0;
    std::fclose(file_);
    file_ = nullptr;
    if (!ok) throw OutputError("cannot write '" + path_ + "': " + std::strerror(errno));
    committed_ = true;
    return;
  }
  const bool flushed = std::fflush(file_) == 0 && ::fsync(::fileno(file_)) == 0;
  const int err = errno;
  std::fclose(file_);
  file_ = nullptr;
  if (!flushed) throw OutputError("cannot write '" + path_ + "': " + std::strerror(err));
  if (::rename(temp_.c_str(), target_.c_str()) != 0)
    throw OutputError("cannot write '" + path_ + "': " + std::strerror(errno));
  committed_ = true;
}

void write_file_atomically(const std::string& path, const std::string& contents) {
  AtomicFile f(path);
  f.write(contents);
  f.commit();
}

void OutputBatch::add(std::string path, std::string contents) {
  struct stat st {};
  const bool special = ::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode);  // /dev/null takes several
  for (const auto& item : items_)
    if (item.first == path && !special)
      throw OutputError("two outputs are both '" + path + "'; give each output its own file name");
  items_.emplace_back(std::move(path), std::move(contents));
}

void OutputBatch::add(std::unique_ptr<AtomicFile> filled) { filled_.push_back(std::move(filled)); }

std::string AtomicFile::keep_old() {
  if (direct_ || !replaces_) return {};
  // In a sticky folder a second name for another user's file could not be removed again
  // (and the file cannot be replaced there either: its rename fails first).
  struct stat file {}, folder {};
  if (::stat(target_.c_str(), &file) != 0 || ::stat(folder_of(target_).c_str(), &folder) != 0) return {};
  const uid_t me = ::geteuid();
  if ((folder.st_mode & S_ISVTX) && me != 0 && file.st_uid != me && folder.st_uid != me) return {};
  for (int attempt = 0; attempt < 8; ++attempt) {
    const std::string name = fresh_name(target_);
    if (name.empty()) return {};
    if (::link(target_.c_str(), name.c_str()) == 0) {
      claim_slot(name);
      return name;
    }
    if (errno != EEXIST) return {};  // no hard links here: no way back for this file
  }
  return {};
}

void AtomicFile::put_back(const std::string& old) {
  if (direct_ || !committed_) return;
  if (!old.empty()) {
    ::rename(old.c_str(), target_.c_str());
    release_slot(old);
  } else if (!replaces_) {
    ::unlink(target_.c_str());
  }
}

void OutputBatch::commit() {
  std::vector<std::unique_ptr<AtomicFile>> files = std::move(filled_);
  filled_.clear();
  for (const auto& [path, contents] : items_) {
    files.push_back(std::make_unique<AtomicFile>(path));
    files.back()->write(contents);
  }
  // Every file is complete; each one replaced keeps a second name (a hard link) until all
  // are in place, so that a failed rename (another user's file in a sticky folder, say)
  // puts the earlier ones back: all or nothing.
  std::vector<std::string> old(files.size());
  for (std::size_t i = 0; i < files.size(); ++i) old[i] = files[i]->keep_old();
  const auto drop = [&](std::size_t from) {
    for (std::size_t i = from; i < old.size(); ++i)
      if (!old[i].empty()) {
        ::unlink(old[i].c_str());
        release_slot(old[i]);
      }
  };
  std::size_t done = 0;
  try {
    for (; done < files.size(); ++done) files[done]->commit();
  } catch (...) {
    for (std::size_t i = 0; i < done; ++i) files[i]->put_back(old[i]);
    drop(done);
    throw;
  }
  drop(0);
  items_.clear();
}

void install_interrupt_cleanup() {
  struct sigaction sa {};
  sa.sa_handler = on_interrupt;
  sigemptyset(&sa.sa_mask);
  // A signal that arrives ignored stays ignored: a background job of a non-interactive
  // shell ignores SIGINT so that Ctrl-C at the terminal leaves it running.
  for (const int sig : {SIGINT, SIGTERM}) {
    struct sigaction old {};
    if (::sigaction(sig, nullptr, &old) == 0 && old.sa_handler == SIG_IGN) continue;
    ::sigaction(sig, &sa, nullptr);
  }
  struct sigaction bus {};
  bus.sa_handler = on_bus_error;
  sigemptyset(&bus.sa_mask);
  ::sigaction(SIGBUS, &bus, nullptr);
}

}  // namespace cuem::io
