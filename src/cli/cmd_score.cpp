// cuem score MODEL DATA [--weights w.npy] [--missing error|marginalize]: mean log-likelihood, BIC and AIC of
// DATA under MODEL (of each row's observed entries with --missing marginalize).
#include <cstdio>

#include "cli/cmd_hmm.hpp"
#include "cli/common.hpp"
#include "cuem/bayesian.hpp"
#include "io/hmm_json.hpp"
#include "io/model_json.hpp"

namespace cuem::cli {
namespace {

struct Args {
  std::string model;
  DataArgs data;
  std::string weights;
  DeviceArgs where;
  std::string lengths;  ///< --lengths, for an HMM model
};

int run(const Args& a, const GlobalFlags& flags) {
  // option mistakes before the data are read
  const EvaluateOptions where = to_evaluate_options(a.where, missing_policy(a.data));
  if (!io::is_stdin_name(a.model) && io::is_hmm_file(a.model)) {
    if (!a.weights.empty()) throw UsageError("--weights applies to mixtures only; an HMM scores whole sequences");
    return run_hmm_score(a.model, a.data, a.lengths, a.where, flags);
  }
  if (!a.lengths.empty()) throw UsageError("--lengths applies to HMM models (cuem fit --model hmm) only");
  if (io::is_stdin_name(a.weights) && (io::is_stdin_name(a.model) || io::is_stdin_name(a.data.path)))
    throw UsageError("--weights cannot be '-' (standard input) when MODEL or DATA is");
  const ModelAndData md = load_model_and_data(a.model, a.data, flags);
  const io::Table& t = md.data;
  const std::string data_name = io::display_name(a.data.path);
  const std::vector<double> weights = load_weights(a.weights, t, flags);
  const WeightView w = weight_view(weights);
  const DataView X = t.view();
  if (md.model.kind == io::ModelKind::bayesian_gaussian_mixture) {
    if (where.missing != MissingPolicy::error)
      throw UsageError("--missing marginalize applies to Gaussian mixtures (--model gmm) only; a Bayesian mixture "
                       "scores complete rows");
    // scikit-learn's BayesianGaussianMixture.score: the (weighted) mean of the variational
    // log joint's logsumexp. BIC and AIC count a point estimate's parameters: not defined here.
    const double s = with_data_name(data_name, [&] { return score(md.model.bayesian, X, where, w); });
    double total = 0.0;
    for (double v : weights) total += v;
    if (flags.json) {
      std::printf("{\"n_samples\": %zu, \"kind\": \"bayesian_gaussian_mixture\", \"mean_log_likelihood\": %.17g", t.rows,
                  s);
      if (!w.empty()) std::printf(", \"sum_weights\": %.17g", total);
      std::printf("}\n");
    } else {
      std::printf("points               %zu\n", t.rows);
      if (!w.empty()) std::printf("sum of weights       %.10g\n", total);
      std::printf("mean log-likelihood  %.10g (Bayesian mixture: variational; BIC and AIC are not defined)\n", s);
    }
    return kOk;
  }
  const Model& m = md.model.gaussian;
  // The three from one pass on the chosen device.
  const Criteria c = with_data_name(data_name, [&] { return criteria(m, X, where, w); });
  if (flags.json) {
    std::printf("{\"n_samples\": %zu, \"mean_log_likelihood\": %.17g, \"bic\": %.17g, \"aic\": %.17g", t.rows,
                c.score, c.bic, c.aic);
    if (!w.empty()) std::printf(", \"sum_weights\": %.17g", c.total_weight);
    std::printf("}\n");
  } else {
    std::printf("points               %zu\n", t.rows);
    if (!w.empty()) std::printf("sum of weights       %.10g\n", c.total_weight);
    std::printf("mean log-likelihood  %.10g\nBIC                  %.10g\nAIC                  %.10g\n", c.score, c.bic,
                c.aic);
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
  add_weights_option(cmd, args->weights);
  add_missing_option(cmd, args->data);
  add_device_options(cmd, args->where);
  cmd->add_option("--lengths", args->lengths, "for an HMM model: text file of sequence lengths (default: one sequence)");
  cmd->callback([args, &flags, &exit_code] { exit_code = run(*args, flags); });
}

}  // namespace cuem::cli
