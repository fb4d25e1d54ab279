#pragma once
// Long-lived handles: where the work runs (Resources) and data placed there once
// (PlacedData), so that fits, evaluations and model selection on the same data reuse one
// device context and one upload instead of making their own per call.
//
//   cuem::Resources gpu({cuem::parse_device("cuda"), cuem::Precision::float32});
//   cuem::PlacedData data(gpu, X);                   // X is converted and uploaded once
//   for (int k = 1; k <= 8; ++k) {                   // ... and read by every fit
//     options.n_components = k;
//     const cuem::FitResult r = cuem::fit(data, options);
//     const cuem::Criteria c = cuem::criteria(data, r.model);  // on the device, no upload
//   }
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cuem/data_view.hpp"
#include "cuem/fit.hpp"
#include "cuem/options.hpp"

namespace cuem {

struct ResourceOptions {
  Device device;
  Precision precision = Precision::float32;  ///< of the CUDA log-densities; the CPU is float64
  /// CPU threads; 0 means OpenMP's default. Results do not depend on it.
  int n_threads = 0;
  /// Bytes of device memory the work may use; 0 means 80% of the device's free memory.
  std::size_t device_memory_limit = 0;
  CudaTuning cuda_tuning;
};

/// A device to run on, with its settings, shared by the data placed there. Not
/// thread-safe: one thread uses a Resources and its PlacedData at a time.
class Resources {
 public:
  explicit Resources(const ResourceOptions& options = {});
  ~Resources();
  Resources(Resources&&) noexcept;
  Resources& operator=(Resources&&) noexcept;
  Resources(const Resources&) = delete;
  Resources& operator=(const Resources&) = delete;

  const ResourceOptions& options() const noexcept;

  struct Impl;
  Impl& impl() noexcept { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

/// Data (and optional sample weights) placed on a Resources' device for any number of
/// fits and evaluations. X and the weights are not copied on the host: they must stay
/// alive and unchanged while the PlacedData lives. The Resources must outlive it.
/// Validates X and the weights (DataError, InvalidArgument); throws DeviceError when the
/// Resources' device cannot be had (at the first fit or evaluation, where the data are
/// placed). Device 'auto' is resolved there: without a usable GPU it is the CPU, and
/// notice() says so. Under MissingPolicy::marginalize X may hold NaN entries (missing
/// values, include/cuem/missing.hpp): each fit and evaluation then regroups the rows
/// by pattern itself, so only complete data gain from the placement.
class PlacedData {
 public:
  PlacedData(Resources& resources, DataView X, WeightView sample_weight = {},
             MissingPolicy missing = MissingPolicy::error);
  ~PlacedData();
  PlacedData(PlacedData&&) noexcept;
  PlacedData& operator=(PlacedData&&) noexcept;
  PlacedData(const PlacedData&) = delete;
  PlacedData& operator=(const PlacedData&) = delete;

  DataView data() const noexcept;
  WeightView weights() const noexcept;
  /// What a user should know about the choice of device, or "".
  const std::string& notice() const noexcept;
  /// What runs the work: the device, precision and memory layout (after a first call).
  std::string description() const;

  struct Impl;
  Impl& impl() noexcept { return *impl_; }
  /// For the library's own use (Impl is not defined for users).
  explicit PlacedData(std::unique_ptr<Impl> impl) noexcept;

 private:
  std::unique_ptr<Impl> impl_;
};

/// fit() on placed data. The options' device, precision, n_threads and
/// device_memory_limit are ignored: the Resources' hold.
FitResult fit(PlacedData& data, const FitOptions& options);

/// The evaluations of fit.hpp on placed data, on its device.
std::vector<int> predict(PlacedData& data, const Model& model);
std::vector<double> predict_proba(PlacedData& data, const Model& model);
std::vector<double> score_samples(PlacedData& data, const Model& model);
/// score, bic and aic, weighted by the data's sample weights where given.
Criteria criteria(PlacedData& data, const Model& model);

}  // namespace cuem
