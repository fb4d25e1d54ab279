#pragma once
// What every binding file of cuem._cuem shares: the array types it accepts, the views it
// takes of them in place, and NumPy arrays that own a vector's storage. The conventions
// (why X is read in place, what a CUDA array becomes) are bindings.cpp's header comment.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cuem/covariance_type.hpp"
#include "cuem/data_view.hpp"
#include "cuem/errors.hpp"
#include "cuem/fit.hpp"
#include "cuem/model.hpp"

namespace cuem_py {

namespace nb = nanobind;

// float64 or float32, any strides, host or CUDA memory; checked in view_of.
using InputMatrix = nb::ndarray<nb::ro, nb::ndim<2>>;
// Model parameters: small, copied.
using ParameterArray = nb::ndarray<const double, nb::c_contig, nb::device::cpu>;
// sample_weight, read in place like X (the Python layer converts anything else once).
using WeightArray = nb::ndarray<const double, nb::ndim<1>, nb::c_contig, nb::device::cpu>;

/// Hands a vector's storage to NumPy without copying: the array owns it through a capsule.
template <typename T>
nb::ndarray<nb::numpy, T> to_numpy(std::vector<T>&& values, std::vector<std::size_t> shape) {
  auto* owned = new std::vector<T>(std::move(values));
  nb::capsule owner(owned, [](void* p) noexcept { delete static_cast<std::vector<T>*>(p); });
  return nb::ndarray<nb::numpy, T>(owned->data(), shape.size(), shape.data(), owner);
}

/// The shape of a covariance (and precision Cholesky) array, scikit-learn's.
inline std::vector<std::size_t> covariance_shape(cuem::CovarianceType type, std::size_t K, std::size_t D) {
  switch (type) {
    case cuem::CovarianceType::full: return {K, D, D};
    case cuem::CovarianceType::tied: return {D, D};
    case cuem::CovarianceType::diag: return {K, D};
    case cuem::CovarianceType::spherical: return {K};
  }
  return {};
}

inline std::vector<double> to_vector(const ParameterArray& a) { return {a.data(), a.data() + a.size()}; }

/// X in place: rows of contiguous values (the column stride, in elements, is 1, or there
/// is one column), each starting row_stride >= n_cols elements after the one before.
inline cuem::DataView view_of(const InputMatrix& X) {
  const std::size_t rows = X.shape(0), cols = X.shape(1);
  const std::int64_t col_step = X.stride(1), row_step = X.stride(0);
  const bool rows_contiguous = col_step == 1 || cols <= 1;
  // One row (or none): its stride is never used, whatever the exporter reports.
  const std::size_t stride = rows <= 1 ? cols : static_cast<std::size_t>(row_step < 0 ? 0 : row_step);
  if (!rows_contiguous || stride < cols)
    throw nb::type_error("X must have contiguous rows that start a non-negative stride apart (C order, or a slice "
                         "of a C-ordered array); convert it with numpy.ascontiguousarray");
  cuem::DataView v;
  if (X.dtype() == nb::dtype<double>())
    v = cuem::DataView(static_cast<const double*>(X.data()), rows, cols, stride);
  else if (X.dtype() == nb::dtype<float>())
    v = cuem::DataView(static_cast<const float*>(X.data()), rows, cols, stride);
  else
    throw nb::type_error("X must be a float64 or float32 array");
  if (X.device_type() == nb::device::cuda::value) return cuem::device_view(v, static_cast<int>(X.device_id()));
  if (X.device_type() != nb::device::cpu::value)
    throw nb::type_error(("X is in memory cuem cannot read (DLPack device type " + std::to_string(X.device_type()) +
                          "); pass a host array or a CUDA one")
                             .c_str());
  return v;
}

// A model from scikit-learn-shaped arrays, checked by cuem (shapes, simplex, factors).
inline cuem::Model make_model(const std::string& covariance_type, const ParameterArray& weights, const ParameterArray& means,
                       const ParameterArray& covariances, const ParameterArray& precisions_cholesky) {
  if (weights.ndim() != 1) throw cuem::InvalidArgument("weights must be a 1-d array (n_components,)");
  if (means.ndim() != 2) throw cuem::InvalidArgument("means must be a 2-d array (n_components, n_features)");
  cuem::Model m;
  m.covariance_type = cuem::parse_covariance_type(covariance_type);
  m.n_components = static_cast<int>(weights.shape(0));
  m.n_features = static_cast<int>(means.shape(1));
  if (means.shape(0) != weights.shape(0))
    throw cuem::InvalidArgument("means has " + std::to_string(means.shape(0)) + " rows but weights has " +
                                std::to_string(weights.shape(0)) + " components");
  m.weights = to_vector(weights);
  m.means = to_vector(means);
  m.covariances = to_vector(covariances);
  m.precisions_cholesky = to_vector(precisions_cholesky);
  cuem::validate_model(m);
  return m;
}


/// A model's arrays in scikit-learn's shapes, copied into `out` (weights, means,
/// covariances, precisions_cholesky).
inline void put_model(nb::dict& out, const cuem::Model& m) {
  const auto K = static_cast<std::size_t>(m.n_components), D = static_cast<std::size_t>(m.n_features);
  out["weights"] = to_numpy(std::vector<double>(m.weights), {K});
  out["means"] = to_numpy(std::vector<double>(m.means), {K, D});
  out["covariances"] = to_numpy(std::vector<double>(m.covariances), covariance_shape(m.covariance_type, K, D));
  out["precisions_cholesky"] =
      to_numpy(std::vector<double>(m.precisions_cholesky), covariance_shape(m.covariance_type, K, D));
}

inline cuem::WeightView weights_of(const std::optional<WeightArray>& w) {
  return w ? cuem::WeightView(w->data(), w->shape(0)) : cuem::WeightView{};
}

/// Runs one library call with the GIL released.
template <typename F>
auto released(F&& f) {
  nb::gil_scoped_release release;
  return f();
}

}  // namespace cuem_py
