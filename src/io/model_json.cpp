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

const char* to_string(ModelKind kind) noexcept {
  return kind == ModelKind::gaussian_mixture ? "gaussian_mixture" : "bayesian_gaussian_mixture";
}

namespace {

void write_common(json& j, int version_number, ModelKind kind, CovarianceType type, int K, int D) {
  j["format"] = kFormat;
  j["version"] = version_number;
  j["kind"] = to_string(kind);
  j["cuem_version"] = version();
  j["covariance_type"] = to_string(type);
  j["n_components"] = K;
  j["n_features"] = D;
}

void write_meta(json& j, const FitMetadata& meta) {
  if (!meta.feature_names.empty()) j["feature_names"] = meta.feature_names;
  if (meta.present) {
    j["fit"] = {{"converged", meta.converged},
                {"n_iter", meta.n_iter},
                {"lower_bound", meta.lower_bound},
                {"n_samples", meta.n_samples},
                {"data", meta.data_source}};
  }
}

// The layout of a covariance-shaped prior or posterior field: spherical's is one number
// (scikit-learn's float), the rest as shape_of for one component.
json covariance_prior_json(const std::vector<double>& c, CovarianceType type, std::size_t D) {
  switch (type) {
    case CovarianceType::full:
    case CovarianceType::tied: return nest(c, {D, D});
    case CovarianceType::diag: return c;
    case CovarianceType::spherical: return c.at(0);
  }
  return {};
}

// The posterior's checks (check_posterior's shapes are the reader's; here the ranges).
void check_bayesian(const BayesianPosterior& q, const Reader& r) {
  const auto positive = [&](const std::vector<double>& v, const char* key) {
    for (double x : v)
      if (!(std::isfinite(x) && x > 0.0)) r.fail(std::string("\"") + key + "\" must hold finite numbers > 0");
  };
  positive(q.weight_concentration, "weight_concentration");
  positive(q.mean_precision, "mean_precision");
  const double min_nu = q.n_features - 1.0;
  for (double nu : q.degrees_of_freedom)
    if (!(std::isfinite(nu) && nu > min_nu))
      r.fail("\"degrees_of_freedom\" must hold finite numbers > n_features - 1 = " + std::to_string(q.n_features - 1));
  const BayesianPrior& p = q.prior;
  if (!(std::isfinite(p.weight_concentration) && p.weight_concentration > 0.0))
    r.fail("\"prior.weight_concentration\" must be a finite number > 0");
  if (!(std::isfinite(p.mean_precision) && p.mean_precision > 0.0))
    r.fail("\"prior.mean_precision\" must be a finite number > 0");
  if (!(std::isfinite(p.degrees_of_freedom) && p.degrees_of_freedom > min_nu))
    r.fail("\"prior.degrees_of_freedom\" must be a finite number > n_features - 1");
  for (double x : p.mean)
    if (!std::isfinite(x)) r.fail("\"prior.mean\" holds a non-finite value");
  for (double x : p.covariance)
    if (!std::isfinite(x)) r.fail("\"prior.covariance\" holds a non-finite value");
  // The plug-in mixture (expected weights, the posterior's covariances and their factors)
  // must be a valid model: covariances matching their precision factors among the checks.
  Model plug_in;
  plug_in.covariance_type = q.covariance_type;
  plug_in.n_components = q.n_components;
  plug_in.n_features = q.n_features;
  plug_in.weights = q.weights();
  plug_in.means = q.means;
  plug_in.covariances = q.covariances;
  plug_in.precisions_cholesky = q.precisions_cholesky;
  try {
    check_model_consistency(plug_in);
  } catch (const InvalidArgument& e) {
    r.fail(e.what());
  }
}

double number(const json& obj, const char* key, const Reader& r) {
  const json& v = r.field(obj, key);
  if (!v.is_number()) r.fail(std::string("\"") + key + "\" must be a number");
  return v.get<double>();
}

struct Header {
  ModelKind kind = ModelKind::gaussian_mixture;
  CovarianceType type = CovarianceType::full;
  int K = 0;
  int D = 0;
};

Header read_header(const json& j, const Reader& r) {
  if (!j.is_object()) r.fail("not a cuem model (the top level is not an object)");
  const json& format = r.field(j, "format");
  if (!format.is_string() || format.get<std::string>() != kFormat)
    r.fail(std::string("not a cuem model (\"format\" is not \"") + kFormat + "\")");
  const auto hmm = j.find("kind");  // HMM files (io/hmm_json.hpp) are read by the HMM commands
  if (hmm != j.end() && hmm->is_string() && hmm->get<std::string>() == "gaussian_hmm")
    r.fail("holds a Gaussian HMM (kind \"gaussian_hmm\"), not a mixture: run `cuem decode MODEL DATA` for its "
           "states (`cuem score` and `cuem sample` take it too)");
  if (hmm != j.end() && hmm->is_string() && hmm->get<std::string>() == "gmm_hmm")
    r.fail("holds a GMMHMM (kind \"gmm_hmm\"), not a mixture: run `cuem decode MODEL DATA` for its states "
           "(`cuem score` and `cuem sample` take it too)");
  const long long ver = r.integer(j, "version", 1, std::numeric_limits<int>::max());
  if (ver > kModelFormatVersion)
    r.fail("written by a newer cuem (model format version " + std::to_string(ver) + "); this cuem " +
           version() + " reads versions up to " + std::to_string(kModelFormatVersion) + ": upgrade cuem");
  Header h;
  const auto kind = j.find("kind");
  if (kind != j.end()) {  // absent: a file from before "kind", a gaussian_mixture
    const std::string k = kind->is_string() ? kind->get<std::string>() : std::string();
    if (k == "gaussian_mixture") {
      h.kind = ModelKind::gaussian_mixture;
    } else if (k == "bayesian_gaussian_mixture") {
      h.kind = ModelKind::bayesian_gaussian_mixture;
    } else {
      r.fail("\"kind\" must be \"gaussian_mixture\" or \"bayesian_gaussian_mixture\"");
    }
  }
  if (h.kind == ModelKind::bayesian_gaussian_mixture && ver < kBayesianMixtureVersion)
    r.fail("a bayesian_gaussian_mixture needs \"version\" " + std::to_string(kBayesianMixtureVersion) +
           " or later (version-1 readers would take it for a plain mixture)");
  const json& type = r.field(j, "covariance_type");
  if (!type.is_string()) r.fail("\"covariance_type\" must be a string");
  try {
    h.type = parse_covariance_type(type.get<std::string>());
  } catch (const InvalidArgument& e) {
    r.fail(e.what());
  }
  h.K = static_cast<int>(r.integer(j, "n_components", 1, 1 << 24));
  h.D = static_cast<int>(r.integer(j, "n_features", 1, 1 << 24));
  const auto K = static_cast<std::size_t>(h.K);
  const auto D = static_cast<std::size_t>(h.D);
  const std::size_t cov_size = covariance_size(h.type, h.K, h.D);
  if (cov_size > (std::size_t{1} << 31) || K * D > (std::size_t{1} << 31))
    r.fail("the model is implausibly large (" + std::to_string(K) + " components x " + std::to_string(D) +
           " features)");
  return h;
}

Model read_gaussian(const json& j, const Header& h, const Reader& r) {
  Model m;
  m.covariance_type = h.type;
  m.n_components = h.K;
  m.n_features = h.D;
  const auto K = static_cast<std::size_t>(h.K);
  const auto D = static_cast<std::size_t>(h.D);
  m.weights = r.array(j, "weights", {K});
  m.means = r.array(j, "means", {K, D});
  m.covariances = r.array(j, "covariances", shape_of(m.covariance_type, K, D));
  m.precisions_cholesky = r.array(j, "precisions_cholesky", shape_of(m.covariance_type, K, D));
  try {
    check_model_consistency(m);
  } catch (const InvalidArgument& e) {
    r.fail(e.what());
  }
  return m;
}

BayesianPosterior read_bayesian(const json& j, const Header& h, const Reader& r) {
  BayesianPosterior q;
  q.covariance_type = h.type;
  q.n_components = h.K;
  q.n_features = h.D;
  const auto K = static_cast<std::size_t>(h.K);
  const auto D = static_cast<std::size_t>(h.D);
  const json& type = r.field(j, "weight_concentration_prior_type");
  if (!type.is_string()) r.fail("\"weight_concentration_prior_type\" must be a string");
  try {
    q.prior.type = parse_weight_prior(type.get<std::string>());
  } catch (const InvalidArgument& e) {
    r.fail(e.what());
  }
  const bool process = q.prior.type == WeightPrior::dirichlet_process;
  q.weight_concentration = process ? r.array(j, "weight_concentration", {2, K}) : r.array(j, "weight_concentration", {K});
  q.mean_precision = r.array(j, "mean_precision", {K});
  q.means = r.array(j, "means", {K, D});
  if (h.type == CovarianceType::tied) {
    q.degrees_of_freedom = {number(j, "degrees_of_freedom", r)};
  } else {
    q.degrees_of_freedom = r.array(j, "degrees_of_freedom", {K});
  }
  q.covariances = r.array(j, "covariances", shape_of(h.type, K, D));
  q.precisions_cholesky = r.array(j, "precisions_cholesky", shape_of(h.type, K, D));
  const json& prior = r.field(j, "prior");
  if (!prior.is_object()) r.fail("\"prior\" must be an object");
  q.prior.weight_concentration = number(prior, "weight_concentration", r);
  q.prior.mean_precision = number(prior, "mean_precision", r);
  q.prior.degrees_of_freedom = number(prior, "degrees_of_freedom", r);
  q.prior.mean = r.array(prior, "mean", {D});
  switch (h.type) {
    case CovarianceType::full:
    case CovarianceType::tied: q.prior.covariance = r.array(prior, "covariance", {D, D}); break;
    case CovarianceType::diag: q.prior.covariance = r.array(prior, "covariance", {D}); break;
    case CovarianceType::spherical: q.prior.covariance = {number(prior, "covariance", r)}; break;
  }
  check_bayesian(q, r);
  return q;
}

// "fit" and "feature_names", checked whether or not the caller wants them.
FitMetadata read_meta(const json& j, const Header& h, const Reader& r) {
  FitMetadata read = read_metadata(j, r);
  const auto names = j.find("feature_names");
  if (names != j.end()) {
    const auto D = static_cast<std::size_t>(h.D);
    if (!names->is_array() || names->size() != D)
      r.fail("\"feature_names\" must be an array of " + std::to_string(D) + " strings (one per feature)");
    for (const json& n : *names) {
      if (!n.is_string() || n.get<std::string>().empty()) r.fail("\"feature_names\" must hold non-empty strings");
      read.feature_names.push_back(n.get<std::string>());
    }
    // None is empty (checked above): names that cannot identify features repeat one.
    if (usable_feature_names(read.feature_names).empty()) r.fail("\"feature_names\" names a feature twice");
  }
  return read;
}

json parse(std::string_view text, const Reader& r) {
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) r.fail("not valid JSON (truncated or corrupt?)");
  return j;
}

}  // namespace

