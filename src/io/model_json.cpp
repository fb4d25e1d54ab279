#include "io/model_json.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <limits>

#include "cuem/errors.hpp"
#include "cuem/fit.hpp"
#include "cuem/version.hpp"
#include "core/validate.hpp"
#include "io/atomic_file.hpp"
#include "io/table.hpp"

namespace cuem::io {
namespace {

using nlohmann::json;
constexpr const char* kFormat = "cuem-gaussian-mixture";

// The nested shape of an array field, scikit-learn's (see cuem/model.hpp).
std::vector<std::size_t> shape_of(CovarianceType type, std::size_t K, std::size_t D) {
  switch (type) {
    case CovarianceType::full: return {K, D, D};
    case CovarianceType::tied: return {D, D};
    case CovarianceType::diag: return {K, D};
    case CovarianceType::spherical: return {K};
  }
  return {};
}

json nest(const std::vector<double>& flat, const std::vector<std::size_t>& shape, std::size_t dim = 0,
          std::size_t offset = 0) {
  json arr = json::array();
  if (dim + 1 == shape.size()) {
    for (std::size_t i = 0; i < shape[dim]; ++i) arr.push_back(flat[offset + i]);
    return arr;
  }
  std::size_t stride = 1;
  for (std::size_t d = dim + 1; d < shape.size(); ++d) stride *= shape[d];
  for (std::size_t i = 0; i < shape[dim]; ++i) arr.push_back(nest(flat, shape, dim + 1, offset + i * stride));
  return arr;
}

class Reader {
 public:
  explicit Reader(const std::string& name) : name_(name) {}

  [[noreturn]] void fail(const std::string& what) const {
    throw DataError("model file '" + name_ + "': " + what);
  }

  const json& field(const json& obj, const char* key) const {
    const auto it = obj.find(key);
    if (it == obj.end()) fail(std::string("missing field \"") + key + "\"");
    return *it;
  }

  long long integer(const json& obj, const char* key, long long lo, long long hi) const {
    const json& v = field(obj, key);
    if (!v.is_number_integer()) fail(std::string("\"") + key + "\" must be an integer");
    const long long x = v.get<long long>();
    if (x < lo || x > hi) fail(std::string("\"") + key + "\" = " + std::to_string(x) + " is out of range");
    return x;
  }

  // Flattens a nested array of numbers that must have exactly `shape`.
  std::vector<double> array(const json& obj, const char* key, const std::vector<std::size_t>& shape) const {
    std::vector<double> out;
    flatten(field(obj, key), shape, 0, key, out);
    return out;
  }

 private:
  void flatten(const json& v, const std::vector<std::size_t>& shape, std::size_t dim, const char* key,
               std::vector<double>& out) const {
    if (!v.is_array() || v.size() != shape[dim])
      fail(std::string("\"") + key + "\" must be a nested array of shape " + shape_text(shape));
    for (const json& e : v) {
      if (dim + 1 < shape.size()) {
        flatten(e, shape, dim + 1, key, out);
      } else {
        if (e.is_array())  // e.g. a full model's matrices under covariance_type "diag"
          fail(std::string("\"") + key + "\" must be a nested array of shape " + shape_text(shape) +
               " for its covariance_type and sizes; it has more levels");
        if (!e.is_number()) fail(std::string("\"") + key + "\" holds a value that is not a number");
        out.push_back(e.get<double>());
      }
    }
  }

  static std::string shape_text(const std::vector<std::size_t>& shape) {
    std::string s = "(";
    for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + ")";
  }

