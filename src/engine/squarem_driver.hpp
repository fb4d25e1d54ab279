#pragma once
// Accelerated EM for any model with a parameter map: SQUAREM (Varadhan and Roland 2008,
// Scand. J. Statist. 35, "Simple and globally convergent methods for accelerating the
// convergence of any EM algorithm"), with its S3 step length and a monotonicity
// safeguard. Same options, result, restarts, trace and convergence test as the batch
// driver (batch_driver.hpp); it knows no model.
//
// EM converges linearly, at the rate of the largest fraction of missing information
// (EmRateEstimate); where that is close to 1 (overlapping components) plain EM crawls.
// SQUAREM takes two EM steps from x0, x1 = F(x0) and x2 = F(x1), and extrapolates along
// them in an unconstrained parametrisation u(x):
//   r = u(x1) - u(x0),  v = u(x2) - 2 u(x1) + u(x0),  alpha = -||r|| / ||v|| (S3),
//   clamped to [-step_max, -1],  x' = u^-1(u(x0) - 2 alpha r + alpha^2 v).
// alpha = -1 gives x2 itself. x' is followed by one stabilising EM step, F(x'), from
// which the next cycle starts. step_max starts at 1 (the first cycles are plain EM) and
// grows 4-fold each time alpha reaches it, shrinking 4-fold after a rejected
// extrapolation: the defaults of the authors' SQUAREM package.
//
// The safeguard: x' is kept only when its bound is at least x1's (the last EM point
// whose bound is known; no rounding allowance, so an extrapolation never lowers the
// trace). Otherwise alpha may be pulled back towards -1, alpha <- (alpha - 1) / 2, up to
// max_backtracks times (SquaremSettings), and then the cycle falls back to the plain EM
// step x2. The bound
// of x' comes from its E-step, whose statistics feed the stabilising M-step, so an
// accepted extrapolation costs no extra pass; a rejected one costs one pass each.
//
// Passes, the trace and convergence: every E-step counts against max_iter (the work
// budget, as for plain EM). The trace holds the bounds of the points kept (x0, x1, an
// accepted x' or the fallback x2, ...), each with the wall time since the previous entry
// (rejected passes included); n_iter counts these entries. The tol test is on the
// change of an EM step (x to F(x)) only, as plain EM's is, never on an extrapolation's
// gain. (Stricter tests, two small changes in a row, an extrapolation's included, cost a
// pass and stopped at the same point on the one fit where SQUAREM ended below plain EM:
// bench/NOTES.md, SQUAREM.) The result's parameters are the
// M-step of the last kept point's statistics and its lower_bound that point's bound, as
// in batch_driver.hpp.
//
// The rate (BatchResult::convergence_rate) comes from SQUAREM's own plain EM steps (x0 to
// x1, x1 to x2 on a fallback, x' to F(x')), runs of two or more. It reads low: an
// extrapolation removes most of the error along EM's slow direction, so the steps after
// it see the faster ones (the test's overlapping mixture: 0.66 here where plain EM's
// estimate, and its observed approach, are 0.993). Exact for a one-parameter linear map.
// For "EM is converging at rate r" take plain EM's.
//
// A model takes part by providing its map as two free functions found by
// argument-dependent lookup (for the Gaussian mixture: gmm_parameter_map.hpp):
//   std::vector<double> to_unconstrained(const Model&, const Model::Params&);
//   Model::Params from_unconstrained(const Model&, const std::vector<double>&,
//                                    const Model::Params& shape);
// from_unconstrained must map every finite vector of the right length to valid
// parameters (weights on the simplex, covariances positive definite, ...), and invert
// to_unconstrained up to rounding. Any vector norm works; the map decides the geometry
// of the extrapolation.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "engine/batch_driver.hpp"