std::string model_to_json(const Model& m, const FitMetadata& meta) {
  validate_model(m);
  const auto K = static_cast<std::size_t>(m.n_components);
  const auto D = static_cast<std::size_t>(m.n_features);
  json j;
  write_common(j, kGaussianMixtureVersion, ModelKind::gaussian_mixture, m.covariance_type, m.n_components,
               m.n_features);
  j["weights"] = m.weights;
  j["means"] = nest(m.means, {K, D});
  j["covariances"] = nest(m.covariances, shape_of(m.covariance_type, K, D));
  j["precisions_cholesky"] = nest(m.precisions_cholesky, shape_of(m.covariance_type, K, D));
  write_meta(j, meta);
  return j.dump(1) + "\n";
}

std::string bayesian_model_to_json(const BayesianPosterior& q, const FitMetadata& meta) {
  const auto K = static_cast<std::size_t>(q.n_components);
  const auto D = static_cast<std::size_t>(q.n_features);
  const std::size_t cov = covariance_size(q.covariance_type, q.n_components, q.n_features);
  const bool process = q.prior.type == WeightPrior::dirichlet_process;
  const bool tied = q.covariance_type == CovarianceType::tied;
  const std::size_t prior_cov = q.covariance_type == CovarianceType::full || tied ? D * D
                                : q.covariance_type == CovarianceType::diag      ? D
                                                                                 : 1;
  if (q.empty() || q.weight_concentration.size() != (process ? 2 * K : K) || q.mean_precision.size() != K ||
      q.means.size() != K * D || q.degrees_of_freedom.size() != (tied ? 1 : K) || q.covariances.size() != cov ||
      q.precisions_cholesky.size() != cov || q.prior.mean.size() != D || q.prior.covariance.size() != prior_cov)
    throw InvalidArgument("the posterior's arrays do not have the shapes of its n_components, n_features and types");
  json j;
  write_common(j, kBayesianMixtureVersion, ModelKind::bayesian_gaussian_mixture, q.covariance_type, q.n_components,
               q.n_features);
  j["weight_concentration_prior_type"] = to_string(q.prior.type);
  j["weights"] = q.weights();
  j["weight_concentration"] = process ? nest(q.weight_concentration, {2, K}) : json(q.weight_concentration);
  j["mean_precision"] = q.mean_precision;
  j["means"] = nest(q.means, {K, D});
  j["degrees_of_freedom"] = tied ? json(q.degrees_of_freedom[0]) : json(q.degrees_of_freedom);
  j["covariances"] = nest(q.covariances, shape_of(q.covariance_type, K, D));
  j["precisions_cholesky"] = nest(q.precisions_cholesky, shape_of(q.covariance_type, K, D));
  j["prior"] = {{"weight_concentration", q.prior.weight_concentration},
                {"mean_precision", q.prior.mean_precision},
                {"mean", q.prior.mean},
                {"degrees_of_freedom", q.prior.degrees_of_freedom},
                {"covariance", covariance_prior_json(q.prior.covariance, q.covariance_type, D)}};
  write_meta(j, meta);
  return j.dump(1) + "\n";
}

