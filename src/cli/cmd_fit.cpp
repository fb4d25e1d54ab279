// cuem fit DATA -k K [...] [--weights w.npy] [--missing error|marginalize] [--acceleration none|squarem]
//          [--incremental-blocks B] [--chunk-rows R]
//          [-o model.json] [--trace trace.csv] [--report report.svg]
// cuem fit DATA -k K --model bayesian [--weight-concentration-prior-type T] [--weight-concentration-prior G]
//          [--mean-precision-prior B] [--degrees-of-freedom-prior NU] [--prune-threshold X [--prune-patience N]]
//          [...]: the variational Bayesian mixture
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <optional>

#include "cuem/bayesian.hpp"

#include "cli/cmd_hmm.hpp"
#include "cli/common.hpp"
#include "cli/outputs.hpp"
#include "io/atomic_file.hpp"
#include "io/model_json.hpp"
#include "mpi/cli_fit.hpp"
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
  std::string model = "gmm";  ///< --model: gmm, bayesian or hmm
  std::string lengths;        ///< --lengths (--model hmm)
  int n_mix = 0;              ///< --n-mix (--model hmm): a GMMHMM of that many components a state
  // --model bayesian's priors (unset: scikit-learn's defaults)
  std::string weight_prior_type = "dirichlet_process";
  // NaN: not given
  double weight_concentration_prior = std::nan("");
  double mean_precision_prior = std::nan("");
  double degrees_of_freedom_prior = std::nan("");
  bool weight_prior_type_given = false;
  double prune_threshold = std::nan("");  ///< --prune-threshold; NaN: not given (no pruning)
  int prune_patience = BayesianOptions{}.prune_patience;
  bool prune_patience_given = false;
  int incremental_blocks = 1;  ///< --incremental-blocks: 1 is batch EM
  std::string first_pass;      ///< --first-pass; empty: not given (FitOptions' default)
  int max_block_steps = 0;     ///< --max-block-steps: 0 is no limit
  std::size_t chunk_rows = 0;  ///< --chunk-rows: > 0 reads the data out of core
  DistributedArgs distributed;  ///< --distributed and its options (src/mpi/cli_fit.hpp)
};

// score, bic and aic of a fit made out of core: one more pass in chunks, each released
// behind as the fit's were; the criteria's formulas (fit.hpp) on the chunks' sums.
Criteria chunked_criteria(const Model& m, DataView X, WeightView w, const FitOptions& o) {
  EvaluateOptions where;
  where.device = o.device;
  where.precision = o.precision;
  where.device_memory_limit = o.device_memory_limit;
  where.missing = o.missing;
  double log_likelihood = 0.0, total = 0.0;
  for (std::size_t begin = 0; begin < X.n_rows; begin += o.chunk_rows) {
    DataView c = X;
    c.n_rows = std::min(o.chunk_rows, X.n_rows - begin);
    if (c.data) c.data += begin * X.row_stride;
    else c.data_f32 += begin * X.row_stride;
    const WeightView cw = w.empty() ? WeightView{} : WeightView(w.data + begin, c.n_rows);
    const Criteria part = criteria(m, c, where, cw);
    if (part.total_weight > 0) log_likelihood += part.score * part.total_weight;  // 0: every row empty
    total += part.total_weight;
    if (o.release_rows) o.release_rows(begin + c.n_rows);
  }
  const double p = n_parameters(m);
  return {log_likelihood / total, -2.0 * log_likelihood + p * std::log(total), -2.0 * log_likelihood + 2.0 * p, total};
}

