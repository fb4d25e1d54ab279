#pragma once
// Batch EM for any model (DESIGN.md, "The EM engine"): restarts, iterations, the
// convergence test, the log-likelihood trace and its monotonicity watch, best of n. The
// driver knows no model; src/engine/model.hpp says what a model provides.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/rng.hpp"
#include "cuem/fit.hpp"
#include "cuem/options.hpp"
#include "engine/model.hpp"

namespace cuem::engine {

struct BatchOptions {
  int n_init = 1;
  int max_iter = 100;
  double tol = 1e-3;  ///< on |change| of the mean log-likelihood per unit weight
  std::uint64_t seed = 0;
  /// Called after every iteration; false stops the fit (the best model so far is kept).
  std::function<bool(const IterationInfo&)> on_iteration;
  /// Incremental EM only: a restart ends after this many block steps (its trace entries),
  /// with the parameters of its last M-step; 0: no limit.
  int max_steps = 0;
};

template <class Params>
struct BatchResult {
  Params params;            ///< the best restart's, after its last M-step
  bool fitted = false;      ///< false only when the first restart was stopped before an iteration
  bool converged = false;
  int n_iter = 0;
  double lower_bound = -std::numeric_limits<double>::infinity();
  int best_init = 0;
  std::vector<TracePoint> trace;  ///< every iteration of every restart, in order
  int n_decreases = 0;            ///< iterations that fell by more than rounding (EM forbids it)
  double max_decrease = 0;
  std::vector<std::string> notices;  ///< the models' initialisation notices, each once
  /// EM's linear rate near the end of the best restart (EmRateEstimate below): the
  /// largest eigenvalue of the fraction of missing information, close to 1 where EM
  /// crawls. NaN where the restart made too few steps above rounding to tell. Under
  /// run_squarem_em, from its own plain steps, which read low (squarem_driver.hpp).
  double convergence_rate = std::numeric_limits<double>::quiet_NaN();
  int n_estep_passes = 0;  ///< E-steps over all restarts (rejected extrapolations included)
};

/// How far the mean log-likelihood may fall by rounding alone: 1e-10 relative for float64
/// E-steps; for float32 ones every log p(x) carries a few ulps, and near convergence the
/// true rise is smaller than that, so 16 ulps of the bound.
inline double rounding_slack(double lower_bound, double unit_roundoff) {
  return std::max(1e-10, 16 * unit_roundoff) * std::max(1.0, std::abs(lower_bound));
}

/// EM's linear rate, estimated from the bound's changes over plain EM steps (a step: x to
/// M(E(x))). Near the optimum theta*, EM is the linear map e <- J e on the error, with J's
/// largest eigenvalue lambda the rate (the fraction of missing information, Dempster,
/// Laird and Rubin 1977); the bound is quadratic in e there, so its changes shrink by
/// lambda^2 a step. The estimate is the square root of the geometric mean of the last
/// kRatios ratios of successive changes, each change counted only when it stands
/// clear of rounding (100 times the monotonicity slack) and only between steps where one
/// starts at the other's end.
class EmRateEstimate {
 public:
  static constexpr int kRatios = 3;

  explicit EmRateEstimate(double unit_roundoff) : unit_roundoff_(unit_roundoff) {}

  /// One EM step that raised the bound from `from` by `change`; `follows` says whether it
  /// starts where the previous step given here ended.
  void add(double from, double change, bool follows) {
    const bool clear = change > 100 * rounding_slack(from, unit_roundoff_);
    if (clear && follows && last_ > 0) {
      ratios_[next_ % kRatios] = change / last_;
      ++next_;
    }
    last_ = clear ? change : 0.0;
  }

  double rate() const {
    if (next_ == 0) return std::numeric_limits<double>::quiet_NaN();
    const int n = next_ < kRatios ? next_ : kRatios;
    double log_sum = 0;
    for (int i = 0; i < n; ++i) log_sum += std::log(ratios_[i]);
    return std::exp(log_sum / (2.0 * n));
  }

