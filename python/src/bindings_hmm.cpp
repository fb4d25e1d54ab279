// cuem._cuem's functions under cuem.GaussianHMM (python/cuem/hmm.py): fit_hmm and the
// evaluations of a fitted HMM (score, posteriors, decode) and sampling, on NumPy arrays;
// the statistics and M-step that cuem.dask.GaussianHMM drives.
// Covariances travel in cuem's per-type layout (include/cuem/model.hpp); hmm.py gives
// hmmlearn's shapes. Data are read in place as bindings.cpp reads them, the GIL is
// released while cuem computes, and Ctrl-C and the iteration callback are wired by FitHooks.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <cstdint>
#include <optional>
#include <limits>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "array_support.hpp"
#include "cuem/errors.hpp"
#include "cuem/gmm_hmm.hpp"
#include "cuem/hmm.hpp"
#include "fit_hooks.hpp"

namespace nb = nanobind;
using namespace nb::literals;

namespace {

using namespace cuem_py;

std::vector<double> optional_vector(const std::optional<ParameterArray>& a) { return a ? to_vector(*a) : std::vector<double>{}; }

cuem::HmmModel make_model(const std::string& covariance_type, const ParameterArray& startprob,
                          const ParameterArray& transmat, const ParameterArray& means,
                          const ParameterArray& covars) {
  if (means.ndim() != 2) throw cuem::InvalidArgument("means must be a 2-d array (n_components, n_features)");
  cuem::HmmModel m;
  m.startprob = to_vector(startprob);
  m.transmat = to_vector(transmat);
  m.emissions.covariance_type = cuem::parse_covariance_type(covariance_type);
  m.emissions.n_components = static_cast<int>(means.shape(0));
  m.emissions.n_features = static_cast<int>(means.shape(1));
  m.emissions.weights.assign(means.shape(0), 1.0 / static_cast<double>(means.shape(0)));
  m.emissions.means = to_vector(means);
  m.emissions.covariances = to_vector(covars);
  return m;
}

cuem::HmmEvaluateOptions where_of(const std::string& device, const std::string& precision) {
  cuem::HmmEvaluateOptions w;
  w.device = cuem::parse_device(device);
  w.precision = cuem::parse_precision(precision);
  return w;
}

nb::dict model_dict(const cuem::HmmModel& m) {
  const std::size_t K = static_cast<std::size_t>(m.n_components()), D = static_cast<std::size_t>(m.n_features());
  nb::dict out;
  out["startprob"] = to_numpy(std::vector<double>(m.startprob), {K});
  out["transmat"] = to_numpy(std::vector<double>(m.transmat), {K, K});
  out["means"] = to_numpy(std::vector<double>(m.emissions.means), {K, D});
  out["covars"] = to_numpy(std::vector<double>(m.emissions.covariances), covariance_shape(m.covariance_type(), K, D));
  return out;
}

cuem::HmmPriors priors_of(const ParameterArray& startprob_prior, const ParameterArray& transmat_prior,
                          const ParameterArray& means_prior, const ParameterArray& means_weight,
                          const ParameterArray& covars_prior, double covars_weight) {
  cuem::HmmPriors p;
  p.startprob_prior = to_vector(startprob_prior);
  p.transmat_prior = to_vector(transmat_prior);
  p.means_prior = to_vector(means_prior);
  p.means_weight = to_vector(means_weight);
  p.covars_prior = to_vector(covars_prior);
  p.covars_weight = covars_weight;
  return p;
}

// The options fit_hmm and OnlineGaussianHmm share.
cuem::HmmOptions hmm_options(int n_components, const std::string& covariance_type, double min_covar,
                             std::uint64_t seed, const std::string& params, const std::string& init_params,
                             const ParameterArray& startprob_prior, const ParameterArray& transmat_prior,
                             const ParameterArray& means_prior, const ParameterArray& means_weight,
                             const ParameterArray& covars_prior, double covars_weight,
                             const std::optional<ParameterArray>& startprob,
                             const std::optional<ParameterArray>& transmat, const std::optional<ParameterArray>& means,
                             const std::optional<ParameterArray>& covars, const std::string& device,
                             const std::string& precision, int n_threads, const std::string& missing) {
  cuem::HmmOptions o;
  o.n_components = n_components;
  o.covariance_type = cuem::parse_covariance_type(covariance_type);
  o.min_covar = min_covar;
  o.seed = seed;
  o.params = params;
  o.init_params = init_params;
  o.priors = priors_of(startprob_prior, transmat_prior, means_prior, means_weight, covars_prior, covars_weight);
  o.startprob_init = optional_vector(startprob);
  o.transmat_init = optional_vector(transmat);
  o.means_init = optional_vector(means);
  o.covars_init = optional_vector(covars);
  o.device = cuem::parse_device(device);
  o.precision = cuem::parse_precision(precision);
  o.n_threads = n_threads;
  o.missing = cuem::parse_missing_policy(missing);
  return o;
}

nb::dict fit_hmm(const InputMatrix& X, const std::vector<std::size_t>& lengths, int n_components,
                 const std::string& covariance_type, double min_covar, int n_iter, double tol, std::uint64_t seed,
                 const std::string& params, const std::string& init_params, const ParameterArray& startprob_prior,
                 const ParameterArray& transmat_prior, const ParameterArray& means_prior,
                 const ParameterArray& means_weight, const ParameterArray& covars_prior, double covars_weight,
                 const std::optional<ParameterArray>& startprob, const std::optional<ParameterArray>& transmat,
                 const std::optional<ParameterArray>& means, const std::optional<ParameterArray>& covars,
                 const std::string& device, const std::string& precision, int n_threads, nb::object on_iteration,
                 const std::string& acceleration, std::int64_t segment_frames, const std::string& missing,
                 int incremental_blocks, int max_block_steps) {
  cuem::HmmOptions o = hmm_options(n_components, covariance_type, min_covar, seed, params, init_params,
                                   startprob_prior, transmat_prior, means_prior, means_weight, covars_prior,
                                   covars_weight, startprob, transmat, means, covars, device, precision, n_threads,
                                   missing);
  o.n_iter = n_iter;
  o.tol = tol;
  o.acceleration = cuem::parse_acceleration(acceleration);
  // 0: automatic; negative: never (the whole-data arrays); positive: frames a segment.
  o.segment_frames = segment_frames < 0 ? std::numeric_limits<std::size_t>::max()
                                        : static_cast<std::size_t>(segment_frames);
  o.incremental_blocks = incremental_blocks;
  o.max_block_steps = max_block_steps;

  FitHooks hooks(std::move(on_iteration));
  cuem::FitOptions wiring;  // FitHooks wires a FitOptions; the HMM's options take the same callbacks
  hooks.attach(wiring);
  o.interrupted = wiring.interrupted;
  o.on_iteration = wiring.on_iteration;
  const cuem::HmmFitResult r = hooks.run([&] { return cuem::fit_hmm(view_of(X), lengths, o); });

  nb::dict out = model_dict(r.model);
  std::vector<double> history;
  for (const cuem::TracePoint& t : r.trace)
    if (t.init == r.best_init) history.push_back(t.mean_log_likelihood);
  const std::size_t n = history.size();
  out["history"] = to_numpy(std::move(history), {n});
  out["converged"] = r.converged;
  out["n_iter"] = r.n_iter;
  out["n_decreases"] = r.n_decreases;
  out["convergence_rate"] = r.convergence_rate;  // NaN where too few steps to tell
  out["n_estep_passes"] = r.n_estep_passes;
  out["device"] = r.device;
  nb::list notices;
  for (const std::string& s : r.notices) notices.append(nb::str(s.c_str()));
  out["notices"] = notices;
  return out;
}

// The stepwise EM state of one estimator. The GIL is released while it computes, so a lock
// keeps two threads from stepping it at once.
struct OnlineHmm {
  cuem::OnlineGaussianHmm state;
  std::mutex busy;