namespace cuem::engine {

/// Whether a model provides the parameter map the accelerated driver needs (above).
template <class M, class = void>
struct has_parameter_map : std::false_type {};

template <class M>
struct has_parameter_map<
    M, std::void_t<decltype(std::vector<double>(to_unconstrained(std::declval<const M&>(),
                                                                  std::declval<const typename M::Params&>()))),
                   decltype(typename M::Params(from_unconstrained(std::declval<const M&>(),
                                                                  std::declval<const std::vector<double>&>(),
                                                                  std::declval<const typename M::Params&>())))>>
    : std::true_type {};

struct SquaremSettings {
  double step_max0 = 1.0;  ///< the first cap on |alpha|
  double step_factor = 4.0;  ///< the cap's growth on reaching it, and shrink on a rejection
  /// Times alpha is pulled towards -1 before the fallback. 0 by default: on the
  /// overlapping mixtures of tests/test_squarem.cpp and bench/bench_squarem.cpp a pulled-back
  /// step is usually kept but costs a pass, where the fallback's plain EM step costs none
  /// (its E-step starts the next cycle) and shrinks the cap (bench/NOTES.md, SQUAREM).
  int max_backtracks = 0;
};

template <class Params>
struct SquaremResult : BatchResult<Params> {
  int n_extrapolations = 0;  ///< extrapolated points kept (all restarts)
  int n_backtracks = 0;      ///< extrapolations rejected and retried with a shorter step
  int n_fallbacks = 0;       ///< cycles that fell back to the plain EM step
};

/// SQUAREM over n_init restarts, seeded and chosen as run_batch_em's.
template <class Model>
SquaremResult<typename Model::Params> run_squarem_em(Model& model, const BatchOptions& o,
                                                     const SquaremSettings& settings = {}) {
  static_assert(is_batch_model<Model>::value, "not an engine model: see src/engine/model.hpp for the members");
  static_assert(has_parameter_map<Model>::value,
                "no parameter map: see src/engine/squarem_driver.hpp for to_unconstrained and from_unconstrained");
  using Clock = std::chrono::steady_clock;
  using Params = typename Model::Params;
  using Stats = typename Model::Stats;
  SquaremResult<Params> result;
  bool stopped = false;
  for (int init = 0; init < o.n_init && !stopped; ++init) {
    const Params start = start_restart(model, o, init, result);

    EmRateEstimate rate(model.unit_roundoff());
    double step_max = settings.step_max0;
    int passes = 0, n_iter = 0;
    bool converged = false;
    double bound = -std::numeric_limits<double>::infinity();  // of the last point kept
    auto since = Clock::now();                                // the last trace entry's end

    const auto e_step = [&](const Params& p) {
      ++passes;
      ++result.n_estep_passes;
      return model.e_step(p);
    };
    const auto mean = [](const Stats& s) { return s.log_likelihood / s.weight; };
    // Keeps a point whose E-step gave `b`: trace, decrease watch, callback, and the tol
    // test where it ended an EM step. False when the fit is to stop.
    const auto keep = [&](double b, bool em_step, bool follows) {
      const double previous = bound, change = b - previous;
      bound = b;
      ++n_iter;
      const auto now = Clock::now();
      const double seconds = std::chrono::duration<double>(now - since).count();
      since = now;
      if (n_iter > 1) watch_decrease(result, previous, change, model.unit_roundoff());
      if (em_step) rate.add(previous, change, follows);
      result.trace.push_back({init, n_iter, b, seconds, rate.rate()});
      if (o.on_iteration && !o.on_iteration({init, n_iter, b, change, seconds})) {
        stopped = true;
        return false;
      }
      if (em_step && std::abs(change) < o.tol) {
        converged = true;
        return false;
      }
      return true;
    };

    Params base = start;  // x0 of the next cycle: the last point kept
    Params params;        // the M-step of base's statistics: the result so far
    bool base_by_em = false;  // base = F(the point before): the next EM step continues a run
    bool going = o.max_iter >= 1;
    if (going) {
      const Stats s0 = e_step(base);
      params = model.m_step(s0);
      going = keep(mean(s0), false, false);  // the first entry: change +inf, as the batch driver's
    }
    while (going && passes < o.max_iter) {
      // x1 = F(x0), x2 = F(x1).
      const Params x1 = params;
      const Stats s1 = e_step(x1);
      const double bound1 = mean(s1);
      params = model.m_step(s1);
      if (!keep(bound1, true, base_by_em)) break;
      const Params x2 = params;

      // The step length, S3, within [-step_max, -1].
      const std::vector<double> u0 = to_unconstrained(model, base), u1 = to_unconstrained(model, x1),
                                u2 = to_unconstrained(model, x2);
      std::vector<double> r(u0.size()), v(u0.size());
      double rr = 0, vv = 0;
      for (std::size_t i = 0; i < u0.size(); ++i) {
        r[i] = u1[i] - u0[i];
        v[i] = u2[i] - 2 * u1[i] + u0[i];
        rr += r[i] * r[i];
        vv += v[i] * v[i];
      }
      double alpha = vv > 0 && std::isfinite(rr) && std::isfinite(vv) ? -std::sqrt(rr / vv) : -1.0;
      const bool at_cap = alpha <= -step_max;
      alpha = std::min(std::max(alpha, -step_max), -1.0);

      if (alpha < -1.0) {
        bool kept = false;
        for (int attempt = 0; passes < o.max_iter; ++attempt) {
          std::vector<double> u(u0.size());
          for (std::size_t i = 0; i < u.size(); ++i) u[i] = u0[i] - 2 * alpha * r[i] + alpha * alpha * v[i];
          Params xp = from_unconstrained(model, u, base);
          const Stats sp = e_step(xp);
          const double bp = mean(sp);
          if (bp >= bound1) {  // a NaN bound fails too
            kept = true;
            ++result.n_extrapolations;
            if (at_cap && attempt == 0) step_max *= settings.step_factor;
            params = model.m_step(sp);
            base = std::move(xp);
            base_by_em = false;
            going = keep(bp, false, false);
            break;
          }
          if (attempt == settings.max_backtracks) break;
          ++result.n_backtracks;
          alpha = (alpha - 1) / 2;
        }
        if (kept) {
          if (!going || passes >= o.max_iter) break;
          // The stabilising step: x_s = F(x'), the next cycle's x0.
          Params xs = params;
          const Stats ss = e_step(xs);
          params = model.m_step(ss);
          base = std::move(xs);
          base_by_em = true;
          going = keep(mean(ss), true, false);
          continue;
        }
        if (passes >= o.max_iter) break;  // the budget went on rejected extrapolations
        ++result.n_fallbacks;
        step_max = std::max(settings.step_max0, step_max / settings.step_factor);
      } else if (at_cap) {
        step_max *= settings.step_factor;
      }

      // The plain EM step to x2 (alpha = -1, or the fallback).
      if (passes >= o.max_iter) break;
      const Stats s2 = e_step(x2);
      params = model.m_step(s2);
      base = x2;
      base_by_em = true;
      going = keep(mean(s2), true, true);
    }

    keep_best_restart(result, std::move(params), init, converged, n_iter, bound, rate.rate());
  }
  return result;
}

}  // namespace cuem::engine
