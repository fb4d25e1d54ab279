// fit(): validation, the placed data, and the Gaussian mixture model run by the batch
// EM driver (src/engine/batch_driver.hpp): the complete-data model, or on data with
// missing entries the missing-data one (src/engine/missing_gmm_model.hpp).
#include <memory>
#include <string>

#include "core/make_incomplete_rows.hpp"
#include "core/validate.hpp"
#include "cuem/errors.hpp"
#include "cuem/fit.hpp"
#include "engine/batch_driver.hpp"
#include "engine/gmm_model.hpp"
#include "engine/gmm_parameter_map.hpp"
#include "engine/incomplete_rows.hpp"
#include "engine/missing_gmm_model.hpp"
#include "engine/missing_layout.hpp"
#include "engine/placed_data.hpp"
#include "engine/primitives.hpp"
#include "engine/squarem_driver.hpp"

namespace cuem {
namespace {

// The interrupt check lives as long as a fit; placed data may outlive it.
struct InterruptScope {
  Primitives* prims[2] = {nullptr, nullptr};
  InterruptScope(const FitOptions& o, Primitives* a, Primitives* b = nullptr) : prims{a, b} {
    for (Primitives* p : prims)
      if (p && o.interrupted) p->set_interrupt(o.interrupted);
  }
  ~InterruptScope() {
    for (Primitives* p : prims)
      if (p) p->set_interrupt({});
  }
};

// A FitResult from the driver's.
FitResult result_of(engine::BatchResult<Model>&& run, const std::string& placement_notice) {
  FitResult result;
  if (!placement_notice.empty()) result.notices.push_back(placement_notice);
  result.notices.insert(result.notices.end(), run.notices.begin(), run.notices.end());
  result.model = std::move(run.params);
  result.converged = run.converged;
  result.n_iter = run.n_iter;
  result.lower_bound = run.lower_bound;
  result.best_init = run.best_init;
  result.trace = std::move(run.trace);
  result.n_decreases = run.n_decreases;
  result.max_decrease = run.max_decrease;
  result.convergence_rate = run.convergence_rate;
  result.n_estep_passes = run.n_estep_passes;
  return result;
}

// The driver the options ask for, over any model whose Params is a cuem::Model (the
// Gaussian mixtures' parameter map serves SQUAREM).
template <class M>
engine::BatchResult<Model> run_driver(M& model, const FitOptions& o) {
  const engine::BatchOptions batch{o.n_init, o.max_iter, o.tol, o.seed, o.on_iteration};
  if (o.acceleration == Acceleration::squarem) return engine::run_squarem_em(model, batch);
  return engine::run_batch_em(model, batch);
}

// The fit proper, on validated options and weights.
FitResult run_fit(PlacedData& data, const FitOptions& o) {
  PlacedData::Impl& placed = data.impl();
  const engine::ThreadCountScope threads(placed.resources->options().n_threads);
  Primitives& prims = placed.primitives();
  const InterruptScope interrupt_scope(o, &prims);
  prims.reserve(o.covariance_type, o.n_components);

  engine::GaussianMixtureEM model(prims, placed.X, o, placed.kmeans);
  FitResult result = result_of(run_driver(model, o), placed.notice);
  // After the iterations: a backend settles its memory layout in the first E-step.
  result.device = prims.description();
  if (!result.model.empty()) {
    const std::string swamped = model.final_notice(result.model);
    if (!swamped.empty()) result.notices.push_back(swamped);
  }
  return result;
}

std::string empty_rows_notice(const MissingSummary& s) {
  std::string rows;
  for (std::size_t i = 0; i < s.first_empty_rows.size(); ++i)
    rows += (i ? ", " : "") + std::to_string(s.first_empty_rows[i]);
  if (s.empty_rows > s.first_empty_rows.size()) rows += ", ...";
  return std::to_string(s.empty_rows) + (s.empty_rows == 1 ? " row has" : " rows have") +
         " every entry missing and carry no information: skipped (row " + rows + ", 0-based)";
}

// The fit of data with missing entries: the rows regrouped by pattern (a copy), the
// complete ones placed for the ordinary E-step, the filled copy for k-means.
FitResult run_missing_fit(Resources& resources, DataView X, WeightView w, const FitOptions& o) {
  const engine::ThreadCountScope threads(resources.options().n_threads);
  const engine::MissingLayout layout = engine::make_missing_layout(X, w, true);
  const MissingSummary& summary = layout.summary;
  std::size_t informative = layout.n_rows;
  if (!layout.weights.empty()) {
    informative = 0;
    for (double v : layout.weights) informative += v > 0.0;
  }
  if (informative < static_cast<std::size_t>(o.n_components))
    throw DataError("n_components = " + std::to_string(o.n_components) + " is more than the " +
                    std::to_string(informative) + " rows that have an observed entry" +
                    (layout.weights.empty() ? "" : " and a positive weight") + "; lower n_components");

  const ResourceOptions& ro = resources.options();
  const PrimitivesRequest request{ro.device, ro.precision, ro.device_memory_limit, ro.cuda_tuning};
  std::string notice;
  std::shared_ptr<cuda::DeviceContext>& context = resources.impl().cuda_context;
  std::unique_ptr<Primitives> filled = make_primitives(layout.view(), layout.weight_view(), request, &notice, &context);
  std::unique_ptr<Primitives> complete;
  if (layout.n_complete > 0)
    complete = make_primitives(layout.complete_view(), layout.complete_weight_view(), request, nullptr, &context);
  std::unique_ptr<engine::IncompleteRows> incomplete = make_incomplete_rows(layout, request, *filled, &context);
  const InterruptScope interrupt_scope(o, filled.get(), complete.get());
  filled->reserve(o.covariance_type, o.n_components);
  if (complete) complete->reserve(o.covariance_type, o.n_components);

  KMeansShared shared;
  engine::MissingDataGaussianMixtureEM model(*filled, layout.view(), complete.get(), *incomplete, o, shared);
  FitResult result = result_of(run_driver(model, o), notice);
  result.device = (complete ? complete->description() : std::string(filled->name())) +
                  "; rows with missing entries: " + incomplete->name();
  result.missing = summary;
  if (summary.empty_rows > 0) result.notices.push_back(empty_rows_notice(summary));
  return result;
}

}  // namespace

FitResult fit(DataView X, const FitOptions& o, WeightView sample_weight) {
  const bool has_missing = validate_data(X, o.missing);
  validate_options(o, X);
  validate_weights(sample_weight, X, o.n_components);
  Resources resources({o.device, o.precision, o.n_threads, o.device_memory_limit, o.cuda_tuning});
  if (has_missing) return run_missing_fit(resources, X, sample_weight, o);
  PlacedData data = PlacedData::Impl::unchecked(resources, X, sample_weight);
  return run_fit(data, o);
}

FitResult fit(PlacedData& data, const FitOptions& o) {
  validate_options(o, data.data());
  validate_weights(data.weights(), data.data(), o.n_components);
  PlacedData::Impl& placed = data.impl();
  if (placed.has_missing) {
    if (o.missing != MissingPolicy::marginalize)
      throw DataError("the placed data hold missing entries (NaN) and the fit's missing policy is 'error'; fit "
                      "with missing='marginalize'");
    return run_missing_fit(*placed.resources, placed.X, placed.w, o);
  }
  return run_fit(data, o);
}

}  // namespace cuem
