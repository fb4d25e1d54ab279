// cuem score MODEL DATA: mean log-likelihood, BIC and AIC of DATA under MODEL.
#include <cstdio>

#include "cli/common.hpp"
#include "io/model_json.hpp"

namespace cuem::cli {
namespace {

struct Args {
  std::string model;
  DataArgs data;
  DeviceArgs where;
};

int run(const Args& a, const GlobalFlags& flags) {
  const EvaluateOptions where = to_evaluate_options(a.where);  // option mistakes before the data are read
  const ModelAndData md = load_model_and_data(a.model, a.data, flags);
  const Model& m = md.model;
  const io::Table& t = md.data;
  const std::string data_name = io::display_name(a.data.path);
  const DataView X = t.view();
  const double s = with_data_name(data_name, [&] { return score(m, X, where); });
  const double b = bic(m, X);
  const double c = aic(m, X);
  if (flags.json) {
    std::printf("{\"n_samples\": %zu, \"mean_log_likelihood\": %.17g, \"bic\": %.17g, \"aic\": %.17g}\n", t.rows, s,
                b, c);
  } else {
    std::printf("points               %zu\nmean log-likelihood  %.10g\nBIC                  %.10g\nAIC                  %.10g\n",
                t.rows, s, b, c);
  }
  return kOk;
}

}  // namespace

void add_score_command(CLI::App& app, const GlobalFlags& flags, int& exit_code) {
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("score", "mean log-likelihood, BIC and AIC of DATA under MODEL");
  cmd->add_option("MODEL", args->model, "model JSON written by cuem fit")->required();
  cmd->add_option("DATA", args->data.path, "data: .npy, .csv/.tsv/.txt, or raw binary with --dims")->required();
  add_data_options(cmd, args->data);
  add_device_options(cmd, args->where);
  cmd->callback([args, &flags, &exit_code] { exit_code = run(*args, flags); });
}

}  // namespace cuem::cli
