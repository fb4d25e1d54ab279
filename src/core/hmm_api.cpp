// The public Gaussian HMM calls (include/cuem/hmm.hpp): checks at the boundary, the frames
// placed once, then the engine's HMM model under the batch driver or one chain pass.
#include <algorithm>
#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/hmm_fit.hpp"
#include "core/linalg.hpp"
#include "core/rng.hpp"
#include "core/validate.hpp"
#include "cuem/errors.hpp"
#include "cuem/gmm_hmm.hpp"
#include "cuem/hmm.hpp"
#include "engine/batch_driver.hpp"
#include "engine/gmm_hmm_model.hpp"
#include "engine/hmm_chain.hpp"
#include "engine/hmm_device_chain.hpp"
#include "engine/hmm_model.hpp"
#include "engine/hmm_parameter_map.hpp"
#include "engine/incremental_driver.hpp"
#include "engine/interrupt_scope.hpp"
#include "engine/missing_layout.hpp"
#include "engine/placed_data.hpp"
#include "engine/squarem_driver.hpp"
#include "engine/stepwise_driver.hpp"

namespace cuem {
namespace {

std::string num(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.6g", v);
  return b;
}

void require(bool ok, const std::string& message) {
  if (!ok) throw InvalidArgument(message);
}

// hmmlearn's rule for a distribution (numpy's allclose with its default tolerances).
bool sums_to_one(const double* p, std::size_t n) {
  double s = 0.0;
  for (std::size_t i = 0; i < n; ++i) s += p[i];
  return std::abs(s - 1.0) <= 1e-8 + 1e-5;
}

void check_distribution(const std::vector<double>& p, std::size_t rows, std::size_t K, const char* name) {
  require(p.size() == rows * K, std::string(name) + " has " + std::to_string(p.size()) + " values, expected " +
                                    std::to_string(rows * K));
  for (std::size_t i = 0; i < p.size(); ++i)
    require(std::isfinite(p[i]) && p[i] >= 0.0,
            std::string(name) + "[" + std::to_string(i) + "] = " + num(p[i]) + " is not a probability");
  for (std::size_t r = 0; r < rows; ++r) {
    if (sums_to_one(p.data() + r * K, K)) continue;
    double s = 0.0;
    for (std::size_t k = 0; k < K; ++k) s += p[r * K + k];
    throw InvalidArgument(rows == 1 ? std::string(name) + " sums to " + num(s) + ", not 1"
                                    : std::string(name) + " row " + std::to_string(r) + " sums to " + num(s) +
                                          ", not 1: every row of a transition matrix is a distribution");
  }
}

void check_letters(const std::string& letters, const char* name, const std::string& allowed = "stmc") {
  for (char c : letters)
    require(allowed.find(c) != std::string::npos,
            std::string(name) + " = '" + letters + "' holds '" + c + "': use the letters of '" + allowed + "'");
}

void check_prior(const std::vector<double>& v, std::size_t n, const char* name) {
  require(v.size() == 1 || v.size() == n, std::string(name) + " has " + std::to_string(v.size()) +
                                              " values: give one, or " + std::to_string(n));
  for (double x : v) require(std::isfinite(x), std::string(name) + " holds a value that is not finite");
}

}  // namespace

void validate_hmm_options(const HmmOptions& o, DataView X) {
  const std::size_t K = static_cast<std::size_t>(std::max(o.n_components, 1)), D = X.n_cols;
  require(o.n_components >= 1, "n_components must be at least 1, got " + std::to_string(o.n_components));
  require(o.n_iter >= 1, "n_iter must be at least 1, got " + std::to_string(o.n_iter));
  require(o.n_init >= 1, "n_init must be at least 1, got " + std::to_string(o.n_init));
  require(std::isfinite(o.tol) && o.tol >= 0.0, "tol must be a finite number >= 0, got " + num(o.tol));
  require(std::isfinite(o.min_covar) && o.min_covar >= 0.0, "min_covar must be >= 0, got " + num(o.min_covar));
  check_letters(o.params, "params");
  check_letters(o.init_params, "init_params");
  const auto starts = [&](char c) { return o.init_params.find(c) != std::string::npos; };
  if (starts('m'))
    require(X.n_rows >= K, "n_components = " + std::to_string(K) + " is more than the " + std::to_string(X.n_rows) +
                               " frames that k-means starts the means from");
  if (starts('c')) require(X.n_rows >= 2, "the covariance start needs at least 2 frames");
  if (!starts('s')) check_distribution(o.startprob_init, 1, K, "startprob (init_params without 's')");
  if (!starts('t')) check_distribution(o.transmat_init, K, K, "transmat (init_params without 't')");
  if (!starts('m'))
    require(o.means_init.size() == K * D, "means (init_params without 'm') need n_components x n_features = " +
                                              std::to_string(K * D) + " values, got " +
                                              std::to_string(o.means_init.size()));
  if (!starts('c'))
    require(o.covars_init.size() == covariance_size(o.covariance_type, static_cast<int>(K), static_cast<int>(D)),
            "covars (init_params without 'c') need " +
                std::to_string(covariance_size(o.covariance_type, static_cast<int>(K), static_cast<int>(D))) +
                " values for covariance_type '" + to_string(o.covariance_type) + "', got " +
                std::to_string(o.covars_init.size()));
  const HmmPriors& p = o.priors;
  check_prior(p.startprob_prior, K, "startprob_prior");
  check_prior(p.transmat_prior, K * K, "transmat_prior");
  check_prior(p.means_prior, K * D, "means_prior");
  check_prior(p.means_weight, K, "means_weight");
  const std::size_t cov_terms = o.covariance_type == CovarianceType::spherical
                                    ? K * D
                                    : covariance_size(o.covariance_type, static_cast<int>(K), static_cast<int>(D));
  check_prior(p.covars_prior, cov_terms, "covars_prior");
  require(std::isfinite(p.covars_weight), "covars_weight must be finite");
  require(o.incremental_blocks >= 1, "incremental_blocks must be at least 1, got " + std::to_string(o.incremental_blocks));
  if (o.incremental_blocks > 1)
    require(o.acceleration == Acceleration::none, "incremental_blocks > 1 and SQUAREM do not combine: choose one");
  validate_block_budget(o.max_block_steps, o.incremental_blocks);
}

namespace {

ResourceOptions resources_of(const EvaluateOptions& where) {
  return {where.device, where.precision, 0, where.device_memory_limit, where.cuda_tuning};
}

// Returns whether X holds missing entries (allowed by `missing`).
bool check_model_for(const HmmModel& model, DataView X, MissingPolicy missing) {
  validate_hmm(model);
  const bool has_missing = validate_data(X, missing);
  require(X.n_cols == static_cast<std::size_t>(model.n_features()),
          "the data have " + std::to_string(X.n_cols) + " features and the model " +
              std::to_string(model.n_features()));
  return has_missing;
}

// Frames with missing entries placed for a call: their layout (require_columns for a fit)
// and primitives over its complete rows.
struct PlacedMissingFrames {
  engine::MissingLayout layout;
  std::optional<PlacedData> complete;
  engine::MissingFrames frames;

