// CPU backend throughput: one EM iteration (E-step + statistics + M-step), the E-step
// alone, score_samples and predict_proba on the standard configurations A-E (generated,
// seeded; bench_common.hpp). Counters: points/s, and bytes/s and FLOP/s by the
// performance model (perf_model.hpp; float64 data, 8 bytes per element).
// Missing data (issue 15): one iteration of cuem::fit on B's data with 10% of the entries
// NaN (MCAR) beside the same on the complete data (bench/NOTES.md).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "bench_flags.hpp"
#include "core/m_step.hpp"
#include "core/prepared_params.hpp"
#include "cpu/cpu_primitives.hpp"
#include "cuem/fit.hpp"
#include "perf_model.hpp"

namespace {

using cuem::bench::Config;

using cuem::bench::Work;

// `weighted`: all-ones sample weights, which take the weighted path and give the
// unweighted statistics: its cost.
void run(benchmark::State& state, const Config& c, Work work, bool weighted = false) {
  const std::vector<double>& data = cuem::bench::data_for(c);
  const cuem::DataView X(data.data(), c.N, static_cast<std::size_t>(c.D));
  const std::vector<double> ones(weighted ? c.N : 0, 1.0);
  cuem::CpuPrimitives backend(X, weighted ? cuem::WeightView(ones.data(), c.N) : cuem::WeightView());
  cuem::Model model = cuem::bench::start_model(c, data);
  const cuem::PreparedParams p = cuem::prepare(model);
  const std::size_t n_eval = work == Work::predict_proba ? std::min(c.N, cuem::bench::kProbaPoints) : c.N;
  std::vector<double> out_lp(work == Work::score_samples ? c.N : 0);
  std::vector<double> out_resp(work == Work::predict_proba ? n_eval * static_cast<std::size_t>(c.K) : 0);
  for (auto _ : state) {
    switch (work) {
      case Work::em_iteration: model = cuem::m_step(backend.gaussian_estep(cuem::prepare(model)), 1e-6); break;
      case Work::estep: benchmark::DoNotOptimize(backend.gaussian_estep(p).log_likelihood); break;
      case Work::score_samples: backend.posteriors(p, 0, c.N, out_lp.data(), nullptr); break;
      case Work::predict_proba: backend.posteriors(p, 0, n_eval, nullptr, out_resp.data()); break;
    }
  }
  const double N = static_cast<double>(n_eval), D = c.D, K = c.K;
  const cuem::bench::Cost cost =
      work == Work::em_iteration || work == Work::estep
          ? cuem::bench::em_iteration_cost(c.type, N, D, K, 8.0)
          : cuem::bench::evaluate_cost(c.type, N, D, K, 8.0, work == Work::predict_proba ? K : 1);
  state.counters["points/s"] = benchmark::Counter(N, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["bytes/s"] = benchmark::Counter(cost.bytes, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["FLOP/s"] = benchmark::Counter(cost.flops, benchmark::Counter::kIsIterationInvariantRate);
}

/// The config's data with every entry NaN with probability `fraction` (seeded; cached).
const std::vector<double>& masked_data_for(const Config& c, double fraction) {
  static std::vector<double> X;
  static double cached_fraction = -1;
  static std::string cached_name;
  if (cached_name != c.name || cached_fraction != fraction) {
    X = cuem::bench::data_for(c);
    std::mt19937_64 gen(15);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    for (double& v : X)
      if (u(gen) < fraction) v = std::numeric_limits<double>::quiet_NaN();
    cached_name = c.name;
    cached_fraction = fraction;
  }
  return X;
}

/// Precision matrices (P P^T) of a model's factors, as FitOptions::precisions_init takes them.
std::vector<double> precisions_init(const cuem::Model& m) {
  const std::size_t D = static_cast<std::size_t>(m.n_features);
  if (m.covariance_type == cuem::CovarianceType::diag || m.covariance_type == cuem::CovarianceType::spherical) {
    std::vector<double> out(m.precisions_cholesky.size());
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = m.precisions_cholesky[i] * m.precisions_cholesky[i];
    return out;
  }
  std::vector<double> out(m.precisions_cholesky.size(), 0.0);
  for (std::size_t b = 0; b < out.size() / (D * D); ++b) {
    const double* P = m.precisions_cholesky.data() + b * D * D;
    double* L = out.data() + b * D * D;
    for (std::size_t i = 0; i < D; ++i)
      for (std::size_t j = 0; j < D; ++j) {
        double s = 0;
        for (std::size_t t = 0; t < D; ++t) s += P[i * D + t] * P[j * D + t];
        L[i * D + j] = s;
      }
  }
  return out;
}

/// One EM iteration through cuem::fit (the public path, MissingPolicy::marginalize when
/// `missing_fraction` > 0): a fit of kIterations iterations from config c's start, tol 0;
/// the time of one iteration is the median of the fit's trace seconds (E-step, statistics
/// and M-step), recorded as manual time; `setup_s` is the rest of the fit's wall time
/// (validation, the pattern layout, the start), paid once per fit.
void run_fit_iteration(benchmark::State& state, const Config& c, double missing_fraction) {
  constexpr int kIterations = 3;
  const std::vector<double>& data =
      missing_fraction > 0 ? masked_data_for(c, missing_fraction) : cuem::bench::data_for(c);
  const cuem::DataView X(data.data(), c.N, static_cast<std::size_t>(c.D));
  const cuem::Model start = cuem::bench::start_model(c, cuem::bench::data_for(c));
  cuem::FitOptions o;
  o.n_components = c.K;
  o.covariance_type = c.type;
  o.max_iter = kIterations;
  o.tol = 0;
  o.n_init = 1;
  o.missing = missing_fraction > 0 ? cuem::MissingPolicy::marginalize : cuem::MissingPolicy::error;
  o.weights_init = start.weights;
  o.means_init = start.means;
  o.precisions_init = precisions_init(start);
  double setup = 0;
  std::size_t incomplete = 0, patterns = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    const cuem::FitResult r = cuem::fit(X, o);
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::vector<double> per_iteration;
    double sum = 0;
    for (const cuem::TracePoint& t : r.trace) {
      per_iteration.push_back(t.seconds);
      sum += t.seconds;
    }
    std::nth_element(per_iteration.begin(), per_iteration.begin() + per_iteration.size() / 2, per_iteration.end());
    state.SetIterationTime(per_iteration[per_iteration.size() / 2]);
    setup += wall - sum;
    incomplete = r.missing.incomplete_rows;
    patterns = r.missing.n_patterns;
  }
  const double N = static_cast<double>(c.N);
  const cuem::bench::Cost cost = cuem::bench::em_iteration_cost(c.type, N, c.D, c.K, 8.0);
  state.counters["points/s"] = benchmark::Counter(N, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["FLOP/s"] = benchmark::Counter(cost.flops, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["setup_s"] = benchmark::Counter(setup, benchmark::Counter::kAvgIterations);
  state.counters["incomplete_rows"] = static_cast<double>(incomplete);
  state.counters["patterns"] = static_cast<double>(patterns);
}

void register_all() {
  for (const Config& c : cuem::bench::cpu_configs())
    for (Work w : {Work::em_iteration, Work::estep, Work::score_samples, Work::predict_proba})
      benchmark::RegisterBenchmark((cuem::bench::work_name("cpu", w) + "/" + c.name).c_str(),
                                   [c, w](benchmark::State& s) { run(s, c, w); })
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
  for (const Config& c : cuem::bench::cpu_configs())
    benchmark::RegisterBenchmark((std::string("cpu_weighted_estep/") + c.name).c_str(),
                                 [c](benchmark::State& s) { run(s, c, Work::estep, true); })
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  // Missing data (issue 15) on config B: the complete-data iteration and the one at 10%
  // MCAR, side by side, through the same public path.
  for (const Config& c : cuem::bench::cpu_configs()) {
    if (c.name != "B") continue;
    benchmark::RegisterBenchmark((std::string("cpu_fit_iteration/") + c.name).c_str(),
                                 [c](benchmark::State& s) { run_fit_iteration(s, c, 0.0); })
        ->Unit(benchmark::kMillisecond)
        ->UseManualTime();
    benchmark::RegisterBenchmark((std::string("cpu_fit_iteration_missing10/") + c.name).c_str(),
                                 [c](benchmark::State& s) { run_fit_iteration(s, c, 0.1); })
        ->Unit(benchmark::kMillisecond)
        ->UseManualTime();
  }
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  if (!cuem::bench::initialize_benchmark(&argc, argv)) return 2;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
