#pragma once
// Checkpoints of a distributed fit, as a journal of its collective results. Everything
// above the distributed primitives (initialisation, the driver, its restarts and
// convergence test) is deterministic given what the primitives return; the journal
// records each collective's result in order, and a resumed fit replays them instead of
// passing over the data until the journal runs out, then goes on live. The resumed fit
// therefore takes bitwise the same steps as an uninterrupted one, whatever the driver.
// Its cost: the statistics of every E-step so far (docs/DISTRIBUTED.md).
#include <cstddef>
#include <string>
#include <vector>

namespace cuem::mpi {

class Journal {
 public:
  /// Whether a recorded result is waiting to be replayed.
  bool replaying() const noexcept { return next_ < entries_.size(); }
  /// The next recorded result (replaying() must be true).
  const std::string& replay() { return entries_[next_++]; }
  /// Appends a live result.
  void record(std::string entry) {
    entries_.push_back(std::move(entry));
    next_ = entries_.size();
  }
  std::size_t size() const noexcept { return entries_.size(); }

  /// The checkpoint file's bytes: `signature` (what the fit was: options and data), the
  /// iterations done, the entries.
  std::string serialize(const std::string& signature, long iterations) const;
  /// A journal from a checkpoint's bytes; DataError naming `path` when they are not a
  /// checkpoint, or InvalidArgument when they belong to another fit (signature differs).
  static Journal parse(const std::string& bytes, const std::string& signature, const std::string& path,
                       long* iterations);

 private:
  std::vector<std::string> entries_;
  std::size_t next_ = 0;
};

}  // namespace cuem::mpi
