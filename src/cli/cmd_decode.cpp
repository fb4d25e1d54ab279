// cuem decode MODEL DATA [--lengths FILE] [--algorithm viterbi|map] [--missing error|marginalize] [-o states.npy]
// [--proba FILE]:
// the hidden states of DATA under an HMM written by cuem fit --model hmm.
#include <nlohmann/json.hpp>

#include <cstdio>

#include "cli/cmd_hmm.hpp"
#include "cli/outputs.hpp"
#include "cuem/gmm_hmm.hpp"
#include "cuem/hmm.hpp"
#include "io/atomic_file.hpp"
#include "io/hmm_json.hpp"

namespace cuem::cli {
namespace {

struct Args {
  std::string model;
  DataArgs data;
  std::string lengths;
  std::string algorithm = "viterbi";
  std::string output;
  std::string proba;
  DeviceArgs where;
};

int run(const Args& a, const GlobalFlags& flags) {
  check_outputs({a.output, a.proba}, {a.model, a.data.path, a.lengths});
  check_data_output_name(a.output, "-o");
  check_data_output_name(a.proba, "--proba");
  const HmmEvaluateOptions where = to_evaluate_options(a.where, missing_policy(a.data));
  const bool gmm = io::is_gmm_hmm_file(a.model);
  HmmModel m;
  GmmHmmModel g;
  if (gmm)
    g = io::read_gmm_hmm_model(a.model);
  else
    m = io::read_hmm_model(a.model);
  const std::size_t K = static_cast<std::size_t>(gmm ? g.n_components : m.n_components());
  const io::Table t = load_table(a.data, flags);
  const std::string data_name = io::display_name(a.data.path);
  const std::vector<std::size_t> lengths = load_lengths(a.lengths, t.rows);
  const HmmDecoding d = with_data_name(data_name, [&] {
    return gmm ? decode_gmm_hmm(g, t.view(), lengths, a.algorithm, where)
               : decode_hmm(m, t.view(), lengths, a.algorithm, where);
  });
  std::vector<double> proba;
  if (!a.proba.empty())
    proba = with_data_name(data_name, [&] {
      return (gmm ? posteriors_gmm_hmm(g, t.view(), lengths, where) : posteriors_hmm(m, t.view(), lengths, where))
          .posteriors;
    });
  io::OutputBatch outputs;
  if (!a.output.empty()) outputs.add(a.output, labels_file_bytes(a.output, d.states));
  if (!a.proba.empty())
    outputs.add(a.proba, matrix_file_bytes(a.proba, proba.data(), t.rows, K));
  outputs.commit();
  if (a.output.empty() && a.proba.empty()) {
    if (flags.json) {
      std::printf("%s\n", nlohmann::json({{"log_probability", d.log_probability}, {"states", d.states}}).dump().c_str());
    } else {
      for (int s : d.states) std::printf("%d\n", s);
    }
    return kOk;
  }
  if (flags.json) {
    std::printf("%s\n", nlohmann::json({{"n_samples", t.rows}, {"log_probability", d.log_probability}}).dump().c_str());
  } else {
    std::printf("%zu frames decoded (%s), log probability %.10g\n", t.rows, a.algorithm.c_str(), d.log_probability);
  }
  return kOk;
}

}  // namespace

void add_decode_command(CLI::App& app, const GlobalFlags& flags, int& exit_code) {
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("decode", "the hidden states of DATA under an HMM (cuem fit --model hmm)");
  cmd->add_option("MODEL", args->model, "HMM model JSON written by cuem fit --model hmm")->required();
  cmd->add_option("DATA", args->data.path, "data: .npy, .csv/.tsv/.txt, or raw binary with --dims")->required();
  add_data_options(cmd, args->data);
  add_missing_option(cmd, args->data);
  cmd->add_option("--lengths", args->lengths,
                  "text file of sequence lengths (one positive integer per sequence, in row order; default: one "
                  "sequence)");
  cmd->add_option("--algorithm", args->algorithm,
                  "viterbi (the most probable state sequence) or map (the most probable state of each frame)")
      ->check(CLI::IsMember({"viterbi", "map"}))
      ->capture_default_str();
  add_device_options(cmd, args->where);
  cmd->add_option("-o,--output", args->output,
                  "write the states as .npy (int64) or text (.csv/.tsv/.txt); without -o and --proba, print them");
  cmd->add_option("--proba", args->proba, "write the state posteriors (frames x states) as .npy or text");
  cmd->callback([args, &flags, &exit_code] { exit_code = run(*args, flags); });
}

}  // namespace cuem::cli
