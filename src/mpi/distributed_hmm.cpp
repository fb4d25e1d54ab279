#include "mpi/distributed_hmm.hpp"

#include <algorithm>
#include <initializer_list>
#include <memory>
#include <sstream>
#include <string>

#include "core/hmm_fit.hpp"
#include "cuem/errors.hpp"
#include "engine/gmm_hmm_model.hpp"
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

std::uint64_t digest_of(std::uint64_t h, const std::vector<std::size_t>& offsets,
                        std::initializer_list<const std::vector<double>*> arrays) {
  h = fnv1a_bytes(h, offsets.data(), offsets.size() * sizeof(std::size_t));
  for (const std::vector<double>* v : arrays) h = digest_of(h, *v);
  return h;
}

// What a checkpoint belongs to: the options that shape the fit, the units, and the data
// with their sequences, the given start and the priors (digested).
template <class Options>
std::string signature_of(const char* kind, const SegmentLayout& layout, std::size_t D, const Options& o,
                         const DistributedOptions& d, std::uint64_t digest, const std::string& extra) {
  std::ostringstream s;
  s.precision(17);
  s << kind << ", N " << layout.n_rows << ", D " << D << ", K " << o.n_components << ", "
    << to_string(o.covariance_type) << extra << ", init_params '" << o.init_params << "', params '" << o.params
    << "', seed " << o.seed << ", n_init " << o.n_init << ", n_iter " << o.n_iter << ", tol " << o.tol
    << ", min_covar " << o.min_covar << ", " << to_string(o.precision) << ", units of " << layout.segment_rows
    << " rows, " << to_string(d.reduction);
  if (d.reduction == Reduction::allreduce) s << " over " << layout.ranks << " ranks";
  s << ", data, sequences and parameters digest " << std::hex << digest;
  return s.str();
}

void check_sequences(const SegmentLayout& layout, const std::vector<std::size_t>& offsets) {
  if (offsets.empty() || offsets.front() != 0 || offsets.back() != layout.n_rows)
    throw Error("internal: sequence offsets of other data");
}

// A model of type EM per unit of this rank: the unit's rows on its own backend, its
// sequences' offsets counted from its first row.
template <class EM, class Options>
struct UnitModels {
  std::vector<std::vector<std::size_t>> offsets;
  std::vector<KMeansShared> shared;
  std::vector<std::unique_ptr<EM>> owned;
  std::vector<EM*> models;

  UnitModels(DistributedPrimitives& prims, int rank, DataView rows, const SegmentLayout& layout,
             const std::vector<std::size_t>& all, const Options& o)
      : offsets(prims.local_segments()), shared(prims.local_segments()) {
    const std::size_t first = layout.first_segment(rank), base = layout.rank_row_begin(rank);
    std::size_t q = static_cast<std::size_t>(std::lower_bound(all.begin(), all.end(), base) - all.begin());
    for (std::size_t i = 0; i < offsets.size(); ++i) {
      const std::size_t lo = layout.row_begin(first + i), hi = layout.row_end(first + i);
      for (; all[q] < hi; ++q) offsets[i].push_back(all[q] - lo);
      offsets[i].push_back(hi - lo);
      owned.push_back(
          std::make_unique<EM>(prims.local_segment(i), row_range(rows, lo - base, hi - base), offsets[i], o, shared[i]));
      models.push_back(owned.back().get());
    }
  }
};

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
  check_sequences(layout, offsets);

  DistributedHmmResult out;
  const HmmPriors& p = o.priors;
  const std::vector<double> covars_weight{p.covars_weight};
  const std::uint64_t digest =
      digest_of(data_digest, offsets,
                {&o.startprob_init, &o.transmat_init, &o.means_init, &o.covars_init, &p.startprob_prior,
                 &p.transmat_prior, &p.means_prior, &p.means_weight, &p.covars_prior, &covars_weight});
  Checkpoint checkpoint(comm, d,
                        signature_of("Gaussian HMM", layout, rows.n_cols, o, d, digest,
                                     std::string(", ") + to_string(o.acceleration)));
  out.resumed_after = checkpoint.resumed_after();
  HmmOptions with_checkpoint = o;
  with_checkpoint.on_iteration = checkpoint.writing(o.on_iteration);

  const engine::ThreadCountScope threads(o.n_threads);
  const PrimitivesRequest request{rank_device(o.device), o.precision, o.device_memory_limit, {}};
  DistributedPrimitives prims(comm, layout, rows, request, d.reduction, checkpoint.journal());
  prims.reserve(o.covariance_type, o.n_components);
  KMeansShared shared;
  engine::GaussianHmmEM whole(prims, shape, offsets, o, shared);
  UnitModels<engine::GaussianHmmEM, HmmOptions> units(prims, comm.rank(), rows, layout, offsets, o);
  DistributedModel<engine::GaussianHmmEM> model(whole, units.models, prims);
  const engine::BatchOptions batch = hmm_batch_options(with_checkpoint);
  engine::BatchResult<HmmModel> run = o.acceleration == Acceleration::squarem ? engine::run_squarem_em(model, batch)
                                                                              : engine::run_batch_em(model, batch);
  std::vector<std::string> notices;
  if (!prims.placement_notice().empty()) notices.push_back(prims.placement_notice());
  out.fit = hmm_fit_result(run, prims.description(), whole.empty_states(), std::move(notices));
  return out;
}

