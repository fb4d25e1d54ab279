#include "mpi/distributed_fit.hpp"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "core/prepared_params.hpp"
#include "cuem/devices.hpp"
#include "cuem/errors.hpp"
#include "cuem/resources.hpp"
#include "engine/placed_data.hpp"
#include "io/atomic_file.hpp"
#include "mpi/wire.hpp"

namespace cuem::mpi {
namespace {

// FNV-1a over bytes, continued from h.
std::uint64_t fnv1a(std::uint64_t h, const void* data, std::size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ULL;
  return h;
}

std::string signature_of(const SegmentLayout& layout, std::size_t D, const FitOptions& o,
                         const DistributedOptions& d, std::uint64_t digest) {
  std::ostringstream s;
  s.precision(17);
  s << "N " << layout.n_rows << ", D " << D << ", K " << o.n_components << ", " << to_string(o.covariance_type)
    << ", init " << to_string(o.init) << ", seed " << o.seed << ", n_init " << o.n_init << ", max_iter "
    << o.max_iter << ", tol " << o.tol << ", reg_covar " << o.reg_covar << ", " << to_string(o.acceleration) << ", "
    << to_string(o.precision) << ", segments of " << layout.segment_rows << ", " << to_string(d.reduction);
  if (d.reduction == Reduction::allreduce) s << " over " << layout.ranks << " ranks";
  s << ", data digest " << std::hex << digest;
  return s.str();
}

// The checkpoint's bytes on every rank ("" where there is none), read by rank 0.
std::string read_checkpoint(const Communicator& comm, const std::string& path) {
  std::string bytes;
  const LocalStatus status = run_local([&] {
    if (comm.rank() != 0) return;
    std::ifstream in(path, std::ios::binary);
    if (!in) return;  // none yet: a fresh start
    std::ostringstream all;
    all << in.rdbuf();
    bytes = all.str();
    if (bytes.empty()) throw DataError("checkpoint '" + path + "' is empty: remove it to start afresh");
  });
  return comm.all_gather(status, bytes)[0];
}

}  // namespace

Device rank_device(Device d) {
  if (d.kind == DeviceKind::cpu) return d;
  const char* local = std::getenv("OMPI_COMM_WORLD_LOCAL_RANK");
  const std::vector<CudaDevice> devices = cuda_devices();
  if (!local || devices.empty()) return d;
  d.index = devices[static_cast<std::size_t>(std::atoi(local)) % devices.size()].index;
  return d;
}

Checkpoint::Checkpoint(const Communicator& comm, const DistributedOptions& d, std::string signature)
    : comm_(comm), d_(d), signature_(std::move(signature)) {
  if (d_.checkpoint_every < 1) throw InvalidArgument("checkpoint_every must be at least 1");
  if (d_.checkpoint.empty()) return;
  const std::string bytes = read_checkpoint(comm, d_.checkpoint);
  long saved_iterations = 0;
  // Every rank parses the same bytes, but a failure (memory) may still be one rank's.
  const LocalStatus parsed = run_local([&] {
    if (!bytes.empty()) journal_ = Journal::parse(bytes, signature_, d_.checkpoint, &saved_iterations);
  });
  comm.all_gather(parsed, std::string());
  if (!bytes.empty()) resumed_after_ = saved_iterations;
  saved_entries_ = journal_.size();
}

std::function<bool(const IterationInfo&)> Checkpoint::writing(std::function<bool(const IterationInfo&)> user) {
  if (d_.checkpoint.empty()) return user;
  // Every checkpoint_every iterations (counted over restarts), once the replay is over,
  // rank 0 writes the journal; every rank learns whether that worked.
  return [this, user = std::move(user)](const IterationInfo& info) {
    ++iterations_;
    if (iterations_ % d_.checkpoint_every == 0 && !journal_.replaying() && journal_.size() > saved_entries_) {
      const LocalStatus status = run_local([&] {
        if (comm_.rank() != 0) return;
        try {
          io::write_file_atomically(d_.checkpoint, journal_.serialize(signature_, iterations_));
        } catch (const std::exception& e) {
          throw InvalidArgument(std::string("cannot write the checkpoint: ") + e.what());
        }
      });
      comm_.all_gather(status, std::string());
      saved_entries_ = journal_.size();
    }
    return user ? user(info) : true;
  };
}

std::uint64_t fnv1a_bytes(std::uint64_t h, const void* data, std::size_t n) { return fnv1a(h, data, n); }

std::vector<std::uint64_t> check_rows(DataView rows, std::size_t first_row, const SegmentLayout& layout, int rank) {
  std::vector<std::uint64_t> digests;
  for (std::size_t j = layout.first_segment(rank); j < layout.end_segment(rank); ++j) {
    std::uint64_t h = 0xcbf29ce484222325ULL;
    for (std::size_t i = layout.row_begin(j); i < layout.row_end(j); ++i)
      for (std::size_t c = 0; c < rows.n_cols; ++c) {
        const double v = rows.value(i - first_row, c);
        if (!std::isfinite(v))
          throw DataError("row " + std::to_string(i) + ", column " + std::to_string(c) + " (0-based) is " +
                          (std::isnan(v) ? "NaN" : "infinite") +
                          ": a distributed fit needs finite values (drop or impute the row)");
        h = fnv1a(h, &v, sizeof v);
      }
    digests.push_back(h);
  }
  return digests;
}

std::uint64_t data_digest(const Communicator& comm, const LocalStatus& status, const std::vector<std::uint64_t>& mine) {
  std::uint64_t digest = 0xcbf29ce484222325ULL;
  for (const std::string& part : comm.all_gather(status, Writer().put_vector(mine).take())) {
    Reader r(part);
    for (const std::uint64_t h : r.get_vector<std::uint64_t>()) digest = fnv1a(digest, &h, sizeof h);
  }
  return digest;
}

DistributedFitResult fit_distributed(const Communicator& comm, DataView rows, const SegmentLayout& layout,
                                     const FitOptions& options, const DistributedOptions& d,
                                     std::uint64_t data_digest, WeightView weights) {
  if (!(d.segment_rows >= 1)) throw InvalidArgument("segment_rows must be at least 1");
  DistributedFitResult out;
  std::uint64_t digest = data_digest;
  if (!weights.empty()) digest = fnv1a(digest, weights.data, weights.n * sizeof(double));  // another data set
  Checkpoint checkpoint(comm, d, signature_of(layout, rows.n_cols, options, d, digest));
  out.resumed_after = checkpoint.resumed_after();
  const Device device = rank_device(options.device);
  const PrimitivesRequest request{device, options.precision, options.device_memory_limit, options.cuda_tuning};
  auto prims = std::make_unique<DistributedPrimitives>(comm, layout, rows, request, d.reduction, checkpoint.journal(),
                                                       weights);
  DistributedPrimitives& distributed = *prims;
  FitOptions o = options;
  o.on_iteration = checkpoint.writing(options.on_iteration);

  Resources resources({device, o.precision, o.n_threads, o.device_memory_limit, o.cuda_tuning});
  // The placed data are the distributed primitives; the view gives only the shape (the
  // initialisation reads rows through the primitives).
  PlacedData placed = PlacedData::Impl::unchecked(
      resources, DataView(static_cast<const double*>(nullptr), layout.n_rows, rows.n_cols), weights);
  placed.impl().placed = std::move(prims);
  placed.impl().notice = distributed.placement_notice();
  out.fit = fit(placed, o);
  if (!out.fit.model.empty()) {
    const SufficientStats s = distributed.gaussian_estep(prepare(out.fit.model));
    out.score = s.log_likelihood / s.weight;
  }
  return out;
}

}  // namespace cuem::mpi
