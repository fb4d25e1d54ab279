// cuem generate -n N -d D -k K [...] -o data.npy: a seeded synthetic Gaussian mixture, for
// demos, tests and benchmarks. Rows are shuffled so the file is not sorted by component.
// Written in chunks as drawn, so a file larger than memory can be made.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/common.hpp"
#include "cli/outputs.hpp"
#include "core/m_step.hpp"
#include "core/mixture_sampler.hpp"
#include "core/rng.hpp"
#include "core/row_permutation.hpp"
#include "io/atomic_file.hpp"
#include "io/model_json.hpp"
#include "io/npy.hpp"

namespace cuem::cli {
namespace {

struct Args {
  std::size_t n = 0;
  int d = 2;
  int k = 3;
  std::string covariance = "full";
  double separation = 4.0;
  std::uint64_t seed = 0;
  std::string output;
  std::string labels;
  std::string model;
  bool float32 = false;
  std::size_t chunk_rows = std::size_t{1} << 16;
};

// Streams of the generator's own draws, apart from the library's.
enum : std::uint64_t { kWeights = 101, kMeans = 102, kCov = 103, kShuffle = 104 };

Model random_model(const Args& a) {
  Model m;
  m.covariance_type = parse_covariance_type(a.covariance);
  m.n_components = a.k;
  m.n_features = a.d;
  const auto K = static_cast<std::size_t>(a.k);
  const auto D = static_cast<std::size_t>(a.d);
  double total = 0.0;
  for (std::size_t k = 0; k < K; ++k) total += m.weights.emplace_back(0.5 + rng::uniform(a.seed, kWeights, k));
  for (double& w : m.weights) w /= total;
  // Means ~ N(0, separation^2 I): typical distances of a few unit standard deviations.
  for (std::size_t i = 0; i < K * D; ++i) m.means.push_back(a.separation * rng::normal(a.seed, kMeans, i));
  std::uint64_t c = 0;
  auto u = [&] { return rng::uniform(a.seed, kCov, c++); };
  auto full = [&](double* S) {  // L L^T with diagonal in [0.5, 1.5] and mild correlations
    std::vector<double> L(D * D, 0.0);
    for (std::size_t i = 0; i < D; ++i)
      for (std::size_t j = 0; j <= i; ++j) L[i * D + j] = i == j ? 0.5 + u() : 0.3 * (u() - 0.5);
    for (std::size_t i = 0; i < D; ++i)
      for (std::size_t j = 0; j < D; ++j) {
        double s = 0.0;
        for (std::size_t p = 0; p < D; ++p) s += L[i * D + p] * L[j * D + p];
        S[i * D + j] = s;
      }
  };
  m.covariances.assign(covariance_size(m.covariance_type, a.k, a.d), 0.0);
  switch (m.covariance_type) {
    case CovarianceType::full:
      for (std::size_t k = 0; k < K; ++k) full(m.covariances.data() + k * D * D);
      break;
    case CovarianceType::tied: full(m.covariances.data()); break;
    case CovarianceType::diag:
    case CovarianceType::spherical:
      for (double& v : m.covariances) v = 0.25 + 2.0 * u();
      break;
  }
  compute_precision_cholesky(m, 0.0);
  return m;
}

// The file is written in chunks of rows: row i of the file is sample()'s grouped row
// perm(i), drawn when its chunk is written, perm a keyed permutation computed row by row
// (row_permutation.hpp). Memory: one chunk, whatever n.
void write_rows(const Args& a, const MixtureSampler& sampler, io::AtomicFile& data, io::AtomicFile* labels) {
  const std::size_t n = a.n;
  const auto D = static_cast<std::size_t>(a.d);
  const RowPermutation perm(n, a.seed, kShuffle);
  const std::size_t chunk = std::min(a.chunk_rows, n);
  std::vector<double> x(chunk * D);
  std::vector<int> k(chunk);
  std::string bytes;
  for (std::size_t i0 = 0; i0 < n; i0 += chunk) {
    const std::size_t rows = std::min(chunk, n - i0);
#pragma omp parallel
    {
      std::vector<double> z(D);
#pragma omp for schedule(static)
      for (std::ptrdiff_t r = 0; r < static_cast<std::ptrdiff_t>(rows); ++r) {
        const auto row = static_cast<std::size_t>(perm(i0 + static_cast<std::size_t>(r)));
        k[r] = sampler.component_of(row);
        sampler.draw(row, k[r], x.data() + static_cast<std::size_t>(r) * D, z.data());
      }
    }
    bytes.clear();
    append_matrix_rows(bytes, a.output, x.data(), rows, D, a.float32);
    data.write(bytes);
    if (labels) {
      bytes.clear();
      append_label_rows(bytes, a.labels, k.data(), rows);
      labels->write(bytes);
    }
  }
}

int run(const Args& a, const GlobalFlags& flags) {
  check_outputs({a.output, a.labels, a.model}, {});
  check_data_output_name(a.output, "-o");
  check_data_output_name(a.labels, "--labels");
  check_model_output_name(a.model, "--model");
  const Model m = random_model(a);
  const MixtureSampler sampler(m, a.n, a.seed);
  const auto D = static_cast<std::size_t>(a.d);
  std::vector<std::string> names(D);  // the text formats' header: x0, x1, ...
  for (std::size_t j = 0; j < D; ++j) names[j] = "x" + std::to_string(j);
  auto data = std::make_unique<io::AtomicFile>(a.output);
  data->write(matrix_file_start(a.output, a.n, D, names, a.float32));
  std::unique_ptr<io::AtomicFile> labels;
  if (!a.labels.empty()) {
    labels = std::make_unique<io::AtomicFile>(a.labels);
    labels->write(labels_file_start(a.labels, a.n));
  }
  write_rows(a, sampler, *data, labels.get());
  io::OutputBatch outputs;
  outputs.add(std::move(data));
  if (labels) outputs.add(std::move(labels));
  if (!a.model.empty()) outputs.add(a.model, io::model_to_json(m));
  outputs.commit();
  if (flags.json)
    std::printf("%s\n", nlohmann::json({{"n_samples", a.n}, {"n_features", a.d}, {"n_components", a.k}, {"output", a.output}})
                            .dump()
                            .c_str());
  else {  // what was written goes to stdout, as fit's "model written to" does
    std::printf("%zu points x %d features from %d components written to %s\n", static_cast<std::size_t>(a.n), a.d, a.k,
                a.output.c_str());
    if (!a.labels.empty()) std::printf("labels written to %s\n", a.labels.c_str());
    if (!a.model.empty()) std::printf("true model written to %s\n", a.model.c_str());
  }
  return kOk;
}

}  // namespace

void add_generate_command(CLI::App& app, const GlobalFlags& flags, int& exit_code) {
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("generate", "write a synthetic Gaussian mixture data set (seeded)");
  cmd->add_option("-n", args->n, "number of points")->required()->check(CLI::Range(std::size_t{1}, std::size_t{1} << 34));
  cmd->add_option("-d,--dims", args->d, "number of features")->capture_default_str()->check(CLI::Range(1, 1 << 16));
  cmd->add_option("-k,--components", args->k, "number of components")->capture_default_str()->check(CLI::Range(1, 1 << 16));
  cmd->add_option("--covariance", args->covariance, "structure of the true covariances")
      ->check(CLI::IsMember({"full", "tied", "diag", "spherical"}))
      ->capture_default_str();
  cmd->add_option("--separation", args->separation, "spread of the true means, in unit standard deviations")
      ->check(CLI::Range(0.0, 1e6))
      ->capture_default_str();
  cmd->add_option("--seed", args->seed, "random seed")->check(unsigned_validator())->capture_default_str();
  cmd->add_option("-o,--output", args->output, "data file: .npy (float64), or text: .csv, .tsv or .txt (with a header line)")->required();
  cmd->add_option_function<std::string>(
         "--dtype", [args](const std::string& t) { args->float32 = t == "float32"; },
         "values written: float64, or float32 (half the file; text shows float32 values)")
      ->check(CLI::IsMember({"float64", "float32"}))
      ->default_str("float64");
  cmd->add_option("--chunk-rows", args->chunk_rows, "rows drawn and written at a time (memory: one chunk)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 30))
      ->capture_default_str();
  cmd->add_option("--labels", args->labels, "write the true component of each point as .npy (int64) or text (.csv/.tsv/.txt)");
  cmd->add_option("--model", args->model, "write the true model as JSON");
  cmd->callback([args, &flags, &exit_code] { exit_code = run(*args, flags); });
}

}  // namespace cuem::cli
