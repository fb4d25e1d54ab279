// libFuzzer target for the model reader, both kinds of file. Bad input must end in a
// cuem::Error; a Gaussian mixture that parses must pass validate_model and survive
// model_to_json -> model_from_json bit for bit, and a Bayesian posterior must survive
// bayesian_model_to_json -> any_model_from_json bit for bit.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include "cuem/errors.hpp"
#include "cuem/fit.hpp"
#include "io/model_json.hpp"

namespace {

[[noreturn]] void broken(const std::string& what) {
  std::fprintf(stderr, "invariant broken: %s\n", what.c_str());
  std::abort();
}

bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0);
}

bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

bool same_model(const cuem::Model& a, const cuem::Model& b) {
  return a.covariance_type == b.covariance_type && a.n_components == b.n_components && a.n_features == b.n_features &&
         same_bits(a.weights, b.weights) && same_bits(a.means, b.means) && same_bits(a.covariances, b.covariances) &&
         same_bits(a.precisions_cholesky, b.precisions_cholesky);
}

bool same_posterior(const cuem::BayesianPosterior& a, const cuem::BayesianPosterior& b) {
  const cuem::BayesianPrior &p = a.prior, &q = b.prior;
  return a.covariance_type == b.covariance_type && a.n_components == b.n_components && a.n_features == b.n_features &&
         p.type == q.type && same_bits(p.weight_concentration, q.weight_concentration) &&
         same_bits(p.mean_precision, q.mean_precision) && same_bits(p.mean, q.mean) &&
         same_bits(p.degrees_of_freedom, q.degrees_of_freedom) && same_bits(p.covariance, q.covariance) &&
         same_bits(a.weight_concentration, b.weight_concentration) && same_bits(a.mean_precision, b.mean_precision) &&
         same_bits(a.means, b.means) && same_bits(a.degrees_of_freedom, b.degrees_of_freedom) &&
         same_bits(a.covariances, b.covariances) && same_bits(a.precisions_cholesky, b.precisions_cholesky);
}

bool same_meta(const cuem::io::FitMetadata& a, const cuem::io::FitMetadata& b) {
  return a.present == b.present && a.converged == b.converged && a.n_iter == b.n_iter &&
         same_bits(a.lower_bound, b.lower_bound) && a.n_samples == b.n_samples && a.data_source == b.data_source;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  cuem::io::AnyModel any;
  cuem::io::FitMetadata meta;
  try {
    any = cuem::io::any_model_from_json(text, "fuzz.json", &meta);
  } catch (const cuem::Error&) {
    return 0;  // expected for bad input
  }
  if (any.kind == cuem::io::ModelKind::bayesian_gaussian_mixture) {
    std::string json;
    cuem::io::AnyModel back;
    cuem::io::FitMetadata back_meta;
    try {
      json = cuem::io::bayesian_model_to_json(any.bayesian, meta);
      back = cuem::io::any_model_from_json(json, "fuzz-roundtrip.json", &back_meta);
    } catch (const std::exception& e) {
      broken(std::string("a Bayesian model that parsed does not round-trip: ") + e.what());
    }
    if (back.kind != any.kind || !same_posterior(any.bayesian, back.bayesian))
      broken("bayesian_model_to_json -> any_model_from_json changed the posterior");
    if (!same_meta(meta, back_meta)) broken("bayesian_model_to_json -> any_model_from_json changed the fit metadata");
    if (cuem::io::bayesian_model_to_json(back.bayesian, back_meta) != json)
      broken("bayesian_model_to_json is not stable across a round trip");
    return 0;
  }
  const cuem::Model model = any.gaussian;
  try {
    cuem::validate_model(model);
  } catch (const cuem::Error& e) {
    broken(std::string("a model that parsed fails validate_model: ") + e.what());
  }
  std::string json;
  cuem::Model back;
  cuem::io::FitMetadata back_meta;
  try {
    json = cuem::io::model_to_json(model, meta);
    back = cuem::io::model_from_json(json, "fuzz-roundtrip.json", &back_meta);
  } catch (const std::exception& e) {
    broken(std::string("a model that parsed does not round-trip: ") + e.what());
  }
  if (!same_model(model, back)) broken("model_to_json -> model_from_json changed the model");
  if (!same_meta(meta, back_meta)) broken("model_to_json -> model_from_json changed the fit metadata");
  if (cuem::io::model_to_json(back, back_meta) != json) broken("model_to_json is not stable across a round trip");
  return 0;
}
