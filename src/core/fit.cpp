// fit(): validation, the placed data, and the Gaussian mixture model run by the batch
// EM driver (src/engine/batch_driver.hpp).
#include <omp.h>

#include <memory>
#include <string>

#include "core/backend.hpp"
#include "core/validate.hpp"
#include "cuem/errors.hpp"
#include "cuem/fit.hpp"
#include "engine/batch_driver.hpp"
#include "engine/gmm_model.hpp"

namespace cuem {
namespace {

// Sets OpenMP's thread count for this thread's parallel regions and restores it.
class ThreadCountScope {
 public:
  explicit ThreadCountScope(int n) : previous_(omp_get_max_threads()), active_(n > 0) {
    if (active_) omp_set_num_threads(n);
  }
  ~ThreadCountScope() {
    if (active_) omp_set_num_threads(previous_);
  }
  ThreadCountScope(const ThreadCountScope&) = delete;
  ThreadCountScope& operator=(const ThreadCountScope&) = delete;

 private:
  int previous_;
  bool active_;
};

}  // namespace

FitResult fit(DataView X, const FitOptions& o, WeightView sample_weight) {
  validate_data(X);
  validate_options(o, X);
  validate_weights(sample_weight, X, o.n_components);
  if (!sample_weight.empty())
    throw InvalidArgument("sample_weight is not supported by this build yet (the weighted primitives are to come)");
  const ThreadCountScope threads(o.n_threads);
  std::string notice;
  const std::unique_ptr<Backend> backend =
      make_backend(X, {o.device, o.precision, o.device_memory_limit}, &notice);
  if (o.interrupted) backend->set_interrupt(o.interrupted);
  backend->reserve(o.covariance_type, o.n_components);

  engine::GaussianMixtureEM model(*backend, X, o);
  engine::BatchResult<Model> run = engine::run_batch_em(model, {o.n_init, o.max_iter, o.tol, o.seed, o.on_iteration});

  FitResult result;
  if (!notice.empty()) result.notices.push_back(notice);
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
  result.device = backend->description();
  if (run.fitted) {
    const std::string swamped = model.final_notice(result.model);
    if (!swamped.empty()) result.notices.push_back(swamped);
  }
  return result;
}

}  // namespace cuem
