#pragma once
// Models as versioned JSON. Numbers are written in the shortest form that reads back to
// the same double, so a model written and read back predicts bitwise the same.
//
// {"format": "cuem-gaussian-mixture", "version": 1, "covariance_type": "full",
//  "n_components": K, "n_features": D, "weights": [...], "means": [[...], ...],
//  "covariances": [...], "precisions_cholesky": [...], "feature_names": [...optional, D],
//  "fit": {...optional metadata}}
// Arrays are nested in scikit-learn's shapes (see cuem/model.hpp).
#include <string>
#include <string_view>
#include <vector>

#include "cuem/model.hpp"

namespace cuem::io {

constexpr int kModelFormatVersion = 1;

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

/// Parses and validates a model. DataError for malformed JSON, a different format, a
/// future version, missing or mis-shaped fields, or values that fail validate_model.
Model model_from_json(std::string_view text, const std::string& name, FitMetadata* meta = nullptr);

Model read_model(const std::string& path, FitMetadata* meta = nullptr);
void write_model(const std::string& path, const Model& model, const FitMetadata& meta = {});

}  // namespace cuem::io
