// cuem impute MODEL DATA -o filled.npy [--variance var.npy]: DATA with its missing entries
// filled from MODEL (each missing entry's conditional expectation given its row's observed
// entries), and optionally their conditional variances (0 where observed).
#include <nlohmann/json.hpp>

#include <cstdio>

#include "cli/common.hpp"
#include "cli/outputs.hpp"
#include "cuem/missing.hpp"
#include "io/atomic_file.hpp"
#include "io/model_json.hpp"

namespace cuem::cli {
namespace {

struct Args {
  std::string model;
  DataArgs data;
  std::string output;
  std::string variance;
};

int run(Args a, const GlobalFlags& flags) {
  check_outputs({a.output, a.variance}, {a.model, a.data.path});
  check_data_output_name(a.output, "-o");
  check_data_output_name(a.variance, "--variance");
  a.data.missing = "marginalize";  // what impute is for: empty fields, NA and NaN are missing
  const ModelAndData md = load_model_and_data(a.model, a.data, flags);
  const Model& m = gaussian_model_for(md.model, "impute");
  const io::Table& t = md.data;
  const std::string data_name = io::display_name(a.data.path);
  const DataView X = t.view();
  if (X.n_cols != static_cast<std::size_t>(m.n_features))
    throw DataError(data_name + ": the data has " + std::to_string(X.n_cols) +
                    " features but the model was fitted to " + std::to_string(m.n_features));
  const MissingSummary s = with_data_name(data_name, [&] { return describe_missing(X); });
  const Imputation r = with_data_name(data_name, [&] { return impute(m, X, !a.variance.empty()); });
  // Text outputs carry the data's column names where it had a header line.
  const std::vector<std::string> header = t.named_columns ? t.column_names : std::vector<std::string>{};
  io::OutputBatch outputs;
  outputs.add(a.output, matrix_file_bytes(a.output, r.X.data(), t.rows, t.cols, header));
  if (!a.variance.empty())
    outputs.add(a.variance, matrix_file_bytes(a.variance, r.variance.data(), t.rows, t.cols, header));
  outputs.commit();
  if (s.empty_rows > 0)
    note(flags, "note: " + data_name + ": " + std::to_string(s.empty_rows) +
                    " rows have every entry missing and were given the mixture's mean (" + empty_rows_text(s) + ")");
  if (flags.json) {
    nlohmann::json j = {{"n_samples", t.rows}, {"n_features", t.cols}, {"missing", missing_json(s)},
                        {"output", a.output}};
    if (!a.variance.empty()) j["variance"] = a.variance;
    std::printf("%s\n", j.dump(1).c_str());
    return kOk;
  }
  std::printf("%zu points x %zu features; %s\n", t.rows, t.cols, missing_text(s).c_str());
  std::printf("filled data written to %s\n", a.output.c_str());
  if (!a.variance.empty()) std::printf("variances written to %s\n", a.variance.c_str());
  return kOk;
}

}  // namespace

void add_impute_command(CLI::App& app, const GlobalFlags& flags, int& exit_code) {
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "impute", "fill the missing entries of DATA (NaN; in text also empty fields, NA, N/A) from MODEL");
  cmd->add_option("MODEL", args->model, "model JSON written by cuem fit")->required();
  cmd->add_option("DATA", args->data.path, "data: .npy, .csv/.tsv/.txt, or raw binary with --dims")->required();
  add_data_options(cmd, args->data);
  cmd->add_option("-o,--output", args->output,
                  "write DATA with every missing entry replaced by its conditional expectation given the row's "
                  "observed entries, as .npy (float64) or text (.csv/.tsv/.txt)")
      ->required();
  cmd->add_option("--variance", args->variance,
                  "also write each entry's conditional variance (0 where observed), in the same formats");
  cmd->callback([args, &flags, &exit_code] { exit_code = run(*args, flags); });
}

}  // namespace cuem::cli
