#pragma once
// The MPI calls of the distributed fit, behind a small interface (docs/DISTRIBUTED.md).
// Every collective here carries each rank's status with its payload, so that a failure on
// one rank (a bad row, a device error) reaches every rank in the same call and all of
// them raise the same error: no rank waits forever in a collective the failed rank never
// enters. MPI_Abort is left for what this agreement cannot cover (agreed_or_abort).
#include <cstddef>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace cuem::mpi {

/// The kinds of failure the command line turns into distinct exit codes.
enum class FailureKind : int { none = 0, invalid_argument, data, numerical, device, interrupted, other };

/// One rank's outcome of its local work before a collective.
struct LocalStatus {
  FailureKind kind = FailureKind::none;
  std::string message;
  bool failed() const noexcept { return kind != FailureKind::none; }
};

/// The failure of a rank, raised on every rank in the same collective: the lowest
/// failing rank's message, prefixed with the rank and its rows.
class AgreedFailure : public std::runtime_error {
 public:
  AgreedFailure(FailureKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  FailureKind kind() const noexcept { return kind_; }
  /// Throws the cuem error of this kind (DataError, NumericalError, ...) with the message.
  [[noreturn]] void rethrow_typed() const;

 private:
  FailureKind kind_;
};

/// Runs `work` and returns its outcome as a LocalStatus (cuem's typed errors by kind).
LocalStatus run_local(const std::function<void()>& work);

/// MPI_COMM_WORLD, initialised for the life of the object (one per process).
class Communicator {
 public:
  Communicator(int* argc, char*** argv);
  ~Communicator();
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  int rank() const noexcept { return rank_; }
  int size() const noexcept { return size_; }

  /// What this rank's failure messages start with ("rank 2 (rows 500-999)").
  void set_rank_label(std::string label) { label_ = std::move(label); }
  const std::string& rank_label() const noexcept { return label_; }

  /// Every rank's bytes in rank order, on every rank. Throws AgreedFailure on every rank
  /// when any rank's status failed (the lowest such rank's).
  std::vector<std::string> all_gather(const LocalStatus& status, const std::string& mine) const;

  /// The element-wise sum of every rank's `parts` (each `length` doubles), added in rank
  /// order and within a rank in the parts' order: a left fold whose order is fixed by the
  /// parts' global positions, whatever the number of ranks. The running sum travels along
  /// the ranks in blocks, so that rank r + 1 adds block b while rank r adds block b + 1
  /// (bandwidth about allreduce's, latency growing with R); the last rank broadcasts the
  /// total. After an agreement on the statuses (AgreedFailure as all_gather's).
  std::vector<double> ordered_sum(const LocalStatus& status, const std::vector<std::vector<double>>& parts,
                                  std::size_t length) const;

  /// MPI_Allreduce (sum) of doubles, after an agreement on the statuses.
  std::vector<double> all_sum(const LocalStatus& status, std::vector<double> values) const;

  /// Waits for every rank (MPI_Barrier).
  void barrier() const;

  /// Rank `root`'s bytes on every rank.
  std::string broadcast(const std::string& bytes, int root) const;

  /// Ends every rank of the job (MPI_Abort) after printing `message` on this rank.
  [[noreturn]] void abort(const std::string& message, int code) const;

 private:
  // Throws AgreedFailure when any rank failed; statuses is one per rank.
  void raise_first(const std::vector<LocalStatus>& statuses) const;
  void agree(const LocalStatus& status) const;

  int rank_ = 0;
  int size_ = 1;
  bool owns_init_ = false;
  std::string label_;
};

}  // namespace cuem::mpi
