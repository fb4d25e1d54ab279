// The EM driver: restarts, iterations, convergence and the monotonicity watch. It sees
// only the backend seam (prepared parameters in, sufficient statistics out).
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "core/m_step.hpp"
#include "core/prepared_params.hpp"
#include "core/rng.hpp"
#include "core/validate.hpp"
#include "cuem/fit.hpp"
#include "engine/primitives.hpp"
#include "init/initialize.hpp"

namespace cuem {
namespace {

// Sets OpenMP's thread count for this thread's parallel regions and restores it.
class ThreadCountScope {
 public:
  explicit ThreadCountScope(int n) : previous_(omp_get_max_threads()), active_(n > 0) {
    if (active_) omp_set_num_threads(n);
  }
  ~ThreadCountScope() {
    if (active_) omp_set_num_threads(previous_);
  }
  ThreadCountScope(const ThreadCountScope&) = delete;
  ThreadCountScope& operator=(const ThreadCountScope&) = delete;

 private:
  int previous_;
  bool active_;
};

// A fall of the mean log-likelihood smaller than this is rounding in the sums, not a
// violation of EM's monotonicity.
// How far the mean log-likelihood may fall by rounding alone: 1e-10 relative for float64
// E-steps; for float32 ones (a GPU's default) every log p(x) carries a few ulps, and near
// convergence the true rise is smaller than that, so 16 ulps of the bound.
double rounding_slack(double lower_bound, double unit_roundoff) {
  return std::max(1e-10, 16 * unit_roundoff) * std::max(1.0, std::abs(lower_bound));
}

// The features whose spread the fitted model cannot resolve because reg_covar swamps it:
// 0 < variance < reg_covar / 2. A feature's variance follows from the model alone (the
// law of total variance holds exactly at an M-step: the weighted within-component
// variances less reg_covar, plus the spread of the means), so no pass over the data is
// needed. Constant features (variance 0 up to rounding) are what reg_covar is for and are
// not named. Spherical models keep no per-feature variance and are not checked.
std::string swamped_features_notice(const Model& m, double reg_covar) {
  if (reg_covar <= 0 || m.covariance_type == CovarianceType::spherical) return "";
  const std::size_t K = static_cast<std::size_t>(m.n_components), D = static_cast<std::size_t>(m.n_features);
  std::vector<std::size_t> named;
  double worst = 0.0;
  for (std::size_t j = 0; j < D; ++j) {
    double centre = 0.0;
    for (std::size_t k = 0; k < K; ++k) centre += m.weights[k] * m.means[k * D + j];
    double variance = 0.0;
    for (std::size_t k = 0; k < K; ++k) {
      double within = 0.0;
      switch (m.covariance_type) {
        case CovarianceType::full: within = m.covariances[(k * D + j) * D + j]; break;
        case CovarianceType::tied: within = m.covariances[j * D + j]; break;
        default: within = m.covariances[k * D + j]; break;
      }
      const double gap = m.means[k * D + j] - centre;
      variance += m.weights[k] * ((within - reg_covar) + gap * gap);
    }
    const double rounding = 1e-10 * std::max(std::abs(centre), std::sqrt(reg_covar));
    if (variance > rounding * rounding && variance < 0.5 * reg_covar) {
      named.push_back(j);
      worst = worst == 0.0 ? variance : std::min(worst, variance);
    }
  }
  if (named.empty()) return "";
  std::string list;
  for (std::size_t i = 0; i < named.size() && i < 8; ++i) list += (i ? ", " : "") + std::to_string(named[i]);
  if (named.size() > 8) list += ", ... (" + std::to_string(named.size()) + " in all)";
  char detail[160];
  std::snprintf(detail, sizeof detail, "variance down to %.3g, below reg_covar = %.3g", worst, reg_covar);
  const bool one = named.size() == 1;
  return std::string(one ? "feature " : "features ") + list + " (0-based) " + (one ? "varies" : "vary") +
         " too little for the fit (" + detail + ", which then dominates the covariances): the components cannot be "
         "told apart along " + (one ? "it" : "them") + "; standardise the data or lower reg_covar";
}

}  // namespace

FitResult fit(DataView X, const FitOptions& o) {
  validate_data(X);
  validate_options(o, X);
  const ThreadCountScope threads(o.n_threads);
  std::string notice;
  const std::unique_ptr<Primitives> backend =
      make_primitives(X, {}, {o.device, o.precision, o.device_memory_limit}, &notice);
  if (o.interrupted) backend->set_interrupt(o.interrupted);
  backend->reserve(o.covariance_type, o.n_components);
  const double N = static_cast<double>(X.n_rows);
  using Clock = std::chrono::steady_clock;

  KMeansShared kmeans_shared;
  FitResult result;
  if (!notice.empty()) result.notices.push_back(notice);
  double best_bound = -std::numeric_limits<double>::infinity();
  bool have_best = false;
  bool stopped = false;
  for (int init = 0; init < o.n_init && !stopped; ++init) {
    std::vector<std::string> init_notices;
    Model model = initialize(*backend, X, o, rng::hash(o.seed, rng::kInitSeed, static_cast<std::uint64_t>(init)),
                             &init_notices, &kmeans_shared);
    for (const std::string& n : init_notices)  // once, however many restarts say it
      if (std::find(result.notices.begin(), result.notices.end(), n) == result.notices.end())
        result.notices.push_back(n);
    double bound = -std::numeric_limits<double>::infinity();
    bool converged = false;
    int n_iter = 0;
    for (int it = 1; it <= o.max_iter; ++it) {
      const auto t0 = Clock::now();
      const double previous = bound;
      const SufficientStats stats = backend->gaussian_estep(prepare(model));
      bound = stats.log_likelihood / N;
      model = m_step(stats, o.reg_covar);
      n_iter = it;
      const double change = bound - previous;
      const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
      result.trace.push_back({init, it, bound, seconds});
      if (it > 1 && change < -rounding_slack(previous, backend->unit_roundoff())) {
        ++result.n_decreases;
        result.max_decrease = std::max(result.max_decrease, -change);
      }
      if (o.on_iteration && !o.on_iteration({init, it, bound, change, seconds})) {
        stopped = true;
        break;
      }
      if (std::abs(change) < o.tol) {
        converged = true;
        break;
      }
    }
    if (!have_best || bound > best_bound) {
      have_best = true;
      best_bound = bound;
      result.model = std::move(model);
      result.converged = converged;
      result.n_iter = n_iter;
      result.lower_bound = bound;
      result.best_init = init;
    }
  }
  // After the iterations: a backend settles its memory layout in the first E-step.
  result.device = backend->description();
  if (have_best) {
    const std::string swamped = swamped_features_notice(result.model, o.reg_covar);
    if (!swamped.empty()) result.notices.push_back(swamped);
  }
  return result;
}

}  // namespace cuem