// The trace's value column: the GMM's mean log-likelihood, the Bayesian fit's whole ELBO.
std::string trace_csv(const std::vector<TracePoint>& trace, const char* value_name = "mean_log_likelihood") {
  std::string out = std::string("init,iteration,") + value_name + ",seconds,rate\n";
  char buf[160];
  for (const TracePoint& t : trace) {
    // rate: EM's linear rate as estimated so far (empty until there are enough steps).
    char rate[32] = "";
    if (std::isfinite(t.rate)) std::snprintf(rate, sizeof rate, "%.6g", t.rate);
    std::snprintf(buf, sizeof buf, "%d,%d,%.17g,%.6g,%s\n", t.init, t.iteration, t.mean_log_likelihood, t.seconds,
                  rate);
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

/// A component carries weight when its share of the data, N_k / N (N_k, the points it
/// explains, is beta_k - beta_0: weighted with --weights), exceeds kCarryingFraction / K, a
/// hundredth of a uniform share; the rest are effectively pruned. Not the expected weight:
/// under a Dirichlet process an empty component ahead of populated ones keeps its stick's
/// prior pseudo-count of 1, an expected weight near 1 / N whatever the concentration.
constexpr double kCarryingFraction = 0.01;

int run_bayesian(const Args& a, const GlobalFlags& flags) {
  check_model_output_name(a.output, "-o");
  check_outputs({a.output, a.trace}, {a.data.path, a.weights});
  if (io::is_stdin_name(a.data.path) && io::is_stdin_name(a.weights))
    throw UsageError("DATA and --weights cannot both be '-' (standard input)");
  // Combinations a variational fit has no use for, refused before the data are read.
  if (a.incremental_blocks != 1 || a.chunk_rows != 0 || !a.first_pass.empty() || a.max_block_steps != 0)
    throw UsageError("--incremental-blocks, --first-pass, --max-block-steps and --chunk-rows apply to --model gmm "
                     "only (leave them out with --model bayesian)");
  if (missing_policy(a.data) != MissingPolicy::error)
    throw UsageError("--missing marginalize applies to --model gmm only: the Bayesian mixture does not fit data "
                     "with missing entries (impute them first with a gmm fit and cuem impute, or drop those rows)");
  if (!a.report.empty())
    throw UsageError("--report draws a --model gmm fit only; leave it out with --model bayesian");
  BayesianOptions o;
  o.em = to_fit_options(a.fit);
  o.weight_concentration_prior_type = parse_weight_prior(a.weight_prior_type);
  const auto given = [](double v) { return std::isnan(v) ? std::optional<double>() : std::optional<double>(v); };
  o.weight_concentration_prior = given(a.weight_concentration_prior);
  o.mean_precision_prior = given(a.mean_precision_prior);
  o.degrees_of_freedom_prior = given(a.degrees_of_freedom_prior);
  if (a.prune_patience_given && std::isnan(a.prune_threshold))
    throw UsageError("--prune-patience needs --prune-threshold (pruning is off without it)");
  if (!std::isnan(a.prune_threshold)) o.prune_threshold = a.prune_threshold;
  o.prune_patience = a.prune_patience;
  const io::Table t = load_table(a.data, flags);
  const std::string data_name = io::display_name(a.data.path);
  note(flags, data_name + ": " + std::to_string(t.rows) + " points x " + std::to_string(t.cols) + " features");
  const std::vector<double> weights = load_weights(a.weights, t, flags);
  const WeightView w = weight_view(weights);
  o.em.on_iteration = progress_reporter(flags, o.em.max_iter, o.em.n_init, "ELBO");
  const DataView X = t.view();
  const BayesianFitResult r = with_data_name(data_name, [&] { return fit_bayesian(X, o, w); });
  end_progress(flags);
  for (const std::string& n : r.notices) note(flags, "note: " + n);
  if (r.n_decreases > 0)
    note(flags, "warning: the lower bound fell " + std::to_string(r.n_decreases) + " time(s), by up to " +
                    std::to_string(r.max_decrease) + "; variational EM forbids this: please report it");
  if (!r.converged)
    note(flags, "warning: did not converge in " + std::to_string(o.em.max_iter) +
                    " iterations; raise --max-iter or --tol, or check the data's scale");

  const BayesianPosterior& q = r.posterior;
  const std::vector<double> expected = q.weights();
  const double threshold = kCarryingFraction / q.n_components;
  std::vector<double> share(expected.size());
  double total_count = 0.0;
  for (std::size_t k = 0; k < share.size(); ++k) total_count += share[k] = q.mean_precision[k] - q.prior.mean_precision;
  for (double& v : share) v /= total_count;
  std::vector<int> carrying, pruned;
  for (int k = 0; k < q.n_components; ++k) (share[static_cast<std::size_t>(k)] > threshold ? carrying : pruned).push_back(k);
  // The ELBO trace's last value: the winning restart's last iteration.
  double trace_last = r.lower_bound;
  for (const TracePoint& p : r.trace)
    if (p.init == r.best_init) trace_last = p.mean_log_likelihood;

  io::FitMetadata meta{true, r.converged, r.n_iter, r.lower_bound, t.rows, data_name, {}};
  if (t.named_columns) meta.feature_names = io::usable_feature_names(t.column_names);
  const std::string model_json = io::bayesian_model_to_json(q, meta);
  io::OutputBatch outputs;
  if (!a.output.empty()) outputs.add(a.output, model_json);
  if (!a.trace.empty()) outputs.add(a.trace, trace_csv(r.trace, "lower_bound"));
  outputs.commit();

  if (flags.json) {
    const auto listed = [&](const std::vector<int>& ks) {
      nlohmann::json arr = nlohmann::json::array();
      for (int k : ks)
        arr.push_back({{"component", k},
                       {"weight", expected[static_cast<std::size_t>(k)]},
                       {"share", share[static_cast<std::size_t>(k)]}});
      return arr;
    };
    nlohmann::json j = {{"model", "bayesian"},
                        {"weight_concentration_prior_type", to_string(q.prior.type)},
                        {"converged", r.converged},
                        {"n_iter", r.n_iter},
                        {"lower_bound", r.lower_bound},
                        {"lower_bound_trace_last", trace_last},
                        {"n_samples", t.rows},
                        {"n_features", t.cols},
                        {"n_components", q.n_components},
                        {"best_init", r.best_init},
                        {"n_decreases", r.n_decreases},
                        {"device", r.device},
                        {"weights", expected},
                        {"share_threshold", threshold},
                        {"n_components_with_weight", carrying.size()},
                        {"components_with_weight", listed(carrying)},
                        {"components_pruned", listed(pruned)},
                        {"n_components_start", o.em.n_components},
                        {"kept_components", r.kept_components},
                        {"acceleration", to_string(o.em.acceleration)},
                        {"n_estep_passes", r.n_estep_passes},
                        {"convergence_rate", std::isnan(r.convergence_rate) ? nlohmann::json(nullptr)
                                                                            : nlohmann::json(r.convergence_rate)}};
    nlohmann::json prunes = nlohmann::json::array();
    for (const PruneEvent& e : r.prunes) prunes.push_back({{"iteration", e.iteration}, {"components", e.components}});
    j["prunes"] = prunes;
    if (!w.empty()) {
      double total = 0.0;
      for (double v : weights) total += v;
      j["sum_weights"] = total;
    }
    print_fit_json(j, a.output, model_json);
    return kOk;
  }
  // scikit-learn's lower_bound_: the whole evidence lower bound, not per sample.
  std::printf("%s after %d iterations (restart %d of %d); lower bound (ELBO) %.10g\n",
              r.converged ? "converged" : "NOT converged", r.n_iter, r.best_init + 1, o.em.n_init, r.lower_bound);
  if (o.em.acceleration == Acceleration::squarem)
    std::printf("SQUAREM: %d E-step passes over all restarts (the iterations count the points kept)\n",
                r.n_estep_passes);
  std::printf("Bayesian Gaussian mixture (%s prior): %zu of %d components carry weight (share of the data > %.3g = "
              "%g / K; expected weights in brackets)\n",
              to_string(q.prior.type), carrying.size(), q.n_components, threshold, kCarryingFraction);
  if (!w.empty()) {
    double total = 0.0;
    for (double v : weights) total += v;
    std::printf("weights from %s, sum %.10g\n", io::display_name(a.weights).c_str(), total);
  }
  std::printf("ELBO trace, last value %.10g\n", trace_last);
  if (o.prune_threshold > 0) {
    std::printf("pruning (share below %g for %d iterations): removed %d of %d components", o.prune_threshold,
                o.prune_patience, o.em.n_components - q.n_components, o.em.n_components);
    for (const PruneEvent& e : r.prunes) {
      std::printf("; at iteration %d:", e.iteration);
      for (int k : e.components) std::printf(" %d", k);
    }
    std::printf("\nkept components (their indices at the start, in the model's order):");
    for (int k : r.kept_components) std::printf(" %d", k);
    std::printf("\n");
  }
  std::printf("carrying weight:");
  for (int k : carrying) std::printf(" %d (%.6f)", k, expected[static_cast<std::size_t>(k)]);
  std::printf("\neffectively pruned:");
  if (pruned.empty()) std::printf(" none");
  for (int k : pruned) std::printf(" %d (%.3g)", k, expected[static_cast<std::size_t>(k)]);
  std::printf("\n");
  if (a.output.empty()) {
    std::printf("\n%s", model_json.c_str());
  } else {
    std::printf("model written to %s\n", a.output.c_str());
  }
  if (!a.trace.empty()) std::printf("trace written to %s\n", a.trace.c_str());
  return kOk;
}

// The variational Bayesian mixture's options, given to another model.
void refuse_bayesian_options(const Args& a) {
  if (a.weight_prior_type_given || !std::isnan(a.weight_concentration_prior) || !std::isnan(a.mean_precision_prior) ||
      !std::isnan(a.degrees_of_freedom_prior))
    throw UsageError("--weight-concentration-prior-type, --weight-concentration-prior, --mean-precision-prior and "
                     "--degrees-of-freedom-prior apply to --model bayesian only");
  if (!std::isnan(a.prune_threshold) || a.prune_patience_given)
    throw UsageError("--prune-threshold and --prune-patience apply to --model bayesian only");
}

int run(const Args& a, const GlobalFlags& flags) {
  const DistributedArgs& d = a.distributed;
  if (!d.enabled && (!d.checkpoint.empty() || d.reduction != DistributedArgs{}.reduction ||
                     d.segment_rows != DistributedArgs{}.segment_rows))
    throw UsageError("--checkpoint, --reduction and --segment-rows apply to --distributed fits only");
  if (d.enabled) {
    // Under mpirun every rank parses the same arguments: a refusal is said once for the job.
    const auto check = [&] {
      if ((a.model != "gmm" && a.model != "hmm") || !a.report.empty())
        throw UsageError("--distributed fits --model gmm or hmm, without --report");
      if (a.incremental_blocks != 1 || a.chunk_rows != 0 || !a.first_pass.empty() || a.max_block_steps != 0)
        throw UsageError("--distributed runs batch EM: leave out --incremental-blocks, --first-pass, "
                         "--max-block-steps and --chunk-rows");
      if (a.model == "gmm" && (!a.lengths.empty() || a.n_mix != 0))
        throw UsageError("--lengths and --n-mix apply to --model hmm only");
      if (a.model == "hmm" && !a.weights.empty())
        throw UsageError("--weights apply to mixtures only; leave them out with --model hmm");
      refuse_bayesian_options(a);
    };
#ifdef CUEM_HAVE_MPI
    const auto csv = [](const std::vector<TracePoint>& t) { return trace_csv(t); };
    return a.model == "hmm" ? run_distributed_hmm_fit(check, a.data, a.lengths, a.fit, a.output, a.trace, d, flags,
                                                      csv, a.n_mix)
                            : run_distributed_fit(check, a.data, a.weights, a.fit, a.output, a.trace, d, flags, csv);
#else
    check();
    throw UsageError("this cuem was built without MPI: install Open MPI (scripts/setup.sh) and rebuild for --distributed");
#endif
  }
  if (a.model == "bayesian") return run_bayesian(a, flags);
  refuse_bayesian_options(a);
  if (a.model == "hmm") {
    if (!a.weights.empty() || !a.report.empty())
      throw UsageError("--weights and --report apply to mixtures only; leave them out with --model hmm");
    if (a.chunk_rows != 0) throw UsageError("--chunk-rows applies to --model gmm only; leave it out with --model hmm");
    if (!a.first_pass.empty())
      throw UsageError("--first-pass applies to --model gmm only (an HMM's incremental first pass is full)");
    return run_hmm_fit(a.data, a.lengths, a.fit, a.output, a.trace,
                       [](const std::vector<TracePoint>& t) { return trace_csv(t); }, flags, a.n_mix,
                       a.incremental_blocks, a.max_block_steps);
  }
  if (!a.lengths.empty() || a.n_mix != 0) throw UsageError("--lengths and --n-mix apply to --model hmm only");
  check_model_output_name(a.output, "-o");
  check_outputs({a.output, a.trace, a.report}, {a.data.path, a.weights});
  if (io::is_stdin_name(a.data.path) && io::is_stdin_name(a.weights))
    throw UsageError("DATA and --weights cannot both be '-' (standard input)");
  FitOptions o = to_fit_options(a.fit);  // option mistakes before the data are read
  o.missing = missing_policy(a.data);
  o.incremental_blocks = a.incremental_blocks;
  if (!a.first_pass.empty()) o.first_pass = parse_first_pass(a.first_pass);
  o.max_block_steps = a.max_block_steps;
  if (o.max_block_steps > 0 && o.incremental_blocks == 1)
    throw UsageError("--max-block-steps limits incremental EM's block steps: give --incremental-blocks B > 1");
  if (o.incremental_blocks > 1 && o.acceleration != Acceleration::none)
    throw UsageError("--incremental-blocks and --acceleration squarem cannot be combined: choose one");
  o.chunk_rows = a.chunk_rows;
  if (o.chunk_rows > 0 && (o.incremental_blocks > 1 || !a.report.empty()))
    throw UsageError("--chunk-rows (out of core) works without --incremental-blocks and --report; leave those out");
  const io::Table t = load_table(a.data, flags);
  const std::string data_name = io::display_name(a.data.path);
  note(flags, data_name + ": " + std::to_string(t.rows) + " points x " + std::to_string(t.cols) + " features");
  const std::vector<double> weights = load_weights(a.weights, t, flags);
  const WeightView w = weight_view(weights);
  o.on_iteration = progress_reporter(flags, o.max_iter, o.n_init);
  const DataView X = t.view();
  // Placed once for the fit and its criteria (one conversion and upload on a device);
  // out of core, read in chunks by each pass instead, the pages behind released.
  Resources resources({o.device, o.precision, o.n_threads, o.device_memory_limit, o.cuda_tuning});
  std::optional<PlacedData> placed;
  if (o.chunk_rows > 0) {
    o.release_rows = io::row_releaser(t, a.data.path);
  } else {
    placed.emplace(with_data_name(data_name, [&] { return PlacedData(resources, X, w, o.missing); }));
  }
  const FitResult r =
      with_data_name(data_name, [&] { return placed ? fit(*placed, o) : fit(X, o, w); });
  end_progress(flags);
  for (const std::string& n : r.notices) note(flags, "note: " + n);  // skipped empty rows among them
  if (r.n_decreases > 0)
    note(flags, "warning: the log-likelihood fell " + std::to_string(r.n_decreases) + " time(s), by up to " +
                    std::to_string(r.max_decrease) + "; EM forbids this: please report it");
  if (!r.converged)
    note(flags, "warning: did not converge in " + std::to_string(o.max_iter) +
                    (o.acceleration == Acceleration::squarem ? " E-step passes" : " iterations") +
                    "; raise --max-iter or --tol, or check the data's scale");

  // Everything is computed before anything is written, so a failure leaves no files.
  // bic and aic from one pass on the fit's device (the CPU's is float64, as bic()).
  const Criteria crit = with_data_name(
      data_name, [&] { return placed ? criteria(*placed, r.model) : chunked_criteria(r.model, X, w, o); });
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
  // A mapped file read in place that changed during an in-memory fit gave it other data
  // part way (out of core, the releaser checked after every chunk).
  io::check_unchanged(t, a.data.path);
  io::FitMetadata meta{true, r.converged, r.n_iter, r.lower_bound, t.rows, data_name, {}};
  if (t.named_columns) meta.feature_names = io::usable_feature_names(t.column_names);
  io::OutputBatch outputs;
  if (!a.output.empty()) outputs.add(a.output, io::model_to_json(r.model, meta));
  if (!a.trace.empty()) outputs.add(a.trace, trace_csv(r.trace));
  if (!svg.empty()) outputs.add(a.report, svg);
  outputs.commit();

  if (flags.json) {
    nlohmann::json j = {{"converged", r.converged}, {"n_iter", r.n_iter},     {"lower_bound", r.lower_bound},
                        {"bic", bic_v},             {"aic", aic_v},           {"n_samples", t.rows},
                        {"n_features", t.cols},     {"best_init", r.best_init}, {"n_decreases", r.n_decreases},
                        {"device", r.device}};
    add_convergence_json(j, r, o.acceleration);
    j["incremental_blocks"] = o.incremental_blocks;
    if (o.incremental_blocks > 1) j["first_pass"] = to_string(o.first_pass);
    if (o.max_block_steps > 0) j["max_block_steps"] = o.max_block_steps;
    if (!w.empty()) j["sum_weights"] = crit.total_weight;
    if (o.missing == MissingPolicy::marginalize) j["missing"] = missing_json(r.missing);
    print_fit_json(j, a.output, io::model_to_json(r.model, meta));
    return kOk;
  }
  // The lower bound is scikit-learn's lower_bound_: the mean log-likelihood under the
  // parameters of the last E-step, before its M-step (score gives the final model's).
  std::printf("%s after %d iterations (restart %d of %d); lower bound (mean log-likelihood) %.10g\n",
              r.converged ? "converged" : "NOT converged", r.n_iter, r.best_init + 1, o.n_init, r.lower_bound);
  std::printf("BIC %.10g  AIC %.10g\n", bic_v, aic_v);
  if (!w.empty()) std::printf("weights from %s, sum %.10g\n", io::display_name(a.weights).c_str(), crit.total_weight);
  if (o.missing == MissingPolicy::marginalize) std::printf("%s\n", missing_text(r.missing).c_str());
  std::printf("%s", convergence_text(r, o.acceleration).c_str());
  if (o.incremental_blocks > 1)
    std::printf("incremental EM over %d blocks, %s first pass: iterations are passes over the data; the lower bound "
                "and trace are the free energy, one trace row per block step\n",
                o.incremental_blocks, to_string(o.first_pass));
  if (o.max_block_steps > 0)
    std::printf("each restart limited to %d block steps (--max-block-steps)\n", o.max_block_steps);
  if (a.output.empty()) {
    std::printf("\n%s", model_text(r.model, t.named_columns ? t.column_names : std::vector<std::string>{}).c_str());
  } else {
    std::printf("model written to %s\n", a.output.c_str());
  }
  if (!a.trace.empty()) std::printf("trace written to %s\n", a.trace.c_str());
  if (!a.report.empty()) std::printf("report written to %s\n", a.report.c_str());
  return kOk;
}

// The prior flags take finite numbers (NaN would read as "not given"); their ranges are
// the library's checks, with scikit-learn's messages.
const CLI::Validator kFinite(
    [](std::string& v) -> std::string {
      char* end = nullptr;
      const double x = std::strtod(v.c_str(), &end);
      if (v.empty() || *end != '\0' || !std::isfinite(x)) return "must be a finite number, got '" + v + "'";
      return {};
    },
    "NUMBER");

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
  cmd->add_option("--incremental-blocks", args->incremental_blocks,
                  "incremental EM (Neal and Hinton): the rows in B blocks (consecutive rows; with --first-pass "
                  "incremental, interleaved tiles, tile t in block t mod B; --model hmm: consecutive whole sequences), "
                  "one block re-estimated per step; 1 is batch EM")
      ->check(CLI::Range(1, 1 << 30))
      ->capture_default_str();
  cmd->add_option("--first-pass", args->first_pass,
                  "incremental EM's first pass: full (every block under the start, one M-step) or incremental (an "
                  "M-step after each block, on the blocks seen so far; for rows in random order). Default: " +
                      std::string(to_string(FitOptions{}.first_pass)))
      ->check(CLI::IsMember({"full", "incremental"}));
  cmd->add_option("--max-block-steps", args->max_block_steps,
                  "incremental EM: stop after S block steps (the trace's rows; a full first pass is one, an "
                  "incremental one B), keeping the parameters of the last M-step; a budget finer than --max-iter's "
                  "passes. 0: no limit")
      ->check(CLI::Range(0, 1 << 30))
      ->capture_default_str();
  cmd->add_option("--chunk-rows", args->chunk_rows,
                  "out of core: read DATA in chunks of R rows in every pass, releasing the pages of a mapped .npy or "
                  "raw file behind the reader (resident memory about one chunk); the start is made from the first "
                  "chunk")
      ->capture_default_str();
  cmd->add_option("--model", args->model,
                  "gmm (maximum likelihood EM) or bayesian: the variational Bayesian Gaussian mixture (scikit-learn's "
                  "BayesianGaussianMixture), whose summary names the components that carry weight; its "
                  "--tol is on the change of the whole lower bound")
      ->check(CLI::IsMember({"gmm", "bayesian", "hmm"}))
      ->capture_default_str();
  cmd->add_option("--lengths", args->lengths,
                  "--model hmm (a Gaussian hidden Markov model, Baum-Welch; -k states, --covariance, --max-iter, "
                  "--tol per frame): text file of sequence lengths, one positive integer per sequence in row order "
                  "(default: one sequence)");
  cmd->add_option("--n-mix", args->n_mix,
                  "--model hmm: a GMMHMM (hmmlearn's), a Gaussian mixture of this many components per state")
      ->check(CLI::Range(1, 1 << 16));
  const char* group = "Bayesian (--model bayesian; the mean and covariance priors are the data's mean and covariance)";
  cmd->add_option("--weight-concentration-prior-type", args->weight_prior_type,
                  "dirichlet_process (stick-breaking, truncated at K) or dirichlet_distribution")
      ->check(CLI::IsMember({"dirichlet_process", "dirichlet_distribution"}))
      ->capture_default_str()
      ->group(group)
      ->each([args](const std::string&) { args->weight_prior_type_given = true; });
  cmd->add_option("--weight-concentration-prior", args->weight_concentration_prior,
                  "gamma > 0 (default 1 / K); small values leave fewer components with weight")
      ->check(kFinite)
      ->group(group);
  cmd->add_option("--mean-precision-prior", args->mean_precision_prior, "beta_0 > 0 (default 1)")
      ->check(kFinite)
      ->group(group);
  cmd->add_option("--degrees-of-freedom-prior", args->degrees_of_freedom_prior,
                  "nu_0 > D - 1 (default D, the number of features)")
      ->check(kFinite)
      ->group(group);
  cmd->add_option("--prune-threshold", args->prune_threshold,
                  "beyond scikit-learn: remove a component whose share of the data stays below this (0 <= X < 1) "
                  "for --prune-patience iterations, and fit on with the rest; off by default")
      ->check(kFinite)
      ->group(group);
  cmd->add_option("--prune-patience", args->prune_patience,
                  "iterations a component's share must stay below --prune-threshold before it is removed (>= 1)")
      ->capture_default_str()
      ->group(group)
      ->each([args](const std::string&) { args->prune_patience_given = true; });
  add_distributed_options(cmd, args->distributed);
  cmd->callback([args, &flags, &exit_code] { exit_code = run(*args, flags); });
}

}  // namespace cuem::cli
