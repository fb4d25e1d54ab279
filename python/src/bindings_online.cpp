// cuem._cuem's online part (include/cuem/online.hpp): the stepwise EM state behind
// GaussianMixture.partial_fit, and the statistics of an array under given parameters,
// their sum and the M-step from them, the pieces a Dask or other distributed driver
// builds EM from. Statistics travel as dicts of NumPy arrays (picklable, so they cross
// process boundaries): covariance_type, shift, nk, s1, s2, log_likelihood, weight,
// n_points.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "array_support.hpp"
#include "cuem/errors.hpp"
#include "cuem/online.hpp"
#include "fit_hooks.hpp"

namespace nb = nanobind;
using namespace nb::literals;

namespace {

using namespace cuem_py;

nb::dict model_dict(const cuem::Model& m) {
  nb::dict out;
  put_model(out, m);
  return out;
}

// The stepwise EM state of one estimator. Not thread-safe; the GIL is released while it
// computes, so a lock keeps two threads from stepping it at once.
struct Online {
  cuem::OnlineGaussianMixture state;
  std::mutex busy;

  Online(int n_components, const std::string& covariance_type, double reg_covar, const std::string& init_params,
         std::uint64_t seed, const std::optional<ParameterArray>& weights_init,
         const std::optional<ParameterArray>& means_init, const std::optional<ParameterArray>& precisions_init,
         const std::string& device, const std::string& precision, int n_threads, std::size_t device_memory_limit,
         double learning_decay, double learning_offset, const std::string& missing)
      : state(options(n_components, covariance_type, reg_covar, init_params, seed, weights_init, means_init,
                      precisions_init, device, precision, n_threads, device_memory_limit, missing),
              {learning_decay, learning_offset}) {}

  static cuem::FitOptions options(int n_components, const std::string& covariance_type, double reg_covar,
                                  const std::string& init_params, std::uint64_t seed,
                                  const std::optional<ParameterArray>& weights_init,
                                  const std::optional<ParameterArray>& means_init,
                                  const std::optional<ParameterArray>& precisions_init, const std::string& device,
                                  const std::string& precision, int n_threads, std::size_t device_memory_limit,
                                  const std::string& missing) {
    cuem::FitOptions o;
    o.missing = cuem::parse_missing_policy(missing);
    o.n_components = n_components;
    o.covariance_type = cuem::parse_covariance_type(covariance_type);
    o.reg_covar = reg_covar;
    o.init = cuem::parse_init_method(init_params);
    o.seed = seed;
    o.device = cuem::parse_device(device);
    o.precision = cuem::parse_precision(precision);
    o.n_threads = n_threads;
    o.device_memory_limit = device_memory_limit;
    if (weights_init) o.weights_init = to_vector(*weights_init);
    if (means_init) o.means_init = to_vector(*means_init);
    if (precisions_init) o.precisions_init = to_vector(*precisions_init);
    return o;
  }

