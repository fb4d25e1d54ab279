#include "mpi/distributed_hmm.hpp"

#include <algorithm>
#include <memory>
#include <sstream>
#include <string>

#include "core/hmm_fit.hpp"
#include "cuem/errors.hpp"
#include "engine/hmm_model.hpp"
#include "engine/hmm_parameter_map.hpp"
#include "engine/placed_data.hpp"
#include "engine/squarem_driver.hpp"
#include "mpi/distributed_model.hpp"

namespace cuem::mpi {
namespace {

std::uint64_t digest_of(std::uint64_t h, const std::vector<double>& v) {
  const std::uint64_t n = v.size();
  return fnv1a_bytes(fnv1a_bytes(h, &n, sizeof n), v.data(), v.size() * sizeof(double));
}

// What a checkpoint belongs to: the options that shape the fit, the units, and the data
// with their sequences.
std::string signature_of(const SegmentLayout& layout, std::size_t D, const std::vector<std::size_t>& offsets,
                         const HmmOptions& o, const DistributedOptions& d, std::uint64_t data_digest) {
  std::uint64_t h = fnv1a_bytes(data_digest, offsets.data(), offsets.size() * sizeof(std::size_t));
  // The given start and the priors (the defaults where the caller gave none).
  for (const std::vector<double>* v : {&o.startprob_init, &o.transmat_init, &o.means_init, &o.covars_init,
                                       &o.priors.startprob_prior, &o.priors.transmat_prior, &o.priors.means_prior,
                                       &o.priors.means_weight, &o.priors.covars_prior})
    h = digest_of(h, *v);
  h = fnv1a_bytes(h, &o.priors.covars_weight, sizeof o.priors.covars_weight);
  std::ostringstream s;
  s.precision(17);
  s << "Gaussian HMM, N " << layout.n_rows << ", D " << D << ", K " << o.n_components << ", "
    << to_string(o.covariance_type) << ", init_params '" << o.init_params << "', params '" << o.params
    << "', seed " << o.seed << ", n_init " << o.n_init << ", n_iter " << o.n_iter << ", tol " << o.tol
    << ", min_covar " << o.min_covar << ", " << to_string(o.acceleration) << ", " << to_string(o.precision)
    << ", units of " << layout.segment_rows << " rows, " << to_string(d.reduction);
  if (d.reduction == Reduction::allreduce) s << " over " << layout.ranks << " ranks";
  s << ", data, sequences and parameters digest " << std::hex << h;
  return s.str();
}

}  // namespace

DistributedHmmResult fit_hmm_distributed(const Communicator& comm, DataView rows, const SegmentLayout& layout,
                                         const std::vector<std::size_t>& offsets, const HmmOptions& o,
                                         const DistributedOptions& d, std::uint64_t data_digest) {
  // The whole data's shape: the start reads rows through the primitives.
  const DataView shape(static_cast<const double*>(nullptr), layout.n_rows, rows.n_cols);
  validate_hmm_options(o, shape);
  if (o.incremental_blocks > 1) throw InvalidArgument("a distributed HMM fit runs batch EM: incremental_blocks must be 1");
  if (o.missing != MissingPolicy::error)
    throw InvalidArgument("a distributed HMM fit needs complete frames (missing entries are not distributed)");
  if (offsets.empty() || offsets.front() != 0 || offsets.back() != layout.n_rows)
    throw Error("internal: sequence offsets of other data");

  DistributedHmmResult out;
  Checkpoint checkpoint(comm, d, signature_of(layout, rows.n_cols, offsets, o, d, data_digest));
  out.resumed_after = checkpoint.resumed_after();
  HmmOptions with_checkpoint = o;
  with_checkpoint.on_iteration = checkpoint.writing(o.on_iteration);

  const engine::ThreadCountScope threads(o.n_threads);
  const PrimitivesRequest request{rank_device(o.device), o.precision, o.device_memory_limit, {}};
  DistributedPrimitives prims(comm, layout, rows, request, d.reduction, checkpoint.journal());
  prims.reserve(o.covariance_type, o.n_components);
  KMeansShared shared;
  engine::GaussianHmmEM whole(prims, shape, offsets, o, shared);

  // A model per unit of this rank: its rows, on its own backend, its sequences' offsets
  // from its first row.
  const std::size_t first = layout.first_segment(comm.rank()), base = layout.rank_row_begin(comm.rank());
  const std::size_t n_local = prims.local_segments();
  std::vector<std::vector<std::size_t>> unit_offsets(n_local);
  std::vector<KMeansShared> unit_shared(n_local);
  std::vector<std::unique_ptr<engine::GaussianHmmEM>> owned;
  std::vector<engine::GaussianHmmEM*> units;
  std::size_t q = static_cast<std::size_t>(std::lower_bound(offsets.begin(), offsets.end(), base) - offsets.begin());
  for (std::size_t i = 0; i < n_local; ++i) {
    const std::size_t lo = layout.row_begin(first + i), hi = layout.row_end(first + i);
    for (; offsets[q] < hi; ++q) unit_offsets[i].push_back(offsets[q] - lo);
    unit_offsets[i].push_back(hi - lo);
    owned.push_back(std::make_unique<engine::GaussianHmmEM>(prims.local_segment(i), row_range(rows, lo - base, hi - base),
                                                            unit_offsets[i], o, unit_shared[i]));
    units.push_back(owned.back().get());
  }
  DistributedModel<engine::GaussianHmmEM> model(whole, units, prims);
  const engine::BatchOptions batch = hmm_batch_options(with_checkpoint);
  engine::BatchResult<HmmModel> run = o.acceleration == Acceleration::squarem ? engine::run_squarem_em(model, batch)
                                                                              : engine::run_batch_em(model, batch);
  std::vector<std::string> notices;
  if (!prims.placement_notice().empty()) notices.push_back(prims.placement_notice());
  out.fit = hmm_fit_result(run, prims.description(), whole.empty_states(), std::move(notices));
  return out;
}

}  // namespace cuem::mpi
