// CPU backend throughput: one EM iteration (E-step + statistics + M-step), the E-step
// alone, score_samples and predict_proba on the standard configurations A-E (generated,
// seeded; bench_common.hpp). Counters: points/s, and bytes/s and FLOP/s by the
// performance model (perf_model.hpp; float64 data, 8 bytes per element).
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "bench_common.hpp"
#include "bench_flags.hpp"
#include "core/m_step.hpp"
#include "core/prepared_params.hpp"
#include "cpu/cpu_primitives.hpp"
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
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  if (!cuem::bench::initialize_benchmark(&argc, argv)) return 2;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
