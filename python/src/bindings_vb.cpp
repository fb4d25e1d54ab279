// cuem._cuem's functions under cuem.BayesianGaussianMixture (python/cuem/bayesian.py):
// fit_bayesian and the evaluations of a fitted posterior, on plain NumPy arrays in
// scikit-learn's shapes. Data are taken as bindings.cpp takes them (read in place; the
// Python layer converts anything else once), the GIL is released while cuem computes,
// and Ctrl-C and the iteration callback are wired in the same way.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "array_support.hpp"
#include "cuem/bayesian.hpp"
#include "cuem/errors.hpp"
#include "fit_hooks.hpp"

namespace nb = nanobind;
using namespace nb::literals;

namespace {

using namespace cuem_py;

// A posterior from scikit-learn-shaped arrays (the prior type decides the concentration's length).
cuem::BayesianPosterior make_posterior(const std::string& covariance_type, const std::string& prior_type,
                                       const ParameterArray& weight_concentration, const ParameterArray& mean_precision,
                                       const ParameterArray& means, const ParameterArray& degrees_of_freedom,
                                       const ParameterArray& covariances, const ParameterArray& precisions_cholesky) {
  if (means.ndim() != 2) throw cuem::InvalidArgument("means must be a 2-d array (n_components, n_features)");
  cuem::BayesianPosterior q;
  q.covariance_type = cuem::parse_covariance_type(covariance_type);
  q.prior.type = cuem::parse_weight_prior(prior_type);
  q.n_components = static_cast<int>(means.shape(0));
  q.n_features = static_cast<int>(means.shape(1));
  q.weight_concentration = to_vector(weight_concentration);
  q.mean_precision = to_vector(mean_precision);
  q.means = to_vector(means);
  q.degrees_of_freedom = to_vector(degrees_of_freedom);
  q.covariances = to_vector(covariances);
  q.precisions_cholesky = to_vector(precisions_cholesky);
  return q;
}

nb::dict fit_bayesian(const InputMatrix& X, int n_components, const std::string& covariance_type, double tol,
                      double reg_covar, int max_iter, int n_init, const std::string& init_params, std::uint64_t seed,
                      const std::string& weight_concentration_prior_type,
                      std::optional<double> weight_concentration_prior, std::optional<double> mean_precision_prior,
                      const std::optional<ParameterArray>& mean_prior, std::optional<double> degrees_of_freedom_prior,
                      const std::optional<ParameterArray>& covariance_prior,
                      const std::optional<ParameterArray>& resp_init, nb::object warm_start, const std::string& device,
                      const std::string& precision, int n_threads, std::size_t device_memory_limit,
                      nb::object on_iteration, const std::optional<WeightArray>& sample_weight,
                      double prune_threshold, int prune_patience, const std::string& acceleration) {
  cuem::BayesianOptions o;
  o.prune_threshold = prune_threshold;
  o.prune_patience = prune_patience;
  cuem::FitOptions& em = o.em;
  em.n_components = n_components;
  em.covariance_type = cuem::parse_covariance_type(covariance_type);
  em.tol = tol;
  em.reg_covar = reg_covar;
  em.max_iter = max_iter;
  em.n_init = n_init;
  em.init = cuem::parse_init_method(init_params);
  em.seed = seed;
  em.device = cuem::parse_device(device);
  em.precision = cuem::parse_precision(precision);
  em.n_threads = n_threads;
  em.device_memory_limit = device_memory_limit;
  em.acceleration = cuem::parse_acceleration(acceleration);
  o.weight_concentration_prior_type = cuem::parse_weight_prior(weight_concentration_prior_type);
  o.weight_concentration_prior = weight_concentration_prior;
  o.mean_precision_prior = mean_precision_prior;
  o.degrees_of_freedom_prior = degrees_of_freedom_prior;
  if (mean_prior) o.mean_prior = to_vector(*mean_prior);
  if (covariance_prior) o.covariance_prior = to_vector(*covariance_prior);
  if (resp_init) o.resp_init = to_vector(*resp_init);
  if (!warm_start.is_none()) {
    auto get = [&](const char* key) { return nb::cast<ParameterArray>(warm_start[key]); };
    o.warm_start = make_posterior(covariance_type, weight_concentration_prior_type, get("weight_concentration"),
                                  get("mean_precision"), get("means"), get("degrees_of_freedom"), get("covariances"),
                                  get("precisions_cholesky"));
  }

  FitHooks hooks(std::move(on_iteration));
  hooks.attach(em);
  const cuem::BayesianFitResult r = hooks.run([&] { return cuem::fit_bayesian(view_of(X), o, weights_of(sample_weight)); });

  const cuem::BayesianPosterior& q = r.posterior;
  const std::size_t K = static_cast<std::size_t>(q.n_components), D = static_cast<std::size_t>(q.n_features);
  std::vector<double> lower_bounds;
  for (const cuem::TracePoint& t : r.trace)
    if (t.init == r.best_init) lower_bounds.push_back(t.mean_log_likelihood);
  const std::size_t n_bounds = lower_bounds.size();

  nb::dict out;
  const std::size_t n_concentration = q.weight_concentration.size();
  out["weight_concentration"] = to_numpy(std::vector<double>(q.weight_concentration), {n_concentration});
  out["mean_precision"] = to_numpy(std::vector<double>(q.mean_precision), {K});
  out["means"] = to_numpy(std::vector<double>(q.means), {K, D});
  const std::size_t n_dof = q.degrees_of_freedom.size();
  out["degrees_of_freedom"] = to_numpy(std::vector<double>(q.degrees_of_freedom), {n_dof});
  out["covariances"] = to_numpy(std::vector<double>(q.covariances), covariance_shape(q.covariance_type, K, D));
  out["precisions_cholesky"] =
      to_numpy(std::vector<double>(q.precisions_cholesky), covariance_shape(q.covariance_type, K, D));
  out["weights"] = to_numpy(q.weights(), {K});
  out["weight_concentration_prior"] = q.prior.weight_concentration;
  out["mean_precision_prior"] = q.prior.mean_precision;
  out["mean_prior"] = to_numpy(std::vector<double>(q.prior.mean), {D});
  out["degrees_of_freedom_prior"] = q.prior.degrees_of_freedom;
  const std::size_t n_cov_prior = q.prior.covariance.size();
  out["covariance_prior"] = to_numpy(std::vector<double>(q.prior.covariance),
                                     n_cov_prior == D * D && q.covariance_type != cuem::CovarianceType::diag
                                         ? std::vector<std::size_t>{D, D}
                                         : std::vector<std::size_t>{n_cov_prior});
  out["converged"] = r.converged;
  out["n_iter"] = r.n_iter;
  out["lower_bound"] = r.lower_bound;
  out["lower_bounds"] = to_numpy(std::move(lower_bounds), {n_bounds});
  out["best_init"] = r.best_init;
  out["n_decreases"] = r.n_decreases;
  out["max_decrease"] = r.max_decrease;
  nb::list kept, prunes;
  for (int k : r.kept_components) kept.append(k);
  for (const cuem::PruneEvent& e : r.prunes) {
    nb::list components;
    for (int k : e.components) components.append(k);
    prunes.append(nb::make_tuple(e.iteration, components));
  }
  out["kept_components"] = kept;
  out["prunes"] = prunes;
  out["convergence_rate"] = r.convergence_rate;  // NaN where too few steps to tell
  out["n_estep_passes"] = r.n_estep_passes;
  out["device"] = r.device;
  nb::list notices;
  for (const std::string& n : r.notices) notices.append(n);
  out["notices"] = notices;
  return out;
}

// The evaluations: which one, X, the posterior's arrays, and where.
nb::object bayesian_evaluate(const std::string& what, const InputMatrix& X, const std::string& covariance_type,
                             const std::string& prior_type, const ParameterArray& weight_concentration,
                             const ParameterArray& mean_precision, const ParameterArray& means,
                             const ParameterArray& degrees_of_freedom, const ParameterArray& covariances,
                             const ParameterArray& precisions_cholesky, const std::string& device,
                             const std::string& precision, std::size_t device_memory_limit,
                             const std::optional<WeightArray>& sample_weight) {
  const cuem::BayesianPosterior q = make_posterior(covariance_type, prior_type, weight_concentration, mean_precision,
                                                   means, degrees_of_freedom, covariances, precisions_cholesky);
  cuem::EvaluateOptions where;
  where.device = cuem::parse_device(device);
  where.precision = cuem::parse_precision(precision);
  where.device_memory_limit = device_memory_limit;
  const cuem::DataView v = view_of(X);
  const std::size_t N = X.shape(0), K = static_cast<std::size_t>(q.n_components);
  if (what == "predict") {
    std::vector<int> l;
    {
      nb::gil_scoped_release release;
      l = cuem::predict(q, v, where);
    }
    return nb::cast(to_numpy(std::vector<std::int64_t>(l.begin(), l.end()), {N}));
  }
  if (what == "predict_proba") {
    std::vector<double> resp;
    {
      nb::gil_scoped_release release;
      resp = cuem::predict_proba(q, v, where);
    }
    return nb::cast(to_numpy(std::move(resp), {N, K}));
  }
  if (what == "score_samples") {
    std::vector<double> lp;
    {
      nb::gil_scoped_release release;
      lp = cuem::score_samples(q, v, where);
    }
    return nb::cast(to_numpy(std::move(lp), {N}));
  }
  if (what == "score") {
    double s = 0;
    {
      nb::gil_scoped_release release;
      s = cuem::score(q, v, where, weights_of(sample_weight));
    }
    return nb::cast(s);
  }
  throw cuem::InvalidArgument("unknown evaluation '" + what + "'");
}

}  // namespace

