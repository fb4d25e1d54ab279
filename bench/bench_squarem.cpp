// Plain EM against SQUAREM (src/engine/squarem_driver.hpp) on the Gaussian mixture, to the
// same tolerance from the same k-means start: E-step passes, EM wall time (initialisation
// excluded), final bound and EM's rate estimate, side by side. bench/NOTES.md has the
// prediction and the reading.
//
//   bench_squarem [--scale S] [--tol T,T,...] [--max-iter M] [--rounds R] [--configs A,B,...] [--json PATH]
//
// A plain program, not a Google Benchmark suite: a fit to a tolerance is one long run whose
// pass count is the point, not a repeated kernel.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "cuem/options.hpp"
#include "cuem/resources.hpp"
#include "cuem/version.hpp"
#include "engine/batch_driver.hpp"
#include "engine/gmm_model.hpp"
#include "engine/gmm_parameter_map.hpp"
#include "engine/placed_data.hpp"
#include "engine/squarem_driver.hpp"

namespace {

using cuem::CovarianceType;
using Clock = std::chrono::steady_clock;

// The GMM with its initialisation timed apart, so that the drivers' times are EM's alone.
struct TimedGmm {
  using Params = cuem::Model;
  using Stats = cuem::SufficientStats;
  cuem::engine::GaussianMixtureEM& gmm;
  double init_seconds = 0, estep_seconds = 0, mstep_seconds = 0;
  Params initialize(std::uint64_t seed, std::vector<std::string>* notices) {
    const auto t0 = Clock::now();
    Params p = gmm.initialize(seed, notices);
    init_seconds += std::chrono::duration<double>(Clock::now() - t0).count();
    return p;
  }
  Stats e_step(const Params& p) {
    const auto t0 = Clock::now();
    Stats s = gmm.e_step(p);
    estep_seconds += std::chrono::duration<double>(Clock::now() - t0).count();
    return s;
  }
  Params m_step(const Stats& s) {
    const auto t0 = Clock::now();
    Params p = gmm.m_step(s);
    mstep_seconds += std::chrono::duration<double>(Clock::now() - t0).count();
    return p;
  }
  double unit_roundoff() const { return gmm.unit_roundoff(); }
};
std::vector<double> to_unconstrained(const TimedGmm& m, const cuem::Model& p) { return to_unconstrained(m.gmm, p); }
cuem::Model from_unconstrained(const TimedGmm& m, const std::vector<double>& v, const cuem::Model& shape) {
  return from_unconstrained(m.gmm, v, shape);
}

struct Case {
  std::string name;
  std::size_t N;
  int D, K;
  CovarianceType type;
  double spread;  // standard deviation of the centres; the points have unit spread
};

// K blobs of unit spread about centres N(0, spread^2 I), point i in blob i mod K (the
// configurations' data of bench_common.hpp with spread 5).
std::vector<double> make_data(const Case& c) {
  std::mt19937_64 gen(42);
  std::normal_distribution<double> z;
  std::vector<double> centres(static_cast<std::size_t>(c.K) * c.D);
  for (double& m : centres) m = c.spread * z(gen);
  std::vector<double> X(c.N * c.D);
  for (std::size_t i = 0; i < c.N; ++i) {
    const std::size_t k = i % static_cast<std::size_t>(c.K);
    for (int d = 0; d < c.D; ++d) X[i * c.D + d] = centres[k * c.D + d] + z(gen);
  }
  return X;
}

struct Run {
  std::string driver;
  int passes = 0, n_iter = 0, kept = 0, pulled_back = 0, fallbacks = 0;
  bool converged = false;
  double seconds = std::numeric_limits<double>::infinity();
  double estep_seconds = 0, mstep_seconds = 0;  // of the fastest run
  double bound = 0, rate = 0;
};

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) out.push_back(item);
  return out;
}

