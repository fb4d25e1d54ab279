// cuem._cuem: the nanobind module under cuem.GaussianMixture. It exposes cuem's public
// API on plain NumPy arrays (model parameters in scikit-learn's shapes) and leaves the
// estimator conventions (validation, attributes, warnings) to python/cuem/mixture.py.
//
// Data (X) is taken as a float64 or float32 array whose rows are contiguous and start a
// non-negative stride apart, *without copying* (a C-ordered array, a column slice of one,
// every other row): cuem reads the rows in place and computes in float64. The argument is
// marked noconvert, so anything else (another dtype, a list) is a TypeError, and a layout
// cuem cannot view (Fortran order, negative strides) is a TypeError from view_of: the
// Python layer converts both once beforehand. X may also be a CUDA array (any object with
// __dlpack__ on a CUDA device: torch.cuda and CuPy tensors): it becomes a device view,
// which the CUDA backend reads in place and the CPU backend refuses. sample_weight is taken the same way, as a
// C-contiguous float64 vector. Model arrays are small and copied.
//
// The GIL is released while cuem computes. Ctrl-C: Python's signal handler only sets a
// flag, which PyErr_CheckSignals turns into KeyboardInterrupt on the main thread; the
// fit polls it through FitOptions::interrupted (re-acquiring the GIL briefly, at most
// every kSignalPollInterval) and re-raises the pending KeyboardInterrupt after cuem has
// unwound with cuem::Interrupted.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "array_support.hpp"
#include "cuem/cuem.hpp"
#include "fit_hooks.hpp"

namespace nb = nanobind;
using namespace nb::literals;

