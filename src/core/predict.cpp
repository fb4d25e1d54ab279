// Using a fitted model: posteriors, log-densities, labels and information criteria.
#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "core/backend.hpp"
#include "core/prepared_params.hpp"
#include "core/validate.hpp"
#include "cpu/cpu_backend.hpp"
#include "cuem/fit.hpp"

namespace cuem {

namespace {

std::unique_ptr<Backend> evaluator(DataView X, const EvaluateOptions& where) {
  return make_backend(X, {where.device, where.precision, where.device_memory_limit});
}

}  // namespace

std::vector<double> predict_proba(const Model& model, DataView X, const EvaluateOptions& where) {
  validate_model_and_data(model, X);
  std::vector<double> resp(X.n_rows * static_cast<std::size_t>(model.n_components));
  evaluator(X, where)->evaluate(prepare(model), 0, X.n_rows, nullptr, resp.data());
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
  const std::unique_ptr<Backend> backend = evaluator(X, where);
  for (std::size_t begin = 0; begin < X.n_rows; begin += chunk) {
    const std::size_t count = std::min(chunk, X.n_rows - begin);
    backend->evaluate(p, begin, begin + count, nullptr, resp.data());
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
  evaluator(X, where)->evaluate(prepare(model), 0, X.n_rows, log_prob.data(), nullptr);
  return log_prob;
}

Criteria criteria(const Model& model, DataView X, const EvaluateOptions& where, WeightView w) {
  const std::vector<double> lp = score_samples(model, X, where);
  validate_weights(w, X);
  Criteria c;
  double s = 0.0;
  if (w.empty()) {
    for (double v : lp) s += v;
    c.total_weight = static_cast<double>(lp.size());
  } else {
    // A zero weight drops its point, whose log-density may be -inf.
    for (std::size_t i = 0; i < lp.size(); ++i)
      if (w.data[i] != 0.0) {
        s += w.data[i] * lp[i];
        c.total_weight += w.data[i];
      }
  }
  c.score = s / c.total_weight;
  const double p = n_parameters(model);
  c.bic = -2.0 * c.score * c.total_weight + p * std::log(c.total_weight);
  c.aic = -2.0 * c.score * c.total_weight + 2.0 * p;
  return c;
}

double score(const Model& model, DataView X, const EvaluateOptions& where, WeightView w) {
  return criteria(model, X, where, w).score;
}

double bic(const Model& model, DataView X, WeightView w) { return criteria(model, X, {}, w).bic; }

double aic(const Model& model, DataView X, WeightView w) { return criteria(model, X, {}, w).aic; }

}  // namespace cuem
