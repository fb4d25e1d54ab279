#include "cli/common.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstdio>

#include "core/validate.hpp"
#include "cuem/errors.hpp"

namespace cuem::cli {

void note(const GlobalFlags& flags, const std::string& message) {
  if (!flags.quiet) std::fprintf(stderr, "cuem: %s\n", message.c_str());
}

void add_data_options(CLI::App* cmd, DataArgs& a) {
  cmd->add_option("--delimiter", a.delimiter, "CSV/text delimiter: ',', ';', tab or space (default: detect)")
      ->group("Data");
  cmd->add_option("--header", a.header, "CSV/text header line: auto, yes or no")
      ->check(CLI::IsMember({"auto", "yes", "no"}))
      ->group("Data");
  cmd->add_option("--columns", a.columns,
                  "columns to use, by 0-based number (any format) or CSV header name, comma separated")
      ->group("Data");  // split in load_table: CLI11's delimiter drops empty entries ("0,,1")
  cmd->add_option("--dims", a.dims, "read DATA as raw binary with D features per row")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 24))
      ->group("Data");
  cmd->add_option("--dtype", a.dtype, "raw binary value type: float32 or float64 (default float64; .f32 files float32)")
      ->check(CLI::IsMember({"float32", "float64"}))
      ->group("Data");
}

void add_missing_option(CLI::App* cmd, DataArgs& a) {
  a.missing = "error";
  cmd->add_option("--missing", a.missing,
                  "NaN entries: error, or marginalize (missing at random: fitted and scored by their observed "
                  "entries; text fields that are empty, NA, N/A or NaN are read as missing)")
      ->check(CLI::IsMember({"error", "marginalize"}))
      ->capture_default_str()
      ->group("Data");
}

MissingPolicy missing_policy(const DataArgs& a) {
  return a.missing.empty() ? MissingPolicy::error : parse_missing_policy(a.missing);
}

std::string empty_rows_text(const MissingSummary& s) {
  std::string out = "0-based row" + std::string(s.first_empty_rows.size() == 1 ? " " : "s ");
  for (std::size_t i = 0; i < s.first_empty_rows.size(); ++i)
    out += (i ? ", " : "") + std::to_string(s.first_empty_rows[i]);
  if (s.empty_rows > s.first_empty_rows.size()) out += ", ...";
  return out;
}

std::string missing_text(const MissingSummary& s) {
  if (s.missing_entries == 0) return "missing values: none";
  std::string out = "missing values: " + std::to_string(s.missing_entries) + " entries in " +
                    std::to_string(s.incomplete_rows) + " rows, " + std::to_string(s.n_patterns) +
                    (s.n_patterns == 1 ? " pattern" : " patterns");
  if (s.empty_rows > 0)
    out += "; " + std::to_string(s.empty_rows) + " empty rows (every entry missing) skipped (" + empty_rows_text(s) +
           ")";
  return out;
}

nlohmann::json missing_json(const MissingSummary& s) {
  return {{"missing_entries", s.missing_entries}, {"incomplete_rows", s.incomplete_rows},
          {"empty_rows", s.empty_rows},           {"first_empty_rows", s.first_empty_rows},
          {"n_patterns", s.n_patterns}};
}

