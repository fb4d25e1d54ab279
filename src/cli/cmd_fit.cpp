// cuem fit DATA -k K [...] [--weights w.npy] [--missing error|marginalize] [-o model.json] [--trace trace.csv]
//          [--report report.svg]
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>

#include "cli/common.hpp"
#include "cli/outputs.hpp"
#include "io/atomic_file.hpp"
#include "io/model_json.hpp"
#include "report/svg_report.hpp"

namespace cuem::cli {
namespace {

struct Args {
  DataArgs data;
  std::string weights;
  FitArgs fit;
  std::string output;
  std::string trace;
  std::string report;
  std::string report_axes = "first";
};

std::string trace_csv(const FitResult& r) {
  std::string out = "init,iteration,mean_log_likelihood,seconds\n";
  char buf[128];
  for (const TracePoint& t : r.trace) {
    std::snprintf(buf, sizeof buf, "%d,%d,%.17g,%.6g\n", t.init, t.iteration, t.mean_log_likelihood, t.seconds);
    out += buf;
  }
  return out;
}

// The rows without a missing entry, packed (the report draws observed points only).
std::vector<double> complete_rows(DataView X, std::size_t* n_complete) {
  std::vector<double> out;
  *n_complete = 0;
  for (std::size_t i = 0; i < X.n_rows; ++i) {
    bool complete = true;
    for (std::size_t j = 0; j < X.n_cols && complete; ++j) complete = !std::isnan(X.value(i, j));
    if (!complete) continue;
    for (std::size_t j = 0; j < X.n_cols; ++j) out.push_back(X.value(i, j));
    ++*n_complete;
  }
  return out;
}

int run(const Args& a, const GlobalFlags& flags) {
  check_model_output_name(a.output, "-o");
  check_outputs({a.output, a.trace, a.report}, {a.data.path, a.weights});
  if (io::is_stdin_name(a.data.path) && io::is_stdin_name(a.weights))
    throw UsageError("DATA and --weights cannot both be '-' (standard input)");
  FitOptions o = to_fit_options(a.fit);  // option mistakes before the data are read
  o.missing = missing_policy(a.data);
  const io::Table t = load_table(a.data, flags);
  const std::string data_name = io::display_name(a.data.path);
  note(flags, data_name + ": " + std::to_string(t.rows) + " points x " + std::to_string(t.cols) + " features");
  const std::vector<double> weights = load_weights(a.weights, t, flags);
  const WeightView w = weight_view(weights);
  o.on_iteration = progress_reporter(flags, o.max_iter, o.n_init);
  const DataView X = t.view();
  // Placed once for the fit and its criteria (one conversion and upload on a device).
  Resources resources({o.device, o.precision, o.n_threads, o.device_memory_limit, o.cuda_tuning});
  PlacedData placed = with_data_name(data_name, [&] { return PlacedData(resources, X, w, o.missing); });
  const FitResult r = with_data_name(data_name, [&] { return fit(placed, o); });
  end_progress(flags);
  for (const std::string& n : r.notices) note(flags, "note: " + n);  // skipped empty rows among them
  if (r.n_decreases > 0)
    note(flags, "warning: the log-likelihood fell " + std::to_string(r.n_decreases) + " time(s), by up to " +
                    std::to_string(r.max_decrease) + "; EM forbids this: please report it");
  if (!r.converged)
    note(flags, "warning: did not converge in " + std::to_string(o.max_iter) +
                    " iterations; raise --max-iter or --tol, or check the data's scale");

  // Everything is computed before anything is written, so a failure leaves no files.
  // bic and aic from one pass on the fit's device (the CPU's is float64, as bic()).
  const Criteria crit = with_data_name(data_name, [&] { return criteria(placed, r.model); });
  const double bic_v = crit.bic;
  const double aic_v = crit.aic;
  std::string svg;
  if (!a.report.empty()) {
    report::ReportOptions ro;
    ro.axes = a.report_axes == "pca" ? report::Axes::principal : report::Axes::first_two;
    ro.seed = a.fit.seed;
    ro.title = data_name;
    ro.feature_names = t.column_names;
    if (r.missing.incomplete_rows == 0) {
      svg = report::render_svg(r, X, ro);
    } else {  // the observed points: rows with a missing entry are left out of the picture
      std::size_t n = 0;
      const std::vector<double> complete = complete_rows(X, &n);
      if (n == 0)
        throw DataError(data_name + ": every row has a missing entry, so the report has no point to draw; leave "
                        "out --report");
      note(flags, "note: the report draws the " + std::to_string(n) + " rows without a missing entry");
      svg = report::render_svg(r, DataView(complete.data(), n, X.n_cols), ro);
    }
  }
  io::FitMetadata meta{true, r.converged, r.n_iter, r.lower_bound, t.rows, data_name, {}};
  if (t.named_columns) meta.feature_names = io::usable_feature_names(t.column_names);
  io::OutputBatch outputs;
  if (!a.output.empty()) outputs.add(a.output, io::model_to_json(r.model, meta));
  if (!a.trace.empty()) outputs.add(a.trace, trace_csv(r));
  if (!svg.empty()) outputs.add(a.report, svg);
  outputs.commit();

  if (flags.json) {
    nlohmann::json j = {{"converged", r.converged}, {"n_iter", r.n_iter},     {"lower_bound", r.lower_bound},
                        {"bic", bic_v},             {"aic", aic_v},           {"n_samples", t.rows},
                        {"n_features", t.cols},     {"best_init", r.best_init}, {"n_decreases", r.n_decreases},
                        {"device", r.device}};
    if (!w.empty()) j["sum_weights"] = crit.total_weight;
    if (o.missing == MissingPolicy::marginalize) j["missing"] = missing_json(r.missing);
    if (!a.output.empty()) {
      j["model_path"] = a.output;
    } else {
      j["model"] = nlohmann::json::parse(io::model_to_json(r.model, meta));
    }
    std::printf("%s\n", j.dump(1).c_str());
    return kOk;
  }
  // The lower bound is scikit-learn's lower_bound_: the mean log-likelihood under the
  // parameters of the last E-step, before its M-step (score gives the final model's).
  std::printf("%s after %d iterations (restart %d of %d); lower bound (mean log-likelihood) %.10g\n",
              r.converged ? "converged" : "NOT converged", r.n_iter, r.best_init + 1, o.n_init, r.lower_bound);
  std::printf("BIC %.10g  AIC %.10g\n", bic_v, aic_v);
  if (!w.empty()) std::printf("weights from %s, sum %.10g\n", io::display_name(a.weights).c_str(), crit.total_weight);
  if (o.missing == MissingPolicy::marginalize) std::printf("%s\n", missing_text(r.missing).c_str());
  if (a.output.empty()) {
    std::printf("\n%s", model_text(r.model, t.named_columns ? t.column_names : std::vector<std::string>{}).c_str());
  } else {
    std::printf("model written to %s\n", a.output.c_str());
  }
  if (!a.trace.empty()) std::printf("trace written to %s\n", a.trace.c_str());
  if (!a.report.empty()) std::printf("report written to %s\n", a.report.c_str());
  return kOk;
}

}  // namespace

void add_fit_command(CLI::App& app, const GlobalFlags& flags, int& exit_code) {
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("fit", "fit a Gaussian mixture to DATA with EM");
  cmd->add_option("DATA", args->data.path, "data: .npy, .csv/.tsv/.txt, or raw binary with --dims")->required();
  add_fit_options(cmd, args->fit, true);
  add_data_options(cmd, args->data);
  add_weights_option(cmd, args->weights);
  add_missing_option(cmd, args->data);
  cmd->add_option("-o,--output", args->output, "write the model as JSON (default: print it)");
  cmd->add_option("--trace", args->trace, "write the log-likelihood per iteration as CSV");
  cmd->add_option("--report", args->report, "write an SVG picture of the fit");
  cmd->add_option("--report-axes", args->report_axes, "report scatter axes: first (two features) or pca")
      ->check(CLI::IsMember({"first", "pca"}))
      ->capture_default_str();
  cmd->callback([args, &flags, &exit_code] { exit_code = run(*args, flags); });
}

}  // namespace cuem::cli
