// fit(): validation, the placed data, and the Gaussian mixture model run by the batch
// EM driver (src/engine/batch_driver.hpp).
#include <memory>
#include <string>

#include "core/validate.hpp"
#include "cuem/errors.hpp"
#include "cuem/fit.hpp"
#include "engine/batch_driver.hpp"
#include "engine/gmm_model.hpp"
#include "engine/placed_data.hpp"
#include "engine/primitives.hpp"

namespace cuem {
namespace {

// The fit proper, on validated options and weights.
FitResult run_fit(PlacedData& data, const FitOptions& o) {
  PlacedData::Impl& placed = data.impl();
  const engine::ThreadCountScope threads(placed.resources->options().n_threads);
  Primitives& prims = placed.primitives();
  // The interrupt check lives as long as this call; the placed data may outlive it.
  struct InterruptScope {
    Primitives& b;
    ~InterruptScope() { b.set_interrupt({}); }
  } interrupt_scope{prims};
  if (o.interrupted) prims.set_interrupt(o.interrupted);
  prims.reserve(o.covariance_type, o.n_components);

  engine::GaussianMixtureEM model(prims, placed.X, o, placed.kmeans);
  engine::BatchResult<Model> run = engine::run_batch_em(model, {o.n_init, o.max_iter, o.tol, o.seed, o.on_iteration});

  FitResult result;
  if (!placed.notice.empty()) result.notices.push_back(placed.notice);
  result.notices.insert(result.notices.end(), run.notices.begin(), run.notices.end());
  result.model = std::move(run.params);
  result.converged = run.converged;
  result.n_iter = run.n_iter;
  result.lower_bound = run.lower_bound;
  result.best_init = run.best_init;
  result.trace = std::move(run.trace);
  result.n_decreases = run.n_decreases;
  result.max_decrease = run.max_decrease;
  // After the iterations: a backend settles its memory layout in the first E-step.
  result.device = prims.description();
  if (run.fitted) {
    const std::string swamped = model.final_notice(result.model);
    if (!swamped.empty()) result.notices.push_back(swamped);
  }
  return result;
}

}  // namespace

FitResult fit(DataView X, const FitOptions& o, WeightView sample_weight) {
  validate_data(X);
  validate_options(o, X);
  validate_weights(sample_weight, X, o.n_components);
  Resources resources({o.device, o.precision, o.n_threads, o.device_memory_limit, o.cuda_tuning});
  PlacedData data = PlacedData::Impl::unchecked(resources, X, sample_weight);
  return run_fit(data, o);
}

FitResult fit(PlacedData& data, const FitOptions& o) {
  validate_options(o, data.data());
  validate_weights(data.weights(), data.data(), o.n_components);
  return run_fit(data, o);
}

}  // namespace cuem