io::Table load_table(const DataArgs& a, const GlobalFlags& flags) {
  io::LoadOptions o;
  o.csv.missing = missing_policy(a) == MissingPolicy::marginalize;
  o.csv.suggest_missing = !a.missing.empty() && !o.csv.missing;
  if (a.delimiter == "tab" || a.delimiter == "\\t") {
    o.csv.delimiter = '\t';
  } else if (a.delimiter == "space") {
    o.csv.delimiter = ' ';
  } else if (a.delimiter.size() == 1) {
    o.csv.delimiter = a.delimiter[0];
  } else if (!a.delimiter.empty()) {
    throw UsageError("--delimiter must be one character, 'tab' or 'space', got '" + a.delimiter + "'");
  }
  o.csv.header = a.header == "yes" ? io::HeaderMode::present
                 : a.header == "no" ? io::HeaderMode::absent
                                    : io::HeaderMode::detect;
  for (const std::string& list : a.columns) {
    std::size_t start = 0;
    for (std::size_t comma; (comma = list.find(',', start)) != std::string::npos; start = comma + 1)
      o.columns.push_back(list.substr(start, comma - start));
    o.columns.push_back(list.substr(start));
  }
  o.raw_dims = a.dims;
  const bool f32_name = a.path.size() > 4 && a.path.compare(a.path.size() - 4, 4, ".f32") == 0;
  o.raw_type = (a.dtype == "float32" || (a.dtype.empty() && f32_name)) ? io::RawType::float32 : io::RawType::float64;
  if (!a.dtype.empty() && a.dims == 0) throw UsageError("--dtype applies to raw binary data: give --dims too");
  io::Table t = io::load_data(a.path, o);
  for (const std::string& n : t.notices) note(flags, io::display_name(a.path) + ": " + n);
  // pandas' to_csv writes the index as a first column with an empty name: a feature by
  // mistake, almost always.
  if (t.named_columns && o.columns.empty() && t.column_names.size() > 1 && t.column_names[0].empty()) {
    const std::size_t n = t.column_names.size();
    std::string fix = "--columns ";
    for (std::size_t j = 1; j < n && n <= 13; ++j) fix += (j > 1 ? "," : "") + std::to_string(j);
    if (n > 13) fix += "listing every column from 1 to " + std::to_string(n - 1);
    note(flags, "note: " + io::display_name(a.path) + ": column 0 has no name in the header line, as a table index written by "
                "pandas has; it is read as a feature (leave it out with " + fix + ")");
  }
  return t;
}

ModelAndData load_model_and_data(const std::string& model_path, const DataArgs& a, const GlobalFlags& flags) {
  if (io::is_stdin_name(model_path) && io::is_stdin_name(a.path))
    throw UsageError("MODEL and DATA cannot both be '-' (standard input)");
  ModelAndData r;
  r.model = io::read_any_model(model_path, &r.meta);
  r.data = load_table(a, flags);
  if (r.data.named_columns) {
    io::check_feature_names(r.meta, r.data.column_names, io::display_name(a.path));
  } else if (!r.meta.feature_names.empty()) {
    note(flags, "note: " + io::display_name(a.path) + " has no column names, but the model was fitted with named " +
                    "features; its columns are taken as the model's, in order");
  }
  return r;
}

const Model& gaussian_model_for(const io::AnyModel& model, const std::string& command) {
  if (model.kind == io::ModelKind::gaussian_mixture) return model.gaussian;
  throw UsageError("cuem " + command + " takes a Gaussian mixture (cuem fit --model gmm), and this model file holds a "
                   "Bayesian Gaussian mixture (--model bayesian), which has no " + command + " of its own; run cuem " +
                   "predict or cuem score with it, or fit a --model gmm model (e.g. with -k set to the number of " +
                   "components that carry weight) for cuem " + command);
}

void add_weights_option(CLI::App* cmd, std::string& path) {
  cmd->add_option("--weights", path,
                  "per-row weights (sample_weight): one number >= 0 per row of DATA, not all zero, in one column "
                  "(.npy, CSV/text, or raw binary .bin/.f64/.f32); bad weights exit 3")
      ->group("Data");
}

std::vector<double> load_weights(const std::string& path, const io::Table& data, const GlobalFlags& flags) {
  if (path.empty()) return {};
  const std::string name = io::display_name(path);
  const auto ends_with = [&](const char* suffix) {
    const std::string s(suffix);
    if (path.size() < s.size()) return false;
    for (std::size_t i = 0; i < s.size(); ++i)
      if (std::tolower(static_cast<unsigned char>(path[path.size() - s.size() + i])) != s[i]) return false;
    return true;
  };
  io::LoadOptions o;
  // Raw binary has no shape of its own: a weights file holds one value per row.
  if (ends_with(".bin") || ends_with(".raw") || ends_with(".f64") || ends_with(".f32")) o.raw_dims = 1;
  o.raw_type = ends_with(".f32") ? io::RawType::float32 : io::RawType::float64;
  std::vector<double> w;
  try {
    const io::Table t = io::load_data(path, o);
    for (const std::string& n : t.notices) note(flags, name + ": " + n);
    if (t.cols != 1)
      throw DataError("has " + std::to_string(t.cols) + " columns; --weights takes one column, one weight per row of " +
                      "the data");
    if (t.rows != data.rows)
      throw DataError("has " + std::to_string(t.rows) + " weights for " + std::to_string(data.rows) +
                      " rows of data; give one weight per row");
    const DataView v = t.view();
    w.resize(t.rows);
    for (std::size_t i = 0; i < t.rows; ++i) w[i] = v.value(i, 0);
    validate_weights(weight_view(w), data.view());
  } catch (const std::exception& e) {
    // Bad weights are bad input data whatever the reader calls them (a usage error for
    // --dims text, say), and the message names the weights file, not the data.
    if (!dynamic_cast<const DataError*>(&e) && !dynamic_cast<const InvalidArgument*>(&e)) throw;
    const std::string what = e.what();
    const bool named =
        what.compare(0, name.size() + 1, name + ":") == 0 || what.find("'" + name + "'") != std::string::npos;
    throw DataError(named ? what : name + ": " + what);
  }
  return w;
}