AnyModel any_model_from_json(std::string_view text, const std::string& name, FitMetadata* meta) {
  Reader r(name);
  const json j = parse(text, r);
  const Header h = read_header(j, r);
  AnyModel m;
  m.kind = h.kind;
  if (h.kind == ModelKind::gaussian_mixture) {
    m.gaussian = read_gaussian(j, h, r);
  } else {
    m.bayesian = read_bayesian(j, h, r);
  }
  FitMetadata read = read_meta(j, h, r);
  if (meta) *meta = std::move(read);
  return m;
}

Model model_from_json(std::string_view text, const std::string& name, FitMetadata* meta) {
  Reader r(name);
  const json j = parse(text, r);
  const Header h = read_header(j, r);
  if (h.kind != ModelKind::gaussian_mixture)
    r.fail(std::string("holds a ") + to_string(h.kind) + ", which this reader does not take (it reads " +
           "gaussian_mixture models only)");
  Model m = read_gaussian(j, h, r);
  FitMetadata read = read_meta(j, h, r);
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

AnyModel read_any_model(const std::string& path, FitMetadata* meta) {
  return any_model_from_json(read_file_bytes(path), path, meta);
}

void write_model(const std::string& path, const Model& model, const FitMetadata& meta) {
  write_file_atomically(path, model_to_json(model, meta));
}

}  // namespace cuem::io
