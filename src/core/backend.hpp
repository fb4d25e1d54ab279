#pragma once
// The seam between the shared host code and the compute backends (DESIGN.md): given
// prepared parameters and the data, a backend produces additive sufficient statistics
// and per-point evaluations. Nothing above this header knows which backend runs.
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "core/prepared_params.hpp"
#include "core/sufficient_stats.hpp"
#include "cuem/data_view.hpp"
#include "cuem/options.hpp"

namespace cuem {

class Backend {
 public:
  virtual ~Backend() = default;

  /// One E-step over all points: statistics about params.means plus the log-likelihood.
  virtual SufficientStats estep(const PreparedParams& params) = 0;

  /// For points [begin, end): log p(x_n) into log_prob (may be null) and the
  /// responsibilities, row-major (end - begin) x K, into resp (may be null).
  virtual void evaluate(const PreparedParams& params, std::size_t begin, std::size_t end,
                        double* log_prob, double* resp) = 0;

  virtual const char* name() const noexcept = 0;

  /// What runs the work, for reports: the device, precision and memory layout.
  virtual std::string description() const { return name(); }

  /// A check the backend polls between chunks of work; true aborts with Interrupted.
  void set_interrupt(std::function<bool()> check) { interrupted_ = std::move(check); }

 protected:
  /// Throws cuem::Interrupted when the interrupt check says so.
  void poll_interrupt() const;

 private:
  std::function<bool()> interrupted_;
};

/// How a fit's backend is chosen and sized (the relevant part of FitOptions).
struct BackendRequest {
  Device device;
  Precision precision = Precision::float32;
  std::size_t device_memory_limit = 0;  ///< bytes; 0 = most of the free device memory
};

/// The backend for a request; throws DeviceError when it cannot be had. For device
/// 'auto' without a usable GPU this is the CPU, and `notice` (when given) says so.
std::unique_ptr<Backend> make_backend(DataView X, const BackendRequest& request, std::string* notice = nullptr);

}  // namespace cuem
