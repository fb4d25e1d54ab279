#include "io/hmm_json.hpp"

#include <nlohmann/json.hpp>

#include <limits>

#include "cuem/errors.hpp"
#include "cuem/version.hpp"
#include "io/table.hpp"

namespace cuem::io {
namespace {

using nlohmann::json;

// K rows of n values each from a flat row-major array.
json rows_of(const std::vector<double>& flat, std::size_t rows, std::size_t n) {
  json out = json::array();
  for (std::size_t r = 0; r < rows; ++r)
    out.push_back(std::vector<double>(flat.begin() + static_cast<std::ptrdiff_t>(r * n),
                                      flat.begin() + static_cast<std::ptrdiff_t>((r + 1) * n)));
  return out;
}

json covariances_json(const HmmModel& m) {
  const auto K = static_cast<std::size_t>(m.n_components()), D = static_cast<std::size_t>(m.n_features());
  const std::vector<double>& c = m.emissions.covariances;
  switch (m.covariance_type()) {
    case CovarianceType::full: {
      json out = json::array();
      for (std::size_t k = 0; k < K; ++k)
        out.push_back(rows_of(std::vector<double>(c.begin() + static_cast<std::ptrdiff_t>(k * D * D),
                                                  c.begin() + static_cast<std::ptrdiff_t>((k + 1) * D * D)),
                              D, D));
      return out;
    }
    case CovarianceType::tied: return rows_of(c, D, D);
    case CovarianceType::diag: return rows_of(c, K, D);
    case CovarianceType::spherical: return c;
  }
  return json();
}

// A flat row-major array as nested arrays of the given shape.
json nested(const double* p, const std::vector<std::size_t>& shape, std::size_t dim = 0) {
  if (dim + 1 == shape.size()) return std::vector<double>(p, p + shape[dim]);
  std::size_t stride = 1;
  for (std::size_t i = dim + 1; i < shape.size(); ++i) stride *= shape[i];
  json out = json::array();
  for (std::size_t i = 0; i < shape[dim]; ++i) out.push_back(nested(p + i * stride, shape, dim + 1));
  return out;
}

std::vector<std::size_t> gmm_hmm_covars_shape(CovarianceType t, std::size_t K, std::size_t M, std::size_t D) {
  switch (t) {
    case CovarianceType::spherical: return {K, M};
    case CovarianceType::diag: return {K, M, D};
    case CovarianceType::full: return {K, M, D, D};
    case CovarianceType::tied: return {K, D, D};
  }
  return {};
}

std::string kind_of(std::string_view text) {
  const json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return {};
  const auto kind = j.find("kind");
  return kind != j.end() && kind->is_string() ? kind->get<std::string>() : std::string();
}

json fit_json(const HmmFitMetadata& meta) {
  return {{"converged", meta.converged},     {"n_iter", meta.n_iter},           {"lower_bound", meta.lower_bound},
          {"n_samples", meta.n_samples},     {"n_sequences", meta.n_sequences}, {"data", meta.data_source}};
}

[[noreturn]] void fail(const std::string& name, const std::string& what) {
  throw DataError(name + ": " + what);
}

// The numbers of a nested array whose leaves count `expected`, row-major.
void flatten(const json& v, std::vector<double>& out, const std::string& name, const char* key) {
  if (v.is_number()) {
    out.push_back(v.get<double>());
  } else if (v.is_array()) {
    for (const json& e : v) flatten(e, out, name, key);
  } else {
    fail(name, std::string("\"") + key + "\" holds a value that is not a number");
  }
}

std::vector<double> numbers(const json& j, const char* key, std::size_t expected, const std::string& name) {
  const auto it = j.find(key);
  if (it == j.end()) fail(name, std::string("\"") + key + "\" is missing");
  std::vector<double> out;
  flatten(*it, out, name, key);
  if (out.size() != expected)
    fail(name, std::string("\"") + key + "\" holds " + std::to_string(out.size()) + " numbers, expected " +
                   std::to_string(expected));
  return out;
}

long long integer(const json& j, const char* key, long long lo, long long hi, const std::string& name) {
  const auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer()) fail(name, std::string("\"") + key + "\" must be an integer");
  const long long v = it->get<long long>();
  if (v < lo || v > hi) fail(name, std::string("\"") + key + "\" = " + std::to_string(v) + " is out of range");
  return v;
}

HmmFitMetadata fit_metadata(const json& j, const std::string& name) {
  HmmFitMetadata meta;
  const auto f = j.find("fit");
  if (f != j.end() && f->is_object()) try {
    meta.present = true;
    meta.converged = f->value("converged", false);
    meta.n_iter = f->value("n_iter", 0);
    meta.lower_bound = f->value("lower_bound", 0.0);
    meta.n_samples = f->value("n_samples", std::size_t{0});
    meta.n_sequences = f->value("n_sequences", std::size_t{0});
    meta.data_source = f->value("data", std::string());
  } catch (const json::exception&) {
    fail(name, "\"fit\" holds a field of the wrong type");
  }
  return meta;
}

void check_version(const json& j, const std::string& name) {
  const long long version = integer(j, "version", 1, std::numeric_limits<int>::max(), name);
  if (version > kGaussianHmmVersion)
    fail(name, "written by a newer cuem (model format version " + std::to_string(version) + "); this cuem reads HMM "
               "files up to version " + std::to_string(kGaussianHmmVersion) + ": upgrade cuem");
}

CovarianceType covariance_type_of(const json& j, const std::string& name) {
  const auto type_it = j.find("covariance_type");
  if (type_it == j.end() || !type_it->is_string()) fail(name, "\"covariance_type\" must be a string");
  try {
    return parse_covariance_type(type_it->get<std::string>());
  } catch (const InvalidArgument& e) {
    fail(name, e.what());
  }
}

}  // namespace

