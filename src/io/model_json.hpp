#pragma once
// Models as versioned JSON. Numbers are written in the shortest form that reads back to
// the same double, so a model written and read back predicts bitwise the same.
//
// {"format": "cuem-gaussian-mixture", "version": 1, "kind": "gaussian_mixture",
//  "covariance_type": "full", "n_components": K, "n_features": D, "weights": [...],
//  "means": [[...], ...], "covariances": [...], "precisions_cholesky": [...],
//  "feature_names": [...optional, D], "fit": {...optional metadata}}
//
// {"format": "cuem-gaussian-mixture", "version": 2, "kind": "bayesian_gaussian_mixture",
//  "covariance_type", "n_components", "n_features", "weight_concentration_prior_type",
//  "weights" (the expected weights, written for readers; recomputed on reading),
//  "weight_concentration" (dirichlet_process: 2 x K, alphas then betas; else K),
//  "mean_precision" (K), "means" (K x D), "degrees_of_freedom" (K; tied: a number),
//  "covariances", "precisions_cholesky", "prior": {"weight_concentration",
//  "mean_precision", "mean" (D), "degrees_of_freedom", "covariance" (full, tied: D x D;
//  diag: D; spherical: a number)}, "feature_names", "fit": {... lower_bound is the ELBO}}
//
// Arrays are nested in scikit-learn's shapes (see cuem/model.hpp and cuem/bayesian.hpp).
// A file without "kind" is a gaussian_mixture (files written before "kind" existed).
// Versions: gaussian_mixture files stay version 1, which readers from before "kind"
// read unchanged (they ignore the field). Bayesian files are version 2: a version-1
// reader would take their expected weights, means and covariances for a plain mixture
// and predict with it, silently wrong; version 2 makes it refuse the file ("upgrade").
#include <string>
#include <string_view>
#include <vector>

#include "cuem/bayesian.hpp"
#include "cuem/model.hpp"

namespace cuem::io {

/// The newest version this reader reads.
constexpr int kModelFormatVersion = 2;
constexpr int kGaussianMixtureVersion = 1;
constexpr int kBayesianMixtureVersion = 2;

/// What a model file holds.
enum class ModelKind { gaussian_mixture, bayesian_gaussian_mixture };
const char* to_string(ModelKind kind) noexcept;

/// Optional facts about how a model was fitted, stored alongside it.
struct FitMetadata {
  bool present = false;
  bool converged = false;
  int n_iter = 0;
  double lower_bound = 0;
  std::size_t n_samples = 0;
  std::string data_source;
  /// The data's column names where its file named them (a header line), else empty:
  /// scikit-learn's feature_names_in_, so that predicting on columns in another order
  /// is caught (check_feature_names).
  std::vector<std::string> feature_names;
};

/// `names` where they can identify features (none empty, none twice), else empty.
std::vector<std::string> usable_feature_names(const std::vector<std::string>& names);

/// DataError when a model fitted to named columns meets data whose named columns differ
/// (another order, or other columns); `names` empty (data without a header) passes.
void check_feature_names(const FitMetadata& meta, const std::vector<std::string>& names, const std::string& data_name);

std::string model_to_json(const Model& model, const FitMetadata& meta = {});

/// Parses and validates a gaussian_mixture model. DataError for malformed JSON, a
/// different format, a future version, another kind, missing or mis-shaped fields, or
/// values that fail validate_model.
Model model_from_json(std::string_view text, const std::string& name, FitMetadata* meta = nullptr);

Model read_model(const std::string& path, FitMetadata* meta = nullptr);

/// A variational posterior (fit_bayesian) as a "bayesian_gaussian_mixture" file; `meta`'s
/// lower_bound is the fit's ELBO.
std::string bayesian_model_to_json(const BayesianPosterior& posterior, const FitMetadata& meta = {});

/// A model file of either kind.
struct AnyModel {
  ModelKind kind = ModelKind::gaussian_mixture;
  Model gaussian;               ///< kind gaussian_mixture
  BayesianPosterior bayesian;   ///< kind bayesian_gaussian_mixture
  int n_components() const noexcept {
    return kind == ModelKind::gaussian_mixture ? gaussian.n_components : bayesian.n_components;
  }
  int n_features() const noexcept {
    return kind == ModelKind::gaussian_mixture ? gaussian.n_features : bayesian.n_features;
  }
};

/// Parses and validates a model of either kind (model_from_json's errors, and for a
/// Bayesian file its posterior's shapes and ranges: concentrations, mean precisions > 0,
/// degrees of freedom > D - 1, covariances matching their precision factors).
AnyModel any_model_from_json(std::string_view text, const std::string& name, FitMetadata* meta = nullptr);
AnyModel read_any_model(const std::string& path, FitMetadata* meta = nullptr);

void write_model(const std::string& path, const Model& model, const FitMetadata& meta = {});

}  // namespace cuem::io