void register_bayesian(nb::module_& m) {
  m.def("fit_bayesian", &fit_bayesian, "X"_a.noconvert(), "n_components"_a, "covariance_type"_a, "tol"_a,
        "reg_covar"_a, "max_iter"_a, "n_init"_a, "init_params"_a, "seed"_a,
        "weight_concentration_prior_type"_a = "dirichlet_process", "weight_concentration_prior"_a = nb::none(),
        "mean_precision_prior"_a = nb::none(), "mean_prior"_a = nb::none(),
        "degrees_of_freedom_prior"_a = nb::none(), "covariance_prior"_a = nb::none(), "resp_init"_a = nb::none(),
        "warm_start"_a = nb::none(), "device"_a = "cpu", "precision"_a = "float32", "n_threads"_a = 0,
        "device_memory_limit"_a = 0, "on_iteration"_a = nb::none(), "sample_weight"_a.noconvert() = nb::none(),
        "prune_threshold"_a = 0.0, "prune_patience"_a = 10, "acceleration"_a = "none",
        "Fits a variational Bayesian Gaussian mixture (scikit-learn's BayesianGaussianMixture). Returns a dict: "
        "the posterior (weight_concentration: K, or 2K for the Dirichlet process, alphas then betas; "
        "mean_precision, means, degrees_of_freedom, covariances, precisions_cholesky, weights), the resolved "
        "priors (*_prior), converged, n_iter, lower_bound, lower_bounds (the best restart's), best_init, "
        "n_decreases, max_decrease, kept_components (each component's index at the start), prunes (a list of "
        "(iteration, [components removed])), convergence_rate, n_estep_passes, device, notices. prune_threshold > 0 removes components whose share "
        "of the data stays below it for prune_patience iterations (beyond scikit-learn). resp_init: n_samples x n_components responsibilities to "
        "start from; warm_start: a dict of a fitted posterior's arrays.");
  m.def("bayesian_evaluate", &bayesian_evaluate, "what"_a, "X"_a.noconvert(), "covariance_type"_a,
        "weight_concentration_prior_type"_a, "weight_concentration"_a, "mean_precision"_a, "means"_a,
        "degrees_of_freedom"_a, "covariances"_a, "precisions_cholesky"_a, "device"_a = "cpu",
        "precision"_a = "float32", "device_memory_limit"_a = 0, "sample_weight"_a.noconvert() = nb::none(),
        "predict, predict_proba, score_samples or score of a fitted posterior on X (what names which).");
}
