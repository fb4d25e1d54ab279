#pragma once
// What every cuem command shares: global flags, data options, progress, exit codes.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <string>

#include "cuem/errors.hpp"
#include "cuem/fit.hpp"
#include "cuem/resources.hpp"
#include "io/data_loader.hpp"
#include "io/input_changed.hpp"
#include "io/model_json.hpp"

namespace cuem::cli {

/// Exit codes, documented in --help and the README.
enum ExitCode { kOk = 0, kUsage = 2, kBadData = 3, kNumerical = 4, kDevice = 5, kInputChanged = 6, kInternal = 70 };

/// A command-line mistake found after parsing (exit 2).
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct GlobalFlags {
  bool quiet = false;  ///< nothing on stderr but errors
  bool json = false;   ///< machine-readable results on stdout
};

/// How to read a data file (all but the path are optional).
struct DataArgs {
  std::string path;
  std::string delimiter;  ///< "", ",", ";", "tab", "space"
  std::string header = "auto";
  std::vector<std::string> columns;
  std::size_t dims = 0;
  std::string dtype;  ///< raw binary: float32 or float64
  /// --missing: "error" or "marginalize" (NaN entries, and in text also empty fields, NA
  /// and N/A, read as missing values); "" where the command has no such option.
  std::string missing;
};

void add_data_options(CLI::App* cmd, DataArgs& args);
/// --missing error|marginalize (fit, predict, score, select).
void add_missing_option(CLI::App* cmd, DataArgs& args);
/// The policy --missing asked for (error where the command has none).
MissingPolicy missing_policy(const DataArgs& args);

/// What a fit's data missed, for the summary: one line of text (no newline) and JSON.
std::string missing_text(const MissingSummary& s);
nlohmann::json missing_json(const MissingSummary& s);
/// "0-based rows 3, 8, ..." of the empty rows a summary lists.
std::string empty_rows_text(const MissingSummary& s);
/// Loads the data; notices (conversions) go to stderr unless quiet.
io::Table load_table(const DataArgs& args, const GlobalFlags& flags);

/// A model and data for it (predict, score): at most one of them from standard input.
/// Columns named in another order or other names than the model's features are a
/// DataError (io::check_feature_names); data without names for a model with them get a
/// notice, as scikit-learn warns, since nothing can check them.
struct ModelAndData {
  io::AnyModel model;  ///< either kind: the command refuses a kind it cannot use
  io::FitMetadata meta;
  io::Table data;
};
ModelAndData load_model_and_data(const std::string& model_path, const DataArgs& data, const GlobalFlags& flags);

/// The Gaussian mixture of a model file for `command`, which has no Bayesian form: a
/// UsageError (exit 2) saying what to run instead for a Bayesian model.
const Model& gaussian_model_for(const io::AnyModel& model, const std::string& command);

/// --weights FILE (scikit-learn's sample_weight): one non-negative number per row of DATA.
void add_weights_option(CLI::App* cmd, std::string& path);

/// The weights of --weights for the rows of `data` (empty when `path` is): read with the
/// data readers as one column (raw binary by its name, .bin/.raw/.f64 or .f32, with one
/// value per row) and checked by validate_weights. Any problem with them is a DataError
/// naming the file (exit 3).
std::vector<double> load_weights(const std::string& path, const io::Table& data, const GlobalFlags& flags);

/// The weights as the library takes them (none when empty).
inline WeightView weight_view(const std::vector<double>& w) {
  return w.empty() ? WeightView{} : WeightView(w.data(), w.size());
}

/// Where the work runs: --device, --precision, --device-memory.
struct DeviceArgs {
  std::string device = "cpu";
  std::string precision = "float32";
  std::string memory;  ///< e.g. "2G", "512M" or bytes; empty: the library's default
};

void add_device_options(CLI::App* cmd, DeviceArgs& a);
/// Where and how to evaluate: the device options, and `missing` for NaN entries.
EvaluateOptions to_evaluate_options(const DeviceArgs& a, MissingPolicy missing = MissingPolicy::error);

/// Options of a fit that fit and select share.
struct FitArgs {
  int n_components = 0;
  std::string covariance = "full";
  std::string init = "kmeans";
  int n_init = 1;
  int max_iter = 100;
  double tol = 1e-3;
  double reg_covar = 1e-6;
  std::uint64_t seed = 0;
  DeviceArgs where;
  int threads = 0;
  std::string acceleration = "none";  ///< --acceleration: none or squarem
};

/// Bytes from "123", "64K", "512M", "2G" or "1T" (binary units); UsageError otherwise.
std::size_t parse_byte_size(const std::string& text);

/// Runs a library call on the data from `path`, naming the file in any data error (an
/// InputChangedError names it already).
template <typename F>
auto with_data_name(const std::string& path, F&& f) {
  try {
    return f();
  } catch (const io::InputChangedError&) {
    throw;  // names its file already, and keeps its type (its own exit code)
  } catch (const DataError& e) {
    throw DataError(path + ": " + e.what());
  }
}

/// Adds the fit options; `single` adds -k and --covariance (select has list forms).
void add_fit_options(CLI::App* cmd, FitArgs& args, bool single);
FitOptions to_fit_options(const FitArgs& args);

/// Whether a fit's summary advises --acceleration squarem. The rule: plain EM whose rate
/// estimate lies in (kSlowRate, 1) (converging linearly, slowly; a rate of 1 or more means
/// the gains were still growing, not a linear phase, and NaN means too few steps to tell)
/// that did not converge or took at least kManyIterations iterations. Below that SQUAREM's
/// first cycles, which are plain EM, are most of the fit and it gains nothing
/// (bench/NOTES.md: no gain on fits of 2-7 passes, 40-67% fewer passes on those of 24 or more).
constexpr double kSlowRate = 0.9;
constexpr int kManyIterations = 20;
bool acceleration_advised(const FitResult& r, Acceleration acceleration);
/// The summary's lines (each ending in a newline) on E-step passes, EM's convergence rate
/// and, where acceleration_advised, the advice.
std::string convergence_text(const FitResult& r, Acceleration acceleration);
/// The same for --json: acceleration, n_estep_passes, convergence_rate (null where NaN)
/// and acceleration_advised, added to `j`.
void add_convergence_json(nlohmann::json& j, const FitResult& r, Acceleration acceleration);

/// Prints a fit's --json summary `j` with its model: "model_path" where -o wrote it to
/// `output`, else the model file's JSON itself under "model".
void print_fit_json(nlohmann::json& j, const std::string& output, const std::string& model_json);
/// A rate with enough decimals to tell it from 1 (0.993 -> "0.9930", 0.99996 -> "0.999960").
std::string rate_text(double rate);

/// The per-iteration report on stderr: a line per iteration, or a redrawn progress bar
/// when stderr is a terminal. `label` prefixes each line (e.g. "k=3 full").
std::function<bool(const IterationInfo&)> progress_reporter(const GlobalFlags& flags, int max_iter, int n_init,
                                                            std::string label = {});

/// Accepts only non-negative integers (CLI11 would wrap "-1" into a huge unsigned).
const CLI::Validator& unsigned_validator();

/// Ends a progress bar line on a terminal.
void end_progress(const GlobalFlags& flags);

/// The model as readable text: per component its weight, mean and covariance.
std::string model_text(const Model& model, const std::vector<std::string>& feature_names);

/// Writes "N,D" style messages only when not quiet.
void note(const GlobalFlags& flags, const std::string& message);

// Commands: each registers its subcommand and returns the code its run produced through
// the shared exit slot.
void add_fit_command(CLI::App& app, const GlobalFlags& flags, int& exit_code);
void add_predict_command(CLI::App& app, const GlobalFlags& flags, int& exit_code);
void add_score_command(CLI::App& app, const GlobalFlags& flags, int& exit_code);
void add_sample_command(CLI::App& app, const GlobalFlags& flags, int& exit_code);
void add_select_command(CLI::App& app, const GlobalFlags& flags, int& exit_code);
void add_info_command(CLI::App& app, const GlobalFlags& flags, int& exit_code);
void add_generate_command(CLI::App& app, const GlobalFlags& flags, int& exit_code);
void add_impute_command(CLI::App& app, const GlobalFlags& flags, int& exit_code);

}  // namespace cuem::cli