namespace {

using namespace cuem_py;

// What cuem would read for X (for tests: that a view is taken in place, never a copy).
nb::dict data_view_info(const InputMatrix& X) {
  const cuem::DataView v = view_of(X);
  nb::dict d;
  d["pointer"] = v.is_float32() ? reinterpret_cast<std::uintptr_t>(v.data_f32) : reinterpret_cast<std::uintptr_t>(v.data);
  d["n_rows"] = v.n_rows;
  d["n_cols"] = v.n_cols;
  d["row_stride"] = v.row_stride;
  d["dtype"] = v.is_float32() ? "float32" : "float64";
  d["device"] = v.on_device() ? "cuda:" + std::to_string(v.device_ordinal) : std::string("cpu");
  return d;
}

// The fit's options from the binding's arguments, shared by the array and placed paths.
cuem::FitOptions fit_options(int n_components, const std::string& covariance_type, double tol, double reg_covar,
                             int max_iter, int n_init, const std::string& init_params, std::uint64_t seed,
                             const std::optional<ParameterArray>& weights_init,
                             const std::optional<ParameterArray>& means_init,
                             const std::optional<ParameterArray>& precisions_init, const std::string& missing,
                             const std::string& acceleration, int incremental_blocks,
                             const std::string& first_pass, int max_block_steps) {
  cuem::FitOptions o;
  o.n_components = n_components;
  o.covariance_type = cuem::parse_covariance_type(covariance_type);
  o.tol = tol;
  o.reg_covar = reg_covar;
  o.max_iter = max_iter;
  o.n_init = n_init;
  o.init = cuem::parse_init_method(init_params);
  o.seed = seed;
  o.missing = cuem::parse_missing_policy(missing);
  o.acceleration = cuem::parse_acceleration(acceleration);
  o.incremental_blocks = incremental_blocks;
  o.first_pass = cuem::parse_first_pass(first_pass);
  o.max_block_steps = max_block_steps;
  if (weights_init) o.weights_init = to_vector(*weights_init);
  if (means_init) o.means_init = to_vector(*means_init);
  if (precisions_init) o.precisions_init = to_vector(*precisions_init);
  return o;
}

// A MissingSummary as the Python layer reads it (GaussianMixture.missing_summary_).
nb::dict missing_dict(const cuem::MissingSummary& s) {
  nb::dict d;
  d["missing_entries"] = s.missing_entries;
  d["incomplete_rows"] = s.incomplete_rows;
  d["empty_rows"] = s.empty_rows;
  d["n_patterns"] = s.n_patterns;
  nb::list first;
  for (std::size_t r : s.first_empty_rows) first.append(r);
  d["first_empty_rows"] = first;
  return d;
}

// Runs run_fit(options) with the GIL released, Ctrl-C and on_iteration wired in, and
// returns the result as the Python layer reads it.
template <typename RunFit>
nb::dict run_fit(cuem::FitOptions o, nb::object on_iteration, RunFit&& run) {
  FitHooks hooks(std::move(on_iteration));
  hooks.attach(o);
  const cuem::FitResult r = hooks.run([&] { return run(o); });

  std::vector<double> lower_bounds;  // the trace of the best restart, as sklearn's lower_bounds_
  for (const cuem::TracePoint& t : r.trace)
    if (t.init == r.best_init) lower_bounds.push_back(t.mean_log_likelihood);
  const std::size_t n_bounds = lower_bounds.size();

  nb::dict out;
  put_model(out, r.model);
  out["converged"] = r.converged;
  out["n_iter"] = r.n_iter;
  out["lower_bound"] = r.lower_bound;
  out["lower_bounds"] = to_numpy(std::move(lower_bounds), {n_bounds});
  out["best_init"] = r.best_init;
  out["n_decreases"] = r.n_decreases;
  out["device"] = r.device;
  nb::list notices;
  for (const std::string& n : r.notices) notices.append(n);
  out["notices"] = notices;
  out["max_decrease"] = r.max_decrease;
  out["missing"] = missing_dict(r.missing);
  out["convergence_rate"] = r.convergence_rate;  // NaN where too few EM steps to tell
  out["n_estep_passes"] = r.n_estep_passes;
  return out;
}

nb::dict fit(const InputMatrix& X, int n_components, const std::string& covariance_type, double tol, double reg_covar,
             int max_iter, int n_init, const std::string& init_params, std::uint64_t seed, const std::string& device,
             const std::string& precision, int n_threads, std::size_t device_memory_limit,
             const std::optional<ParameterArray>& weights_init,
             const std::optional<ParameterArray>& means_init, const std::optional<ParameterArray>& precisions_init,
             nb::object on_iteration, const std::optional<WeightArray>& sample_weight, const std::string& missing,
             const std::string& acceleration, int incremental_blocks, const std::string& first_pass,
             int max_block_steps) {
  cuem::FitOptions o = fit_options(n_components, covariance_type, tol, reg_covar, max_iter, n_init, init_params, seed,
                                   weights_init, means_init, precisions_init, missing, acceleration,
                                   incremental_blocks, first_pass, max_block_steps);
  o.device = cuem::parse_device(device);
  o.precision = cuem::parse_precision(precision);
  o.n_threads = n_threads;
  o.device_memory_limit = device_memory_limit;
  return run_fit(std::move(o), std::move(on_iteration),
                 [&](const cuem::FitOptions& opts) { return cuem::fit(view_of(X), opts, weights_of(sample_weight)); });
}

// cuem.PlacedData's handle: a Resources and data placed there once. It holds the arrays
// whose memory the PlacedData views, so that they outlive it.
struct Placed {
  InputMatrix X;
  std::optional<WeightArray> sample_weight;
  std::string requested_device;
  cuem::MissingPolicy missing;
  std::unique_ptr<cuem::Resources> resources;
  std::unique_ptr<cuem::PlacedData> data;
  // PlacedData is not thread-safe and the GIL is released while it computes.
  std::mutex busy;

  Placed(InputMatrix X_, std::optional<WeightArray> w, const std::string& device, const std::string& precision,
         std::size_t device_memory_limit, const std::string& missing_policy)
      : X(std::move(X_)),
        sample_weight(std::move(w)),
        requested_device(device),
        missing(cuem::parse_missing_policy(missing_policy)) {
    cuem::ResourceOptions o;
    o.device = cuem::parse_device(device);
    o.precision = cuem::parse_precision(precision);
    o.device_memory_limit = device_memory_limit;
    resources = std::make_unique<cuem::Resources>(o);
    data = std::make_unique<cuem::PlacedData>(*resources, view_of(X), weights_of(sample_weight), missing);
  }
  ~Placed() {
    data.reset();  // before the Resources it was placed on
    resources.reset();
  }

