// Using a fitted model: posteriors, log-densities, labels and information criteria.
#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "core/prepared_params.hpp"
#include "core/validate.hpp"
#include "cpu/cpu_primitives.hpp"
#include "cuem/fit.hpp"

namespace cuem {

namespace {

std::unique_ptr<Primitives> evaluator(DataView X, const EvaluateOptions& where) {
  return make_primitives(X, {}, {where.device, where.precision, where.device_memory_limit});
}

}  // namespace

std::vector<double> predict_proba(const Model& model, DataView X, const EvaluateOptions& where) {
  validate_model_and_data(model, X);
  std::vector<double> resp(X.n_rows * static_cast<std::size_t>(model.n_components));
  evaluator(X, where)->posteriors(prepare(model), 0, X.n_rows, nullptr, resp.data());
  return resp;
}

std::vector<int> predict(const Model& model, DataView X, const EvaluateOptions& where) {
  validate_model_and_data(model, X);
  const PreparedParams p = prepare(model);
  const int K = model.n_components;
  // Responsibilities of one chunk at a time (about 8 MiB, at least the CPU's chunk).
  const std::size_t chunk = std::max(chunk_points(K), (std::size_t{1} << 20) / static_cast<std::size_t>(K));
  std::vector<double> resp(std::min(chunk, X.n_rows) * static_cast<std::size_t>(K));
  std::vector<int> labels(X.n_rows);
  const std::unique_ptr<Primitives> backend = evaluator(X, where);
  for (std::size_t begin = 0; begin < X.n_rows; begin += chunk) {
    const std::size_t count = std::min(chunk, X.n_rows - begin);
    backend->posteriors(p, begin, begin + count, nullptr, resp.data());
    for (std::size_t b = 0; b < count; ++b) {
      const double* r = resp.data() + b * K;
      labels[begin + b] = static_cast<int>(std::max_element(r, r + K) - r);
    }
  }
  return labels;
}

std::vector<double> score_samples(const Model& model, DataView X, const EvaluateOptions& where) {
  validate_model_and_data(model, X);
  std::vector<double> log_prob(X.n_rows);
  evaluator(X, where)->posteriors(prepare(model), 0, X.n_rows, log_prob.data(), nullptr);
  return log_prob;
}

double score(const Model& model, DataView X, const EvaluateOptions& where) {
  const std::vector<double> lp = score_samples(model, X, where);
  double s = 0.0;
  for (double v : lp) s += v;
  return s / static_cast<double>(lp.size());
}

double bic(const Model& model, DataView X) {
  const double N = static_cast<double>(X.n_rows);
  return -2.0 * score(model, X) * N + n_parameters(model) * std::log(N);
}

double aic(const Model& model, DataView X) {
  const double N = static_cast<double>(X.n_rows);
  return -2.0 * score(model, X) * N + 2.0 * n_parameters(model);
}

}  // namespace cuem
