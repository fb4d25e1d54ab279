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
  if (meta.present)
    j["fit"] = {{"converged", meta.converged},     {"n_iter", meta.n_iter},
                {"lower_bound", meta.lower_bound}, {"n_samples", meta.n_samples},
                {"n_sequences", meta.n_sequences}, {"data", meta.data_source}};
  return j.dump(1) + "\n";
}

bool holds_hmm(std::string_view text) {
  const json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return false;
  const auto kind = j.find("kind");
  return kind != j.end() && kind->is_string() && kind->get<std::string>() == "gaussian_hmm";
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
  if (!holds_hmm(text)) fail(name, "not a cuem HMM (\"kind\" is not \"gaussian_hmm\"): HMM commands read files of "
                                   "cuem fit --model hmm");
  const long long version = integer(j, "version", 1, std::numeric_limits<int>::max(), name);
  if (version > kGaussianHmmVersion)
    fail(name, "written by a newer cuem (model format version " + std::to_string(version) + "); this cuem reads HMM "
               "files up to version " + std::to_string(kGaussianHmmVersion) + ": upgrade cuem");
  const auto type_it = j.find("covariance_type");
  if (type_it == j.end() || !type_it->is_string()) fail(name, "\"covariance_type\" must be a string");
  CovarianceType type = CovarianceType::full;
  try {
    type = parse_covariance_type(type_it->get<std::string>());
  } catch (const InvalidArgument& e) {
    fail(name, e.what());
  }
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
  if (meta) {
    *meta = {};
    const auto f = j.find("fit");
    if (f != j.end() && f->is_object()) try {
      meta->present = true;
      meta->converged = f->value("converged", false);
      meta->n_iter = f->value("n_iter", 0);
      meta->lower_bound = f->value("lower_bound", 0.0);
      meta->n_samples = f->value("n_samples", std::size_t{0});
      meta->n_sequences = f->value("n_sequences", std::size_t{0});
      meta->data_source = f->value("data", std::string());
    } catch (const json::exception&) {
      fail(name, "\"fit\" holds a field of the wrong type");
    }
  }
  return m;
}

HmmModel read_hmm_model(const std::string& path, HmmFitMetadata* meta) {
  return hmm_model_from_json(read_file_bytes(path), path, meta);
}

}  // namespace cuem::io
