// fit_bayesian() and the evaluations of a fitted posterior (include/cuem/bayesian.hpp):
// validation, the placed data, and the variational model (src/engine/vb_gmm_model.hpp)
// run by the batch EM driver.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/validate.hpp"
#include "cuem/bayesian.hpp"
#include "cuem/errors.hpp"
#include "engine/batch_driver.hpp"
#include "engine/interrupt_scope.hpp"
#include "engine/placed_data.hpp"
#include "engine/squarem_driver.hpp"
#include "engine/vb_gmm_model.hpp"
#include "engine/vb_parameter_map.hpp"

namespace cuem {
namespace {

void check_posterior(const BayesianPosterior& q, DataView X) {
  if (q.empty()) throw InvalidArgument("the posterior is empty (not fitted)");
  const std::size_t K = static_cast<std::size_t>(q.n_components), D = static_cast<std::size_t>(q.n_features);
  const std::size_t concentration = q.prior.type == WeightPrior::dirichlet_process ? 2 * K : K;
  const std::size_t nu = q.covariance_type == CovarianceType::tied ? 1 : K;
  const std::size_t cov = covariance_size(q.covariance_type, q.n_components, q.n_features);
  if (q.weight_concentration.size() != concentration || q.mean_precision.size() != K || q.means.size() != K * D ||
      q.degrees_of_freedom.size() != nu || q.covariances.size() != cov || q.precisions_cholesky.size() != cov)
    throw InvalidArgument("the posterior's arrays do not have the shapes of its n_components, n_features and types");
  if (X.n_cols != D)
    throw DataError("X has " + std::to_string(X.n_cols) + " features, but the model was fitted with " +
                    std::to_string(D) + " features");
}

// f(placed data) on X placed for this call on `where`'s device, after the checks.
template <typename F>
auto on_view(const BayesianPosterior& q, DataView X, const EvaluateOptions& where, F&& f) {
  validate_data(X, MissingPolicy::error);
  check_posterior(q, X);
  Resources resources({where.device, where.precision, 0, where.device_memory_limit, where.cuda_tuning});
  PlacedData data = PlacedData::Impl::unchecked(resources, X, {});
  return f(data.impl().primitives());
}

}  // namespace

BayesianFitResult fit_bayesian(DataView X, const BayesianOptions& o, WeightView sample_weight) {
  validate_data(X, MissingPolicy::error);
  validate_options(o.em, X);
  engine::validate_bayesian_options(o, X);
  validate_weights(sample_weight, X, o.em.n_components);
  const FitOptions& em = o.em;
  Resources resources({em.device, em.precision, em.n_threads, em.device_memory_limit, em.cuda_tuning});
  PlacedData data = PlacedData::Impl::unchecked(resources, X, sample_weight);
  PlacedData::Impl& placed = data.impl();
  const engine::ThreadCountScope threads(em.n_threads);
  Primitives& prims = placed.primitives();
  const engine::InterruptScope interrupt_scope(em.interrupted, {&prims});
  prims.reserve(em.covariance_type, em.n_components);

  const BayesianPrior prior = engine::resolve_prior(prims, o);
  engine::VariationalGaussianMixture model(prims, X, sample_weight, o, prior, placed.kmeans);
  const int n_init = o.warm_start ? 1 : em.n_init;
  const engine::BatchOptions batch{n_init, em.max_iter, em.tol, em.seed, em.on_iteration};
  engine::BatchResult<BayesianPosterior> run = em.acceleration == Acceleration::squarem
                                                   ? engine::run_squarem_em(model, batch)
                                                   : engine::run_batch_em(model, batch);

  BayesianFitResult result;
  if (!placed.notice.empty()) result.notices.push_back(placed.notice);
  result.notices.insert(result.notices.end(), run.notices.begin(), run.notices.end());
  result.posterior = std::move(run.params);
  result.converged = run.converged;
  result.n_iter = run.n_iter;
  result.lower_bound = run.lower_bound;
  result.best_init = run.best_init;
  result.trace = std::move(run.trace);
  result.n_decreases = run.n_decreases;
  result.max_decrease = run.max_decrease;
  result.convergence_rate = run.convergence_rate;
  result.n_estep_passes = run.n_estep_passes;
  result.kept_components = model.kept_components(run.best_init);
  result.prunes = model.prunes(run.best_init);
  result.device = prims.description();
  return result;
}

std::vector<double> predict_proba(const BayesianPosterior& q, DataView X, const EvaluateOptions& where) {
  return on_view(q, X, where, [&](Primitives& prims) {
    std::vector<double> resp(X.n_rows * static_cast<std::size_t>(q.n_components));
    prims.posteriors(engine::vb_prepare(q), 0, X.n_rows, nullptr, resp.data());
    return resp;
  });
}

std::vector<int> predict(const BayesianPosterior& q, DataView X, const EvaluateOptions& where) {
  const std::vector<double> resp = predict_proba(q, X, where);
  const std::size_t K = static_cast<std::size_t>(q.n_components);
  std::vector<int> labels(X.n_rows);
  for (std::size_t i = 0; i < X.n_rows; ++i) {
    const double* r = resp.data() + i * K;
    labels[i] = static_cast<int>(std::max_element(r, r + K) - r);
  }
  return labels;
}

std::vector<double> score_samples(const BayesianPosterior& q, DataView X, const EvaluateOptions& where) {
  return on_view(q, X, where, [&](Primitives& prims) {
    std::vector<double> log_prob(X.n_rows);
    prims.posteriors(engine::vb_prepare(q), 0, X.n_rows, log_prob.data(), nullptr);
    return log_prob;
  });
}

double score(const BayesianPosterior& q, DataView X, const EvaluateOptions& where, WeightView w) {
  const std::vector<double> lp = score_samples(q, X, where);
  validate_weights(w, X);
  double s = 0.0, total = 0.0;
  for (std::size_t i = 0; i < lp.size(); ++i) {
    const double wi = w.at(i);
    if (wi == 0.0) continue;
    s += wi * lp[i];
    total += wi;
  }
  return s / total;
}

}  // namespace cuem
