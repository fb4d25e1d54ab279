#pragma once
// cuem fit ... --distributed: the command line's distributed fit (under mpirun), built
// where MPI is (CUEM_WITH_MPI). The options are declared everywhere, so that a build
// without MPI can say so.
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "cli/common.hpp"
#include "mpi/segments.hpp"

namespace cuem::cli {

struct DistributedArgs {
  bool enabled = false;          ///< --distributed
  std::string checkpoint;        ///< --checkpoint FILE
  int checkpoint_every = 10;     ///< --checkpoint-every N
  std::string reduction = "ordered";
  std::size_t segment_rows = mpi::kDefaultSegmentRows;
};

/// Adds --distributed, --checkpoint, --checkpoint-every, --reduction and --segment-rows.
inline void add_distributed_options(CLI::App* cmd, DistributedArgs& args) {
  const char* group = "Distributed (under mpirun; docs/DISTRIBUTED.md)";
  cmd->add_flag("--distributed", args.enabled,
                "fit over the MPI ranks of 'mpirun -n R cuem fit ...': each rank reads its own rows; the model is "
                "bitwise the same for any R. DATA may name shard files, their rows concatenated in order: a comma-"
                "separated list, or a quoted glob pattern (matches sorted by name)")
      ->group(group);
  cmd->add_option("--checkpoint", args.checkpoint,
                  "with --distributed: journal the fit to FILE (atomically) and resume from it where it exists")
      ->group(group);
  cmd->add_option("--checkpoint-every", args.checkpoint_every, "iterations between checkpoint writes")
      ->check(CLI::PositiveNumber)
      ->capture_default_str()
      ->group(group);
  cmd->add_option("--reduction", args.reduction,
                  "ordered (bitwise the same for any number of ranks) or allreduce (MPI_Allreduce: faster at scale, "
                  "rounding depends on the number of ranks)")
      ->check(CLI::IsMember({"ordered", "allreduce"}))
      ->capture_default_str()
      ->group(group);
  cmd->add_option("--segment-rows", args.segment_rows,
                  "rows per fixed segment, the unit of the ordered sums (the model depends on it, not on the ranks); "
                  "with --model hmm a unit is the whole sequences starting in each window of this many rows")
      ->check(CLI::PositiveNumber)
      ->capture_default_str()
      ->group(group);
}

/// The fit on every rank; rank 0 alone prints and writes the outputs. `check` (the
/// command line's refusals) runs first, on every rank, its UsageError said once for the job.
/// `weights` is the --weights file ("" for none), read whole by every rank. `trace_csv`
/// formats the trace as cuem fit writes it.
int run_distributed_fit(const std::function<void()>& check, const DataArgs& data, const std::string& weights,
                        const FitArgs& fit,
                        const std::string& output, const std::string& trace,
                        const DistributedArgs& distributed, const GlobalFlags& flags,
                        const std::function<std::string(const std::vector<TracePoint>&)>& trace_csv);

/// cuem fit DATA --model hmm --lengths FILE --distributed on every rank (docs/DISTRIBUTED.md):
/// each rank keeps the rows of its units of whole sequences; rank 0 reports as cuem fit
/// --model hmm does. n_mix > 0: a GMMHMM of n_mix components a state. `check` as above.
int run_distributed_hmm_fit(const std::function<void()>& check, const DataArgs& data, const std::string& lengths,
                            const FitArgs& fit, const std::string& output, const std::string& trace,
                            const DistributedArgs& d, const GlobalFlags& flags,
                            const std::function<std::string(const std::vector<TracePoint>&)>& trace_csv, int n_mix);

}  // namespace cuem::cli