  // f(data) with the GIL released and the handle to itself.
  template <typename F>
  auto use(F&& f) {
    nb::gil_scoped_release release;
    std::lock_guard<std::mutex> lock(busy);
    return f(*data);
  }
};

nb::dict placed_fit(Placed& p, int n_components, const std::string& covariance_type, double tol, double reg_covar,
                    int max_iter, int n_init, const std::string& init_params, std::uint64_t seed,
                    const std::optional<ParameterArray>& weights_init, const std::optional<ParameterArray>& means_init,
                    const std::optional<ParameterArray>& precisions_init, nb::object on_iteration,
                    const std::string& missing, const std::string& acceleration, int incremental_blocks,
                    const std::string& first_pass, int max_block_steps) {
  cuem::FitOptions o = fit_options(n_components, covariance_type, tol, reg_covar, max_iter, n_init, init_params, seed,
                                   weights_init, means_init, precisions_init, missing, acceleration,
                                   incremental_blocks, first_pass, max_block_steps);
  // run_fit has released the GIL already; the lock alone keeps other threads out.
  return run_fit(std::move(o), std::move(on_iteration), [&](const cuem::FitOptions& opts) {
    std::lock_guard<std::mutex> lock(p.busy);
    return cuem::fit(*p.data, opts);
  });
}

// A model and where to evaluate it, as the evaluation bindings take them.
struct ModelArgs {
  cuem::Model model;
  cuem::EvaluateOptions where;
};

ModelArgs model_args(const std::string& covariance_type, const ParameterArray& weights, const ParameterArray& means,
                     const ParameterArray& covariances, const ParameterArray& precisions_cholesky,
                     const std::string& device, const std::string& precision, std::size_t device_memory_limit,
                     const std::string& missing) {
  ModelArgs a{make_model(covariance_type, weights, means, covariances, precisions_cholesky), {}};
  a.where.device = cuem::parse_device(device);
  a.where.precision = cuem::parse_precision(precision);
  a.where.device_memory_limit = device_memory_limit;
  a.where.missing = cuem::parse_missing_policy(missing);
  return a;
}

nb::ndarray<nb::numpy, std::int64_t> predict(const InputMatrix& X, const std::string& covariance_type,
                                             const ParameterArray& weights, const ParameterArray& means,
                                             const ParameterArray& covariances,
                                             const ParameterArray& precisions_cholesky, const std::string& device,
                                             const std::string& precision, std::size_t device_memory_limit,
                                             const std::string& missing) {
  const ModelArgs a = model_args(covariance_type, weights, means, covariances, precisions_cholesky, device, precision,
                                 device_memory_limit, missing);
  const std::vector<int> l = released([&] { return cuem::predict(a.model, view_of(X), a.where); });
  std::vector<std::int64_t> labels(l.begin(), l.end());
  const std::size_t n = labels.size();
  return to_numpy(std::move(labels), {n});
}

nb::ndarray<nb::numpy, double> predict_proba(const InputMatrix& X, const std::string& covariance_type,
                                             const ParameterArray& weights, const ParameterArray& means,
                                             const ParameterArray& covariances,
                                             const ParameterArray& precisions_cholesky, const std::string& device,
                                             const std::string& precision, std::size_t device_memory_limit,
                                             const std::string& missing) {
  const ModelArgs a = model_args(covariance_type, weights, means, covariances, precisions_cholesky, device, precision,
                                 device_memory_limit, missing);
  std::vector<double> resp = released([&] { return cuem::predict_proba(a.model, view_of(X), a.where); });
  return to_numpy(std::move(resp), {X.shape(0), static_cast<std::size_t>(a.model.n_components)});
}

nb::ndarray<nb::numpy, double> score_samples(const InputMatrix& X, const std::string& covariance_type,
                                             const ParameterArray& weights, const ParameterArray& means,
                                             const ParameterArray& covariances,
                                             const ParameterArray& precisions_cholesky, const std::string& device,
                                             const std::string& precision, std::size_t device_memory_limit,
                                             const std::string& missing) {
  const ModelArgs a = model_args(covariance_type, weights, means, covariances, precisions_cholesky, device, precision,
                                 device_memory_limit, missing);
  std::vector<double> log_prob = released([&] { return cuem::score_samples(a.model, view_of(X), a.where); });
  return to_numpy(std::move(log_prob), {X.shape(0)});
}

double score(const InputMatrix& X, const std::string& covariance_type, const ParameterArray& weights,
             const ParameterArray& means, const ParameterArray& covariances, const ParameterArray& precisions_cholesky,
             const std::string& device, const std::string& precision, std::size_t device_memory_limit,
             const std::optional<WeightArray>& sample_weight, const std::string& missing) {
  const ModelArgs a = model_args(covariance_type, weights, means, covariances, precisions_cholesky, device, precision,
                                 device_memory_limit, missing);
  return released([&] { return cuem::score(a.model, view_of(X), a.where, weights_of(sample_weight)); });
}

// score, bic, aic and the total weight from one pass over X on the chosen device.
nb::tuple criteria(const InputMatrix& X, const std::string& covariance_type, const ParameterArray& weights,
                   const ParameterArray& means, const ParameterArray& covariances,
                   const ParameterArray& precisions_cholesky, const std::string& device, const std::string& precision,
                   std::size_t device_memory_limit, const std::optional<WeightArray>& sample_weight,
                   const std::string& missing) {
  const ModelArgs a = model_args(covariance_type, weights, means, covariances, precisions_cholesky, device, precision,
                                 device_memory_limit, missing);
  const cuem::Criteria c =
      released([&] { return cuem::criteria(a.model, view_of(X), a.where, weights_of(sample_weight)); });
  return nb::make_tuple(c.score, c.bic, c.aic, c.total_weight);
}

// The evaluations on placed data, on its device with its weights.
nb::ndarray<nb::numpy, std::int64_t> placed_predict(Placed& p, const std::string& covariance_type,
                                                    const ParameterArray& weights, const ParameterArray& means,
                                                    const ParameterArray& covariances,
                                                    const ParameterArray& precisions_cholesky) {
  const cuem::Model m = make_model(covariance_type, weights, means, covariances, precisions_cholesky);
  const std::vector<int> l = p.use([&](cuem::PlacedData& d) { return cuem::predict(d, m); });
  std::vector<std::int64_t> labels(l.begin(), l.end());
  const std::size_t n = labels.size();
  return to_numpy(std::move(labels), {n});
}

nb::ndarray<nb::numpy, double> placed_predict_proba(Placed& p, const std::string& covariance_type,
                                                    const ParameterArray& weights, const ParameterArray& means,
                                                    const ParameterArray& covariances,
                                                    const ParameterArray& precisions_cholesky) {
  const cuem::Model m = make_model(covariance_type, weights, means, covariances, precisions_cholesky);
  std::vector<double> resp = p.use([&](cuem::PlacedData& d) { return cuem::predict_proba(d, m); });
  return to_numpy(std::move(resp), {p.X.shape(0), static_cast<std::size_t>(m.n_components)});
}

nb::ndarray<nb::numpy, double> placed_score_samples(Placed& p, const std::string& covariance_type,
                                                    const ParameterArray& weights, const ParameterArray& means,
                                                    const ParameterArray& covariances,
                                                    const ParameterArray& precisions_cholesky) {
  const cuem::Model m = make_model(covariance_type, weights, means, covariances, precisions_cholesky);
  std::vector<double> log_prob = p.use([&](cuem::PlacedData& d) { return cuem::score_samples(d, m); });
  return to_numpy(std::move(log_prob), {p.X.shape(0)});
}

nb::tuple placed_criteria(Placed& p, const std::string& covariance_type, const ParameterArray& weights,
                          const ParameterArray& means, const ParameterArray& covariances,
                          const ParameterArray& precisions_cholesky) {
  const cuem::Model m = make_model(covariance_type, weights, means, covariances, precisions_cholesky);
  const cuem::Criteria c = p.use([&](cuem::PlacedData& d) { return cuem::criteria(d, m); });
  return nb::make_tuple(c.score, c.bic, c.aic, c.total_weight);
}

// bic and aic: one scalar of the model on X, on the CPU.
template <double (*Criterion)(const cuem::Model&, cuem::DataView, cuem::WeightView)>
double model_scalar(const InputMatrix& X, const std::string& covariance_type, const ParameterArray& weights,
                    const ParameterArray& means, const ParameterArray& covariances,
                    const ParameterArray& precisions_cholesky, const std::optional<WeightArray>& sample_weight) {
  const cuem::Model m = make_model(covariance_type, weights, means, covariances, precisions_cholesky);
  return released([&] { return Criterion(m, view_of(X), weights_of(sample_weight)); });
}

nb::tuple sample(std::size_t n_samples, std::uint64_t seed, const std::string& covariance_type,
                 const ParameterArray& weights, const ParameterArray& means, const ParameterArray& covariances,
                 const ParameterArray& precisions_cholesky) {
  const cuem::Model m = make_model(covariance_type, weights, means, covariances, precisions_cholesky);
  cuem::Samples s;
  {
    nb::gil_scoped_release release;
    s = cuem::sample(m, n_samples, seed);
  }
  std::vector<std::int64_t> labels(s.labels.begin(), s.labels.end());
  auto X = to_numpy(std::move(s.X), {n_samples, static_cast<std::size_t>(m.n_features)});
  auto y = to_numpy(std::move(labels), {n_samples});
  return nb::make_tuple(X, y);
}

// X with its NaN entries filled from the model (and their conditional variances when
// asked for), float64 on the CPU.
nb::tuple impute(const InputMatrix& X, const std::string& covariance_type, const ParameterArray& weights,
                 const ParameterArray& means, const ParameterArray& covariances,
                 const ParameterArray& precisions_cholesky, bool with_variance) {
  const cuem::Model m = make_model(covariance_type, weights, means, covariances, precisions_cholesky);
  cuem::Imputation r = released([&] { return cuem::impute(m, view_of(X), with_variance); });
  const std::size_t n = X.shape(0), d = X.shape(1);
  nb::object variance = nb::none();
  if (with_variance) variance = nb::cast(to_numpy(std::move(r.variance), {n, d}));
  return nb::make_tuple(to_numpy(std::move(r.X), {n, d}), variance);
}

nb::dict describe_missing(const InputMatrix& X) {
  const cuem::MissingSummary s = released([&] { return cuem::describe_missing(view_of(X)); });
  return missing_dict(s);
}

void validate_model(const std::string& covariance_type, const ParameterArray& weights, const ParameterArray& means,
                    const ParameterArray& covariances, const ParameterArray& precisions_cholesky) {
  make_model(covariance_type, weights, means, covariances, precisions_cholesky);
}

}  // namespace

