// cuem fit-online FILE... -k K [--batch-size N] [--epochs E] [--learning-decay KAPPA]
//          [--learning-offset T0] [-o model.json [--save-every N]] [...]:
// stepwise (online) EM over a stream of batches (include/cuem/online.hpp): every file in
// turn (each any format cuem reads, '-' for standard input once; --weights: a weights
// file beside each, one weight per row as fit's), cut into batches of
// --batch-size rows (0: the whole file is one batch), one step per batch; the model is
// written at the end, or every N batches with --save-every (each write replaces the last,
// atomically). A bad batch (other columns, no rows, non-finite values) or a file that
// changes size while read stops the stream with its error before the model is written
// again. A mapped .npy or raw file's pages are released behind the batches, so that a
// file larger than memory streams through in about a batch of resident memory.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "cli/common.hpp"
#include "cli/outputs.hpp"
#include "cuem/online.hpp"
#include "io/atomic_file.hpp"
#include "io/model_json.hpp"

namespace cuem::cli {
namespace {

struct Args {
  std::vector<std::string> files;
  DataArgs data;
  FitArgs fit;
  std::size_t batch_size = 0;
  int epochs = 1;
  double learning_decay = OnlineOptions{}.learning_decay;
  double learning_offset = OnlineOptions{}.learning_offset;
  std::string output;
  std::size_t save_every = 0;
  std::vector<std::string> weights;  ///< --weights: one file per data file, in order
};

int run(const Args& a, const GlobalFlags& flags) {
  check_model_output_name(a.output, "-o");
  std::vector<std::string> inputs = a.files;
  inputs.insert(inputs.end(), a.weights.begin(), a.weights.end());
  check_outputs({a.output}, inputs);
  if (!a.weights.empty() && a.weights.size() != a.files.size())
    throw UsageError("--weights names " + std::to_string(a.weights.size()) + " file(s) for " +
                     std::to_string(a.files.size()) + " data file(s); give one weights file per data file, in order");
  if (std::any_of(a.weights.begin(), a.weights.end(), [](const std::string& f) { return io::is_stdin_name(f); }))
    throw UsageError("--weights cannot read standard input ('-') in fit-online; name the files");
  if (a.save_every > 0 && a.output.empty()) throw UsageError("--save-every needs -o (where to write the model)");
  const auto from_stdin =
      std::count_if(a.files.begin(), a.files.end(), [](const std::string& f) { return io::is_stdin_name(f); });
  if (from_stdin > 1 || (from_stdin == 1 && a.epochs > 1))
    throw UsageError("standard input ('-') can be read once: use it as the only pass (--epochs 1), at most once");
  FitOptions o = to_fit_options(a.fit);
  o.missing = missing_policy(a.data);
  OnlineGaussianMixture online(o, {a.learning_decay, a.learning_offset});
  std::size_t batches = 0, rows = 0;
  double last_ll = 0.0;
  const auto write_model = [&](const std::string& source) {
    io::FitMetadata meta{true, false, static_cast<int>(online.n_steps()), last_ll, online.n_points_seen(), source, {}};
    io::OutputBatch outputs;
    outputs.add(a.output, io::model_to_json(online.model(), meta));
    outputs.commit();
  };
  std::string source;
  for (int epoch = 0; epoch < a.epochs; ++epoch) {
    for (std::size_t f = 0; f < a.files.size(); ++f) {
      const std::string& path = a.files[f];
      DataArgs d = a.data;
      d.path = path;
      const io::Table t = load_table(d, flags);
      const std::string name = io::display_name(path);
      if (source.empty()) source = name;
      const DataView X = t.view();
      const std::vector<double> weights = a.weights.empty() ? std::vector<double>{} : load_weights(a.weights[f], t, flags);
      // A mapped file's pages are released behind the batches, and its size checked.
      const std::function<void(std::size_t)> release = io::row_releaser(t, path);
      const std::size_t step = a.batch_size == 0 ? std::max<std::size_t>(X.n_rows, 1) : a.batch_size;
      for (std::size_t begin = 0; begin < X.n_rows || (begin == 0 && X.n_rows == 0); begin += step) {
        DataView b = X;
        b.n_rows = std::min(step, X.n_rows - begin);
        if (b.data) b.data += begin * X.row_stride;
        else if (b.data_f32) b.data_f32 += begin * X.row_stride;
        const WeightView w = weights.empty() ? WeightView{} : WeightView(weights.data() + begin, b.n_rows);
        last_ll = with_data_name(name + " (rows " + std::to_string(begin) + "-" + std::to_string(begin + b.n_rows) + ")",
                                 [&] { return online.partial_fit(b, w); });
        if (release) release(begin + b.n_rows);
        ++batches;
        rows += b.n_rows;
        if (a.save_every > 0 && batches % a.save_every == 0) write_model(source);
        if (X.n_rows == 0) break;
      }
    }
  }
  for (const std::string& n : online.notices()) note(flags, "note: " + n);
  if (!a.output.empty()) write_model(source);
  const std::string model_json = io::model_to_json(online.model(), {true, false, static_cast<int>(online.n_steps()),
                                                                    last_ll, online.n_points_seen(), source, {}});
  if (flags.json) {
    nlohmann::json j = {{"algorithm", "stepwise EM"},  {"learning_decay", a.learning_decay},
                        {"learning_offset", a.learning_offset}, {"n_batches", batches},
                        {"n_points_seen", rows},        {"last_batch_log_likelihood", last_ll},
                        {"device", online.device()}};
    print_fit_json(j, a.output, model_json);
    return kOk;
  }
  std::printf("stepwise EM (learning_decay %g, learning_offset %g): %zu batches, %zu points; the last batch's mean "
              "log-likelihood before its step %.10g\n",
              a.learning_decay, a.learning_offset, batches, rows, last_ll);
  if (a.output.empty()) {
    std::printf("\n%s", model_text(online.model(), {}).c_str());
  } else {
    std::printf("model written to %s\n", a.output.c_str());
  }
  return kOk;
}

}  // namespace

void add_fit_online_command(CLI::App& app, const GlobalFlags& flags, int& exit_code) {
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("fit-online", "fit a Gaussian mixture to a stream of batches with stepwise EM");
  cmd->add_option("FILES", args->files, "batches: files in any format cuem reads, in order ('-': standard input)")
      ->required();
  add_fit_options(cmd, args->fit, true);
  // A stream takes one step per batch and keeps no restarts: the batch fit's stopping and
  // restart options would be silently ignored, so they are not options here (CLI11 then
  // names them as unexpected arguments, exit 2).
  for (const char* name : {"--tol", "--max-iter", "--n-init", "--acceleration"})
    if (CLI::Option* opt = cmd->get_option_no_throw(name)) cmd->remove_option(opt);
  add_data_options(cmd, args->data);
  add_missing_option(cmd, args->data);
  cmd->add_option("--weights", args->weights,
                  "sample weights: one file per data file, in the same order, one weight per row (as fit --weights)");
  cmd->add_option("--batch-size", args->batch_size, "rows per step (0: each file is one batch)")
      ->capture_default_str();
  cmd->add_option("--epochs", args->epochs, "passes over the files")->check(CLI::Range(1, 1 << 20))->capture_default_str();
  cmd->add_option("--learning-decay", args->learning_decay,
                  "kappa in (0.5, 1]: step t mixes in its batch with weight (t + t0)^-kappa")
      ->capture_default_str();
  cmd->add_option("--learning-offset", args->learning_offset, "t0 >= 0: larger values damp the early steps")
      ->capture_default_str();
  cmd->add_option("-o,--output", args->output, "write the model as JSON (default: print it)");
  cmd->add_option("--save-every", args->save_every, "also write the model every N batches (needs -o)");
  cmd->callback([args, &flags, &exit_code] { exit_code = run(*args, flags); });
}

}  // namespace cuem::cli