namespace {

// Validators with plain messages (CLI11's own print the full double range).
const CLI::Validator kNonNegative(
    [](std::string& v) -> std::string {
      char* end = nullptr;
      const double x = std::strtod(v.c_str(), &end);
      if (v.empty() || *end != '\0' || !(x >= 0.0) || !std::isfinite(x)) return "must be a number >= 0, got '" + v + "'";
      return {};
    },
    "NUMBER >= 0");
const CLI::Validator kUnsigned(
    [](std::string& v) -> std::string {
      if (v.empty() || v.size() > 20 || v.find_first_not_of("0123456789") != std::string::npos)
        return "must be a non-negative integer, got '" + v + "'";
      // 20 digits may pass 2^64 - 1, which CLI11 would clamp silently.
      errno = 0;
      (void)std::strtoull(v.c_str(), nullptr, 10);
      if (errno == ERANGE) return "must be at most 18446744073709551615, got '" + v + "'";
      return {};
    },
    "UINT");

}  // namespace

void add_fit_options(CLI::App* cmd, FitArgs& a, bool single) {
  if (single) {
    cmd->add_option("-k,--components", a.n_components, "number of mixture components")
        ->required()
        ->check(CLI::Range(1, 1 << 20));
    cmd->add_option("--covariance", a.covariance, "covariance type: full, tied, diag or spherical")
        ->check(CLI::IsMember({"full", "tied", "diag", "spherical"}))
        ->capture_default_str();
  }
  cmd->add_option("--init", a.init, "initialisation: kmeans, k-means++, random or random_from_data")
      ->check(CLI::IsMember({"kmeans", "k-means++", "kmeans++", "random", "random_from_data"}))
      ->capture_default_str();
  cmd->add_option("--n-init", a.n_init, "restarts; the best lower bound wins")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_option("--max-iter", a.max_iter, "EM iterations per restart (E-step passes with --acceleration squarem)")
      ->check(CLI::Range(1, 100000000))
      ->capture_default_str();
  cmd->add_option("--tol", a.tol, "convergence threshold on the change of the mean log-likelihood")
      ->check(kNonNegative)
      ->capture_default_str();
  cmd->add_option("--reg-covar", a.reg_covar, "added to the diagonal of every covariance")
      ->check(kNonNegative)
      ->capture_default_str();
  cmd->add_option("--seed", a.seed, "random seed (fits are deterministic for a seed)")
      ->check(kUnsigned)
      ->capture_default_str();
  cmd->add_option("--acceleration", a.acceleration,
                  "none (plain EM) or squarem: SQUAREM extrapolation, fewer E-step passes to the same optimum where "
                  "EM converges slowly (tight --tol, overlapping components); no gain at the default --tol")
      ->check(CLI::IsMember({"none", "squarem"}))
      ->capture_default_str();
  add_device_options(cmd, a.where);
  cmd->add_option("--threads", a.threads, "CPU threads (0: all); results do not depend on it")
      ->check(CLI::Range(0, 4096))
      ->capture_default_str();
}