void register_bayesian(nb::module_& m);  // bindings_vb.cpp
void register_online(nb::module_& m);    // bindings_online.cpp
void register_hmm(nb::module_& m);       // bindings_hmm.cpp

#define CUEM_WHERE_DOC " device, precision and device_memory_limit say where (as for fit)."

NB_MODULE(_cuem, m) {
  m.doc() =
      "Low-level binding of the cuem C++ library. Use cuem.GaussianMixture; these functions take "
      "float64 or float32 data with contiguous rows, C order or a row/column slice of it (read in place, "
      "never copied; anything else is a TypeError) and model arrays in scikit-learn's shapes.";
  m.attr("__version__") = cuem::version();
  m.attr("built_with_cuda") = cuem::built_with_cuda();
  m.def(
      "devices",
      []() {
        std::string reason;
        nb::list out;
        for (const cuem::CudaDevice& d : cuem::cuda_devices(&reason)) {
          nb::dict e;
          e["index"] = d.index;
          e["name"] = d.name;
          e["compute_capability"] = nb::make_tuple(d.compute_major, d.compute_minor);
          e["total_memory"] = d.total_memory;
          e["free_memory"] = d.free_memory;
          out.append(e);
        }
        return nb::make_tuple(out, reason);
      },
      "The usable CUDA devices as dicts, and why there are none when the list is empty.");

  // cuem's errors as the Python exceptions a scikit-learn user expects: bad input and
  // ill-defined covariances are ValueError (DataError and NumericalError subclass it),
  // a missing or failing device is RuntimeError (DeviceError subclasses it).
  nb::exception<cuem::DeviceError>(m, "DeviceError", PyExc_RuntimeError);
  nb::exception<cuem::NumericalError>(m, "NumericalError", PyExc_ValueError);
  nb::exception<cuem::DataError>(m, "DataError", PyExc_ValueError);
  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const cuem::InvalidArgument& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const cuem::Interrupted& e) {
      PyErr_SetString(PyExc_KeyboardInterrupt, e.what());
    }
  });

  m.def("_data_view", &data_view_info, "X"_a.noconvert(),
        "What cuem reads for X: its data pointer, n_rows, n_cols, row_stride (elements), dtype and device. "
        "For tests.");
  m.def("fit", &fit, "X"_a.noconvert(), "n_components"_a, "covariance_type"_a, "tol"_a, "reg_covar"_a, "max_iter"_a,
        "n_init"_a, "init_params"_a, "seed"_a, "device"_a = "cpu", "precision"_a = "float32", "n_threads"_a = 0,
        "device_memory_limit"_a = 0,
        "weights_init"_a = nb::none(), "means_init"_a = nb::none(), "precisions_init"_a = nb::none(),
        "on_iteration"_a = nb::none(), "sample_weight"_a.noconvert() = nb::none(), "missing"_a = "error",
        "acceleration"_a = "none", "incremental_blocks"_a = 1,
        "first_pass"_a = std::string(cuem::to_string(cuem::FitOptions{}.first_pass)), "max_block_steps"_a = 0,
        "Fits a Gaussian mixture with EM (sample_weight: None, or float64 n_samples; missing: 'error' or "
        "'marginalize', what NaN entries mean; acceleration: 'none' or 'squarem'). "
        "Returns a dict: weights, means, covariances, "
        "precisions_cholesky (scikit-learn's shapes), converged, n_iter, lower_bound, lower_bounds "
        "(the best restart's per-iteration mean log-likelihood), best_init, n_decreases, device, notices, "
        "max_decrease, missing (the data's missing entries: missing_entries, incomplete_rows, empty_rows, "
        "n_patterns, first_empty_rows), convergence_rate (EM's linear rate near the end of the best "
        "restart, NaN where too few steps to tell), n_estep_passes (E-steps over all restarts). "
        "on_iteration(init, iteration, mean_log_likelihood, change, seconds) is called after every iteration "
        "with the GIL held; returning False stops the fit early.");
  m.def("predict", &predict, "X"_a.noconvert(), "covariance_type"_a, "weights"_a, "means"_a, "covariances"_a,
        "precisions_cholesky"_a, "device"_a = "cpu", "precision"_a = "float32", "device_memory_limit"_a = 0,
        "missing"_a = "error",
        "Most probable component of every row of X (int64)." CUEM_WHERE_DOC);
  m.def("predict_proba", &predict_proba, "X"_a.noconvert(), "covariance_type"_a, "weights"_a, "means"_a,
        "covariances"_a, "precisions_cholesky"_a, "device"_a = "cpu", "precision"_a = "float32",
        "device_memory_limit"_a = 0, "missing"_a = "error",
        "Posterior probabilities, n_samples x n_components." CUEM_WHERE_DOC);
  m.def("score_samples", &score_samples, "X"_a.noconvert(), "covariance_type"_a, "weights"_a, "means"_a,
        "covariances"_a, "precisions_cholesky"_a, "device"_a = "cpu", "precision"_a = "float32",
        "device_memory_limit"_a = 0, "missing"_a = "error",
        "log p(x) of every row of X (of its observed entries with missing='marginalize')." CUEM_WHERE_DOC);
  m.def("score", &score, "X"_a.noconvert(), "covariance_type"_a, "weights"_a, "means"_a, "covariances"_a,
        "precisions_cholesky"_a, "device"_a = "cpu", "precision"_a = "float32", "device_memory_limit"_a = 0,
        "sample_weight"_a.noconvert() = nb::none(), "missing"_a = "error",
        "Mean of score_samples (sum w lp / sum w with sample_weight)." CUEM_WHERE_DOC);
  m.def("criteria", &criteria, "X"_a.noconvert(), "covariance_type"_a, "weights"_a, "means"_a, "covariances"_a,
        "precisions_cholesky"_a, "device"_a = "cpu", "precision"_a = "float32", "device_memory_limit"_a = 0,
        "sample_weight"_a.noconvert() = nb::none(), "missing"_a = "error",
        "(score, bic, aic, total weight) from one pass over X; on a CUDA device bic and aic carry its "
        "precision's rounding." CUEM_WHERE_DOC);
  nb::class_<Placed>(m, "PlacedData",
                     "Data (and sample weights) placed once on a device for any number of fits and evaluations. "
                     "Takes X as fit does (read in place, kept alive by this object); use cuem.PlacedData.")
      .def(nb::init<InputMatrix, std::optional<WeightArray>, const std::string&, const std::string&, std::size_t,
                    const std::string&>(),
           "X"_a.noconvert(), "sample_weight"_a.noconvert() = nb::none(), "device"_a = "cpu",
           "precision"_a = "float32", "device_memory_limit"_a = 0, "missing"_a = "error")
      .def_prop_ro("shape", [](const Placed& p) { return nb::make_tuple(p.X.shape(0), p.X.shape(1)); })
      .def_prop_ro("has_sample_weight", [](const Placed& p) { return p.sample_weight.has_value(); })
      .def_prop_ro("requested_device", [](const Placed& p) { return p.requested_device; })
      .def_prop_ro("missing", [](const Placed& p) { return std::string(cuem::to_string(p.missing)); })
      .def_prop_ro("description", [](const Placed& p) { return p.data->description(); })
      .def_prop_ro("notice", [](const Placed& p) { return p.data->notice(); });
  m.def("placed_fit", &placed_fit, "data"_a, "n_components"_a, "covariance_type"_a, "tol"_a, "reg_covar"_a,
        "max_iter"_a, "n_init"_a, "init_params"_a, "seed"_a, "weights_init"_a = nb::none(),
        "means_init"_a = nb::none(), "precisions_init"_a = nb::none(), "on_iteration"_a = nb::none(),
        "missing"_a = "error", "acceleration"_a = "none", "incremental_blocks"_a = 1,
        "first_pass"_a = std::string(cuem::to_string(cuem::FitOptions{}.first_pass)), "max_block_steps"_a = 0,
        "fit on placed data, on its device with its weights; returns fit's dict.");