  OnlineHmm(const cuem::HmmOptions& o, const cuem::OnlineOptions& online) : state(o, online) {}
  double partial_fit(const InputMatrix& X, const std::vector<std::size_t>& lengths) {
    const cuem::DataView v = view_of(X);
    return released([&] {
      const std::lock_guard<std::mutex> lock(busy);
      return state.partial_fit(v, lengths);
    });
  }
};

// One evaluation: "score" (float), "posteriors" ((log_likelihood, T x K)), "viterbi" and
// "map" ((log_probability, states)).
nb::object hmm_evaluate(const std::string& what, const InputMatrix& X, const std::vector<std::size_t>& lengths,
                        const std::string& covariance_type, const ParameterArray& startprob,
                        const ParameterArray& transmat, const ParameterArray& means, const ParameterArray& covars,
                        const std::string& device, const std::string& precision, const std::string& missing) {
  const cuem::HmmModel m = make_model(covariance_type, startprob, transmat, means, covars);
  cuem::HmmEvaluateOptions where = where_of(device, precision);
  where.missing = cuem::parse_missing_policy(missing);
  const cuem::DataView view = view_of(X);
  const std::size_t K = static_cast<std::size_t>(m.n_components());
  if (what == "score") return nb::cast(released([&] { return cuem::score_hmm(m, view, lengths, where); }));
  if (what == "posteriors") {
    cuem::HmmPosteriors p = released([&] { return cuem::posteriors_hmm(m, view, lengths, where); });
    return nb::make_tuple(p.log_likelihood, to_numpy(std::move(p.posteriors), {view.n_rows, K}));
  }
  if (what == "viterbi" || what == "map") {
    cuem::HmmDecoding d = released([&] { return cuem::decode_hmm(m, view, lengths, what, where); });
    const std::size_t T = d.states.size();
    return nb::make_tuple(d.log_probability, to_numpy(std::move(d.states), {T}));
  }
  throw cuem::InvalidArgument("unknown evaluation '" + what + "'");
}

nb::object hmm_sample(std::size_t n, std::uint64_t seed, const std::string& covariance_type,
                      const ParameterArray& startprob, const ParameterArray& transmat, const ParameterArray& means,
                      const ParameterArray& covars) {
  const cuem::HmmModel m = make_model(covariance_type, startprob, transmat, means, covars);
  cuem::HmmSamples s = released([&] { return cuem::sample_hmm(m, n, seed); });
  const std::size_t D = static_cast<std::size_t>(m.n_features());
  return nb::make_tuple(to_numpy(std::move(s.X), {n, D}), to_numpy(std::move(s.states), {n}));
}

// ---- the statistics API (cuem.dask.GaussianHMM) -----------------------------------------

nb::object hmm_statistics(const InputMatrix& X, const std::vector<std::size_t>& lengths,
                          const std::string& covariance_type, const ParameterArray& startprob,
                          const ParameterArray& transmat, const ParameterArray& means, const ParameterArray& covars,
                          const std::string& device, const std::string& precision) {
  const cuem::HmmModel m = make_model(covariance_type, startprob, transmat, means, covars);
  const cuem::DataView view = view_of(X);
  std::vector<double> v = released([&] { return cuem::hmm_statistics(m, view, lengths, where_of(device, precision)); });
  const std::size_t n = v.size();
  return nb::cast(to_numpy(std::move(v), {n}));
}

nb::dict hmm_m_step(const ParameterArray& statistics, const std::string& covariance_type,
                    const ParameterArray& startprob, const ParameterArray& transmat, const ParameterArray& means,
                    const ParameterArray& covars, const std::string& params, const ParameterArray& startprob_prior,
                    const ParameterArray& transmat_prior, const ParameterArray& means_prior,
                    const ParameterArray& means_weight, const ParameterArray& covars_prior, double covars_weight) {
  const cuem::HmmModel m = make_model(covariance_type, startprob, transmat, means, covars);
  cuem::HmmOptions o;
  o.params = params;
  o.priors = priors_of(startprob_prior, transmat_prior, means_prior, means_weight, covars_prior, covars_weight);
  return model_dict(cuem::hmm_model_from_statistics(m, to_vector(statistics), o));
}

// ---- GMMHMM (python/cuem/gmmhmm.py), in hmmlearn's layouts ------------------------------

std::vector<std::size_t> gmm_hmm_covars_shape(cuem::CovarianceType t, std::size_t K, std::size_t M, std::size_t D) {
  switch (t) {
    case cuem::CovarianceType::spherical: return {K, M};
    case cuem::CovarianceType::diag: return {K, M, D};
    case cuem::CovarianceType::full: return {K, M, D, D};
    case cuem::CovarianceType::tied: return {K, D, D};
  }
  return {};
}

cuem::GmmHmmModel make_gmm_hmm(const std::string& covariance_type, const ParameterArray& startprob,
                               const ParameterArray& transmat, const ParameterArray& weights,
                               const ParameterArray& means, const ParameterArray& covars) {
  if (means.ndim() != 3) throw cuem::InvalidArgument("means must be a 3-d array (n_components, n_mix, n_features)");
  cuem::GmmHmmModel m;
  m.covariance_type = cuem::parse_covariance_type(covariance_type);
  m.n_components = static_cast<int>(means.shape(0));
  m.n_mix = static_cast<int>(means.shape(1));
  m.n_features = static_cast<int>(means.shape(2));
  m.startprob = to_vector(startprob);
  m.transmat = to_vector(transmat);
  m.weights = to_vector(weights);
  m.means = to_vector(means);
  m.covars = to_vector(covars);
  return m;
}

nb::dict gmm_hmm_dict(const cuem::GmmHmmModel& m) {
  const std::size_t K = static_cast<std::size_t>(m.n_components), M = static_cast<std::size_t>(m.n_mix),
                    D = static_cast<std::size_t>(m.n_features);
  nb::dict out;
  out["startprob"] = to_numpy(std::vector<double>(m.startprob), {K});
  out["transmat"] = to_numpy(std::vector<double>(m.transmat), {K, K});
  out["weights"] = to_numpy(std::vector<double>(m.weights), {K, M});
  out["means"] = to_numpy(std::vector<double>(m.means), {K, M, D});
  out["covars"] = to_numpy(std::vector<double>(m.covars), gmm_hmm_covars_shape(m.covariance_type, K, M, D));
  return out;
}

cuem::GmmHmmPriors gmm_hmm_priors_of(const ParameterArray& startprob_prior, const ParameterArray& transmat_prior,
                                     const ParameterArray& weights_prior, const ParameterArray& means_prior,
                                     const ParameterArray& means_weight, const ParameterArray& covars_prior,
                                     const ParameterArray& covars_weight) {
  cuem::GmmHmmPriors p;
  p.startprob_prior = to_vector(startprob_prior);
  p.transmat_prior = to_vector(transmat_prior);
  p.weights_prior = to_vector(weights_prior);
  p.means_prior = to_vector(means_prior);
  p.means_weight = to_vector(means_weight);
  p.covars_prior = to_vector(covars_prior);
  p.covars_weight = to_vector(covars_weight);
  return p;
}

nb::object gmm_hmm_statistics(const InputMatrix& X, const std::vector<std::size_t>& lengths,
                              const std::string& covariance_type, const ParameterArray& startprob,
                              const ParameterArray& transmat, const ParameterArray& weights,
                              const ParameterArray& means, const ParameterArray& covars, const std::string& device,
                              const std::string& precision) {
  const cuem::GmmHmmModel m = make_gmm_hmm(covariance_type, startprob, transmat, weights, means, covars);
  const cuem::DataView view = view_of(X);
  std::vector<double> v =
      released([&] { return cuem::gmm_hmm_statistics(m, view, lengths, where_of(device, precision)); });
  const std::size_t n = v.size();
  return nb::cast(to_numpy(std::move(v), {n}));
}

nb::dict gmm_hmm_m_step(const ParameterArray& statistics, const std::string& covariance_type,
                        const ParameterArray& startprob, const ParameterArray& transmat, const ParameterArray& weights,
                        const ParameterArray& means, const ParameterArray& covars, const std::string& params,
                        const ParameterArray& startprob_prior, const ParameterArray& transmat_prior,
                        const ParameterArray& weights_prior, const ParameterArray& means_prior,
                        const ParameterArray& means_weight, const ParameterArray& covars_prior,
                        const ParameterArray& covars_weight) {
  const cuem::GmmHmmModel m = make_gmm_hmm(covariance_type, startprob, transmat, weights, means, covars);
  cuem::GmmHmmOptions o;
  o.params = params;
  o.priors = gmm_hmm_priors_of(startprob_prior, transmat_prior, weights_prior, means_prior, means_weight,
                               covars_prior, covars_weight);
  return gmm_hmm_dict(cuem::gmm_hmm_model_from_statistics(m, to_vector(statistics), o));
}

nb::dict fit_gmm_hmm(const InputMatrix& X, const std::vector<std::size_t>& lengths, int n_components, int n_mix,
                     const std::string& covariance_type, double min_covar, int n_iter, double tol, std::uint64_t seed,
                     const std::string& params, const std::string& init_params, const ParameterArray& startprob_prior,
                     const ParameterArray& transmat_prior, const ParameterArray& weights_prior,
                     const ParameterArray& means_prior, const ParameterArray& means_weight,
                     const ParameterArray& covars_prior, const ParameterArray& covars_weight,
                     const std::optional<ParameterArray>& startprob, const std::optional<ParameterArray>& transmat,
                     const std::optional<ParameterArray>& weights, const std::optional<ParameterArray>& means,
                     const std::optional<ParameterArray>& covars, const std::string& device,
                     const std::string& precision, int n_threads, nb::object on_iteration) {
  cuem::GmmHmmOptions o;
  o.n_components = n_components;
  o.n_mix = n_mix;
  o.covariance_type = cuem::parse_covariance_type(covariance_type);
  o.min_covar = min_covar;
  o.n_iter = n_iter;
  o.tol = tol;
  o.seed = seed;
  o.params = params;
  o.init_params = init_params;
  o.priors = gmm_hmm_priors_of(startprob_prior, transmat_prior, weights_prior, means_prior, means_weight,
                               covars_prior, covars_weight);
  o.init.startprob = optional_vector(startprob);
  o.init.transmat = optional_vector(transmat);
  o.init.weights = optional_vector(weights);
  o.init.means = optional_vector(means);
  o.init.covars = optional_vector(covars);
  o.device = cuem::parse_device(device);
  o.precision = cuem::parse_precision(precision);
  o.n_threads = n_threads;
  FitHooks hooks(std::move(on_iteration));
  cuem::FitOptions wiring;
  hooks.attach(wiring);
  o.interrupted = wiring.interrupted;
  o.on_iteration = wiring.on_iteration;
  const cuem::GmmHmmFitResult r = hooks.run([&] { return cuem::fit_gmm_hmm(view_of(X), lengths, o); });
  nb::dict out = gmm_hmm_dict(r.model);
  std::vector<double> history;
  for (const cuem::TracePoint& t : r.trace)
    if (t.init == r.best_init) history.push_back(t.mean_log_likelihood);
  const std::size_t n = history.size();
  out["history"] = to_numpy(std::move(history), {n});
  out["converged"] = r.converged;
  out["n_iter"] = r.n_iter;
  out["n_decreases"] = r.n_decreases;
  out["device"] = r.device;
  nb::list notices;
  for (const std::string& s : r.notices) notices.append(nb::str(s.c_str()));
  out["notices"] = notices;
  return out;
}

nb::object gmm_hmm_evaluate(const std::string& what, const InputMatrix& X, const std::vector<std::size_t>& lengths,
                            const std::string& covariance_type, const ParameterArray& startprob,
                            const ParameterArray& transmat, const ParameterArray& weights, const ParameterArray& means,
                            const ParameterArray& covars, const std::string& device, const std::string& precision) {
  const cuem::GmmHmmModel m = make_gmm_hmm(covariance_type, startprob, transmat, weights, means, covars);
  const cuem::HmmEvaluateOptions where = where_of(device, precision);
  const cuem::DataView view = view_of(X);
  const std::size_t K = static_cast<std::size_t>(m.n_components);
  if (what == "score") return nb::cast(released([&] { return cuem::score_gmm_hmm(m, view, lengths, where); }));
  if (what == "posteriors") {
    cuem::HmmPosteriors p = released([&] { return cuem::posteriors_gmm_hmm(m, view, lengths, where); });
    return nb::make_tuple(p.log_likelihood, to_numpy(std::move(p.posteriors), {view.n_rows, K}));
  }
  if (what == "viterbi" || what == "map") {
    cuem::HmmDecoding d = released([&] { return cuem::decode_gmm_hmm(m, view, lengths, what, where); });
    const std::size_t T = d.states.size();
    return nb::make_tuple(d.log_probability, to_numpy(std::move(d.states), {T}));
  }
  throw cuem::InvalidArgument("unknown evaluation '" + what + "'");
}

nb::object gmm_hmm_sample(std::size_t n, std::uint64_t seed, const std::string& covariance_type,
                          const ParameterArray& startprob, const ParameterArray& transmat, const ParameterArray& weights,
                          const ParameterArray& means, const ParameterArray& covars) {
  const cuem::GmmHmmModel m = make_gmm_hmm(covariance_type, startprob, transmat, weights, means, covars);
  cuem::HmmSamples s = released([&] { return cuem::sample_gmm_hmm(m, n, seed); });
  const std::size_t D = static_cast<std::size_t>(m.n_features);
  return nb::make_tuple(to_numpy(std::move(s.X), {n, D}), to_numpy(std::move(s.states), {n}));
}

}  // namespace

