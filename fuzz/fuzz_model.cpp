// libFuzzer target for the model reader. Bad input must end in a cuem::Error; a model that
// parses must pass validate_model and survive model_to_json -> model_from_json bit for bit.
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

bool same_meta(const cuem::io::FitMetadata& a, const cuem::io::FitMetadata& b) {
  return a.present == b.present && a.converged == b.converged && a.n_iter == b.n_iter &&
         same_bits(a.lower_bound, b.lower_bound) && a.n_samples == b.n_samples && a.data_source == b.data_source;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  cuem::Model model;
  cuem::io::FitMetadata meta;
  try {
    model = cuem::io::model_from_json(text, "fuzz.json", &meta);
  } catch (const cuem::Error&) {
    return 0;  // expected for bad input
  }
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