#define CUEM_PLACED_MODEL_ARGS                                                                            \
  "data"_a, "covariance_type"_a, "weights"_a, "means"_a, "covariances"_a, "precisions_cholesky"_a
  m.def("placed_predict", &placed_predict, CUEM_PLACED_MODEL_ARGS, "predict on placed data.");
  m.def("placed_predict_proba", &placed_predict_proba, CUEM_PLACED_MODEL_ARGS, "predict_proba on placed data.");
  m.def("placed_score_samples", &placed_score_samples, CUEM_PLACED_MODEL_ARGS, "score_samples on placed data.");
  m.def("placed_criteria", &placed_criteria, CUEM_PLACED_MODEL_ARGS,
        "(score, bic, aic, total weight) on placed data, weighted by its sample weights.");
#undef CUEM_PLACED_MODEL_ARGS
  m.def("bic", &model_scalar<cuem::bic>, "X"_a.noconvert(), "covariance_type"_a, "weights"_a, "means"_a,
        "covariances"_a, "precisions_cholesky"_a, "sample_weight"_a.noconvert() = nb::none(),
        "Bayesian information criterion (lower is better), float64 on the CPU.");
  m.def("aic", &model_scalar<cuem::aic>, "X"_a.noconvert(), "covariance_type"_a, "weights"_a, "means"_a,
        "covariances"_a, "precisions_cholesky"_a, "sample_weight"_a.noconvert() = nb::none(),
        "Akaike information criterion (lower is better), float64 on the CPU.");
  m.def("sample", &sample, "n_samples"_a, "seed"_a, "covariance_type"_a, "weights"_a, "means"_a, "covariances"_a,
        "precisions_cholesky"_a, "Draws n_samples points: (X float64 n x D, labels int64 n), grouped by component.");
  m.def("impute", &impute, "X"_a.noconvert(), "covariance_type"_a, "weights"_a, "means"_a, "covariances"_a,
        "precisions_cholesky"_a, "with_variance"_a = false,
        "(X with its NaN entries replaced by their conditional expectations under the model, float64; their "
        "conditional variances, 0 where observed, or None). Float64 on the CPU; Inf is a DataError.");
  m.def("describe_missing", &describe_missing, "X"_a.noconvert(),
        "X's missing (NaN) entries: a dict as fit's 'missing'. Inf is a DataError.");
  m.def("validate_model", &validate_model, "covariance_type"_a, "weights"_a, "means"_a, "covariances"_a,
        "precisions_cholesky"_a, "Raises ValueError naming the first problem of the model arrays.");
  register_bayesian(m);
  register_online(m);
  register_hmm(m);
}
