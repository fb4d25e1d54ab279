// cuem select DATA -k 1:16 [--covariance full,diag,...] [--criterion bic|aic] [--weights w.npy]
//             [--missing error|marginalize] [-o best.json]
// Fits every candidate and keeps the one with the lowest information criterion.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <limits>

#include "cli/common.hpp"
#include "cli/outputs.hpp"
#include "cuem/errors.hpp"
#include "io/model_json.hpp"

namespace cuem::cli {
namespace {

struct Args {
  DataArgs data;
  std::string weights;
  FitArgs fit;
  std::string k_range = "1:8";
  std::vector<std::string> covariances{"full"};
  std::string criterion = "bic";
  std::string output;
};

struct Candidate {
  int k = 0;
  std::string covariance;
  bool ok = false;
  bool too_many = false;  // more components than points (of positive weight): not fitted
  std::string error;
  FitResult result;
  double bic = 0, aic = 0, n_params = 0;
  double total_weight = 0;  // sum w (N without weights)
};

// "3", "1:16" or "2,4,8".
std::vector<int> parse_k_list(const std::string& s) {
  std::vector<int> ks;
  auto number = [&](const std::string& t) {
    if (t.empty() || t.size() > 7 || t.find_first_not_of("0123456789") != std::string::npos)
      throw UsageError("-k takes N, A:B or a comma-separated list of positive integers, got '" + s + "'");
    const int v = std::stoi(t);
    if (v < 1) throw UsageError("-k values must be at least 1, got '" + s + "'");
    return v;
  };
  const auto colon = s.find(':');
  if (colon != std::string::npos) {
    const int lo = number(s.substr(0, colon));
    const int hi = number(s.substr(colon + 1));
    if (hi < lo) throw UsageError("-k range " + s + " is empty");
    if (hi - lo > 1000) throw UsageError("-k range " + s + " has more than 1000 candidates");
    for (int k = lo; k <= hi; ++k) ks.push_back(k);
    return ks;
  }
  std::size_t start = 0;
  while (start <= s.size()) {
    const auto comma = s.find(',', start);
    ks.push_back(number(s.substr(start, comma == std::string::npos ? std::string::npos : comma - start)));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return ks;
}

int run(const Args& a, const GlobalFlags& flags) {
  check_model_output_name(a.output, "-o");
  check_outputs({a.output}, {a.data.path, a.weights});
  if (io::is_stdin_name(a.data.path) && io::is_stdin_name(a.weights))
    throw UsageError("DATA and --weights cannot both be '-' (standard input)");
  const std::vector<int> ks = parse_k_list(a.k_range);
  {  // option mistakes before the data are read
    FitArgs first = a.fit;
    first.n_components = ks.front();
    first.covariance = a.covariances.front();
    (void)to_fit_options(first);
  }
  const io::Table t = load_table(a.data, flags);
  const std::string data_name = io::display_name(a.data.path);
  const DataView X = t.view();
  note(flags, data_name + ": " + std::to_string(t.rows) + " points x " + std::to_string(t.cols) + " features");
  const std::vector<double> weights = load_weights(a.weights, t, flags);
  const WeightView w = weight_view(weights);
  // A weight of 0 drops its point, so only the others can hold a component.
  const std::size_t n_points = weights.empty() ? t.rows
                                               : static_cast<std::size_t>(std::count_if(
                                                     weights.begin(), weights.end(), [](double v) { return v > 0.0; }));
  const std::string points = weights.empty() ? "points" : "points of positive weight";

  // Placed once for every candidate's fit and criteria (one conversion and upload on a
  // device); the candidates differ only in K and the covariance type.
  const FitOptions device_options = to_fit_options(a.fit);
  Resources resources({device_options.device, device_options.precision, device_options.n_threads,
                       device_options.device_memory_limit, device_options.cuda_tuning});
  const MissingPolicy missing = missing_policy(a.data);
  PlacedData placed = with_data_name(data_name, [&] { return PlacedData(resources, X, w, missing); });

  std::vector<Candidate> cands;
  int best = -1;
  std::set<std::string> said;  // a notice (the device's, say) can come with every candidate: once each
  for (const std::string& cov : a.covariances)
    for (int k : ks) {
      Candidate c;
      c.k = k;
      c.covariance = cov;
      FitArgs fa = a.fit;
      fa.n_components = k;
      fa.covariance = cov;
      FitOptions o = to_fit_options(fa);
      o.missing = missing;
      if (static_cast<std::size_t>(k) > n_points) {
        c.too_many = true;
        c.error = "more components than points";
        cands.push_back(std::move(c));
        continue;
      }
      o.on_iteration = progress_reporter(flags, o.max_iter, o.n_init, "k=" + std::to_string(k) + " " + cov);
      try {
        c.result = with_data_name(data_name, [&] { return fit(placed, o); });
        c.ok = true;
        for (const std::string& n : c.result.notices)
          if (said.insert(n).second) note(flags, "note: " + n);
        // Both from one pass on the fit's device (the CPU's is float64, as bic()).
        const Criteria crit = with_data_name(data_name, [&] { return criteria(placed, c.result.model); });
        c.bic = crit.bic;
        c.aic = crit.aic;
        c.total_weight = crit.total_weight;
        c.n_params = n_parameters(c.result.model);
      } catch (const NumericalError& e) {
        c.error = std::string("numerical failure: ") + e.what();  // this candidate only
      }
      end_progress(flags);
      cands.push_back(std::move(c));
      const Candidate& last = cands.back();
      const auto crit = [&](const Candidate& x) { return a.criterion == "aic" ? x.aic : x.bic; };
      if (last.ok && (best < 0 || crit(last) < crit(cands[static_cast<std::size_t>(best)])))
        best = static_cast<int>(cands.size()) - 1;
    }
  if (best < 0) {
    if (std::all_of(cands.begin(), cands.end(), [](const Candidate& c) { return c.too_many; }))
      throw DataError(data_name + ": " + std::to_string(n_points) + " " + points +
                      " are fewer than every candidate's components; give -k at most " + std::to_string(n_points));
    throw NumericalError("no candidate could be fitted; increase --reg-covar or use fewer components");
  }
  const Candidate& win = cands[static_cast<std::size_t>(best)];
  if (!a.output.empty())
    io::write_model(a.output, win.result.model,
                    {true, win.result.converged, win.result.n_iter, win.result.lower_bound, t.rows, data_name,
                     t.named_columns ? io::usable_feature_names(t.column_names) : std::vector<std::string>{}});

  if (flags.json) {
    nlohmann::json rows = nlohmann::json::array();
    for (const Candidate& c : cands) {
      nlohmann::json r = {{"k", c.k}, {"covariance", c.covariance}, {"ok", c.ok}};
      if (c.ok) {
        r["n_parameters"] = static_cast<std::int64_t>(c.n_params);  // a count
        r["lower_bound"] = c.result.lower_bound;
        r["bic"] = c.bic;
        r["aic"] = c.aic;
        r["converged"] = c.result.converged;
        r["n_iter"] = c.result.n_iter;
      } else {
        r["error"] = c.error;
      }
      rows.push_back(r);
    }
    nlohmann::json j = {{"criterion", a.criterion}, {"candidates", rows},
                        {"best", {{"k", win.k}, {"covariance", win.covariance}}}};
    if (!a.output.empty()) j["model_path"] = a.output;
    if (!w.empty()) j["sum_weights"] = win.total_weight;
    if (missing == MissingPolicy::marginalize) j["missing"] = missing_json(win.result.missing);
    std::printf("%s\n", j.dump(1).c_str());
    return kOk;
  }
  std::printf("%4s  %-9s  %8s  %16s  %16s  %16s  %s\n", "k", "cov", "params", "mean log-lik", "BIC", "AIC", "");
  const auto too_many = [&](std::size_t i) { return i < cands.size() && cands[i].too_many; };
  for (std::size_t i = 0; i < cands.size(); ++i) {
    const Candidate& c = cands[i];
    if (too_many(i)) {
      // One line for a run of them (-k 1:500 on 178 points is 322 candidates).
      std::size_t last = i;
      while (too_many(last + 1) && cands[last + 1].covariance == c.covariance) ++last;
      bool contiguous = true;
      std::string ks = std::to_string(c.k);
      for (std::size_t j = i + 1; j <= last; ++j) {
        contiguous = contiguous && cands[j].k == cands[j - 1].k + 1;
        if (last - i < 4) ks += "," + std::to_string(cands[j].k);
      }
      if (last - i >= 4) ks += (contiguous ? "-" : ",...,") + std::to_string(cands[last].k);
      std::printf("%4s  %-9s  skipped: more components than the %zu %s\n", ks.c_str(), c.covariance.c_str(), n_points,
                  points.c_str());
      i = last;
      continue;
    }
    if (!c.ok) {
      std::printf("%4d  %-9s  %s\n", c.k, c.covariance.c_str(), c.error.c_str());
      continue;
    }
    std::printf("%4d  %-9s  %8.0f  %16.8g  %16.8g  %16.8g  %s%s\n", c.k, c.covariance.c_str(), c.n_params,
                c.result.lower_bound, c.bic, c.aic, static_cast<int>(i) == best ? "<- best" : "",
                c.result.converged ? "" : " (not converged)");
  }
  std::printf("\nbest by %s: k=%d, %s covariance\n", a.criterion == "aic" ? "AIC" : "BIC", win.k, win.covariance.c_str());
  if (missing == MissingPolicy::marginalize) std::printf("%s\n", missing_text(win.result.missing).c_str());
  if (!a.output.empty()) std::printf("model written to %s\n", a.output.c_str());
  return kOk;
}

}  // namespace

void add_select_command(CLI::App& app, const GlobalFlags& flags, int& exit_code) {
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("select", "choose the number of components and covariance type by BIC or AIC");
  cmd->add_option("DATA", args->data.path, "data: .npy, .csv/.tsv/.txt, or raw binary with --dims")->required();
  cmd->add_option("-k,--components", args->k_range, "candidates: N, A:B or a list like 2,4,8")->capture_default_str();
  cmd->add_option("--covariance", args->covariances, "covariance types to try (comma separated)")
      ->delimiter(',')
      ->check(CLI::IsMember({"full", "tied", "diag", "spherical"}))
      ->capture_default_str();
  cmd->add_option("--criterion", args->criterion, "bic or aic")
      ->check(CLI::IsMember({"bic", "aic"}))
      ->capture_default_str();
  cmd->add_option("-o,--output", args->output, "write the best model as JSON");
  add_fit_options(cmd, args->fit, false);
  add_data_options(cmd, args->data);
  add_weights_option(cmd, args->weights);
  add_missing_option(cmd, args->data);
  cmd->callback([args, &flags, &exit_code] { exit_code = run(*args, flags); });
}

}  // namespace cuem::cli
