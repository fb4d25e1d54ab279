#pragma once
// Online fitting of a Gaussian mixture (docs/ONLINE.md): stepwise EM over a stream of
// batches (Cappe and Moulines 2009), and the statistics of a batch under given parameters
// with their sum and M-step, from which any driver (a stream, Dask, a cluster) can build
// EM: statistics of each part, add, m-step.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cuem/data_view.hpp"
#include "cuem/fit.hpp"
#include "cuem/model.hpp"
#include "cuem/options.hpp"

namespace cuem {

/// The step sizes of stepwise EM: rho_t = (t + learning_offset)^(-learning_decay) from the
/// second step on (the first takes rho = 1), the names scikit-learn's online LDA uses.
struct OnlineOptions {
  double learning_decay = 0.6;   ///< kappa, in (0.5, 1]
  double learning_offset = 0.0;  ///< t0, >= 0
};

/// Stepwise EM for a Gaussian mixture. The first partial_fit initialises the model from
/// its batch (the fit options' init, seed and *_init, as fit() does), then every call
/// takes one step: the batch's statistics under the current model, mixed into the running
/// ones, and the M-step. Of the fit options, n_components, covariance_type, reg_covar,
/// init, seed, the *_init arrays and the device ones apply; tol, max_iter, n_init and the
/// acceleration do not. With missing = marginalize a batch's NaN entries are missing at
/// random: such a batch takes the missing-data E-step (its expected statistics), as fit()
/// does; with missing = error they are a DataError.
class OnlineGaussianMixture {
 public:
  /// Throws InvalidArgument for a learning_decay outside (0.5, 1] or a negative or
  /// non-finite learning_offset.
  explicit OnlineGaussianMixture(const FitOptions& options, const OnlineOptions& online = {});
  ~OnlineGaussianMixture();
  OnlineGaussianMixture(OnlineGaussianMixture&&) noexcept;
  OnlineGaussianMixture& operator=(OnlineGaussianMixture&&) noexcept;
  OnlineGaussianMixture(const OnlineGaussianMixture&) = delete;
  OnlineGaussianMixture& operator=(const OnlineGaussianMixture&) = delete;

  /// One step on the batch X (weights w, empty for none). Returns the batch's mean
  /// log-likelihood per unit weight under the model before the step. Throws DataError for
  /// an empty batch, one whose column count differs from the first batch's, non-finite
  /// values or weights of total 0; the state is then unchanged.
  double partial_fit(DataView X, WeightView w = {});

  bool initialized() const noexcept;
  /// The current model (empty before the first partial_fit).
  const Model& model() const noexcept;
  std::int64_t n_steps() const noexcept;
  /// Points seen over all steps.
  std::size_t n_points_seen() const noexcept;
  /// What ran the E-steps (the last batch's device), and the first batch's notices.
  std::string device() const;
  const std::vector<std::string>& notices() const noexcept;

 private:
  struct Impl;
  template <class Batch>
  static double step(Impl& s, Batch& batch, const std::string& notice, const std::string& device);
  std::unique_ptr<Impl> impl_;
};

/// The additive statistics of a Gaussian mixture's E-step over some points (DESIGN.md):
/// per component k, about a shift c_k, N_k = sum w g_nk, S1_k = sum w g_nk (x - c_k) and
/// S2_k = sum w g_nk (x - c_k)(x - c_k)^T (full: K x D x D, upper triangle filled; tied:
/// D x D summed over k; diag and spherical: K x D diagonals); log_likelihood =
/// sum w log p(x), weight = sum w.
struct MixtureStatistics {
  CovarianceType covariance_type = CovarianceType::full;
  int n_components = 0;
  int n_features = 0;
  std::vector<double> shift, nk, s1, s2;
  double log_likelihood = 0;
  double weight = 0;
  std::size_t n_points = 0;
};

/// The statistics of X (weights w) under `model`, on the device `where` names.
MixtureStatistics mixture_statistics(const Model& model, DataView X, const EvaluateOptions& where = {},
                                     WeightView w = {});
/// into += part (exact in float64 up to rounding, whatever the shifts); throws
/// InvalidArgument when the shapes differ.
void add_statistics(MixtureStatistics& into, const MixtureStatistics& part);
/// The M-step: the model that maximises the expected complete log-likelihood given s.
Model model_from_statistics(const MixtureStatistics& s, double reg_covar);

}  // namespace cuem
