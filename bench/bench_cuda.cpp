// CUDA backend throughput against the card's measured ceilings (issue 5): one EM
// iteration (E-step + statistics + M-step), the E-step alone, score_samples and
// predict_proba, on the GPU-scale configurations G1-G5 and on A-E. Every E-step call
// ends in a stream synchronisation (the statistics come back to the host), so the
// wall-clock time around it, taken with UseManualTime, is the device time plus the host
// work of the iteration. Counters: points/s, bytes/s and FLOP/s by the performance model
// (perf_model.hpp), and x_floor = time / max(bytes / copy bandwidth, flops / GEMM rate)
// with the ceilings measured at start in this process (ceilings.cu). The `missing`
// variant times the incomplete rows' E-step (issue 15) at 10% and 30% MCAR beside the
// complete-data E-step of the same shape.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "bench_flags.hpp"
#include "ceilings.hpp"
#include "core/cuda_devices.hpp"
#include "core/cuda_incomplete_rows.hpp"
#include "core/cuda_primitives.hpp"
#include "core/m_step.hpp"
#include "core/prepared_params.hpp"
#include "engine/incomplete_rows.hpp"
#include "engine/missing_layout.hpp"
#include "engine/primitives.hpp"
#include "perf_model.hpp"

namespace {

using cuem::bench::Config;
using Clock = std::chrono::steady_clock;

cuem::bench::Ceilings g_ceilings;

using cuem::bench::Work;

// The alternative kernels for side-by-side timing (scripts/gpu_check.sh's variants):
// CUEM_CUDA_TILED=0 keeps the simpler kernels, CUEM_CUDA_STATS_RK=2 takes 2 components a
// thread in the tiled diagonal statistics. The library reads no environment; the options do.
cuem::CudaTuning tuning_from_environment() {
  cuem::CudaTuning t;
  const char* tiled = std::getenv("CUEM_CUDA_TILED");
  if (tiled && tiled[0] == '0') t.tiled = false;
  const char* rk = std::getenv("CUEM_CUDA_STATS_RK");
  if (rk && std::string(rk) == "2") t.diag_stats_components = 2;
  return t;
}

// `weighted`: all-ones sample weights, which take the weighted path (posteriors, row
// scaling, statistics; no fused kernel) and give the unweighted statistics: its cost.
void run(benchmark::State& state, const Config& c, Work work, cuem::Precision precision, bool weighted = false) {
  const std::vector<double>& data = cuem::bench::data_for(c);
  const cuem::DataView X(data.data(), c.N, static_cast<std::size_t>(c.D));
  const std::vector<double> ones(weighted ? c.N : 0, 1.0);
  const cuem::WeightView w = weighted ? cuem::WeightView(ones.data(), c.N) : cuem::WeightView();
  const auto backend = cuem::cuda::make_primitives(X, w, {0, precision, 0}, tuning_from_environment());
  cuem::Model model = cuem::bench::start_model(c, data);
  const cuem::PreparedParams p = cuem::prepare(model);
  // predict_proba returns N x K float64: evaluate a bounded slice so host memory stays sane.
  const std::size_t n_eval = work == Work::predict_proba ? std::min(c.N, cuem::bench::kProbaPoints) : c.N;
  std::vector<double> out_lp(work == Work::score_samples ? c.N : 0);
  std::vector<double> out_resp(work == Work::predict_proba ? n_eval * static_cast<std::size_t>(c.K) : 0);
  auto once = [&] {
    switch (work) {
      case Work::em_iteration: {
        const cuem::SufficientStats s = backend->gaussian_estep(cuem::prepare(model));
        model = cuem::m_step(s, 1e-6);
        break;
      }
      case Work::estep: benchmark::DoNotOptimize(backend->gaussian_estep(p).log_likelihood); break;
      case Work::score_samples: backend->posteriors(p, 0, c.N, out_lp.data(), nullptr); break;
      case Work::predict_proba: backend->posteriors(p, 0, n_eval, nullptr, out_resp.data()); break;
    }
  };
  once();  // warm-up: data placement, workspaces, first-launch costs
  double total = 0;
  for (auto _ : state) {
    const auto t0 = Clock::now();
    once();
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    state.SetIterationTime(s);
    total += s;
  }
  const double elem = precision == cuem::Precision::float32 ? 4.0 : 8.0;
  const double N = static_cast<double>(n_eval), D = c.D, K = c.K;
  cuem::bench::Cost cost;
  if (work == Work::em_iteration || work == Work::estep)
    cost = cuem::bench::em_iteration_cost(c.type, N, D, K, elem);
  else
    cost = cuem::bench::evaluate_cost(c.type, N, D, K, elem, work == Work::predict_proba ? K : 1);
  const double rate = precision == cuem::Precision::float32 ? g_ceilings.sgemm_flops_per_s : g_ceilings.dgemm_flops_per_s;
  const double per_iter = total / static_cast<double>(state.iterations());
  state.counters["points/s"] = benchmark::Counter(N, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["bytes/s"] = benchmark::Counter(cost.bytes, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["FLOP/s"] = benchmark::Counter(cost.flops, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["x_floor"] = per_iter / cuem::bench::floor_seconds(cost, g_ceilings.copy_bytes_per_s, rate);
  state.SetLabel(backend->description());
}

// The E-step of the rows with missing entries: each entry of the blob data missing with
// probability `rate` (a row keeps at least one entry), the layout made once, then
// IncompleteRows::estep timed as a whole: the host's conditional factors per (pattern,
// component), their upload and the kernels. At D = 64 nearly every row is a pattern of
// its own, so the host's factors are most of the work there (bench/NOTES.md).
void run_missing(benchmark::State& state, const Config& c, double rate) {
  std::vector<double> x = cuem::bench::data_for(c);
  const std::size_t D = static_cast<std::size_t>(c.D);
  std::mt19937_64 gen(7);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (std::size_t i = 0; i < c.N; ++i) {
    std::size_t missing = 0;
    for (std::size_t d = 0; d < D; ++d)
      if (u(gen) < rate) {
        x[i * D + d] = NAN;
        ++missing;
      }
    if (missing == D) x[i * D] = cuem::bench::data_for(c)[i * D];
  }
  const cuem::engine::MissingLayout layout =
      cuem::engine::make_missing_layout(cuem::DataView(x.data(), c.N, D), cuem::WeightView(), true);
  cuem::PrimitivesRequest request;
  request.device.kind = cuem::DeviceKind::cuda;
  request.precision = cuem::Precision::float32;
  const auto rows = cuem::make_cuda_incomplete_rows(layout, request, nullptr);
  const cuem::Model model = cuem::bench::start_model(c, cuem::bench::data_for(c));
  benchmark::DoNotOptimize(rows->estep(model).log_likelihood);  // warm-up: plan and buffers
  for (auto _ : state) {
    const auto t0 = Clock::now();
    benchmark::DoNotOptimize(rows->estep(model).log_likelihood);
    state.SetIterationTime(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  const double n = static_cast<double>(layout.n_rows - layout.n_complete);
  state.counters["rows/s"] = benchmark::Counter(n, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["incomplete_rows"] = n;
  state.counters["patterns"] = static_cast<double>(layout.patterns.size());
}

void register_all() {
  std::vector<Config> configs = cuem::bench::gpu_configs();
  for (const Config& c : cuem::bench::cpu_configs()) configs.push_back(c);
  for (const Config& c : configs)
    for (Work w : {Work::em_iteration, Work::estep, Work::score_samples, Work::predict_proba}) {
      const bool gpu_scale = c.name[0] == 'G';
      if (!gpu_scale && (w == Work::score_samples || w == Work::predict_proba)) continue;
      benchmark::RegisterBenchmark((cuem::bench::work_name("cuda", w) + "/" + c.name + "/f32").c_str(),
                                   [c, w](benchmark::State& s) { run(s, c, w, cuem::Precision::float32); })
          ->Unit(benchmark::kMillisecond)
          ->UseManualTime();
    }
  // The weighted E-step beside the unweighted one: fused (A, G1), full (G2), diagonal with
  // deferred normalisation (G4d).
  for (const Config& c : configs)
    if (c.name == "A" || c.name == "G1" || c.name == "G2" || c.name == "G4d")
      benchmark::RegisterBenchmark((std::string("cuda_weighted_estep/") + c.name + "/f32").c_str(),
                                   [c](benchmark::State& s) { run(s, c, Work::estep, cuem::Precision::float32, true); })
          ->Unit(benchmark::kMillisecond)
          ->UseManualTime();
  for (const Config& c : cuem::bench::cpu_configs())
    benchmark::RegisterBenchmark((std::string("cuda_em_iteration/") + c.name + "/f64").c_str(),
                                 [c](benchmark::State& s) { run(s, c, Work::em_iteration, cuem::Precision::float64); })
        ->Unit(benchmark::kMillisecond)
        ->UseManualTime();
  // Missing entries: the incomplete rows' E-step at 10% and 30% MCAR, and the complete-data
  // E-step of the same shape beside it.
  for (const Config& c : {Config{"M16", 100000, 16, 16, cuem::CovarianceType::full},
                          Config{"M64", 100000, 64, 16, cuem::CovarianceType::full}}) {
    benchmark::RegisterBenchmark((std::string("cuda_estep/") + c.name + "/f32").c_str(),
                                 [c](benchmark::State& s) { run(s, c, Work::estep, cuem::Precision::float32); })
        ->Unit(benchmark::kMillisecond)
        ->UseManualTime();
    for (const double rate : {0.1, 0.3})
      benchmark::RegisterBenchmark(
          (std::string("cuda_missing_estep/") + c.name + "/mcar" + std::to_string(static_cast<int>(rate * 100)) +
           "/f32")
              .c_str(),
          [c, rate](benchmark::State& s) { run_missing(s, c, rate); })
          ->Unit(benchmark::kMillisecond)
          ->UseManualTime();
  }
}

}  // namespace

int main(int argc, char** argv) {
  // Flags first: a bad one is an error before any device work.
  if (!cuem::bench::initialize_benchmark(&argc, argv)) return 2;
  std::string reason;
  if (cuem::cuda::list_devices(&reason).empty()) {
    std::printf("bench_cuda: no CUDA device (%s); nothing to measure\n", reason.c_str());
    return 0;
  }
  g_ceilings = cuem::bench::measure_ceilings(0);
  std::printf("device: %s\nceilings: copy %.0f GB/s (read + write), SGEMM %.1f TFLOP/s, DGEMM %.1f TFLOP/s\n",
              g_ceilings.device.c_str(), g_ceilings.copy_bytes_per_s * 1e-9, g_ceilings.sgemm_flops_per_s * 1e-12,
              g_ceilings.dgemm_flops_per_s * 1e-12);
  benchmark::AddCustomContext("device", g_ceilings.device);
  benchmark::AddCustomContext("copy_GBps", std::to_string(g_ceilings.copy_bytes_per_s * 1e-9));
  benchmark::AddCustomContext("sgemm_TFLOPs", std::to_string(g_ceilings.sgemm_flops_per_s * 1e-12));
  benchmark::AddCustomContext("dgemm_TFLOPs", std::to_string(g_ceilings.dgemm_flops_per_s * 1e-12));
  register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