  PlacedMissingFrames(Resources& resources, DataView X, bool require_columns)
      : layout(engine::make_missing_layout(X, {}, require_columns)) {
    if (layout.n_complete > 0) complete.emplace(PlacedData::Impl::unchecked(resources, layout.complete_view(), {}));
    frames = {&layout, complete ? &complete->impl().primitives() : nullptr, X.n_rows};
  }
};

std::string empty_frames_notice(const MissingSummary& s) {
  std::string rows;
  for (std::size_t i = 0; i < s.first_empty_rows.size(); ++i) rows += (i ? ", " : "") + std::to_string(s.first_empty_rows[i]);
  if (s.empty_rows > s.first_empty_rows.size()) rows += ", ...";
  return std::to_string(s.empty_rows) + " frame" + (s.empty_rows == 1 ? " has" : "s have") +
         " every entry missing: emission 1 in every state there, so the chain passes through (frame " + rows +
         ", 0-based)";
}

// The batch driver (or SQUAREM) over a prepared model, and the fit's result.
// The batch driver's outcome into a fit result (either HMM kind): its notices after the
// caller's, the model, and the trace with what was seen of it.
template <typename Run, typename Result>
void take_run(Run& run, Result& r) {
  r.notices.insert(r.notices.end(), run.notices.begin(), run.notices.end());
  r.model = std::move(run.params);
  r.converged = run.converged;
  r.n_iter = run.n_iter;
  r.lower_bound = run.lower_bound;
  r.best_init = run.best_init;
  r.trace = std::move(run.trace);
  r.n_decreases = run.n_decreases;
  r.max_decrease = run.max_decrease;
}

}  // namespace

engine::BatchOptions hmm_batch_options(const HmmOptions& o) {
  return {o.n_init, o.n_iter, o.tol, o.seed, o.on_iteration, o.max_block_steps};
}

GmmHmmFitResult gmm_hmm_fit_result(engine::BatchResult<GmmHmmModel>& run, const std::string& device,
                                   std::vector<std::string> notices) {
  GmmHmmFitResult r;
  r.notices = std::move(notices);
  take_run(run, r);
  r.device = device;
  return r;
}

HmmFitResult hmm_fit_result(engine::BatchResult<HmmModel>& run, const std::string& device,
                            const std::vector<int>& empty_states, std::vector<std::string> notices) {
  HmmFitResult r;
  r.notices = std::move(notices);
  take_run(run, r);
  r.convergence_rate = run.convergence_rate;
  r.n_estep_passes = run.n_estep_passes;
  r.device = device;
  if (!empty_states.empty()) {
    std::string list;
    for (std::size_t i = 0; i < empty_states.size(); ++i) list += (i ? ", " : "") + std::to_string(empty_states[i]);
    r.notices.push_back("state" + std::string(empty_states.size() == 1 ? " " : "s ") + list +
                        " (0-based) received no weight in some iteration and kept their parameters there, as an "
                        "empty mixture component does; use fewer states or another start");
  }
  return r;
}

namespace {

HmmFitResult run_hmm_fit(engine::GaussianHmmEM& model, const HmmOptions& o, const Primitives& prims,
                         std::vector<std::string> notices,
                         const std::vector<engine::GaussianHmmEM*>* blocks = nullptr) {
  const engine::BatchOptions batch = hmm_batch_options(o);
  engine::BatchResult<HmmModel> run = blocks                                      ? engine::run_incremental_em(model, *blocks, batch)
                                      : o.acceleration == Acceleration::squarem ? engine::run_squarem_em(model, batch)
                                                                                : engine::run_batch_em(model, batch);
  return hmm_fit_result(run, prims.description(), model.empty_states(), std::move(notices));
}

// fit_hmm on frames with missing entries: the start from the layout's filled copy, the
// E-step from the complete frames' primitives and the incomplete frames' marginals.
HmmFitResult fit_missing_hmm(Resources& resources, DataView X, const std::vector<std::size_t>& offsets,
                             const HmmOptions& o) {
  const PlacedMissingFrames missing(resources, X, true);
  const engine::MissingLayout& layout = missing.layout;
  if (layout.n_rows == 0) throw DataError("every frame has every entry missing: there is nothing to fit");
  const auto starts = [&](char c) { return o.init_params.find(c) != std::string::npos; };
  if (starts('m') && layout.n_rows < static_cast<std::size_t>(o.n_components))
    throw DataError("n_components = " + std::to_string(o.n_components) + " is more than the " +
                    std::to_string(layout.n_rows) + " frames with an observed entry that k-means starts the means from");
  PlacedData filled = PlacedData::Impl::unchecked(resources, layout.view(), {});
  PlacedData::Impl& placed = filled.impl();
  Primitives& prims = placed.primitives();
  Primitives* complete = missing.frames.complete;
  const engine::InterruptScope interrupt_scope(o.interrupted, {&prims, complete});
  prims.reserve(o.covariance_type, o.n_components);
  if (complete) complete->reserve(o.covariance_type, o.n_components);
  engine::GaussianHmmEM model(prims, placed.X, missing.frames, offsets, o, placed.kmeans);
  std::vector<std::string> notices;
  if (!placed.notice.empty()) notices.push_back(placed.notice);
  if (layout.summary.empty_rows > 0) notices.push_back(empty_frames_notice(layout.summary));
  return run_hmm_fit(model, o, prims, std::move(notices));
}

// Incremental EM's blocks: consecutive whole sequences of about N / B frames each, every
// block its own placed frames and model over them.
struct SequenceBlocks {
  std::vector<PlacedData> placed;
  std::vector<std::vector<std::size_t>> offsets;
  std::vector<std::unique_ptr<engine::GaussianHmmEM>> owned;
  std::vector<engine::GaussianHmmEM*> models;