std::string fmt(double v, const char* f) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  double scale = 10;
  int max_iter = 2000, rounds = 2;
  std::vector<double> tols{1e-3, 1e-6};
  std::vector<std::string> only;
  std::string json_path;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--scale") scale = std::atof(value().c_str());
    else if (a == "--max-iter") max_iter = std::atoi(value().c_str());
    else if (a == "--rounds") rounds = std::atoi(value().c_str());
    else if (a == "--configs") only = split(value());
    else if (a == "--json") json_path = value();
    else if (a == "--tol") {
      tols.clear();
      for (const std::string& t : split(value())) tols.push_back(std::atof(t.c_str()));
    } else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 2;
    }
  }

  std::vector<Case> cases;
  for (const cuem::bench::Config& c : cuem::bench::cpu_configs())
    cases.push_back({c.name, static_cast<std::size_t>(static_cast<double>(c.N) / scale), c.D, c.K, c.type, 5.0});
  cases.push_back({"O1", static_cast<std::size_t>(1e6 / scale), 2, 4, CovarianceType::full, 1.0});
  cases.push_back({"O2", static_cast<std::size_t>(5e5 / scale), 8, 8, CovarianceType::diag, 0.75});

  std::printf("cuem %s, %d threads, scale 1/%g, max_iter %d (E-step passes), best of %d\n", cuem::version(),
              omp_get_max_threads(), scale, max_iter, rounds);
  std::printf("| cfg | N | tol | driver | passes | kept / pulled back / fallbacks | EM s | E-steps s | M-steps s | "
              "s / pass | final bound | rate | converged |\n|---|---:|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---|\n");
  std::ostringstream json;
  json << "{\"schema\": \"cuem-bench-squarem/1\", \"version\": \"" << cuem::version() << "\", \"threads\": "
       << omp_get_max_threads() << ", \"scale\": " << scale << ", \"max_iter\": " << max_iter << ", \"rows\": [";
  bool first_row = true;
  for (const Case& c : cases) {
    if (!only.empty() && std::find(only.begin(), only.end(), c.name) == only.end()) continue;
    const std::vector<double> X = make_data(c);
    cuem::Resources resources({cuem::parse_device("cpu"), cuem::Precision::float64, 0, 0, {}});
    cuem::PlacedData data(resources, cuem::DataView(X.data(), c.N, static_cast<std::size_t>(c.D)));
    cuem::PlacedData::Impl& placed = data.impl();
    placed.primitives().reserve(c.type, c.K);
    for (double tol : tols) {
      cuem::FitOptions o;
      o.n_components = c.K;
      o.covariance_type = c.type;
      o.tol = tol;
      o.max_iter = max_iter;
      cuem::engine::GaussianMixtureEM gmm(placed.primitives(), placed.X, o, placed.kmeans);
      TimedGmm model{gmm};
      const cuem::engine::BatchOptions bo{1, max_iter, tol, 0, {}};
      cuem::engine::SquaremSettings pull_back;
      pull_back.max_backtracks = 2;
      std::vector<Run> runs{{"plain EM"}, {"SQUAREM"}, {"SQUAREM, 2 pull-backs"}};
      for (int round = 0; round < rounds; ++round)
        for (std::size_t j = 0; j < runs.size(); ++j) {
          const std::size_t which = round % 2 ? runs.size() - 1 - j : j;  // alternate the order
          Run& r = runs[which];
          model.init_seconds = model.estep_seconds = model.mstep_seconds = 0;
          const auto t0 = Clock::now();
          cuem::engine::BatchResult<cuem::Model> res;
          if (which == 0) {
            res = cuem::engine::run_batch_em(model, bo);
          } else {
            const auto sq = cuem::engine::run_squarem_em(model, bo, which == 1 ? cuem::engine::SquaremSettings{} : pull_back);
            r.kept = sq.n_extrapolations;
            r.pulled_back = sq.n_backtracks;
            r.fallbacks = sq.n_fallbacks;
            res = sq;
          }
          const double s = std::chrono::duration<double>(Clock::now() - t0).count() - model.init_seconds;
          if (s < r.seconds) {
            r.seconds = s;
            r.estep_seconds = model.estep_seconds;
            r.mstep_seconds = model.mstep_seconds;
          }
          r.passes = res.n_estep_passes;
          r.n_iter = res.n_iter;
          r.converged = res.converged;
          r.bound = res.lower_bound;
          r.rate = res.convergence_rate;
        }
      for (const Run& r : runs) {
        std::printf("| %s | %zu | %g | %s | %d | %s | %.3f | %.3f | %.3f | %.4f | %.10f | %.4f | %s |\n", c.name.c_str(), c.N, tol,
                    r.driver.c_str(), r.passes,
                    r.driver == "plain EM" ? "-"
                                           : (std::to_string(r.kept) + " / " + std::to_string(r.pulled_back) + " / " +
                                              std::to_string(r.fallbacks)).c_str(),
                    r.seconds, r.estep_seconds, r.mstep_seconds, r.seconds / r.passes, r.bound, r.rate, r.converged ? "yes" : "no");
        json << (first_row ? "" : ",") << "\n  {\"config\": \"" << c.name << "\", \"N\": " << c.N << ", \"D\": " << c.D
             << ", \"K\": " << c.K << ", \"type\": \"" << cuem::to_string(c.type) << "\", \"spread\": " << c.spread
             << ", \"tol\": " << tol << ", \"driver\": \"" << r.driver << "\", \"passes\": " << r.passes
             << ", \"n_iter\": " << r.n_iter << ", \"kept\": " << r.kept << ", \"pulled_back\": " << r.pulled_back
             << ", \"fallbacks\": " << r.fallbacks << ", \"seconds\": " << fmt(r.seconds, "%.6g")
             << ", \"estep_seconds\": " << fmt(r.estep_seconds, "%.6g") << ", \"mstep_seconds\": " << fmt(r.mstep_seconds, "%.6g")
             << ", \"bound\": " << fmt(r.bound, "%.15g") << ", \"rate\": "
             << (std::isfinite(r.rate) ? fmt(r.rate, "%.6g") : std::string("null"))
             << ", \"converged\": " << (r.converged ? "true" : "false") << "}";
        first_row = false;
      }
      std::fflush(stdout);
    }
  }
  json << "\n]}\n";
  if (!json_path.empty()) std::ofstream(json_path) << json.str();
  return 0;
}
