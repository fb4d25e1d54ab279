// cuem sample MODEL -n N -o samples.npy [--labels labels.npy] [--seed S]
#include <nlohmann/json.hpp>

#include <cstdio>

#include "cli/cmd_hmm.hpp"
#include "cli/common.hpp"
#include "cli/outputs.hpp"
#include "io/atomic_file.hpp"
#include "io/hmm_json.hpp"
#include "io/model_json.hpp"
#include "io/npy.hpp"

namespace cuem::cli {
namespace {

struct Args {
  std::string model;
  std::size_t n = 0;
  std::string output;
  std::string labels;
  std::uint64_t seed = 0;
};

int run(const Args& a, const GlobalFlags& flags) {
  check_outputs({a.output, a.labels}, {a.model});
  check_data_output_name(a.output, "-o");
  check_data_output_name(a.labels, "--labels");
  if (!io::is_stdin_name(a.model) && io::is_hmm_file(a.model))
    return run_hmm_sample(a.model, a.n, a.seed, a.output, a.labels, flags);
  const io::AnyModel any = io::read_any_model(a.model);
  const Model& m = gaussian_model_for(any, "sample");
  const Samples s = sample(m, a.n, a.seed);
  io::OutputBatch outputs;
  outputs.add(a.output, matrix_file_bytes(a.output, s.X.data(), a.n, static_cast<std::size_t>(m.n_features)));
  if (!a.labels.empty()) outputs.add(a.labels, labels_file_bytes(a.labels, s.labels));
  outputs.commit();
  if (flags.json)
    std::printf("%s\n",
                nlohmann::json({{"n_samples", a.n}, {"n_features", m.n_features}, {"output", a.output}}).dump().c_str());
  else {  // what was written goes to stdout, as fit's "model written to" does
    std::printf("%zu points written to %s\n", static_cast<std::size_t>(a.n), a.output.c_str());
    if (!a.labels.empty()) std::printf("labels written to %s\n", a.labels.c_str());
  }
  return kOk;
}

}  // namespace

void add_sample_command(CLI::App& app, const GlobalFlags& flags, int& exit_code) {
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("sample", "draw points from MODEL");
  cmd->add_option("MODEL", args->model, "model JSON written by cuem fit")->required();
  cmd->add_option("-n", args->n, "number of points")->required()->check(CLI::Range(std::size_t{1}, std::size_t{1} << 40));
  cmd->add_option("-o,--output", args->output, "write the points as .npy (n x D float64) or text (.csv/.tsv/.txt)")
      ->required();
  cmd->add_option("--labels", args->labels, "write each point's component as .npy (int64) or text (.csv/.tsv/.txt)");
  cmd->add_option("--seed", args->seed, "random seed")->check(unsigned_validator())->capture_default_str();
  cmd->callback([args, &flags, &exit_code] { exit_code = run(*args, flags); });
}

}  // namespace cuem::cli
