#pragma once
// A Gaussian HMM or GMMHMM fit over MPI ranks (docs/DISTRIBUTED.md): the units of the sums
// are whole sequences, those starting in each window of S rows (sequence_units), never
// split; each rank runs Baum-Welch's E-step on its units and the statistics are summed in
// unit order, so the model is bitwise the same for any number of ranks.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "cuem/data_view.hpp"
#include "cuem/gmm_hmm.hpp"
#include "cuem/hmm.hpp"
#include "mpi/communicator.hpp"
#include "mpi/distributed_fit.hpp"
#include "mpi/segments.hpp"

namespace cuem::mpi {

struct DistributedHmmResult {
  HmmFitResult fit;
  /// Iterations the checkpoint held when the fit resumed from it; -1 when it did not.
  long resumed_after = -1;
};

/// Fits on `rows`, this rank's rows (from layout.rank_row_begin(rank) to
/// rank_row_end(rank)) of the frames whose sequences `offsets` bounds (every sequence's, on
/// every rank); `layout` is sequence_units(offsets, S, R). Collective: every rank calls it
/// with the same options. Batch EM or SQUAREM on complete frames (missing entries and
/// incremental blocks are refused: InvalidArgument). `data_digest` (data_digest(), every
/// rank's the same) ties a checkpoint to its data.
DistributedHmmResult fit_hmm_distributed(const Communicator& comm, DataView rows, const SegmentLayout& layout,
                                         const std::vector<std::size_t>& offsets, const HmmOptions& options,
                                         const DistributedOptions& distributed, std::uint64_t data_digest);

struct DistributedGmmHmmResult {
  GmmHmmFitResult fit;
  long resumed_after = -1;  ///< as DistributedHmmResult's
};

/// The same for a GMMHMM (cuem/gmm_hmm.hpp; batch EM).
DistributedGmmHmmResult fit_gmm_hmm_distributed(const Communicator& comm, DataView rows, const SegmentLayout& layout,
                                                const std::vector<std::size_t>& offsets, const GmmHmmOptions& options,
                                                const DistributedOptions& distributed, std::uint64_t data_digest);

}  // namespace cuem::mpi