std::string hmm_model_to_json(const HmmModel& m, const HmmFitMetadata& meta) {
  validate_hmm(m);
  const auto K = static_cast<std::size_t>(m.n_components()), D = static_cast<std::size_t>(m.n_features());
  json j;
  j["format"] = "cuem-gaussian-mixture";
  j["version"] = kGaussianHmmVersion;
  j["kind"] = "gaussian_hmm";
  j["cuem_version"] = version();
  j["covariance_type"] = to_string(m.covariance_type());
  j["n_components"] = K;
  j["n_features"] = D;
  j["startprob"] = m.startprob;
  j["transmat"] = rows_of(m.transmat, K, K);
  j["means"] = rows_of(m.emissions.means, K, D);
  j["covariances"] = covariances_json(m);
  if (meta.present) j["fit"] = fit_json(meta);
  return j.dump(1) + "\n";
}

std::string gmm_hmm_model_to_json(const GmmHmmModel& m, const HmmFitMetadata& meta) {
  validate_gmm_hmm(m);
  const auto K = static_cast<std::size_t>(m.n_components), M = static_cast<std::size_t>(m.n_mix),
             D = static_cast<std::size_t>(m.n_features);
  json j;
  j["format"] = "cuem-gaussian-mixture";
  j["version"] = kGaussianHmmVersion;
  j["kind"] = "gmm_hmm";
  j["cuem_version"] = version();
  j["covariance_type"] = to_string(m.covariance_type);
  j["n_components"] = K;
  j["n_mix"] = M;
  j["n_features"] = D;
  j["startprob"] = m.startprob;
  j["transmat"] = rows_of(m.transmat, K, K);
  j["weights"] = rows_of(m.weights, K, M);
  j["means"] = nested(m.means.data(), {K, M, D});
  j["covariances"] = nested(m.covars.data(), gmm_hmm_covars_shape(m.covariance_type, K, M, D));
  if (meta.present) j["fit"] = fit_json(meta);
  return j.dump(1) + "\n";
}