  double partial_fit(const InputMatrix& X, const std::optional<WeightArray>& w) {
    const cuem::DataView v = view_of(X);
    const cuem::WeightView wv = weights_of(w);
    return released([&] {
      const std::lock_guard<std::mutex> lock(busy);
      return state.partial_fit(v, wv);
    });
  }
};

nb::dict statistics_dict(cuem::MixtureStatistics&& s) {
  const auto K = static_cast<std::size_t>(s.n_components), D = static_cast<std::size_t>(s.n_features);
  nb::dict d;
  d["covariance_type"] = std::string(cuem::to_string(s.covariance_type));
  d["shift"] = to_numpy(std::move(s.shift), {K, D});
  d["nk"] = to_numpy(std::move(s.nk), {K});
  d["s1"] = to_numpy(std::move(s.s1), {K, D});
  const std::size_t n2 = s.s2.size();
  d["s2"] = to_numpy(std::move(s.s2), {n2});
  d["log_likelihood"] = s.log_likelihood;
  d["weight"] = s.weight;
  d["n_points"] = s.n_points;
  return d;
}

cuem::MixtureStatistics statistics_of(const nb::dict& d) {
  const auto array = [&](const char* key) {
    return to_vector(nb::cast<ParameterArray>(d[key]));
  };
  cuem::MixtureStatistics s;
  s.covariance_type = cuem::parse_covariance_type(nb::cast<std::string>(d["covariance_type"]));
  const ParameterArray shift = nb::cast<ParameterArray>(d["shift"]);
  if (shift.ndim() != 2) throw cuem::InvalidArgument("statistics: shift must be a 2-d array (K, D)");
  s.n_components = static_cast<int>(shift.shape(0));
  s.n_features = static_cast<int>(shift.shape(1));
  s.shift = to_vector(shift);
  s.nk = array("nk");
  s.s1 = array("s1");
  s.s2 = array("s2");
  s.log_likelihood = nb::cast<double>(d["log_likelihood"]);
  s.weight = nb::cast<double>(d["weight"]);
  s.n_points = nb::cast<std::size_t>(d["n_points"]);
  return s;
}

nb::dict statistics(const InputMatrix& X, const std::string& covariance_type, const ParameterArray& weights,
                    const ParameterArray& means, const ParameterArray& covariances,
                    const ParameterArray& precisions_cholesky, const std::optional<WeightArray>& sample_weight,
                    const std::string& device, const std::string& precision, std::size_t device_memory_limit) {
  const cuem::Model m = make_model(covariance_type, weights, means, covariances, precisions_cholesky);
  cuem::EvaluateOptions where;
  where.device = cuem::parse_device(device);
  where.precision = cuem::parse_precision(precision);
  where.device_memory_limit = device_memory_limit;
  const cuem::DataView v = view_of(X);
  const cuem::WeightView w = weights_of(sample_weight);
  return statistics_dict(released([&] { return cuem::mixture_statistics(m, v, where, w); }));
}

// The sum and the M-step release the GIL too: for large K and D (full covariances) they are
// O(K D^2) and O(K D^3), long enough to hold up a Dask worker's other threads.
nb::dict add(const nb::dict& a, const nb::dict& b) {
  cuem::MixtureStatistics s = statistics_of(a);
  const cuem::MixtureStatistics t = statistics_of(b);
  released([&] { cuem::add_statistics(s, t); });
  return statistics_dict(std::move(s));
}

nb::dict m_step(const nb::dict& s, double reg_covar) {
  const cuem::MixtureStatistics stats = statistics_of(s);
  return model_dict(released([&] { return cuem::model_from_statistics(stats, reg_covar); }));
}

}  // namespace

void register_online(nb::module_& m) {
  nb::class_<Online>(m, "OnlineGaussianMixture",
                     "Stepwise EM state (include/cuem/online.hpp): the first partial_fit initialises.")
      .def(nb::init<int, const std::string&, double, const std::string&, std::uint64_t,
                    const std::optional<ParameterArray>&, const std::optional<ParameterArray>&,
                    const std::optional<ParameterArray>&, const std::string&, const std::string&, int, std::size_t,
                    double, double, const std::string&>(),
           "n_components"_a, "covariance_type"_a, "reg_covar"_a, "init_params"_a, "seed"_a,
           "weights_init"_a = nb::none(), "means_init"_a = nb::none(), "precisions_init"_a = nb::none(),
           "device"_a = "cpu", "precision"_a = "float32", "n_threads"_a = 0, "device_memory_limit"_a = 0,
           "learning_decay"_a = 0.6, "learning_offset"_a = 0.0, "missing"_a = "error")
      .def("partial_fit", &Online::partial_fit, "X"_a.noconvert(), "sample_weight"_a.noconvert() = nb::none(),
           "One stepwise EM step; returns the batch's mean log-likelihood under the model before it.")
      .def_prop_ro("initialized", [](const Online& o) { return o.state.initialized(); })
      .def_prop_ro("n_steps", [](const Online& o) { return o.state.n_steps(); })
      .def_prop_ro("n_points_seen", [](const Online& o) { return o.state.n_points_seen(); })
      .def_prop_ro("device", [](const Online& o) { return o.state.device(); })
      .def_prop_ro("notices", [](const Online& o) { return o.state.notices(); })
      .def("model", [](const Online& o) { return model_dict(o.state.model()); },
           "The current model's arrays (weights, means, covariances, precisions_cholesky).");
  m.def("statistics", &statistics, "X"_a.noconvert(), "covariance_type"_a, "weights"_a, "means"_a, "covariances"_a,
        "precisions_cholesky"_a, "sample_weight"_a.noconvert() = nb::none(), "device"_a = "cpu",
        "precision"_a = "float32", "device_memory_limit"_a = 0,
        "The E-step's sufficient statistics of X under the model, as a dict (see add_statistics, m_step).");
  m.def("add_statistics", &add, "a"_a, "b"_a, "The sum of two statistics dicts (any shifts).");
  m.def("m_step", &m_step, "statistics"_a, "reg_covar"_a,
        "The M-step: the model's arrays (weights, means, covariances, precisions_cholesky) from statistics.");
}
