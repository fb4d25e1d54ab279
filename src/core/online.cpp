// Stepwise EM for the Gaussian mixture (include/cuem/online.hpp): each batch placed as
// its own primitives, the engine's Gaussian model over them, the stepwise driver
// (src/engine/stepwise_driver.hpp) across batches; and the statistics API.
#include "cuem/online.hpp"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/m_step.hpp"
#include "core/missing_range_model.hpp"
#include "core/online_stats.hpp"
#include "core/prepared_params.hpp"
#include "core/rng.hpp"
#include "core/validate.hpp"
#include "cuem/errors.hpp"
#include "engine/gmm_model.hpp"
#include "engine/placed_data.hpp"
#include "engine/primitives.hpp"
#include "engine/stepwise_driver.hpp"

namespace cuem {

struct OnlineGaussianMixture::Impl {
  FitOptions options;
  engine::StepwiseEM<engine::GaussianMixtureEM> em;
  std::shared_ptr<cuda::DeviceContext> cuda_context;  // one device context across batches
  std::string device;
  std::vector<std::string> notices;
  Model empty;

  Impl(const FitOptions& o, const OnlineOptions& online)
      : options(o), em(engine::StepwiseSchedule{online.learning_decay, online.learning_offset}) {
    options.on_iteration = nullptr;
  }
};

OnlineGaussianMixture::OnlineGaussianMixture(const FitOptions& options, const OnlineOptions& online) {
  impl_ = std::make_unique<Impl>(options, online);
}

OnlineGaussianMixture::~OnlineGaussianMixture() = default;
OnlineGaussianMixture::OnlineGaussianMixture(OnlineGaussianMixture&&) noexcept = default;
OnlineGaussianMixture& OnlineGaussianMixture::operator=(OnlineGaussianMixture&&) noexcept = default;

double OnlineGaussianMixture::partial_fit(DataView X, WeightView w) {
  Impl& s = *impl_;
  const FitOptions& o = s.options;
  if (X.n_rows == 0) throw DataError("an empty batch (0 rows): a step needs at least one point");
  const bool first = !s.em.started();
  if (!first && X.n_cols != static_cast<std::size_t>(s.em.params().n_features))
    throw DataError("the batch has " + std::to_string(X.n_cols) + " columns; the model was started on " +
                    std::to_string(s.em.params().n_features) + " (every batch must have the same features)");
  const bool has_missing = validate_data(X, o.missing);
  if (first) validate_options(o, X);
  validate_weights(w, X, first ? o.n_components : 1);

  const engine::ThreadCountScope threads(o.n_threads);
  const PrimitivesRequest request{o.device, o.precision, o.device_memory_limit, o.cuda_tuning};
  // A batch with missing entries (missing = marginalize) takes the missing-data E-step;
  // its rows with every entry missing add nothing.
  if (has_missing) {
    MissingRangeModel batch(X, w, 0, o, request, &s.cuda_context, true, first);
    if (batch.informative_rows() < (first ? static_cast<std::size_t>(o.n_components) : 1))
      throw DataError("the batch has " + std::to_string(batch.informative_rows()) +
                      " rows with an observed entry" + (w.empty() ? "" : " and a positive weight") + "; " +
                      (first ? "the first batch needs n_components = " + std::to_string(o.n_components)
                             : std::string("a step needs at least one")));
    return step(s, batch, batch.notice(), batch.description());
  }
  std::string notice;
  std::unique_ptr<Primitives> prims = make_primitives(X, w, request, &notice, &s.cuda_context);
  if (o.interrupted) prims->set_interrupt(o.interrupted);
  prims->reserve(o.covariance_type, o.n_components);
  KMeansShared shared;
  engine::GaussianMixtureEM batch(*prims, X, o, shared);
  return step(s, batch, notice, prims->description());
}

template <class Batch>
double OnlineGaussianMixture::step(Impl& s, Batch& batch, const std::string& notice, const std::string& device) {
  if (!s.em.started()) {
    std::vector<std::string> notices;
    if (!notice.empty()) notices.push_back(notice);
    Model start = batch.initialize(rng::hash(s.options.seed, rng::kInitSeed, 0), &notices);
    s.em.start(std::move(start));
    try {
      const double ll = s.em.step(batch);
      s.notices = std::move(notices);
      s.device = device;
      return ll;
    } catch (...) {
      s.em = engine::StepwiseEM<engine::GaussianMixtureEM>(s.em.schedule());  // not started after all
      throw;
    }
  }
  const double ll = s.em.step(batch);
  s.device = device;
  return ll;
}

bool OnlineGaussianMixture::initialized() const noexcept { return impl_->em.steps() > 0; }
const Model& OnlineGaussianMixture::model() const noexcept {
  return impl_->em.steps() > 0 ? impl_->em.params() : impl_->empty;
}
std::int64_t OnlineGaussianMixture::n_steps() const noexcept { return impl_->em.steps(); }
std::size_t OnlineGaussianMixture::n_points_seen() const noexcept { return impl_->em.stats().n_points; }
std::string OnlineGaussianMixture::device() const { return impl_->device; }
const std::vector<std::string>& OnlineGaussianMixture::notices() const noexcept { return impl_->notices; }

// ---- the statistics API ---------------------------------------------------------------

namespace {

MixtureStatistics to_public(SufficientStats&& s) {
  MixtureStatistics r;
  r.covariance_type = s.type;
  r.n_components = s.K;
  r.n_features = s.D;
  r.shift = std::move(s.shift);
  r.nk = std::move(s.nk);
  r.s1 = std::move(s.s1);
  r.s2 = std::move(s.s2);
  r.log_likelihood = s.log_likelihood;
  r.weight = s.weight;
  r.n_points = s.n_points;
  return r;
}

SufficientStats to_internal(const MixtureStatistics& m) {
  const std::size_t K = static_cast<std::size_t>(m.n_components), D = static_cast<std::size_t>(m.n_features);
  if (m.n_components < 1 || m.n_features < 1 || m.shift.size() != K * D || m.nk.size() != K ||
      m.s1.size() != K * D || m.s2.size() != s2_size(m.covariance_type, m.n_components, m.n_features))
    throw InvalidArgument("mixture statistics with inconsistent shapes (K = " + std::to_string(m.n_components) +
                          ", D = " + std::to_string(m.n_features) + ")");
  SufficientStats s;
  s.type = m.covariance_type;
  s.K = m.n_components;
  s.D = m.n_features;
  s.shift = m.shift;
  s.nk = m.nk;
  s.s1 = m.s1;
  s.s2 = m.s2;
  s.log_likelihood = m.log_likelihood;
  s.weight = m.weight;
  s.n_points = m.n_points;
  return s;
}

}  // namespace

MixtureStatistics mixture_statistics(const Model& model, DataView X, const EvaluateOptions& where, WeightView w) {
  validate_model_and_data(model, X, MissingPolicy::error);
  if (!w.empty()) validate_weights(w, X, 1);
  const PrimitivesRequest request{where.device, where.precision, where.device_memory_limit, where.cuda_tuning};
  std::unique_ptr<Primitives> prims = make_primitives(X, w, request);
  prims->reserve(model.covariance_type, model.n_components);
  return to_public(prims->gaussian_estep(prepare(model)));
}

void add_statistics(MixtureStatistics& into, const MixtureStatistics& part) {
  SufficientStats a = to_internal(into);
  const SufficientStats b = to_internal(part);
  if (a.type != b.type || a.K != b.K || a.D != b.D)
    throw InvalidArgument("adding mixture statistics of different shapes or covariance types");
  a.merge(b);
  into = to_public(std::move(a));
}

Model model_from_statistics(const MixtureStatistics& s, double reg_covar) {
  return m_step(to_internal(s), reg_covar);
}

}  // namespace cuem
