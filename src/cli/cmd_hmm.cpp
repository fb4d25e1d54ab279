#include "cli/cmd_hmm.hpp"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "cli/outputs.hpp"
#include "cuem/gmm_hmm.hpp"
#include "cuem/hmm.hpp"
#include "io/atomic_file.hpp"
#include "io/hmm_json.hpp"
#include "io/table.hpp"

namespace cuem::cli {
namespace {

HmmEvaluateOptions where_of(const DeviceArgs& a, const DataArgs& data) {
  return to_evaluate_options(a, missing_policy(data));
}

}  // namespace

std::vector<std::size_t> load_lengths(const std::string& path, std::size_t n_rows) {
  if (path.empty()) return {};
  const std::string text = io::read_file_bytes(path);
  std::vector<std::size_t> lengths;
  std::size_t total = 0;
  const char* p = text.c_str();
  while (*p) {
    if (*p == ',' || *p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') {
      ++p;
      continue;
    }
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(p, &end, 10);
    const bool separated = *end == '\0' || *end == ',' || *end == ' ' || *end == '\t' || *end == '\n' || *end == '\r';
    if (end == p || errno != 0 || !separated)
      throw DataError(path + ": sequence " + std::to_string(lengths.size()) +
                      " is not an integer; --lengths takes one positive integer per sequence");
    if (v <= 0)
      throw DataError(path + ": sequence " + std::to_string(lengths.size()) + " has length " + std::to_string(v) +
                      "; every sequence needs at least one frame");
    lengths.push_back(static_cast<std::size_t>(v));
    total += static_cast<std::size_t>(v);
    p = end;
  }
  if (lengths.empty()) throw DataError(path + ": holds no lengths");
  if (total != n_rows)
    throw DataError(path + ": the lengths sum to " + std::to_string(total) + " frames but the data have " +
                    std::to_string(n_rows) + " rows");
  return lengths;
}

HmmOptions hmm_options(const FitArgs& fit, const DataArgs& data) {
  const FitOptions g = to_fit_options(fit);  // the shared option checks and device settings
  HmmOptions o;
  o.n_components = g.n_components;
  o.covariance_type = g.covariance_type;
  o.n_iter = g.max_iter;
  o.tol = g.tol;
  o.n_init = g.n_init;
  o.seed = g.seed;
  o.device = g.device;
  o.precision = g.precision;
  o.device_memory_limit = g.device_memory_limit;
  o.n_threads = g.n_threads;
  o.acceleration = g.acceleration;
  o.missing = missing_policy(data);
  return o;
}

GmmHmmOptions gmm_hmm_options(const HmmOptions& o, int n_mix) {
  if (o.acceleration != Acceleration::none) throw UsageError("--acceleration applies to Gaussian HMMs only");
  GmmHmmOptions go;
  go.n_components = o.n_components;
  go.n_mix = n_mix;
  go.covariance_type = o.covariance_type;
  go.n_iter = o.n_iter;
  go.tol = o.tol;
  go.n_init = o.n_init;
  go.seed = o.seed;
  go.device = o.device;
  go.precision = o.precision;
  go.device_memory_limit = o.device_memory_limit;
  go.n_threads = o.n_threads;
  go.on_iteration = o.on_iteration;
  return go;
}

HmmFitResult as_hmm_report(GmmHmmFitResult&& g) {
  HmmFitResult r;
  r.converged = g.converged;
  r.n_iter = g.n_iter;
  r.lower_bound = g.lower_bound;
  r.trace = std::move(g.trace);
  r.n_decreases = g.n_decreases;
  r.notices = std::move(g.notices);
  r.device = std::move(g.device);
  r.n_estep_passes = g.n_iter;
  return r;
}

int report_hmm_fit(const HmmFitResult& r, const HmmOptions& o, int n_mix, const std::string& model_json,
                   std::size_t n_frames, std::size_t n_sequences, const std::string& output, const std::string& trace,
                   const std::function<std::string(const std::vector<TracePoint>&)>& trace_text,
                   const GlobalFlags& flags, const nlohmann::json& extra) {
  for (const std::string& n : r.notices) note(flags, "note: " + n);
  if (r.n_decreases > 0)
    note(flags, "warning: the log-likelihood fell " + std::to_string(r.n_decreases) +
                    " time(s); Baum-Welch forbids this: please report it");
  if (!r.converged)
    note(flags, "warning: did not converge in " + std::to_string(o.n_iter) + " iterations; raise --max-iter or --tol");

  io::OutputBatch outputs;
  if (!output.empty()) outputs.add(output, model_json);
  if (!trace.empty()) outputs.add(trace, trace_text(r.trace));
  outputs.commit();
  if (flags.json) {
    nlohmann::json j = {{"model", n_mix > 0 ? "gmmhmm" : "hmm"},         {"n_samples", n_frames},        {"n_sequences", n_sequences},
                        {"converged", r.converged}, {"n_iter", r.n_iter},      {"lower_bound", r.lower_bound},
                        {"device", r.device},     {"notices", r.notices},
                        {"acceleration", to_string(o.acceleration)}, {"n_estep_passes", r.n_estep_passes},
                        {"convergence_rate", std::isnan(r.convergence_rate) ? nlohmann::json(nullptr)
                                                                            : nlohmann::json(r.convergence_rate)}};
    j.update(extra);
    print_fit_json(j, output, model_json);
    return kOk;
  }
  std::printf("%s of %d states (%s): %s after %d iterations, mean log-likelihood per frame %.10g\n",
              n_mix > 0 ? "GMMHMM" : "HMM", o.n_components, to_string(o.covariance_type),
              r.converged ? "converged" : "not converged", r.n_iter, r.lower_bound);
  if (o.acceleration == Acceleration::squarem)
    std::printf("SQUAREM: %d forward-backward passes over all restarts (the iterations count the points kept)\n",
                r.n_estep_passes);
  if (output.empty())
    std::printf("\n%s", model_json.c_str());
  else
    std::printf("model written to %s\n", output.c_str());
  return kOk;
}

int run_hmm_fit(const DataArgs& data, const std::string& lengths_path, const FitArgs& fit, const std::string& output,
                const std::string& trace, const std::function<std::string(const std::vector<TracePoint>&)>& trace_text,
                const GlobalFlags& flags, int n_mix, int incremental_blocks, int max_block_steps) {
  check_model_output_name(output, "-o");
  check_outputs({output, trace}, {data.path, lengths_path});
  HmmOptions o = hmm_options(fit, data);
  o.incremental_blocks = incremental_blocks;
  o.max_block_steps = max_block_steps;
  if (max_block_steps > 0 && incremental_blocks <= 1)
    throw UsageError("--max-block-steps limits incremental EM's block steps: give --incremental-blocks B > 1");
  if (incremental_blocks > 1 && o.acceleration != Acceleration::none)
    throw UsageError("--incremental-blocks and --acceleration squarem cannot be combined: choose one");
  const io::Table t = load_table(data, flags);
  const std::string data_name = io::display_name(data.path);
  const std::vector<std::size_t> lengths = load_lengths(lengths_path, t.rows);
  const std::size_t n_sequences = lengths.empty() ? 1 : lengths.size();
  note(flags, data_name + ": " + std::to_string(t.rows) + " frames x " + std::to_string(t.cols) + " features in " +
                  std::to_string(n_sequences) + (n_sequences == 1 ? " sequence" : " sequences"));
  o.on_iteration = progress_reporter(flags, o.n_iter, o.n_init, "HMM");
  HmmFitResult r;
  std::string model_json;
  io::HmmFitMetadata meta{true, false, 0, 0.0, t.rows, n_sequences, data_name};
  if (n_mix > 0) {
    if (o.missing != MissingPolicy::error)
      throw UsageError("--missing marginalize applies to Gaussian HMMs only (leave out --n-mix)");
    const GmmHmmOptions go = gmm_hmm_options(o, n_mix);
    if (incremental_blocks > 1) throw UsageError("--incremental-blocks applies to Gaussian HMMs only (leave out --n-mix)");
    GmmHmmFitResult g = with_data_name(data_name, [&] { return fit_gmm_hmm(t.view(), lengths, go); });
    meta.converged = g.converged;
    meta.n_iter = g.n_iter;
    meta.lower_bound = g.lower_bound;
    model_json = io::gmm_hmm_model_to_json(g.model, meta);
    r = as_hmm_report(std::move(g));
  } else {
    r = with_data_name(data_name, [&] { return fit_hmm(t.view(), lengths, o); });
    meta.converged = r.converged;
    meta.n_iter = r.n_iter;
    meta.lower_bound = r.lower_bound;
    model_json = io::hmm_model_to_json(r.model, meta);
  }
  end_progress(flags);
  return report_hmm_fit(r, o, n_mix, model_json, t.rows, n_sequences, output, trace, trace_text, flags);
}

int run_hmm_score(const std::string& model_path, const DataArgs& data, const std::string& lengths_path,
                  const DeviceArgs& where_args, const GlobalFlags& flags) {
  const HmmEvaluateOptions where = where_of(where_args, data);
  const bool gmm = io::is_gmm_hmm_file(model_path);
  HmmModel m;
  GmmHmmModel g;
  if (gmm)
    g = io::read_gmm_hmm_model(model_path);
  else
    m = io::read_hmm_model(model_path);
  const io::Table t = load_table(data, flags);
  const std::string data_name = io::display_name(data.path);
  const std::vector<std::size_t> lengths = load_lengths(lengths_path, t.rows);
  const double total = with_data_name(data_name, [&] {
    return gmm ? score_gmm_hmm(g, t.view(), lengths, where) : score_hmm(m, t.view(), lengths, where);
  });
  const double p = gmm ? n_parameters(g) : n_parameters(m);
  const double bic = -2 * total + p * std::log(static_cast<double>(t.rows));
  const double aic = -2 * total + 2 * p;
  if (flags.json) {
    std::printf("%s\n", nlohmann::json({{"kind", gmm ? "gmm_hmm" : "gaussian_hmm"},
                                        {"n_samples", t.rows},
                                        {"log_likelihood", total},
                                        {"mean_log_likelihood", total / static_cast<double>(t.rows)},
                                        {"bic", bic},
                                        {"aic", aic}})
                            .dump()
                            .c_str());
  } else {
    std::printf("frames               %zu\nlog-likelihood       %.10g\nmean log-likelihood  %.10g\nBIC                  "
                "%.10g\nAIC                  %.10g\n",
                t.rows, total, total / static_cast<double>(t.rows), bic, aic);
  }
  return kOk;
}

int run_hmm_sample(const std::string& model_path, std::size_t n, std::uint64_t seed, const std::string& output,
                   const std::string& labels, const GlobalFlags& flags) {
  HmmSamples s;
  int D = 0;
  if (io::is_gmm_hmm_file(model_path)) {
    const GmmHmmModel g = io::read_gmm_hmm_model(model_path);
    s = sample_gmm_hmm(g, n, seed);
    D = g.n_features;
  } else {
    const HmmModel m = io::read_hmm_model(model_path);
    s = sample_hmm(m, n, seed);
    D = m.n_features();
  }
  io::OutputBatch outputs;
  outputs.add(output, matrix_file_bytes(output, s.X.data(), n, static_cast<std::size_t>(D)));
  if (!labels.empty()) outputs.add(labels, labels_file_bytes(labels, s.states));
  outputs.commit();
  if (flags.json) {
    std::printf("%s\n", nlohmann::json({{"n_samples", n}, {"n_features", D}, {"output", output}})
                            .dump()
                            .c_str());
  } else {
    std::printf("%zu frames of one sequence written to %s\n", n, output.c_str());
    if (!labels.empty()) std::printf("states written to %s\n", labels.c_str());
  }
  return kOk;
}

}  // namespace cuem::cli