void register_hmm(nb::module_& m) {
  m.def("fit_hmm", &fit_hmm, "X"_a.noconvert(), "lengths"_a, "n_components"_a, "covariance_type"_a, "min_covar"_a,
        "n_iter"_a, "tol"_a, "seed"_a, "params"_a, "init_params"_a, "startprob_prior"_a, "transmat_prior"_a,
        "means_prior"_a, "means_weight"_a, "covars_prior"_a, "covars_weight"_a, "startprob"_a = nb::none(),
        "transmat"_a = nb::none(), "means"_a = nb::none(), "covars"_a = nb::none(), "device"_a = "cpu",
        "precision"_a = "float32", "n_threads"_a = 0, "on_iteration"_a = nb::none(), "acceleration"_a = "none",
        "segment_frames"_a = 0, "missing"_a = "error", "incremental_blocks"_a = 1, "max_block_steps"_a = 0,
        "Baum-Welch for a Gaussian HMM (hmmlearn's GaussianHMM). Priors are arrays of one value or one per "
        "entry; startprob/transmat/means/covars start the parameters whose letters init_params leaves out. tol "
        "is on the mean log-likelihood per frame. Returns a dict: startprob, transmat, means, covars (cuem's "
        "per-type layout), history (the best restart's mean log-likelihood per frame), converged, n_iter, "
        "n_decreases, convergence_rate, n_estep_passes, device, notices. acceleration 'squarem' extrapolates the "
        "iterations (SQUAREM). segment_frames: the bounded-memory E-step's segment (0 automatic, negative never). missing 'marginalize': NaN entries "
        "missing at random (their frames' emissions the observed entries' marginal densities).");
  nb::class_<OnlineHmm>(m, "OnlineGaussianHmm",
                        "Stepwise EM state of a Gaussian HMM (include/cuem/hmm.hpp): the first partial_fit "
                        "initialises.")
      .def("__init__",
           [](OnlineHmm* self, int n_components, const std::string& covariance_type, double min_covar,
              std::uint64_t seed, const std::string& params, const std::string& init_params,
              const ParameterArray& startprob_prior, const ParameterArray& transmat_prior,
              const ParameterArray& means_prior, const ParameterArray& means_weight,
              const ParameterArray& covars_prior, double covars_weight, const std::optional<ParameterArray>& startprob,
              const std::optional<ParameterArray>& transmat, const std::optional<ParameterArray>& means,
              const std::optional<ParameterArray>& covars, const std::string& device, const std::string& precision,
              int n_threads, double learning_decay, double learning_offset) {
             new (self) OnlineHmm(hmm_options(n_components, covariance_type, min_covar, seed, params, init_params,
                                              startprob_prior, transmat_prior, means_prior, means_weight,
                                              covars_prior, covars_weight, startprob, transmat, means, covars, device,
                                              precision, n_threads, "error"),
                                  {learning_decay, learning_offset});
           },
           "n_components"_a, "covariance_type"_a, "min_covar"_a, "seed"_a, "params"_a, "init_params"_a,
           "startprob_prior"_a, "transmat_prior"_a, "means_prior"_a, "means_weight"_a, "covars_prior"_a,
           "covars_weight"_a, "startprob"_a = nb::none(), "transmat"_a = nb::none(), "means"_a = nb::none(),
           "covars"_a = nb::none(), "device"_a = "cpu", "precision"_a = "float32", "n_threads"_a = 0,
           "learning_decay"_a = 0.6, "learning_offset"_a = 0.0)
      .def("partial_fit", &OnlineHmm::partial_fit, "X"_a.noconvert(), "lengths"_a,
           "One stepwise EM step on whole sequences; returns the batch's mean log-likelihood per frame under the "
           "model before it.")
      .def_prop_ro("n_steps", [](const OnlineHmm& o) { return o.state.n_steps(); })
      .def_prop_ro("n_frames_seen", [](const OnlineHmm& o) { return o.state.n_frames_seen(); })
      .def_prop_ro("device", [](const OnlineHmm& o) { return o.state.device(); })
      .def("model", [](const OnlineHmm& o) { return model_dict(o.state.model()); },
           "The current model's arrays (startprob, transmat, means, covars).");
  m.def("hmm_evaluate", &hmm_evaluate, "what"_a, "X"_a.noconvert(), "lengths"_a, "covariance_type"_a,
        "startprob"_a, "transmat"_a, "means"_a, "covars"_a, "device"_a = "cpu", "precision"_a = "float32",
        "missing"_a = "error",
        "score: log p(X); posteriors: (log p(X), T x K); viterbi/map: (log probability, states).");
  m.def("fit_gmm_hmm", &fit_gmm_hmm, "X"_a.noconvert(), "lengths"_a, "n_components"_a, "n_mix"_a,
        "covariance_type"_a, "min_covar"_a, "n_iter"_a, "tol"_a, "seed"_a, "params"_a, "init_params"_a,
        "startprob_prior"_a, "transmat_prior"_a, "weights_prior"_a, "means_prior"_a, "means_weight"_a,
        "covars_prior"_a, "covars_weight"_a, "startprob"_a = nb::none(), "transmat"_a = nb::none(),
        "weights"_a = nb::none(), "means"_a = nb::none(), "covars"_a = nb::none(), "device"_a = "cpu",
        "precision"_a = "float32", "n_threads"_a = 0, "on_iteration"_a = nb::none(),
        "Baum-Welch for a GMMHMM (hmmlearn's GMMHMM), arrays in hmmlearn's shapes; covars_prior and "
        "covars_weight NaN take hmmlearn's defaults. Returns a dict: startprob, transmat, weights, means, covars, "
        "history, converged, n_iter, n_decreases, device, notices.");
  m.def("gmm_hmm_evaluate", &gmm_hmm_evaluate, "what"_a, "X"_a.noconvert(), "lengths"_a, "covariance_type"_a,
        "startprob"_a, "transmat"_a, "weights"_a, "means"_a, "covars"_a, "device"_a = "cpu",
        "precision"_a = "float32", "score, posteriors, viterbi or map, as hmm_evaluate.");
  m.def("gmm_hmm_sample", &gmm_hmm_sample, "n"_a, "seed"_a, "covariance_type"_a, "startprob"_a, "transmat"_a,
        "weights"_a, "means"_a, "covars"_a, "One GMMHMM sequence of n frames: (X, states).");
  m.def("hmm_statistics", &hmm_statistics, "X"_a.noconvert(), "lengths"_a, "covariance_type"_a, "startprob"_a,
        "transmat"_a, "means"_a, "covars"_a, "device"_a = "cpu", "precision"_a = "float32",
        "Baum-Welch's E-step over whole sequences as one float64 vector of additive values (cuem/hmm.hpp "
        "hmm_statistics): sums over disjoint sets of sequences are their union's.");
  m.def("hmm_m_step", &hmm_m_step, "statistics"_a, "covariance_type"_a, "startprob"_a, "transmat"_a, "means"_a,
        "covars"_a, "params"_a, "startprob_prior"_a, "transmat_prior"_a, "means_prior"_a, "means_weight"_a,
        "covars_prior"_a, "covars_weight"_a,
        "hmmlearn's M-step from summed hmm_statistics under the model they were taken at: the next model's "
        "arrays (startprob, transmat, means, covars).");
  m.def("gmm_hmm_statistics", &gmm_hmm_statistics, "X"_a.noconvert(), "lengths"_a, "covariance_type"_a,
        "startprob"_a, "transmat"_a, "weights"_a, "means"_a, "covars"_a, "device"_a = "cpu",
        "precision"_a = "float32", "hmm_statistics for a GMMHMM (arrays in hmmlearn's shapes).");
  m.def("gmm_hmm_m_step", &gmm_hmm_m_step, "statistics"_a, "covariance_type"_a, "startprob"_a, "transmat"_a,
        "weights"_a, "means"_a, "covars"_a, "params"_a, "startprob_prior"_a, "transmat_prior"_a, "weights_prior"_a,
        "means_prior"_a, "means_weight"_a, "covars_prior"_a, "covars_weight"_a,
        "hmmlearn's GMMHMM M-step from summed gmm_hmm_statistics: the next model's arrays.");
  m.def("hmm_sample", &hmm_sample, "n"_a, "seed"_a, "covariance_type"_a, "startprob"_a, "transmat"_a, "means"_a,
        "covars"_a, "One sequence of n frames: (X, states).");
}
