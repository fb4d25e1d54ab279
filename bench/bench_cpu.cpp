// CPU backend throughput: one EM iteration (E-step + statistics + M-step) and the E-step
// alone on the standard configurations A-E (generated, seeded). Points per second are
// reported; the roofline counters of the performance model come with the benchmark
// suites of the performance work.
#include <benchmark/benchmark.h>

#include <map>
#include <random>
#include <tuple>
#include <vector>

#include "core/m_step.hpp"
#include "core/prepared_params.hpp"
#include "cpu/cpu_backend.hpp"
#include "cuem/fit.hpp"
#include "init/initialize.hpp"

namespace {

struct Config {
  const char* name;
  std::size_t N;
  int D;
  int K;
  cuem::CovarianceType type;
};

const Config kConfigs[] = {
    {"A", 1000000, 2, 8, cuem::CovarianceType::full},  {"B", 200000, 16, 16, cuem::CovarianceType::full},
    {"C", 1000000, 32, 32, cuem::CovarianceType::diag}, {"D", 100000, 64, 64, cuem::CovarianceType::full},
    {"E", 2000000, 1, 4, cuem::CovarianceType::full},
};

// K Gaussian blobs with unit spread around centres drawn from N(0, 5^2 I).
const std::vector<double>& data_for(const Config& c) {
  static std::map<std::tuple<std::size_t, int, int>, std::vector<double>> cache;
  auto& X = cache[{c.N, c.D, c.K}];
  if (X.empty()) {
    std::mt19937_64 gen(42);
    std::normal_distribution<double> z;
    std::vector<double> centres(static_cast<std::size_t>(c.K) * c.D);
    for (double& m : centres) m = 5.0 * z(gen);
    X.resize(c.N * c.D);
    for (std::size_t i = 0; i < c.N; ++i) {
      const std::size_t k = i % static_cast<std::size_t>(c.K);
      for (int d = 0; d < c.D; ++d) X[i * c.D + d] = centres[k * c.D + d] + z(gen);
    }
  }
  return X;
}

cuem::Model start_model(const Config& c, cuem::DataView X) {
  cuem::FitOptions o;
  o.n_components = c.K;
  o.covariance_type = c.type;
  o.init = cuem::InitMethod::random_from_data;
  return cuem::initialize(X, o, 1);
}

void em_iteration(benchmark::State& state, const Config& c, bool estep_only) {
  const std::vector<double>& data = data_for(c);
  const cuem::DataView X(data.data(), c.N, c.D);
  cuem::CpuBackend backend(X);
  cuem::Model model = start_model(c, X);
  const cuem::PreparedParams p = cuem::prepare(model);
  for (auto _ : state) {
    cuem::SufficientStats s = backend.estep(p);
    if (!estep_only) model = cuem::m_step(s, 1e-6);
    benchmark::DoNotOptimize(s.log_likelihood);
  }
  state.counters["points/s"] =
      benchmark::Counter(static_cast<double>(c.N) * state.iterations(), benchmark::Counter::kIsRate);
}

void register_all() {
  for (const Config& c : kConfigs) {
    benchmark::RegisterBenchmark((std::string("cpu_em_iteration/") + c.name).c_str(),
                                 [c](benchmark::State& s) { em_iteration(s, c, false); })
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
    benchmark::RegisterBenchmark((std::string("cpu_estep/") + c.name).c_str(),
                                 [c](benchmark::State& s) { em_iteration(s, c, true); })
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  }
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
