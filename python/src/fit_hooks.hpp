#pragma once
// Ctrl-C and the Python iteration callback for any fit the bindings run (bindings.cpp's
// header comment says how signals reach a fit). Python's signal handler only sets a flag,
// which PyErr_CheckSignals turns into KeyboardInterrupt on the main thread; the fit polls
// it through FitOptions::interrupted, at most every kSignalPollInterval, and the pending
// KeyboardInterrupt (or the callback's exception) is re-raised after cuem has unwound.
#include <nanobind/nanobind.h>

#include <chrono>
#include <utility>

#include "cuem/errors.hpp"
#include "cuem/options.hpp"

namespace cuem_py {

namespace nb = nanobind;

// Each look takes the GIL, which can wait up to the interpreter's switch interval (5 ms)
// when another thread runs Python, so it is rate-limited; 50 ms keeps Ctrl-C prompt and
// that cost at a few percent at most.
constexpr std::chrono::milliseconds kSignalPollInterval{50};

inline bool on_main_thread() {
  nb::module_ threading = nb::module_::import_("threading");
  return threading.attr("current_thread")().is(threading.attr("main_thread")());
}

/// Wires a fit's callbacks to Python. The callbacks capture a pointer to this object
/// (never a Python object by value: std::function copies would touch reference counts
/// without the GIL), so it neither moves nor copies, and outlives the fit.
class FitHooks {
 public:
  /// on_iteration: None or callable(init, iteration, mean_log_likelihood, change, seconds);
  /// a False return stops the fit (the best model so far is kept).
  explicit FitHooks(nb::object on_iteration) : on_iteration_(std::move(on_iteration)) {}
  FitHooks(const FitHooks&) = delete;
  FitHooks& operator=(const FitHooks&) = delete;

  /// Sets o.interrupted (on the main thread only: only it sees signals) and o.on_iteration.
  void attach(cuem::FitOptions& o) {
    FitHooks* h = this;
    if (on_main_thread()) {
      o.interrupted = [h]() {
        if (h->error_pending_) return true;
        const auto now = std::chrono::steady_clock::now();
        if (now - h->last_poll_ < kSignalPollInterval) return false;
        h->last_poll_ = now;
        nb::gil_scoped_acquire gil;
        // -1: a handler raised (KeyboardInterrupt for SIGINT); the error stays set for the re-raise.
        if (PyErr_CheckSignals() != 0) h->error_pending_ = true;
        return h->error_pending_;
      };
    }
    if (!on_iteration_.is_none()) {
      o.on_iteration = [h](const cuem::IterationInfo& info) {
        nb::gil_scoped_acquire gil;
        try {
          nb::object r =
              h->on_iteration_(info.init, info.iteration, info.mean_log_likelihood, info.change, info.seconds);
          return r.ptr() != Py_False;
        } catch (nb::python_error& e) {
          e.restore();  // re-raised after the fit
          h->error_pending_ = true;
          return false;
        }
      };
    }
  }

  /// f() with the GIL released; a pending Python error is raised after it returns or is interrupted.
  template <typename F>
  auto run(F&& f) {
    try {
      auto result = [&] {
        nb::gil_scoped_release release;
        return f();
      }();
      if (error_pending_) throw nb::python_error();
      return result;
    } catch (const cuem::Interrupted&) {
      if (error_pending_) throw nb::python_error();
      throw;
    }
  }

 private:
  nb::object on_iteration_;
  bool error_pending_ = false;
  std::chrono::steady_clock::time_point last_poll_{};
};

}  // namespace cuem_py
