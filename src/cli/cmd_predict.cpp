// cuem predict MODEL DATA [-o labels.npy] [--proba proba.npy] [--missing error|marginalize]
#include <algorithm>
#include <cstdio>

#include "cli/common.hpp"
#include "cli/outputs.hpp"
#include "cuem/bayesian.hpp"
#include "io/atomic_file.hpp"
#include "io/model_json.hpp"
#include "io/npy.hpp"

namespace cuem::cli {
namespace {

struct Args {
  std::string model;
  DataArgs data;
  std::string output;
  std::string proba;
  DeviceArgs where;
};

int run(const Args& a, const GlobalFlags& flags) {
  check_outputs({a.output, a.proba}, {a.model, a.data.path});
  check_data_output_name(a.output, "-o");
  check_data_output_name(a.proba, "--proba");
  const EvaluateOptions where = to_evaluate_options(a.where, missing_policy(a.data));
  const ModelAndData md = load_model_and_data(a.model, a.data, flags);
  const io::AnyModel& m = md.model;
  const bool bayesian = m.kind == io::ModelKind::bayesian_gaussian_mixture;
  if (bayesian && where.missing != MissingPolicy::error)
    throw UsageError("--missing marginalize applies to Gaussian mixtures (--model gmm) only; a Bayesian mixture "
                     "predicts complete rows");
  const io::Table& t = md.data;
  const std::string data_name = io::display_name(a.data.path);
  const DataView X = t.view();
  std::vector<int> labels;
  std::vector<double> proba;
  // A Bayesian model's evaluations are its own (the variational log joint), not a plug-in mixture's.
  if (a.proba.empty()) {
    labels = with_data_name(data_name, [&] {
      return bayesian ? predict(m.bayesian, X, where) : predict(m.gaussian, X, where);
    });
  } else {  // one pass: the labels are the posteriors' argmax
    proba = with_data_name(data_name, [&] {
      return bayesian ? predict_proba(m.bayesian, X, where) : predict_proba(m.gaussian, X, where);
    });
    const std::size_t K = static_cast<std::size_t>(m.n_components());
    labels.resize(t.rows);
    for (std::size_t i = 0; i < t.rows; ++i) {
      const double* r = proba.data() + i * K;
      labels[i] = static_cast<int>(std::max_element(r, r + K) - r);
    }
  }
  io::OutputBatch outputs;
  if (!a.output.empty()) outputs.add(a.output, labels_file_bytes(a.output, labels));
  if (!a.proba.empty())
    outputs.add(a.proba, matrix_file_bytes(a.proba, proba.data(), t.rows, static_cast<std::size_t>(m.n_components())));
  outputs.commit();
  if (a.output.empty() && a.proba.empty()) {
    if (flags.json) {
      std::printf("{\"labels\": [");
      for (std::size_t i = 0; i < labels.size(); ++i) std::printf("%s%d", i ? ", " : "", labels[i]);
      std::printf("]}\n");
    } else {
      for (int l : labels) std::printf("%d\n", l);
    }
    return kOk;
  }
  std::vector<std::size_t> counts(static_cast<std::size_t>(m.n_components()), 0);
  for (int l : labels) ++counts[static_cast<std::size_t>(l)];
  if (flags.json) {
    std::printf("{\"n_samples\": %zu, \"counts\": [", t.rows);
    for (std::size_t k = 0; k < counts.size(); ++k) std::printf("%s%zu", k ? ", " : "", counts[k]);
    std::printf("]}\n");
  } else {
    std::printf("%zu points labelled;", t.rows);
    for (std::size_t k = 0; k < counts.size(); ++k) std::printf(" component %zu: %zu", k, counts[k]);
    std::printf("\n");
  }
  return kOk;
}

}  // namespace

void add_predict_command(CLI::App& app, const GlobalFlags& flags, int& exit_code) {
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("predict", "label DATA with the most probable component of MODEL");
  cmd->add_option("MODEL", args->model, "model JSON written by cuem fit")->required();
  cmd->add_option("DATA", args->data.path, "data: .npy, .csv/.tsv/.txt, or raw binary with --dims")->required();
  add_data_options(cmd, args->data);
  add_missing_option(cmd, args->data);
  add_device_options(cmd, args->where);
  cmd->add_option("-o,--output", args->output,
                  "write the labels as .npy (int64) or text (.csv/.tsv/.txt); without -o and --proba, print them");
  cmd->add_option("--proba", args->proba,
                  "write the posterior probabilities (N x K float64) as .npy or text (.csv/.tsv/.txt)");
  cmd->callback([args, &flags, &exit_code] { exit_code = run(*args, flags); });
}

}  // namespace cuem::cli
