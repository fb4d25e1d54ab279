#pragma once
// The primitives of a data set spread over MPI ranks (docs/DISTRIBUTED.md). Each rank
// holds the fixed segments of rows that SegmentLayout gives it, one backend Primitives
// per segment; every primitive here is a collective that all ranks call with the same
// arguments (the algorithms above are deterministic and run on every rank). Sums over
// points are per segment, folded in global segment order, so every rank gets bitwise the
// same result for any number of ranks: the models, initialisation included, are the
// same for R = 1, 2, ... Written below the models and drivers, it serves them unchanged.
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/primitives.hpp"
#include "mpi/checkpoint.hpp"
#include "mpi/communicator.hpp"
#include "mpi/segments.hpp"

namespace cuem::mpi {

/// How statistics are summed over ranks.
enum class Reduction {
  ordered,    ///< per segment, folded in segment order along the ranks: bitwise the same for any R
  allreduce,  ///< each rank's segments folded, then MPI_Allreduce: faster, rounding depends on R
};

Reduction parse_reduction(const std::string& name);
const char* to_string(Reduction r) noexcept;

class DistributedPrimitives final : public Primitives {
 public:
  /// `rows` are this rank's rows (layout.rank_row_begin(rank) on), which must outlive the
  /// primitives; `journal` (may be null) records and replays the collective results.
  /// `weights` (empty for none) are every row's of the whole data set, on every rank: the
  /// segments take theirs, and the host's algorithms (k-means++'s first seed, relocation,
  /// random_from_data) index them by global row, as over one device's data.
  DistributedPrimitives(const Communicator& comm, SegmentLayout layout, DataView rows, const PrimitivesRequest& request,
                        Reduction reduction, Journal* journal, WeightView weights = {});
  ~DistributedPrimitives() override;

  std::size_t rows() const noexcept override { return layout_.n_rows; }
  std::size_t cols() const noexcept override { return D_; }
  bool weighted() const noexcept override { return !weights_.empty(); }
  double total_weight() const noexcept override { return total_weight_; }
  WeightView weights() const noexcept override { return weights_; }
  void copy_rows(std::size_t begin, std::size_t count, double* out) const override;
  void reserve(CovarianceType type, int K) override;

  SufficientStats gaussian_estep(const PreparedParams& params) override;
  void posteriors(const PreparedParams& params, std::size_t begin, std::size_t end, double* log_prob,
                  double* resp) override;
  SufficientStats weighted_stats(const Responsibilities& g, CovarianceType type, int K,
                                 const std::vector<double>& shift) override;
  std::vector<double> first_pass_shift(const Responsibilities& g, int K) const override;
  CovarianceType first_pass_layout(CovarianceType type) const override;

  std::unique_ptr<PointValues> make_point_values() override;
  double closest(PointValues& v, const double* c, ClosestMode mode) override;
  std::size_t sample_point(const PointValues& v, double r) override;
  LloydStep lloyd_step(const std::vector<double>& centers, int K) override;
  void nearest_labels(const std::vector<double>& centers, int K, std::size_t begin, std::size_t count,
                      int* labels) override;
  double mean_feature_variance() override;

  const char* name() const noexcept override;
  double unit_roundoff() const noexcept override;
  std::string description() const override;

  /// This rank's segments' own backends, in segment order: a model whose E-step is more
  /// than the primitives (an HMM's chain) runs it per segment and sums with reduced_sum.
  std::size_t local_segments() const noexcept { return segments_.size(); }
  Primitives& local_segment(std::size_t i) { return *segments_[i]; }

  /// The sum of every segment's vector of `length` values over the whole data, on every
  /// rank: `local` gives this rank's, one per local segment in order; they are folded in
  /// global segment order (or all-reduced, by the reduction). Collective; journaled.
  std::vector<double> reduced_sum(const std::function<std::vector<std::vector<double>>()>& local,
                                  std::size_t length);

  /// Where the local passes' device description comes from, and the notice of a device
  /// fallback, if any ("" otherwise).
  const std::string& placement_notice() const noexcept { return notice_; }

 private:
  // Every rank's bytes from `local` (this rank's part), in rank order; journaled.
  std::vector<std::string> gathered(const std::function<std::string()>& local) const;
  // The statistics of every segment from `per_segment`, folded in segment order (or
  // all-reduced about `shift`); journaled.
  SufficientStats reduced_stats(const std::function<SufficientStats(Primitives&)>& per_segment,
                                const std::vector<double>& shift);
  // This rank's segments that meet rows [begin, end), with the rows they hold there.
  void for_rows(std::size_t begin, std::size_t end,
                const std::function<void(std::size_t local_segment, std::size_t lo, std::size_t hi)>& f) const;

  const Communicator& comm_;
  SegmentLayout layout_;
  std::size_t D_;
  std::size_t first_;  // this rank's first segment
  std::vector<std::unique_ptr<Primitives>> segments_;
  Reduction reduction_;
  Journal* journal_;
  WeightView weights_;
  double total_weight_;
  std::string notice_;
};

}  // namespace cuem::mpi