  SequenceBlocks(Resources& resources, DataView X, const std::vector<std::size_t>& seq, const HmmOptions& o) {
    const std::size_t S = seq.size() - 1, B = static_cast<std::size_t>(o.incremental_blocks), N = X.n_rows;
    if (B > S)
      throw InvalidArgument("incremental_blocks = " + std::to_string(B) + " is more than the " + std::to_string(S) +
                            " sequences: a block holds whole sequences; use at most " + std::to_string(S));
    // first[b]: the first sequence of block b, the first whose start reaches b N / B, at
    // least one sequence a block.
    std::vector<std::size_t> first(B + 1, S);
    first[0] = 0;
    for (std::size_t b = 1; b < B; ++b) {
      std::size_t q = first[b - 1] + 1;
      while (q < S - (B - b) && seq[q] < b * N / B) ++q;
      first[b] = q;
    }
    placed.reserve(B);
    for (std::size_t b = 0; b < B; ++b) {
      const std::size_t lo = seq[first[b]], hi = seq[first[b + 1]];
      DataView part = X;
      part.n_rows = hi - lo;
      if (part.data) part.data += lo * X.row_stride;
      else part.data_f32 += lo * X.row_stride;
      std::vector<std::size_t> off;
      for (std::size_t q = first[b]; q <= first[b + 1]; ++q) off.push_back(seq[q] - lo);
      offsets.push_back(std::move(off));
      placed.push_back(PlacedData::Impl::unchecked(resources, part, {}));
    }
    for (std::size_t b = 0; b < B; ++b) {  // after the vectors stop moving
      PlacedData::Impl& p = placed[b].impl();
      if (o.interrupted) p.primitives().set_interrupt(o.interrupted);
      p.primitives().reserve(o.covariance_type, o.n_components);
      owned.push_back(std::make_unique<engine::GaussianHmmEM>(p.primitives(), p.X, offsets[b], o, p.kmeans));
      models.push_back(owned.back().get());
    }
  }
};

}  // namespace

std::size_t gmm_hmm_covars_prior_size(CovarianceType type, int K, int M, int D) noexcept {
  const auto k = static_cast<std::size_t>(K), m = static_cast<std::size_t>(M), d = static_cast<std::size_t>(D);
  switch (type) {
    case CovarianceType::full: return k * m * d * d;
    case CovarianceType::tied: return k * d * d;
    case CovarianceType::diag: return k * m * d;
    case CovarianceType::spherical: return k * m;
  }
  return 0;
}

std::size_t gmm_hmm_covars_weight_size(CovarianceType type, int K, int M, int D) noexcept {
  const auto k = static_cast<std::size_t>(K), m = static_cast<std::size_t>(M), d = static_cast<std::size_t>(D);
  switch (type) {
    case CovarianceType::full: return k * m;
    case CovarianceType::tied: return k;
    case CovarianceType::diag: return k * m * d;
    case CovarianceType::spherical: return k * m;
  }
  return 0;
}

void validate_hmm(const HmmModel& m) {
  const int K = m.n_components(), D = m.n_features();
  require(K >= 1 && D >= 1, "the HMM has no states or no features");
  check_distribution(m.startprob, 1, static_cast<std::size_t>(K), "startprob");
  check_distribution(m.transmat, static_cast<std::size_t>(K), static_cast<std::size_t>(K), "transmat");
  require(m.emissions.means.size() == static_cast<std::size_t>(K) * D, "the HMM's means are not K x D");
  require(m.emissions.covariances.size() == covariance_size(m.covariance_type(), K, D),
          "the HMM's covariances do not match its covariance type");
  // Positive definite covariances (and the factors the E-step reads), from the covariances.
  engine::hmm_emissions(m.covariance_type(), K, D, m.emissions.means, m.emissions.covariances);
}

namespace {

// Statistics summed from E-steps: some frames, and no negative count.
void check_counts(double frames, const std::vector<double>& nk, const std::vector<double>& start,
                  const std::vector<double>& trans, const std::string& kind) {
  const auto non_negative = [](const std::vector<double>& v) {
    return std::all_of(v.begin(), v.end(), [](double x) { return x >= 0.0; });
  };
  require(frames > 0.0, kind + " statistics of no frames: sum the statistics of some sequences first");
  require(non_negative(nk) && non_negative(start) && non_negative(trans),
          kind + " statistics with a negative emission, start or transition count are no E-step's");
}

}  // namespace

std::vector<double> hmm_statistics(const HmmModel& model, DataView X, const std::vector<std::size_t>& lengths,
                                   const HmmEvaluateOptions& where) {
  require(where.missing == MissingPolicy::error, "hmm_statistics takes complete frames (no missing='marginalize')");
  check_model_for(model, X, MissingPolicy::error);
  const std::vector<std::size_t> offsets = engine::sequence_offsets(lengths, X.n_rows);
  Resources resources(resources_of(where));
  PlacedData data = PlacedData::Impl::unchecked(resources, X, {});
  PlacedData::Impl& placed = data.impl();
  Primitives& prims = placed.primitives();
  prims.reserve(model.covariance_type(), model.n_components());
  HmmOptions o;
  o.n_components = model.n_components();
  o.covariance_type = model.covariance_type();
  engine::GaussianHmmEM em(prims, placed.X, offsets, o, placed.kmeans);
  return engine::additive_parts(em.e_step(model));
}

HmmModel hmm_model_from_statistics(const HmmModel& model, const std::vector<double>& statistics,
                                   const HmmOptions& options) {
  validate_hmm(model);
  const std::size_t K = static_cast<std::size_t>(model.n_components()), D = static_cast<std::size_t>(model.n_features());
  check_letters(options.params, "params");
  const HmmPriors& p = options.priors;
  check_prior(p.startprob_prior, K, "startprob_prior");
  check_prior(p.transmat_prior, K * K, "transmat_prior");
  check_prior(p.means_prior, K * D, "means_prior");
  check_prior(p.means_weight, K, "means_weight");
  const CovarianceType type = model.covariance_type();
  check_prior(p.covars_prior,
              type == CovarianceType::spherical
                  ? K * D
                  : covariance_size(type, static_cast<int>(K), static_cast<int>(D)),
              "covars_prior");
  require(std::isfinite(p.covars_weight), "covars_weight must be finite");
  engine::HmmStats s = engine::hmm_zero_stats(model);
  const std::size_t n = engine::additive_parts(s).size();
  require(statistics.size() == n, "HMM statistics of " + std::to_string(statistics.size()) +
                                      " values for a model that takes " + std::to_string(n) +
                                      " (K = " + std::to_string(K) + ", D = " + std::to_string(D) + ", " +
                                      to_string(type) + ")");
  for (double v : statistics) require(std::isfinite(v), "HMM statistics hold a value that is not finite");
  engine::set_additive_parts(s, statistics);
  check_counts(s.weight, s.emission.nk, s.start, s.trans, "HMM");
  HmmOptions o = options;
  o.n_components = model.n_components();
  o.covariance_type = type;
  return engine::hmm_m_step(s, o);
}

HmmFitResult fit_hmm(DataView X, const std::vector<std::size_t>& lengths, const HmmOptions& o) {
  const bool has_missing = validate_data(X, o.missing);
  validate_hmm_options(o, X);
  const std::vector<std::size_t> offsets = engine::sequence_offsets(lengths, X.n_rows);
  Resources resources({o.device, o.precision, o.n_threads, o.device_memory_limit, {}});
  if (has_missing) {
    require(o.incremental_blocks == 1, "incremental_blocks > 1 does not take frames with missing entries yet");
    const engine::ThreadCountScope threads(o.n_threads);
    return fit_missing_hmm(resources, X, offsets, o);
  }
  PlacedData data = PlacedData::Impl::unchecked(resources, X, {});
  PlacedData::Impl& placed = data.impl();
  const engine::ThreadCountScope threads(o.n_threads);
  Primitives& prims = placed.primitives();
  const engine::InterruptScope interrupt_scope(o.interrupted, {&prims});
  prims.reserve(o.covariance_type, o.n_components);

  engine::GaussianHmmEM model(prims, placed.X, offsets, o, placed.kmeans);
  std::vector<std::string> notices;
  if (!placed.notice.empty()) notices.push_back(placed.notice);
  if (o.incremental_blocks > 1) {
    const SequenceBlocks blocks(resources, X, offsets, o);
    return run_hmm_fit(model, o, prims, std::move(notices), &blocks.models);
  }
  return run_hmm_fit(model, o, prims, std::move(notices));
}

namespace {

// The frames of X under a checked model: the sequences' offsets and the emissions from
// primitives placed for the call.
struct EvaluatedFrames {
  std::vector<std::size_t> offsets;
  engine::EmissionFrames frames;
  int chain_device = -1;  // where the chain runs on a CUDA device (engine::chain_device)
};

// chain_pass on the frames' device where they have one, else on the host.
double run_chain(const HmmModel& chain, EvaluatedFrames& e, double* start) {
  return e.chain_device >= 0 ? engine::device_chain_pass(e.chain_device, chain, e.offsets, e.frames, start, nullptr)
                             : engine::chain_pass(chain, e.offsets, e.frames, start, nullptr);
}

EvaluatedFrames evaluate_frames(const HmmModel& model, DataView X, const std::vector<std::size_t>& lengths,
                                const HmmEvaluateOptions& where) {
  const bool has_missing = check_model_for(model, X, where.missing);
  EvaluatedFrames out;
  out.offsets = engine::sequence_offsets(lengths, X.n_rows);
  Resources resources(resources_of(where));
  if (has_missing) {
    const PlacedMissingFrames missing(resources, X, false);
    engine::emission_frames(missing.frames, model, out.frames);
    return out;
  }
  PlacedData data = PlacedData::Impl::unchecked(resources, X, {});
  out.frames = engine::emission_frames(data.impl().primitives(), model);
  out.chain_device = engine::chain_device(data.impl().primitives(), model.n_components());
  return out;
}

// Viterbi over every sequence of e into out (states sized), on exact log-densities where
// a state's normalised emission underflows (engine::exact_log_emissions).
void viterbi_frames(const std::vector<double>& startprob, const std::vector<double>& transmat,
                    const EvaluatedFrames& e, const Model& components, int M, DataView X, HmmDecoding& out) {
  const int K = static_cast<int>(startprob.size());
  const std::vector<double> log_e = engine::exact_log_emissions(e.frames, components, M, X);
  if (e.chain_device >= 0) {
    out.log_probability = engine::device_viterbi_log(e.chain_device, startprob, transmat, e.offsets, log_e.data(),
                                                     out.states.data());
    return;
  }
  std::vector<double> work;
  for (std::size_t q = 0; q + 1 < e.offsets.size(); ++q) {
    const std::size_t lo = e.offsets[q];
    out.log_probability += engine::viterbi_log(startprob.data(), transmat.data(), K, e.offsets[q + 1] - lo,
                                               log_e.data() + lo * static_cast<std::size_t>(K),
                                               out.states.data() + lo, work);
  }
}

// The most probable state of each frame from the posteriors (T x K).
void map_states(const HmmPosteriors& p, std::size_t K, HmmDecoding& out) {
  for (std::size_t t = 0; t < out.states.size(); ++t) {
    const double* g = p.posteriors.data() + t * K;
    out.states[t] = static_cast<int>(std::max_element(g, g + K) - g);
  }
  out.log_probability = p.log_likelihood;
}

}  // namespace

HmmPosteriors posteriors_hmm(const HmmModel& model, DataView X, const std::vector<std::size_t>& lengths,
                             const HmmEvaluateOptions& where) {
  EvaluatedFrames e = evaluate_frames(model, X, lengths, where);
  HmmPosteriors out;
  std::vector<double> start(static_cast<std::size_t>(model.n_components()));
  out.log_likelihood = run_chain(model, e, start.data());
  out.posteriors = std::move(e.frames.b);
  return out;
}

double score_hmm(const HmmModel& model, DataView X, const std::vector<std::size_t>& lengths,
                 const HmmEvaluateOptions& where) {
  EvaluatedFrames e = evaluate_frames(model, X, lengths, where);
  return run_chain(model, e, nullptr);
}

HmmDecoding decode_hmm(const HmmModel& model, DataView X, const std::vector<std::size_t>& lengths,
                       const std::string& algorithm, const HmmEvaluateOptions& where) {
  require(algorithm == "viterbi" || algorithm == "map",
          "algorithm '" + algorithm + "' is not one of 'viterbi' and 'map'");
  HmmDecoding out;
  out.states.resize(X.n_rows);
  if (algorithm == "map") {
    map_states(posteriors_hmm(model, X, lengths, where), static_cast<std::size_t>(model.n_components()), out);
    return out;
  }
  const EvaluatedFrames e = evaluate_frames(model, X, lengths, where);
  const Model emissions = engine::hmm_emissions(model.covariance_type(), model.n_components(), model.n_features(),
                                                model.emissions.means, model.emissions.covariances);
  viterbi_frames(model.startprob, model.transmat, e, emissions, 1, X, out);
  return out;
}

namespace {

// One sequence of n frames from a chain whose states emit from `components` (M
// consecutive ones a state, chosen by `weights` (K x M; M = 1: the state's own)). The
// state of frame t takes the sampler's component stream at counter t, the component within
// it the same stream at counter n + t.
HmmSamples sample_chain(const std::vector<double>& startprob, const std::vector<double>& transmat,
                        const Model& components, int M, const std::vector<double>& weights, std::size_t n,
                        std::uint64_t seed) {
  const int K = static_cast<int>(startprob.size()), D = components.n_features;
  const std::size_t uK = static_cast<std::size_t>(K), uD = static_cast<std::size_t>(D), DD = uD * uD;
  const std::size_t uM = static_cast<std::size_t>(M);
  // Lower Cholesky factors of the covariances (full and tied); square roots otherwise.
  std::vector<double> factors;
  const CovarianceType type = components.covariance_type;
  if (type == CovarianceType::full || type == CovarianceType::tied) {
    factors = components.covariances;
    for (std::size_t off = 0; off < factors.size(); off += DD) linalg::cholesky_lower(factors.data() + off, D);
  }
  const auto draw = [&](const double* p, std::size_t count, std::uint64_t counter) {
    const double u = rng::uniform(seed, rng::kSampleComponent, counter);
    double acc = 0.0;
    for (std::size_t k = 0; k < count; ++k)
      if (u < (acc += p[k])) return k;
    std::size_t last = count - 1;  // rounding left u above the sum: the last of positive probability
    while (last > 0 && p[last] == 0.0) --last;
    return last;
  };
  HmmSamples out;
  out.X.resize(n * uD);
  out.states.resize(n);
  std::vector<double> z(uD);
  std::size_t state = draw(startprob.data(), uK, 0);
  for (std::size_t t = 0; t < n; ++t) {
    if (t > 0) state = draw(transmat.data() + state * uK, uK, t);
    out.states[t] = static_cast<int>(state);
    const std::size_t c = state * uM + (uM > 1 ? draw(weights.data() + state * uM, uM, n + t) : 0);
    const double* mu = components.means.data() + c * uD;
    for (std::size_t d = 0; d < uD; ++d) z[d] = rng::normal(seed, rng::kSampleNormal, t * uD + d);
    double* x = out.X.data() + t * uD;
    switch (type) {
      case CovarianceType::full:
      case CovarianceType::tied: {
        const double* L = factors.data() + (type == CovarianceType::full ? c * DD : 0);
        for (std::size_t i = 0; i < uD; ++i) {
          double s = 0.0;
          for (std::size_t j = 0; j <= i; ++j) s += L[i * uD + j] * z[j];
          x[i] = mu[i] + s;
        }
        break;
      }
      case CovarianceType::diag:
        for (std::size_t d = 0; d < uD; ++d) x[d] = mu[d] + std::sqrt(components.covariances[c * uD + d]) * z[d];
        break;
      case CovarianceType::spherical:
        for (std::size_t d = 0; d < uD; ++d) x[d] = mu[d] + std::sqrt(components.covariances[c]) * z[d];
        break;
    }
  }
  return out;
}

}  // namespace

HmmSamples sample_hmm(const HmmModel& model, std::size_t n, std::uint64_t seed) {
  validate_hmm(model);
  require(n >= 1, "sample needs n >= 1 frames");
  return sample_chain(model.startprob, model.transmat, model.emissions, 1, {}, n, seed);
}

double n_parameters(const HmmModel& m) noexcept {
  const double K = m.n_components(), D = m.n_features();
  double c = 0;
  switch (m.covariance_type()) {
    case CovarianceType::spherical: c = K; break;
    case CovarianceType::diag: c = K * D; break;
    case CovarianceType::full: c = K * D * (D + 1) / 2; break;
    case CovarianceType::tied: c = D * (D + 1) / 2; break;
  }
  return (K - 1) + K * (K - 1) + K * D + c;
}

// ---- GMMHMM (include/cuem/gmm_hmm.hpp) ---------------------------------------------------

namespace {

std::size_t gmm_hmm_covars_size(CovarianceType t, std::size_t K, std::size_t M, std::size_t D) {
  switch (t) {
    case CovarianceType::spherical: return K * M;
    case CovarianceType::diag: return K * M * D;
    case CovarianceType::full: return K * M * D * D;
    case CovarianceType::tied: return K * D * D;
  }
  return 0;
}

void check_size(const std::vector<double>& v, std::size_t n, const std::string& name) {
  require(v.size() == n, name + " has " + std::to_string(v.size()) + " values, expected " + std::to_string(n));
}

}  // namespace

void validate_gmm_hmm_options(const GmmHmmOptions& o, DataView X) {
  require(o.n_components >= 1, "n_components must be at least 1, got " + std::to_string(o.n_components));
  require(o.n_mix >= 1, "n_mix must be at least 1, got " + std::to_string(o.n_mix));
  require(o.n_iter >= 1, "n_iter must be at least 1, got " + std::to_string(o.n_iter));
  require(o.n_init >= 1, "n_init must be at least 1, got " + std::to_string(o.n_init));
  require(std::isfinite(o.tol) && o.tol >= 0.0, "tol must be a finite number >= 0, got " + num(o.tol));
  require(std::isfinite(o.min_covar) && o.min_covar >= 0.0, "min_covar must be >= 0, got " + num(o.min_covar));
  check_letters(o.params, "params", "stmcw");
  check_letters(o.init_params, "init_params", "stmcw");
  const std::size_t K = static_cast<std::size_t>(o.n_components), M = static_cast<std::size_t>(o.n_mix),
                    D = X.n_cols;
  const auto starts = [&](char c) { return o.init_params.find(c) != std::string::npos; };
  if (starts('m'))
    require(X.n_rows >= K * M, "n_components x n_mix = " + std::to_string(K * M) + " is more than the " +
                                   std::to_string(X.n_rows) + " frames that k-means starts the means from");
  if (starts('c')) require(X.n_rows >= 2, "the covariance start needs at least 2 frames");
  if (!starts('s')) check_distribution(o.init.startprob, 1, K, "startprob (init_params without 's')");
  if (!starts('t')) check_distribution(o.init.transmat, K, K, "transmat (init_params without 't')");
  if (!starts('w')) check_distribution(o.init.weights, K, M, "weights (init_params without 'w')");
  if (!starts('m')) check_size(o.init.means, K * M * D, "means (init_params without 'm')");
  if (!starts('c'))
    check_size(o.init.covars, gmm_hmm_covars_size(o.covariance_type, K, M, D), "covars (init_params without 'c')");
  check_prior(o.priors.startprob_prior, K, "startprob_prior");
  check_prior(o.priors.transmat_prior, K * K, "transmat_prior");
  check_prior(o.priors.weights_prior, K * M, "weights_prior");
  check_prior(o.priors.means_prior, K * M * D, "means_prior");
  check_prior(o.priors.means_weight, K * M, "means_weight");
  const int k = static_cast<int>(K), m = static_cast<int>(M), d = static_cast<int>(D);
  const auto check_covars = [&](const std::vector<double>& v, std::size_t n, const char* name) {
    if (v.size() == 1 && std::isnan(v[0])) return;  // hmmlearn's default for the type
    check_prior(v, n, name);
  };
  check_covars(o.priors.covars_prior, gmm_hmm_covars_prior_size(o.covariance_type, k, m, d), "covars_prior");
  check_covars(o.priors.covars_weight, gmm_hmm_covars_weight_size(o.covariance_type, k, m, d), "covars_weight");
}

namespace {

// The chain's emissions of X under a checked GMMHMM.
EvaluatedFrames evaluate_gmm_hmm_frames(const GmmHmmModel& model, DataView X, const std::vector<std::size_t>& lengths,
                                        const HmmEvaluateOptions& where) {
  validate_gmm_hmm(model);
  validate_data(X);
  require(X.n_cols == static_cast<std::size_t>(model.n_features),
          "the data have " + std::to_string(X.n_cols) + " features and the model " + std::to_string(model.n_features));
  EvaluatedFrames out;
  out.offsets = engine::sequence_offsets(lengths, X.n_rows);
  Resources resources(resources_of(where));
  PlacedData data = PlacedData::Impl::unchecked(resources, X, {});
  std::vector<double> share;
  engine::gmm_hmm_emissions(data.impl().primitives(), model, out.frames, share);
  out.chain_device = engine::chain_device(data.impl().primitives(), model.n_components);
  return out;
}

}  // namespace

void validate_gmm_hmm(const GmmHmmModel& m) {
  const int K = m.n_components, M = m.n_mix, D = m.n_features;
  require(K >= 1 && M >= 1 && D >= 1, "the GMMHMM has no states, no components or no features");
  const std::size_t uK = static_cast<std::size_t>(K), uM = static_cast<std::size_t>(M), uD = static_cast<std::size_t>(D);
  check_distribution(m.startprob, 1, uK, "startprob");
  check_distribution(m.transmat, uK, uK, "transmat");
  check_distribution(m.weights, uK, uM, "weights");
  check_size(m.means, uK * uM * uD, "means");
  check_size(m.covars, gmm_hmm_covars_size(m.covariance_type, uK, uM, uD), "covars");
  engine::gmm_hmm_components(m);
}

double n_parameters(const GmmHmmModel& m) noexcept {
  const double K = m.n_components, M = m.n_mix, D = m.n_features;
  double c = 0;
  switch (m.covariance_type) {
    case CovarianceType::spherical: c = K * M; break;
    case CovarianceType::diag: c = K * M * D; break;
    case CovarianceType::full: c = K * M * D * (D + 1) / 2; break;
    case CovarianceType::tied: c = K * D * (D + 1) / 2; break;
  }
  return (K - 1) + K * (K - 1) + K * M * D + c + (M - 1);
}

HmmSamples sample_gmm_hmm(const GmmHmmModel& model, std::size_t n, std::uint64_t seed) {
  validate_gmm_hmm(model);
  require(n >= 1, "sample needs n >= 1 frames");
  return sample_chain(model.startprob, model.transmat, engine::gmm_hmm_components(model), model.n_mix, model.weights,
                      n, seed);
}

GmmHmmFitResult fit_gmm_hmm(DataView X, const std::vector<std::size_t>& lengths, const GmmHmmOptions& o) {
  validate_data(X);
  validate_gmm_hmm_options(o, X);
  const std::vector<std::size_t> offsets = engine::sequence_offsets(lengths, X.n_rows);
  Resources resources({o.device, o.precision, o.n_threads, o.device_memory_limit, {}});
  PlacedData data = PlacedData::Impl::unchecked(resources, X, {});
  PlacedData::Impl& placed = data.impl();
  const engine::ThreadCountScope threads(o.n_threads);
  Primitives& prims = placed.primitives();
  const engine::InterruptScope interrupt_scope(o.interrupted, {&prims});
  const CovarianceType type = o.covariance_type == CovarianceType::tied ? CovarianceType::full : o.covariance_type;
  prims.reserve(type, o.n_components * o.n_mix);
  engine::GmmHmmEM model(prims, placed.X, offsets, o, placed.kmeans);
  const engine::BatchOptions batch{o.n_init, o.n_iter, o.tol, o.seed, o.on_iteration};
  engine::BatchResult<GmmHmmModel> run = engine::run_batch_em(model, batch);
  std::vector<std::string> notices;
  if (!placed.notice.empty()) notices.push_back(placed.notice);
  return gmm_hmm_fit_result(run, prims.description(), std::move(notices));
}

std::vector<double> gmm_hmm_statistics(const GmmHmmModel& model, DataView X, const std::vector<std::size_t>& lengths,
                                       const HmmEvaluateOptions& where) {
  require(where.missing == MissingPolicy::error, "gmm_hmm_statistics takes complete frames");
  validate_gmm_hmm(model);
  validate_data(X);
  require(X.n_cols == static_cast<std::size_t>(model.n_features),
          "the data have " + std::to_string(X.n_cols) + " features and the model " + std::to_string(model.n_features));
  const std::vector<std::size_t> offsets = engine::sequence_offsets(lengths, X.n_rows);
  Resources resources(resources_of(where));
  PlacedData data = PlacedData::Impl::unchecked(resources, X, {});
  PlacedData::Impl& placed = data.impl();
  Primitives& prims = placed.primitives();
  const CovarianceType type =
      model.covariance_type == CovarianceType::tied ? CovarianceType::full : model.covariance_type;
  prims.reserve(type, model.n_components * model.n_mix);
  GmmHmmOptions o;
  o.n_components = model.n_components;
  o.n_mix = model.n_mix;
  o.covariance_type = model.covariance_type;
  engine::GmmHmmEM em(prims, placed.X, offsets, o, placed.kmeans);
  return engine::additive_parts(em.e_step(model));
}

GmmHmmModel gmm_hmm_model_from_statistics(const GmmHmmModel& model, const std::vector<double>& statistics,
                                          const GmmHmmOptions& options) {
  validate_gmm_hmm(model);
  engine::GmmHmmStats s = engine::gmm_hmm_zero_stats(model);
  const std::size_t n = engine::additive_parts(s).size();
  require(statistics.size() == n, "GMMHMM statistics of " + std::to_string(statistics.size()) +
                                      " values for a model that takes " + std::to_string(n));
  for (double v : statistics) require(std::isfinite(v), "GMMHMM statistics hold a value that is not finite");
  engine::set_additive_parts(s, statistics);
  check_counts(s.weight, s.emission.nk, s.start, s.trans, "GMMHMM");
  GmmHmmOptions o = options;
  o.n_components = model.n_components;
  o.n_mix = model.n_mix;
  o.covariance_type = model.covariance_type;
  o.init = model;  // the option checks then look at the priors' shapes and the letters only
  o.init_params = "";
  validate_gmm_hmm_options(o, DataView(static_cast<const double*>(nullptr), 1, static_cast<std::size_t>(model.n_features)));
  return engine::gmm_hmm_m_step(s, o);
}

HmmPosteriors posteriors_gmm_hmm(const GmmHmmModel& model, DataView X, const std::vector<std::size_t>& lengths,
                                 const HmmEvaluateOptions& where) {
  EvaluatedFrames e = evaluate_gmm_hmm_frames(model, X, lengths, where);
  HmmPosteriors out;
  std::vector<double> start(static_cast<std::size_t>(model.n_components));
  out.log_likelihood = run_chain(engine::gmm_hmm_chain(model), e, start.data());
  out.posteriors = std::move(e.frames.b);
  return out;
}

double score_gmm_hmm(const GmmHmmModel& model, DataView X, const std::vector<std::size_t>& lengths,
                     const HmmEvaluateOptions& where) {
  EvaluatedFrames e = evaluate_gmm_hmm_frames(model, X, lengths, where);
  return run_chain(engine::gmm_hmm_chain(model), e, nullptr);
}

HmmDecoding decode_gmm_hmm(const GmmHmmModel& model, DataView X, const std::vector<std::size_t>& lengths,
                           const std::string& algorithm, const HmmEvaluateOptions& where) {
  require(algorithm == "viterbi" || algorithm == "map",
          "algorithm '" + algorithm + "' is not one of 'viterbi' and 'map'");
  HmmDecoding out;
  out.states.resize(X.n_rows);
  if (algorithm == "map") {
    map_states(posteriors_gmm_hmm(model, X, lengths, where), static_cast<std::size_t>(model.n_components), out);
    return out;
  }
  const EvaluatedFrames e = evaluate_gmm_hmm_frames(model, X, lengths, where);
  viterbi_frames(model.startprob, model.transmat, e, engine::gmm_hmm_components(model), model.n_mix, X, out);
  return out;
}

}  // namespace cuem