  std::string name_;
};

// The optional "fit" object; every field is checked for its type and range.
FitMetadata read_metadata(const json& j, const Reader& r) {
  FitMetadata meta;
  const auto it = j.find("fit");
  if (it == j.end()) return meta;
  if (!it->is_object()) r.fail("\"fit\" must be an object");
  const json& f = *it;
  meta.present = true;
  if (f.contains("converged")) {
    if (!f["converged"].is_boolean()) r.fail("\"fit.converged\" must be true or false");
    meta.converged = f["converged"].get<bool>();
  }
  if (f.contains("n_iter")) meta.n_iter = static_cast<int>(r.integer(f, "n_iter", 0, std::numeric_limits<int>::max()));
  if (f.contains("lower_bound")) {
    if (!f["lower_bound"].is_number()) r.fail("\"fit.lower_bound\" must be a number");
    meta.lower_bound = f["lower_bound"].get<double>();
  }
  if (f.contains("n_samples")) {
    if (!f["n_samples"].is_number_unsigned()) r.fail("\"fit.n_samples\" must be a non-negative integer");
    meta.n_samples = f["n_samples"].get<std::size_t>();
  }
  if (f.contains("data")) {
    if (!f["data"].is_string()) r.fail("\"fit.data\" must be a string");
    meta.data_source = f["data"].get<std::string>();
  }
  return meta;
}

}  // namespace

std::string model_to_json(const Model& m, const FitMetadata& meta) {
  validate_model(m);
  const auto K = static_cast<std::size_t>(m.n_components);
  const auto D = static_cast<std::size_t>(m.n_features);
  json j;
  j["format"] = kFormat;
  j["version"] = kModelFormatVersion;
  j["cuem_version"] = version();
  j["covariance_type"] = to_string(m.covariance_type);
  j["n_components"] = m.n_components;
  j["n_features"] = m.n_features;
  j["weights"] = m.weights;
  j["means"] = nest(m.means, {K, D});
  j["covariances"] = nest(m.covariances, shape_of(m.covariance_type, K, D));
  j["precisions_cholesky"] = nest(m.precisions_cholesky, shape_of(m.covariance_type, K, D));
  if (!meta.feature_names.empty()) j["feature_names"] = meta.feature_names;
  if (meta.present) {
    j["fit"] = {{"converged", meta.converged},
                {"n_iter", meta.n_iter},
                {"lower_bound", meta.lower_bound},
                {"n_samples", meta.n_samples},
                {"data", meta.data_source}};
  }
  return j.dump(1) + "\n";
}

Model model_from_json(std::string_view text, const std::string& name, FitMetadata* meta) {
  Reader r(name);
  const json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) r.fail("not valid JSON (truncated or corrupt?)");
  if (!j.is_object()) r.fail("not a cuem model (the top level is not an object)");
  const json& format = r.field(j, "format");
  if (!format.is_string() || format.get<std::string>() != kFormat)
    r.fail(std::string("not a cuem model (\"format\" is not \"") + kFormat + "\")");
  const long long ver = r.integer(j, "version", 1, std::numeric_limits<int>::max());
  if (ver > kModelFormatVersion)
    r.fail("written by a newer cuem (model format version " + std::to_string(ver) + "); this cuem " +
           version() + " reads version " + std::to_string(kModelFormatVersion) + ": upgrade cuem");
  Model m;
  const json& type = r.field(j, "covariance_type");
  if (!type.is_string()) r.fail("\"covariance_type\" must be a string");
  try {
    m.covariance_type = parse_covariance_type(type.get<std::string>());
  } catch (const InvalidArgument& e) {
    r.fail(e.what());
  }
  m.n_components = static_cast<int>(r.integer(j, "n_components", 1, 1 << 24));
  m.n_features = static_cast<int>(r.integer(j, "n_features", 1, 1 << 24));
  const auto K = static_cast<std::size_t>(m.n_components);
  const auto D = static_cast<std::size_t>(m.n_features);
  const std::size_t cov_size = covariance_size(m.covariance_type, m.n_components, m.n_features);
  if (cov_size > (std::size_t{1} << 31) || K * D > (std::size_t{1} << 31))
    r.fail("the model is implausibly large (" + std::to_string(K) + " components x " + std::to_string(D) +
           " features)");
  m.weights = r.array(j, "weights", {K});
  m.means = r.array(j, "means", {K, D});
  m.covariances = r.array(j, "covariances", shape_of(m.covariance_type, K, D));
  m.precisions_cholesky = r.array(j, "precisions_cholesky", shape_of(m.covariance_type, K, D));
  try {
    check_model_consistency(m);
  } catch (const InvalidArgument& e) {
    r.fail(e.what());
  }
  FitMetadata read = read_metadata(j, r);  // checked whether or not the caller wants it
  const auto names = j.find("feature_names");
  if (names != j.end()) {
    if (!names->is_array() || names->size() != D)
      r.fail("\"feature_names\" must be an array of " + std::to_string(D) + " strings (one per feature)");
    for (const json& n : *names) {
      if (!n.is_string() || n.get<std::string>().empty()) r.fail("\"feature_names\" must hold non-empty strings");
      read.feature_names.push_back(n.get<std::string>());
    }
    // None is empty (checked above): names that cannot identify features repeat one.
    if (usable_feature_names(read.feature_names).empty()) r.fail("\"feature_names\" names a feature twice");
  }
  if (meta) *meta = std::move(read);
  return m;
}

std::vector<std::string> usable_feature_names(const std::vector<std::string>& names) {
  std::vector<std::string> sorted = names;
  std::sort(sorted.begin(), sorted.end());
  const bool blank = !sorted.empty() && sorted.front().empty();
  if (blank || std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) return {};
  return names;
}

void check_feature_names(const FitMetadata& meta, const std::vector<std::string>& names, const std::string& data_name) {
  if (meta.feature_names.empty() || names.empty() || names == meta.feature_names) return;
  const auto quoted = [](const std::vector<std::string>& v) {
    std::string s;
    for (const std::string& n : v) s += (s.empty() ? "'" : ", '") + n + "'";
    return s;
  };
  // The fix as 0-based column numbers (names may hold commas or repeat): each model
  // feature's one column in the data, where every one has exactly one.
  std::string numbers;
  for (const std::string& f : meta.feature_names) {
    const auto n = std::count(names.begin(), names.end(), f);
    if (n != 1) {
      numbers.clear();
      break;
    }
    numbers += (numbers.empty() ? "" : ",") +
               std::to_string(std::find(names.begin(), names.end(), f) - names.begin());
  }
  std::vector<std::string> a = names, b = meta.feature_names;
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  const std::string fix = numbers.empty() ? "; give the data the model's features, in its order"
                                          : "; select them in the model's order with --columns " + numbers;
  if (a == b)
    throw DataError(data_name + ": its columns (" + quoted(names) + ") are the model's features in another order (" +
                    quoted(meta.feature_names) + ")" + fix);
  throw DataError(data_name + ": its columns (" + quoted(names) + ") are not the features the model was fitted to (" +
                  quoted(meta.feature_names) + ")" + fix);
}

Model read_model(const std::string& path, FitMetadata* meta) {
  return model_from_json(read_file_bytes(path), path, meta);
}

void write_model(const std::string& path, const Model& model, const FitMetadata& meta) {
  write_file_atomically(path, model_to_json(model, meta));
}

}  // namespace cuem::io