bool holds_hmm(std::string_view text) {
  const std::string kind = kind_of(text);
  return kind == "gaussian_hmm" || kind == "gmm_hmm";
}

bool holds_gmm_hmm(std::string_view text) { return kind_of(text) == "gmm_hmm"; }

bool is_gmm_hmm_file(const std::string& path) {
  try {
    return holds_gmm_hmm(read_file_bytes(path));
  } catch (const Error&) {
    return false;
  }
}

bool is_hmm_file(const std::string& path) {
  try {
    return holds_hmm(read_file_bytes(path));
  } catch (const Error&) {  // unreadable: the caller's own reader says why
    return false;
  }
}

HmmModel hmm_model_from_json(std::string_view text, const std::string& name, HmmFitMetadata* meta) {
  const json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) fail(name, "not valid JSON (truncated or corrupt?)");
  if (kind_of(text) != "gaussian_hmm")
    fail(name, "not a cuem Gaussian HMM (\"kind\" is not \"gaussian_hmm\"): this reads files of cuem fit --model hmm");
  check_version(j, name);
  const CovarianceType type = covariance_type_of(j, name);
  const int K = static_cast<int>(integer(j, "n_components", 1, 1 << 16, name));
  const int D = static_cast<int>(integer(j, "n_features", 1, 1 << 16, name));
  const auto uK = static_cast<std::size_t>(K), uD = static_cast<std::size_t>(D);
  HmmModel m;
  m.startprob = numbers(j, "startprob", uK, name);
  m.transmat = numbers(j, "transmat", uK * uK, name);
  m.emissions.covariance_type = type;
  m.emissions.n_components = K;
  m.emissions.n_features = D;
  m.emissions.weights.assign(uK, 1.0 / K);
  m.emissions.means = numbers(j, "means", uK * uD, name);
  m.emissions.covariances = numbers(j, "covariances", covariance_size(type, K, D), name);
  try {
    validate_hmm(m);
  } catch (const Error& e) {
    fail(name, e.what());
  }
  if (meta) *meta = fit_metadata(j, name);
  return m;
}

HmmModel read_hmm_model(const std::string& path, HmmFitMetadata* meta) {
  return hmm_model_from_json(read_file_bytes(path), path, meta);
}

GmmHmmModel gmm_hmm_model_from_json(std::string_view text, const std::string& name, HmmFitMetadata* meta) {
  const json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) fail(name, "not valid JSON (truncated or corrupt?)");
  if (kind_of(text) != "gmm_hmm") fail(name, "not a cuem GMMHMM (\"kind\" is not \"gmm_hmm\")");
  check_version(j, name);
  GmmHmmModel m;
  m.covariance_type = covariance_type_of(j, name);
  m.n_components = static_cast<int>(integer(j, "n_components", 1, 1 << 16, name));
  m.n_mix = static_cast<int>(integer(j, "n_mix", 1, 1 << 16, name));
  m.n_features = static_cast<int>(integer(j, "n_features", 1, 1 << 16, name));
  const auto K = static_cast<std::size_t>(m.n_components), M = static_cast<std::size_t>(m.n_mix),
             D = static_cast<std::size_t>(m.n_features);
  m.startprob = numbers(j, "startprob", K, name);
  m.transmat = numbers(j, "transmat", K * K, name);
  m.weights = numbers(j, "weights", K * M, name);
  m.means = numbers(j, "means", K * M * D, name);
  std::size_t n_covars = 1;
  for (std::size_t v : gmm_hmm_covars_shape(m.covariance_type, K, M, D)) n_covars *= v;
  m.covars = numbers(j, "covariances", n_covars, name);
  try {
    validate_gmm_hmm(m);
  } catch (const Error& e) {
    fail(name, e.what());
  }
  if (meta) *meta = fit_metadata(j, name);
  return m;
}

GmmHmmModel read_gmm_hmm_model(const std::string& path, HmmFitMetadata* meta) {
  return gmm_hmm_model_from_json(read_file_bytes(path), path, meta);
}

}  // namespace cuem::io