namespace cuem {

// ---- stepwise EM (include/cuem/hmm.hpp, OnlineGaussianHmm) ------------------------------

struct OnlineGaussianHmm::Impl {
  HmmOptions options;
  Resources resources;
  engine::StepwiseEM<engine::GaussianHmmEM> em;
  std::string device;
  HmmModel empty;

  Impl(const HmmOptions& o, const OnlineOptions& online)
      : options(o),
        resources({o.device, o.precision, o.n_threads, o.device_memory_limit, {}}),
        em(engine::StepwiseSchedule{online.learning_decay, online.learning_offset}) {
    options.on_iteration = nullptr;
  }
};

OnlineGaussianHmm::OnlineGaussianHmm(const HmmOptions& options, const OnlineOptions& online)
    : impl_(std::make_unique<Impl>(options, online)) {}
OnlineGaussianHmm::~OnlineGaussianHmm() = default;
OnlineGaussianHmm::OnlineGaussianHmm(OnlineGaussianHmm&&) noexcept = default;
OnlineGaussianHmm& OnlineGaussianHmm::operator=(OnlineGaussianHmm&&) noexcept = default;

double OnlineGaussianHmm::partial_fit(DataView X, const std::vector<std::size_t>& lengths) {
  Impl& s = *impl_;
  const HmmOptions& o = s.options;
  if (X.n_rows == 0) throw DataError("an empty batch (0 frames): a step needs at least one frame");
  const bool first = !s.em.started();
  if (!first && X.n_cols != static_cast<std::size_t>(s.em.params().n_features()))
    throw DataError("the batch has " + std::to_string(X.n_cols) + " features; the model was started on " +
                    std::to_string(s.em.params().n_features()) + " (every batch must have the same features)");
  if (validate_data(X, o.missing))
    throw InvalidArgument("partial_fit does not take frames with missing entries yet; use fit");
  if (first) validate_hmm_options(o, X);
  const std::vector<std::size_t> offsets = engine::sequence_offsets(lengths, X.n_rows);
  PlacedData data = PlacedData::Impl::unchecked(s.resources, X, {});
  PlacedData::Impl& placed = data.impl();
  const engine::ThreadCountScope threads(o.n_threads);
  Primitives& prims = placed.primitives();
  const engine::InterruptScope interrupt_scope(o.interrupted, {&prims});
  prims.reserve(o.covariance_type, o.n_components);
  engine::GaussianHmmEM batch(prims, placed.X, offsets, o, placed.kmeans);
  double ll = 0.0;
  if (first) {
    s.em.start(batch.initialize(rng::hash(o.seed, rng::kInitSeed, 0), nullptr));
    try {
      ll = s.em.step(batch);
    } catch (...) {
      s.em = engine::StepwiseEM<engine::GaussianHmmEM>(s.em.schedule());  // not started after all
      throw;
    }
  } else {
    ll = s.em.step(batch);
  }
  s.device = prims.description();
  return ll;
}

bool OnlineGaussianHmm::initialized() const noexcept { return impl_->em.steps() > 0; }
const HmmModel& OnlineGaussianHmm::model() const noexcept {
  return impl_->em.steps() > 0 ? impl_->em.params() : impl_->empty;
}
std::int64_t OnlineGaussianHmm::n_steps() const noexcept { return impl_->em.steps(); }
double OnlineGaussianHmm::n_frames_seen() const noexcept { return impl_->em.stats().weight; }
std::string OnlineGaussianHmm::device() const { return impl_->device; }

}  // namespace cuem