 private:
  double unit_roundoff_;
  double last_ = 0;  ///< the previous step's change, 0 where it was lost in rounding
  double ratios_[kRatios] = {};
  int next_ = 0;
};

/// A model whose Stats has `bool model_changed` says an M-step handed over parameters of
/// another model (the Bayesian mixture's pruning drops components): the next bound is
/// then a bound of another model, not comparable with this one.
template <class S, class = void>
struct reports_model_change : std::false_type {};
template <class S>
struct reports_model_change<S, std::void_t<decltype(bool{std::declval<const S&>().model_changed})>>
    : std::true_type {};

template <class S>
bool model_changed(const S& s) {
  if constexpr (reports_model_change<S>::value) return s.model_changed;
  return false;
}

/// Adds a restart's initialisation notices to the result's, each once however many
/// restarts say it.
inline void add_notices(std::vector<std::string>& all, const std::vector<std::string>& more) {
  for (const std::string& n : more)
    if (std::find(all.begin(), all.end(), n) == all.end()) all.push_back(n);
}

/// Restart `init`'s start: the model initialised from seed rng::hash(seed, kInitSeed, init),
/// its notices added to the result's.
template <class Model>
typename Model::Params start_restart(Model& model, const BatchOptions& o, int init,
                                     BatchResult<typename Model::Params>& result) {
  std::vector<std::string> notices;
  typename Model::Params params =
      model.initialize(rng::hash(o.seed, rng::kInitSeed, static_cast<std::uint64_t>(init)), &notices);
  add_notices(result.notices, notices);
  return params;
}

/// Counts a fall of the bound by more than rounding (EM forbids it).
template <class Params>
void watch_decrease(BatchResult<Params>& r, double previous, double change, double unit_roundoff) {
  if (change < -rounding_slack(previous, unit_roundoff)) {
    ++r.n_decreases;
    r.max_decrease = std::max(r.max_decrease, -change);
  }
}

/// Keeps a finished restart where it is the first or its final bound beats the best so far
/// (the first restart wins ties).
template <class Params>
void keep_best_restart(BatchResult<Params>& r, Params&& params, int init, bool converged, int n_iter, double bound,
                       double rate) {
  if (r.fitted && !(bound > r.lower_bound)) return;
  r.fitted = true;
  r.params = std::move(params);
  r.converged = converged;
  r.n_iter = n_iter;
  r.lower_bound = bound;
  r.best_init = init;
  r.convergence_rate = rate;
}

/// Runs n_init restarts (restart i starts from seed rng::hash(seed, kInitSeed, i)) of at
/// most max_iter iterations each and keeps the restart with the highest final bound (the
/// first on ties). The bound of an iteration is the mean log-likelihood per unit weight
/// of the parameters before its M-step, as scikit-learn reports it.
template <class Model>
BatchResult<typename Model::Params> run_batch_em(Model& model, const BatchOptions& o) {
  static_assert(is_batch_model<Model>::value, "not an engine model: see src/engine/model.hpp for the members");
  using Clock = std::chrono::steady_clock;
  BatchResult<typename Model::Params> result;
  bool stopped = false;
  for (int init = 0; init < o.n_init && !stopped; ++init) {
    typename Model::Params params = start_restart(model, o, init, result);
    double bound = -std::numeric_limits<double>::infinity();
    bool converged = false;
    int n_iter = 0;
    EmRateEstimate rate(model.unit_roundoff());
    // An iteration is "fresh" when its bound has no predecessor of the same model: the
    // first, and the first after an M-step that changed the model (a prune). The bounds
    // before and after a change bound different models' evidence, so across it a fall is
    // no monotonicity violation and a small change is no convergence; the watch, the tol
    // test and the rate estimate restart there.
    bool fresh = true, previous_fresh = true;
    for (int it = 1; it <= o.max_iter; ++it) {
      const auto t0 = Clock::now();
      const double previous = bound;
      const typename Model::Stats stats = model.e_step(params);
      ++result.n_estep_passes;
      bound = stats.log_likelihood / stats.weight;
      params = model.m_step(stats);
      n_iter = it;
      const double change = bound - previous;
      const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
      if (!fresh) {
        rate.add(previous, change, !previous_fresh);
        watch_decrease(result, previous, change, model.unit_roundoff());
      }
      result.trace.push_back({init, it, bound, seconds, rate.rate()});
      if (o.on_iteration && !o.on_iteration({init, it, bound, change, seconds})) {
        stopped = true;
        break;
      }
      if (!fresh && std::abs(change) < o.tol) {
        converged = true;
        break;
      }
      previous_fresh = fresh;
      fresh = model_changed(stats);
    }
    keep_best_restart(result, std::move(params), init, converged, n_iter, bound, rate.rate());
  }
  return result;
}

}  // namespace cuem::engine
