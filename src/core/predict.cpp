// Using a fitted model: posteriors, log-densities, labels and information criteria, on
// placed data (include/cuem/resources.hpp) or, for a view, on data placed for the call.
#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "core/prepared_params.hpp"
#include "core/validate.hpp"
#include "cpu/cpu_primitives.hpp"
#include "cuem/fit.hpp"
#include "engine/placed_data.hpp"
#include "engine/primitives.hpp"

namespace cuem {

namespace {

ResourceOptions resource_options(const EvaluateOptions& where) {
  return {where.device, where.precision, 0, where.device_memory_limit, where.cuda_tuning};
}

std::vector<double> proba_of(PlacedData::Impl& d, const Model& model) {
  std::vector<double> resp(d.X.n_rows * static_cast<std::size_t>(model.n_components));
  d.primitives().posteriors(prepare(model), 0, d.X.n_rows, nullptr, resp.data());
  return resp;
}

std::vector<int> labels_of(PlacedData::Impl& d, const Model& model) {
  const PreparedParams p = prepare(model);
  const int K = model.n_components;
  const std::size_t N = d.X.n_rows;
  // Responsibilities of one chunk at a time (about 8 MiB, at least the CPU's chunk).
  const std::size_t chunk = std::max(chunk_points(K), (std::size_t{1} << 20) / static_cast<std::size_t>(K));
  std::vector<double> resp(std::min(chunk, N) * static_cast<std::size_t>(K));
  std::vector<int> labels(N);
  Primitives& prims = d.primitives();
  for (std::size_t begin = 0; begin < N; begin += chunk) {
    const std::size_t count = std::min(chunk, N - begin);
    prims.posteriors(p, begin, begin + count, nullptr, resp.data());
    for (std::size_t b = 0; b < count; ++b) {
      const double* r = resp.data() + b * K;
      labels[begin + b] = static_cast<int>(std::max_element(r, r + K) - r);
    }
  }
  return labels;
}

std::vector<double> log_prob_of(PlacedData::Impl& d, const Model& model) {
  std::vector<double> log_prob(d.X.n_rows);
  d.primitives().posteriors(prepare(model), 0, d.X.n_rows, log_prob.data(), nullptr);
  return log_prob;
}

Criteria criteria_of(const Model& model, const std::vector<double>& lp, WeightView w) {
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

// Runs f on X placed for this call on `where`'s device, after the checks.
template <typename F>
auto on_view(const Model& model, DataView X, const EvaluateOptions& where, F&& f) {
  validate_model_and_data(model, X);
  Resources resources(resource_options(where));
  PlacedData data = PlacedData::Impl::unchecked(resources, X, {});
  return f(data.impl());
}

// Runs f on placed data after the model's checks.
template <typename F>
auto on_placed(PlacedData& data, const Model& model, F&& f) {
  validate_model_for(model, data.data().n_cols);
  return f(data.impl());
}

}  // namespace

std::vector<double> predict_proba(const Model& model, DataView X, const EvaluateOptions& where) {
  return on_view(model, X, where, [&](PlacedData::Impl& d) { return proba_of(d, model); });
}

std::vector<int> predict(const Model& model, DataView X, const EvaluateOptions& where) {
  return on_view(model, X, where, [&](PlacedData::Impl& d) { return labels_of(d, model); });
}

std::vector<double> score_samples(const Model& model, DataView X, const EvaluateOptions& where) {
  return on_view(model, X, where, [&](PlacedData::Impl& d) { return log_prob_of(d, model); });
}

Criteria criteria(const Model& model, DataView X, const EvaluateOptions& where, WeightView w) {
  return on_view(model, X, where, [&](PlacedData::Impl& d) {
    validate_weights(w, X);
    return criteria_of(model, log_prob_of(d, model), w);
  });
}

double score(const Model& model, DataView X, const EvaluateOptions& where, WeightView w) {
  return criteria(model, X, where, w).score;
}

double bic(const Model& model, DataView X, WeightView w) { return criteria(model, X, {}, w).bic; }

double aic(const Model& model, DataView X, WeightView w) { return criteria(model, X, {}, w).aic; }

std::vector<double> predict_proba(PlacedData& data, const Model& model) {
  return on_placed(data, model, [&](PlacedData::Impl& d) { return proba_of(d, model); });
}

std::vector<int> predict(PlacedData& data, const Model& model) {
  return on_placed(data, model, [&](PlacedData::Impl& d) { return labels_of(d, model); });
}

std::vector<double> score_samples(PlacedData& data, const Model& model) {
  return on_placed(data, model, [&](PlacedData::Impl& d) { return log_prob_of(d, model); });
}

Criteria criteria(PlacedData& data, const Model& model) {
  return on_placed(data, model,
                   [&](PlacedData::Impl& d) { return criteria_of(model, log_prob_of(d, model), d.w); });
}

}  // namespace cuem
