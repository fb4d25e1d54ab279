#pragma once
// Gaussian HMMs as versioned JSON, beside the mixtures of model_json.hpp:
//
// {"format": "cuem-gaussian-mixture", "version": 3, "kind": "gaussian_hmm",
//  "covariance_type", "n_components": K, "n_features": D, "startprob": [K],
//  "transmat": [[K] x K], "means": [[D] x K], "covariances" (the covariance type's
//  nested shape, as a mixture's), "fit": {"converged", "n_iter", "lower_bound" (mean
//  log-likelihood per frame), "n_samples" (frames), "n_sequences", "data"}}
//
// A GMMHMM (cuem/gmm_hmm.hpp) has kind "gmm_hmm", "n_mix": M, "weights": [[M] x K],
// "means": [[[D] x M] x K] and "covariances" in hmmlearn's nested shape per type
// (spherical K x M, diag K x M x D, full K x M x D x D, tied K x D x D).
//
// Version 3: readers of versions 1 and 2 refuse the file ("upgrade cuem") instead of
// reading an HMM's emissions as a mixture; the mixture reader of this cuem refuses it by
// its kind and names the commands that take it (decode, score, sample).
#include <string>
#include <string_view>

#include "cuem/gmm_hmm.hpp"
#include "cuem/hmm.hpp"

namespace cuem::io {

constexpr int kGaussianHmmVersion = 3;

struct HmmFitMetadata {
  bool present = false;
  bool converged = false;
  int n_iter = 0;
  double lower_bound = 0;
  std::size_t n_samples = 0;
  std::size_t n_sequences = 0;
  std::string data_source;
};

std::string hmm_model_to_json(const HmmModel& model, const HmmFitMetadata& meta = {});

std::string gmm_hmm_model_to_json(const GmmHmmModel& model, const HmmFitMetadata& meta = {});

/// Whether `text` is a model file of kind "gaussian_hmm" or "gmm_hmm" (false for anything else,
/// malformed JSON included: the other readers then say what is wrong); is_hmm_file is
/// false for a file it cannot read, for the same reason.
bool holds_hmm(std::string_view text);
bool is_hmm_file(const std::string& path);

/// Whether `text` (a file holds_hmm accepts) is a GMMHMM.
bool holds_gmm_hmm(std::string_view text);
bool is_gmm_hmm_file(const std::string& path);

/// Parses and validates a GMMHMM file (validate_gmm_hmm). DataError naming the file otherwise.
GmmHmmModel gmm_hmm_model_from_json(std::string_view text, const std::string& name, HmmFitMetadata* meta = nullptr);
GmmHmmModel read_gmm_hmm_model(const std::string& path, HmmFitMetadata* meta = nullptr);

/// Parses and validates a Gaussian HMM file (validate_hmm). DataError naming the file otherwise.
HmmModel hmm_model_from_json(std::string_view text, const std::string& name, HmmFitMetadata* meta = nullptr);
HmmModel read_hmm_model(const std::string& path, HmmFitMetadata* meta = nullptr);

}  // namespace cuem::io