std::size_t parse_byte_size(const std::string& text) {
  const auto bad = [&] {
    return UsageError("--device-memory: '" + text + "' is not a size; use bytes or a number with K, M, G or T");
  };
  std::size_t pos = 0;
  double value = 0;
  try {
    value = std::stod(text, &pos);
  } catch (const std::exception&) {
    throw bad();
  }
  std::string unit = text.substr(pos);
  if (!unit.empty() && (unit.back() == 'B' || unit.back() == 'b')) unit.pop_back();
  if (!unit.empty() && (unit.back() == 'i')) unit.pop_back();
  double scale = 1;
  if (unit.size() > 1) throw bad();
  if (!unit.empty()) {
    switch (unit[0]) {
      case 'k': case 'K': scale = 1024.0; break;
      case 'm': case 'M': scale = 1024.0 * 1024; break;
      case 'g': case 'G': scale = 1024.0 * 1024 * 1024; break;
      case 't': case 'T': scale = 1024.0 * 1024 * 1024 * 1024; break;
      default: throw bad();
    }
  }
  const double bytes = value * scale;
  if (!std::isfinite(bytes) || bytes < 1 || bytes > 1e18) throw bad();
  return static_cast<std::size_t>(bytes);
}

void add_device_options(CLI::App* cmd, DeviceArgs& a) {
  cmd->add_option("--device", a.device, "cpu, auto, cuda or cuda:N")->capture_default_str();
  cmd->add_option("--precision", a.precision, "CUDA arithmetic: float32 or float64 (the CPU is always float64)")
      ->check(CLI::IsMember({"float32", "float64"}))
      ->capture_default_str();
  cmd->add_option("--device-memory", a.memory,
                  "device memory the CUDA backend may use, e.g. 8G or 512M (default: 80% of free); "
                  "data that do not fit are streamed from host memory in chunks, with the same result");
}

EvaluateOptions to_evaluate_options(const DeviceArgs& a, MissingPolicy missing) {
  EvaluateOptions w;
  w.missing = missing;
  w.device = parse_device(a.device);
  w.precision = parse_precision(a.precision);
  if (!a.memory.empty()) w.device_memory_limit = parse_byte_size(a.memory);
  return w;
}

FitOptions to_fit_options(const FitArgs& a) {
  FitOptions o;
  o.n_components = a.n_components;
  o.covariance_type = parse_covariance_type(a.covariance);
  o.init = parse_init_method(a.init);
  o.n_init = a.n_init;
  o.max_iter = a.max_iter;
  o.tol = a.tol;
  o.reg_covar = a.reg_covar;
  o.seed = a.seed;
  const EvaluateOptions where = to_evaluate_options(a.where);
  o.device = where.device;
  o.precision = where.precision;
  o.device_memory_limit = where.device_memory_limit;
  o.n_threads = a.threads;
  o.acceleration = parse_acceleration(a.acceleration);
  if (!std::isfinite(o.tol) || !std::isfinite(o.reg_covar)) throw UsageError("--tol and --reg-covar must be finite");
  return o;
}

bool acceleration_advised(const FitResult& r, Acceleration acceleration) {
  const bool slow = r.convergence_rate > kSlowRate && r.convergence_rate < 1.0;  // false for NaN
  return acceleration == Acceleration::none && slow && (!r.converged || r.n_iter >= kManyIterations);
}

std::string rate_text(double rate) {
  int decimals = 3;
  if (rate > 0.9 && rate < 1.0) decimals = std::max(3, static_cast<int>(std::ceil(-std::log10(1.0 - rate))) + 1);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, rate);
  return buf;
}

std::string convergence_text(const FitResult& r, Acceleration acceleration) {
  const bool squarem = acceleration == Acceleration::squarem;
  std::string out = "E-step passes " + std::to_string(r.n_estep_passes) + (squarem ? " (SQUAREM)" : "") + "; ";
  const double rate = r.convergence_rate;
  if (std::isnan(rate)) {
    out += "convergence rate not measured (too few EM steps gained more than rounding to tell)\n";
  } else if (rate >= 1.0) {
    out += "convergence rate " + rate_text(rate) + " (the last EM steps gained more than the ones before: no " +
           "linear phase yet)\n";
  } else {
    out += "convergence rate " + rate_text(rate) +
           (squarem ? " (from SQUAREM's plain EM steps, which read low)\n" : "\n");
  }
  if (acceleration_advised(r, acceleration))
    out += "EM is converging linearly at rate " + rate_text(rate) +
           "; --acceleration squarem would help (fewer E-step passes to the same optimum)\n";
  return out;
}

