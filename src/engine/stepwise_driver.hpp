#pragma once
// Stepwise (online) EM (Cappe and Moulines 2009; Liang and Klein 2009) for any model: the
// running statistics per unit weight move towards each batch's,
//   s_t = (1 - rho_t) s_{t-1} + rho_t s_batch / w_batch,   rho_t = (t + t0)^(-kappa),
// with the batch's statistics taken under the current parameters, then the M-step. The
// first step takes rho_1 = 1 (s_1 is the first batch's statistics: there is no s_0), so
// with kappa = 1 and t0 = 0 every s_t is the plain running mean of the batches'. kappa in
// (0.5, 1] makes sum rho = inf and sum rho^2 < inf, the conditions of the convergence
// theorem. The driver knows no model: a batch is the same model over the batch's rows
// (model.hpp), and Stats supports `stepwise_update(Stats&, double rho, const Stats&)`
// (core/online_stats.hpp for the Gaussian models).
#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>

#include "cuem/errors.hpp"
#include "engine/model.hpp"

namespace cuem::engine {

struct StepwiseSchedule {
  double kappa = 0.6;  ///< the decay, in (0.5, 1]
  double t0 = 0.0;     ///< the offset, >= 0: larger values damp the early steps

  /// Throws InvalidArgument when kappa or t0 is outside its range.
  void validate() const {
    if (!(kappa > 0.5 && kappa <= 1.0))
      throw InvalidArgument("the learning decay kappa must lie in (0.5, 1] (stepwise EM converges only there), got " +
                            std::to_string(kappa));
    if (!(std::isfinite(t0) && t0 >= 0.0))
      throw InvalidArgument("the learning offset t0 must be a finite number >= 0, got " + std::to_string(t0));
  }
  /// rho_t for step t >= 1 (1 at t = 1).
  double rho(std::int64_t t) const { return t <= 1 ? 1.0 : std::pow(static_cast<double>(t) + t0, -kappa); }
};

template <class Model>
class StepwiseEM {
 public:
  using Params = typename Model::Params;
  using Stats = typename Model::Stats;

  explicit StepwiseEM(StepwiseSchedule schedule) : schedule_(schedule) { schedule_.validate(); }

  bool started() const noexcept { return started_; }
  /// Starts from the given parameters (before the first step).
  void start(Params params) {
    params_ = std::move(params);
    started_ = true;
  }

  /// One step on `batch` (the model over one batch's rows): its statistics under the
  /// current parameters mixed in with rho_t, then the M-step. Returns the batch's mean
  /// log-likelihood per unit weight under the parameters before the step. A step that
  /// throws leaves the state as it was.
  /// The batch's model may be another type with the same Params and Stats (the Gaussian
  /// mixture's batches with and without missing entries).
  template <class Batch>
  double step(Batch& batch) {
    static_assert(std::is_same_v<typename Batch::Params, Params> && std::is_same_v<typename Batch::Stats, Stats>,
                  "a batch model of other parameters or statistics");
    if (!started_) throw Error("internal: a stepwise EM step before its start");
    const Stats b = batch.e_step(params_);
    Stats next = stats_;  // committed only when the M-step succeeds
    stepwise_update(next, schedule_.rho(t_ + 1), b);
    params_ = batch.m_step(next);
    stats_ = std::move(next);
    ++t_;
    return b.log_likelihood / b.weight;
  }

  const Params& params() const noexcept { return params_; }
  const Stats& stats() const noexcept { return stats_; }
  std::int64_t steps() const noexcept { return t_; }
  const StepwiseSchedule& schedule() const noexcept { return schedule_; }

 private:
  StepwiseSchedule schedule_;
  Params params_{};
  Stats stats_{};
  std::int64_t t_ = 0;
  bool started_ = false;
};

}  // namespace cuem::engine
