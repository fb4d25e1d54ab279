#pragma once
// A Gaussian mixture fit over MPI ranks (docs/DISTRIBUTED.md): each rank holds its own
// rows, the statistics are reduced over ranks, every rank runs the same M-step, and the
// fitted model is the same on every rank. Checkpoints journal the collective results.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "cuem/data_view.hpp"
#include "cuem/fit.hpp"
#include "cuem/options.hpp"
#include "mpi/checkpoint.hpp"
#include "mpi/communicator.hpp"
#include "mpi/distributed_primitives.hpp"
#include "mpi/segments.hpp"

namespace cuem::mpi {

struct DistributedOptions {
  std::size_t segment_rows = kDefaultSegmentRows;
  Reduction reduction = Reduction::ordered;
  std::string checkpoint;    ///< "" for none; resumed from where it exists
  int checkpoint_every = 10; ///< iterations between checkpoint writes
};

struct DistributedFitResult {
  FitResult fit;
  /// Mean log-likelihood of the fitted model (one more pass, reduced as the fit's).
  double score = 0;
  /// Iterations the checkpoint held when the fit resumed from it; -1 when it did not.
  long resumed_after = -1;
};

/// A distributed fit's checkpoint (DistributedOptions::checkpoint, "" for none): the
/// journal of its collective results, read where the file exists (InvalidArgument when it
/// belongs to a fit of another `signature`: options and data), and written by rank 0 every
/// checkpoint_every iterations once the replay is over. Collective.
class Checkpoint {
 public:
  Checkpoint(const Communicator& comm, const DistributedOptions& d, std::string signature);
  Checkpoint(const Checkpoint&) = delete;
  Checkpoint& operator=(const Checkpoint&) = delete;
  /// For the distributed primitives: null without a checkpoint.
  Journal* journal() noexcept { return d_.checkpoint.empty() ? nullptr : &journal_; }
  /// Iterations the file held when the fit resumed from it; -1 when it did not.
  long resumed_after() const noexcept { return resumed_after_; }
  /// `user` (may be empty) called after writing the journal where it is due.
  std::function<bool(const IterationInfo&)> writing(std::function<bool(const IterationInfo&)> user);

 private:
  const Communicator& comm_;
  const DistributedOptions& d_;
  std::string signature_;
  Journal journal_;
  long resumed_after_ = -1;
  long iterations_ = 0;
  std::size_t saved_entries_ = 0;
};

/// FNV-1a over n bytes, continued from h: the digests of data and options.
std::uint64_t fnv1a_bytes(std::uint64_t h, const void* data, std::size_t n);

/// The device of this rank: on a CUDA device, its local rank's turn among the node's
/// devices (OMPI_COMM_WORLD_LOCAL_RANK); the CPU as it is.
Device rank_device(Device d);

/// The checks of this rank's rows (finite values), with their position in the data:
/// DataError naming the global row and column. Returns a digest of each of its
/// segments' values.
std::vector<std::uint64_t> check_rows(DataView rows, std::size_t first_row, const SegmentLayout& layout, int rank);

/// The digest of the whole data set from every rank's check_rows (the same for any
/// number of ranks), on every rank; `status` is this rank's outcome of check_rows.
std::uint64_t data_digest(const Communicator& comm, const LocalStatus& status, const std::vector<std::uint64_t>& mine);

/// Fits on `rows`, this rank's rows of a data set of layout.n_rows rows (the layout's
/// segments from rank_row_begin(rank) to rank_row_end(rank)). Collective: every rank calls
/// it with the same options. `data_digest` (every rank's the same) ties a checkpoint to
/// its data. `weights` (empty for none): every row's weight, the whole data set's, on
/// every rank.
DistributedFitResult fit_distributed(const Communicator& comm, DataView rows, const SegmentLayout& layout,
                                     const FitOptions& options, const DistributedOptions& distributed,
                                     std::uint64_t data_digest, WeightView weights = {});

}  // namespace cuem::mpi