void print_fit_json(nlohmann::json& j, const std::string& output, const std::string& model_json) {
  if (!output.empty())
    j["model_path"] = output;
  else
    j["model"] = nlohmann::json::parse(model_json);
  std::printf("%s\n", j.dump(1).c_str());
}

void add_convergence_json(nlohmann::json& j, const FitResult& r, Acceleration acceleration) {
  j["acceleration"] = to_string(acceleration);
  j["n_estep_passes"] = r.n_estep_passes;
  j["convergence_rate"] = std::isnan(r.convergence_rate) ? nlohmann::json(nullptr) : nlohmann::json(r.convergence_rate);
  j["acceleration_advised"] = acceleration_advised(r, acceleration);
}

std::function<bool(const IterationInfo&)> progress_reporter(const GlobalFlags& flags, int max_iter, int n_init,
                                                            std::string label) {
  if (flags.quiet) return {};
  const bool tty = ::isatty(STDERR_FILENO) != 0;
  if (!label.empty()) label += "  ";
  return [tty, max_iter, n_init, label](const IterationInfo& i) {
    const std::string restart = n_init > 1 ? "init " + std::to_string(i.init + 1) + "/" + std::to_string(n_init) + "  " : "";
    if (tty) {
      constexpr int kWidth = 24;
      const int filled = static_cast<int>(kWidth * static_cast<double>(i.iteration) / max_iter);
      std::string bar(static_cast<std::size_t>(filled), '#');
      bar.resize(kWidth, '.');
      std::fprintf(stderr, "\r\033[K%s%s[%s] iter %d/%d  log-lik %.8g  change %.2e  %.3f s/iter", label.c_str(),
                   restart.c_str(), bar.c_str(), i.iteration, max_iter, i.mean_log_likelihood, i.change, i.seconds);
      std::fflush(stderr);
    } else {
      std::fprintf(stderr, "%s%siter %4d  mean log-likelihood %.10g  change %.3e  %.4f s\n", label.c_str(),
                   restart.c_str(), i.iteration, i.mean_log_likelihood, i.change, i.seconds);
    }
    return true;
  };
}

const CLI::Validator& unsigned_validator() { return kUnsigned; }

void end_progress(const GlobalFlags& flags) {
  if (!flags.quiet && ::isatty(STDERR_FILENO)) std::fputc('\n', stderr);
}

namespace {

void append_row(std::string& out, const double* a, int n, const char* indent) {
  char buf[64];
  out += indent;
  out += "[";
  for (int j = 0; j < n; ++j) {
    std::snprintf(buf, sizeof buf, "%s%12.6g", j ? ", " : "", a[j]);
    out += buf;
  }
  out += "]\n";
}

}  // namespace

std::string model_text(const Model& m, const std::vector<std::string>& names) {
  const int D = m.n_features;
  const auto Dz = static_cast<std::size_t>(D);
  char buf[256];
  std::string out;
  std::snprintf(buf, sizeof buf, "Gaussian mixture: %d components, %s covariance, %d features\n", m.n_components,
                to_string(m.covariance_type), D);
  out += buf;
  if (!names.empty()) {
    out += "features:";
    for (const std::string& n : names) out += " " + n;
    out += "\n";
  }
  for (int k = 0; k < m.n_components; ++k) {
    std::snprintf(buf, sizeof buf, "\ncomponent %d: weight %.6f\n  mean:\n", k, m.weights[k]);
    out += buf;
    append_row(out, m.means.data() + k * Dz, D, "    ");
    switch (m.covariance_type) {
      case CovarianceType::full:
        out += "  covariance:\n";
        for (int i = 0; i < D; ++i) append_row(out, m.covariances.data() + k * Dz * Dz + i * Dz, D, "    ");
        break;
      case CovarianceType::diag:
        out += "  variances:\n";
        append_row(out, m.covariances.data() + k * Dz, D, "    ");
        break;
      case CovarianceType::spherical:
        std::snprintf(buf, sizeof buf, "  variance: %.6g\n", m.covariances[k]);
        out += buf;
        break;
      case CovarianceType::tied: break;
    }
  }
  if (m.covariance_type == CovarianceType::tied) {
    out += "\nshared covariance:\n";
    for (int i = 0; i < D; ++i) append_row(out, m.covariances.data() + i * Dz, D, "    ");
  }
  return out;
}

}  // namespace cuem::cli