DistributedGmmHmmResult fit_gmm_hmm_distributed(const Communicator& comm, DataView rows, const SegmentLayout& layout,
                                                const std::vector<std::size_t>& offsets, const GmmHmmOptions& o,
                                                const DistributedOptions& d, std::uint64_t data_digest) {
  const DataView shape(static_cast<const double*>(nullptr), layout.n_rows, rows.n_cols);
  validate_gmm_hmm_options(o, shape);
  check_sequences(layout, offsets);

  DistributedGmmHmmResult out;
  const GmmHmmPriors& p = o.priors;
  const GmmHmmModel& g = o.init;
  const std::uint64_t digest =
      digest_of(data_digest, offsets,
                {&g.startprob, &g.transmat, &g.weights, &g.means, &g.covars, &p.startprob_prior, &p.transmat_prior,
                 &p.weights_prior, &p.means_prior, &p.means_weight, &p.covars_prior, &p.covars_weight});
  Checkpoint checkpoint(comm, d,
                        signature_of("GMMHMM", layout, rows.n_cols, o, d, digest,
                                     ", " + std::to_string(o.n_mix) + " components a state"));
  out.resumed_after = checkpoint.resumed_after();

  const engine::ThreadCountScope threads(o.n_threads);
  const PrimitivesRequest request{rank_device(o.device), o.precision, o.device_memory_limit, {}};
  DistributedPrimitives prims(comm, layout, rows, request, d.reduction, checkpoint.journal());
  const CovarianceType type = o.covariance_type == CovarianceType::tied ? CovarianceType::full : o.covariance_type;
  prims.reserve(type, o.n_components * o.n_mix);
  KMeansShared shared;
  engine::GmmHmmEM whole(prims, shape, offsets, o, shared);
  UnitModels<engine::GmmHmmEM, GmmHmmOptions> units(prims, comm.rank(), rows, layout, offsets, o);
  DistributedModel<engine::GmmHmmEM> model(whole, units.models, prims);
  engine::BatchResult<GmmHmmModel> run =
      engine::run_batch_em(model, {o.n_init, o.n_iter, o.tol, o.seed, checkpoint.writing(o.on_iteration)});
  std::vector<std::string> notices;
  if (!prims.placement_notice().empty()) notices.push_back(prims.placement_notice());
  out.fit = gmm_hmm_fit_result(run, prims.description(), std::move(notices));
  return out;
}

}  // namespace cuem::mpi
