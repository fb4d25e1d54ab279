#include "core/missing_range_model.hpp"

#include <algorithm>
#include <utility>

#include "core/incremental_bound.hpp"
#include "core/m_step.hpp"
#include "core/make_incomplete_rows.hpp"
#include "engine/incomplete_rows.hpp"
#include "engine/missing_gmm_model.hpp"
#include "engine/missing_layout.hpp"
#include "init/kmeans.hpp"

namespace cuem {

struct MissingRangeModel::Placed {
  engine::MissingLayout layout;
  std::unique_ptr<Primitives> filled, complete;
  std::unique_ptr<engine::IncompleteRows> incomplete;
  KMeansShared shared;
  std::unique_ptr<engine::MissingDataGaussianMixtureEM> model;
};

MissingRangeModel::MissingRangeModel(DataView X, WeightView w, std::size_t begin, const FitOptions& o,
                                     const PrimitivesRequest& request, std::shared_ptr<cuda::DeviceContext>* context,
                                     bool keep, bool require_columns)
    : X_(X), w_(w), o_(o), request_(request), context_(context), require_columns_(require_columns) {
  std::unique_ptr<Placed> p = place(&notice_);
  const engine::MissingLayout& L = p->layout;
  summary_ = L.summary;
  for (std::size_t& row : summary_.first_empty_rows) row += begin;
  for (const engine::MissingPattern& pattern : L.patterns) patterns_.insert(pattern.missing);
  observed_.assign(X.n_cols, L.n_complete > 0);  // a complete row observes every column
  for (const engine::MissingPattern& pattern : L.patterns)
    for (int d : pattern.observed) observed_[static_cast<std::size_t>(d)] = true;
  informative_ = L.n_rows;
  if (!L.weights.empty())
    informative_ = static_cast<std::size_t>(
        std::count_if(L.weights.begin(), L.weights.end(), [](double v) { return v > 0.0; }));
  unit_roundoff_ = p->model->unit_roundoff();
  description_ = (p->complete ? p->complete->description() : std::string(p->filled->name())) +
                 "; rows with missing entries: " + p->incomplete->name();
  if (keep) kept_ = std::move(p);
}

MissingRangeModel::~MissingRangeModel() = default;

std::unique_ptr<MissingRangeModel::Placed> MissingRangeModel::place(std::string* notice) const {
  auto p = std::make_unique<Placed>();
  p->layout = engine::make_missing_layout(X_, w_, require_columns_);
  const engine::MissingLayout& L = p->layout;
  p->filled = make_primitives(L.view(), L.weight_view(), request_, notice, context_);
  if (L.n_complete > 0)
    p->complete = make_primitives(L.complete_view(), L.complete_weight_view(), request_, nullptr, context_);
  p->incomplete = make_incomplete_rows(L, request_, *p->filled, context_);
  for (Primitives* prims : {p->filled.get(), p->complete.get()})
    if (prims) {
      prims->reserve(o_.covariance_type, o_.n_components);
      if (o_.interrupted) prims->set_interrupt(o_.interrupted);
    }
  p->model = std::make_unique<engine::MissingDataGaussianMixtureEM>(*p->filled, L.view(), p->complete.get(),
                                                                    *p->incomplete, o_, p->shared);
  return p;
}

Model MissingRangeModel::initialize(std::uint64_t seed, std::vector<std::string>* notices) {
  if (kept_) return kept_->model->initialize(seed, notices);
  return place(nullptr)->model->initialize(seed, notices);
}

SufficientStats MissingRangeModel::e_step(const Model& m) {
  if (kept_) return kept_->model->e_step(m);
  return place(nullptr)->model->e_step(m);
}

Model MissingRangeModel::m_step(const SufficientStats& s) const { return cuem::m_step(s, o_.reg_covar); }

double MissingRangeModel::complete_log_likelihood(const SufficientStats& s, const Model& m) const {
  return expected_complete_log_likelihood(s, m);
}

}  // namespace cuem
