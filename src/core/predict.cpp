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
#include "engine/incomplete_rows.hpp"
#include "engine/missing_layout.hpp"
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

// log p(x_o) (N, may be null) and posteriors (N x K, may be null) of data with missing
// entries, in X's row order: the complete rows on the resources' device, the incomplete
// ones in float64 on the CPU; a row with nothing observed has log p = 0 (the marginal
// of no coordinates) and posteriors equal to the weights.
void missing_values(Resources& resources, const Model& model, DataView X, double* log_prob, double* resp) {
  const engine::MissingLayout L = engine::make_missing_layout(X, {}, false);
  const std::size_t N = X.n_rows, K = static_cast<std::size_t>(model.n_components);
  std::vector<double> lp(log_prob ? L.n_rows : 0), r(resp ? L.n_rows * K : 0);
  double* lp_at = log_prob ? lp.data() : nullptr;
  double* r_at = resp ? r.data() : nullptr;
  if (L.n_complete > 0) {
    const ResourceOptions& o = resources.options();
    std::unique_ptr<Primitives> prims =
        make_primitives(L.complete_view(), {}, {o.device, o.precision, o.device_memory_limit, o.cuda_tuning}, nullptr,
                        &resources.impl().cuda_context);
    prims->posteriors(prepare(model), 0, L.n_complete, lp_at, r_at);
  }
  engine::incomplete_posteriors(L, model, lp_at ? lp_at + L.n_complete : nullptr,
                                r_at ? r_at + L.n_complete * K : nullptr);
  std::vector<char> seen(N, 0);
  for (std::size_t i = 0; i < L.n_rows; ++i) {
    const std::size_t row = L.order[i];
    seen[row] = 1;
    if (log_prob) log_prob[row] = lp[i];
    if (resp) std::copy(r.begin() + static_cast<std::ptrdiff_t>(i * K), r.begin() + static_cast<std::ptrdiff_t>((i + 1) * K),
                        resp + row * K);
  }
  for (std::size_t row = 0; row < N; ++row) {
    if (seen[row]) continue;
    if (log_prob) log_prob[row] = 0.0;
    if (resp) std::copy(model.weights.begin(), model.weights.end(), resp + row * K);
  }
}

// The evaluations of data with missing entries, from missing_values.
std::vector<double> missing_proba(Resources& res, const Model& m, DataView X) {
  std::vector<double> resp(X.n_rows * static_cast<std::size_t>(m.n_components));
  missing_values(res, m, X, nullptr, resp.data());
  return resp;
}

std::vector<int> missing_labels(Resources& res, const Model& m, DataView X) {
  const std::vector<double> resp = missing_proba(res, m, X);
  const std::size_t K = static_cast<std::size_t>(m.n_components);
  std::vector<int> labels(X.n_rows);
  for (std::size_t i = 0; i < X.n_rows; ++i) {
    const double* r = resp.data() + i * K;
    labels[i] = static_cast<int>(std::max_element(r, r + K) - r);
  }
  return labels;
}

std::vector<double> missing_log_prob(Resources& res, const Model& m, DataView X) {
  std::vector<double> lp(X.n_rows);
  missing_values(res, m, X, lp.data(), nullptr);
  return lp;
}

// Criteria over the rows with an observed entry (a fit skips the others).
Criteria missing_criteria(Resources& res, const Model& m, DataView X, WeightView w) {
  const std::vector<double> lp = missing_log_prob(res, m, X);
  std::vector<double> kept(X.n_rows);
  for (std::size_t i = 0; i < X.n_rows; ++i) {
    bool observed = false;
    for (std::size_t d = 0; d < X.n_cols && !observed; ++d) observed = !std::isnan(X.value(i, d));
    kept[i] = observed ? w.at(i) : 0.0;
  }
  return criteria_of(m, lp, WeightView(kept.data(), kept.size()));
}

// Runs f on X placed for this call on `where`'s device, after the checks.
template <typename F, typename G>
auto on_view(const Model& model, DataView X, const EvaluateOptions& where, F&& f, G&& with_missing) {
  const bool has_missing = validate_model_and_data(model, X, where.missing);
  Resources resources(resource_options(where));
  if (has_missing) return with_missing(resources);
  PlacedData data = PlacedData::Impl::unchecked(resources, X, {});
  return f(data.impl());
}

// Runs f on placed data after the model's checks.
template <typename F, typename G>
auto on_placed(PlacedData& data, const Model& model, F&& f, G&& with_missing) {
  validate_model_for(model, data.data().n_cols);
  PlacedData::Impl& d = data.impl();
  if (d.has_missing) return with_missing(*d.resources, d.X);
  return f(d);
}

}  // namespace

std::vector<double> predict_proba(const Model& model, DataView X, const EvaluateOptions& where) {
  return on_view(
      model, X, where, [&](PlacedData::Impl& d) { return proba_of(d, model); },
      [&](Resources& r) { return missing_proba(r, model, X); });
}

std::vector<int> predict(const Model& model, DataView X, const EvaluateOptions& where) {
  return on_view(
      model, X, where, [&](PlacedData::Impl& d) { return labels_of(d, model); },
      [&](Resources& r) { return missing_labels(r, model, X); });
}

std::vector<double> score_samples(const Model& model, DataView X, const EvaluateOptions& where) {
  return on_view(
      model, X, where, [&](PlacedData::Impl& d) { return log_prob_of(d, model); },
      [&](Resources& r) { return missing_log_prob(r, model, X); });
}

Criteria criteria(const Model& model, DataView X, const EvaluateOptions& where, WeightView w) {
  return on_view(
      model, X, where,
      [&](PlacedData::Impl& d) {
        validate_weights(w, X);
        return criteria_of(model, log_prob_of(d, model), w);
      },
      [&](Resources& r) {
        validate_weights(w, X);
        return missing_criteria(r, model, X, w);
      });
}

double score(const Model& model, DataView X, const EvaluateOptions& where, WeightView w) {
  return criteria(model, X, where, w).score;
}

double bic(const Model& model, DataView X, WeightView w) { return criteria(model, X, {}, w).bic; }

double aic(const Model& model, DataView X, WeightView w) { return criteria(model, X, {}, w).aic; }

std::vector<double> predict_proba(PlacedData& data, const Model& model) {
  return on_placed(
      data, model, [&](PlacedData::Impl& d) { return proba_of(d, model); },
      [&](Resources& r, DataView X) { return missing_proba(r, model, X); });
}

std::vector<int> predict(PlacedData& data, const Model& model) {
  return on_placed(
      data, model, [&](PlacedData::Impl& d) { return labels_of(d, model); },
      [&](Resources& r, DataView X) { return missing_labels(r, model, X); });
}

std::vector<double> score_samples(PlacedData& data, const Model& model) {
  return on_placed(
      data, model, [&](PlacedData::Impl& d) { return log_prob_of(d, model); },
      [&](Resources& r, DataView X) { return missing_log_prob(r, model, X); });
}

Criteria criteria(PlacedData& data, const Model& model) {
  return on_placed(
      data, model, [&](PlacedData::Impl& d) { return criteria_of(model, log_prob_of(d, model), d.w); },
      [&](Resources& r, DataView X) { return missing_criteria(r, model, X, data.impl().w); });
}

}  // namespace cuem
