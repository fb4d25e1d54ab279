// fit(): validation, the placed data, and the Gaussian mixture model run by the batch
// EM driver (src/engine/batch_driver.hpp): the complete-data model, or on data with
// missing entries the missing-data one (src/engine/missing_gmm_model.hpp).
#include <algorithm>
#include <memory>
#include <set>
#include <string>

#include "core/missing_range_model.hpp"
#include "core/validate.hpp"
#include "cuem/errors.hpp"
#include "cuem/fit.hpp"
#include "engine/batch_driver.hpp"
#include "engine/chunked_model.hpp"
#include "engine/gmm_model.hpp"
#include "engine/gmm_parameter_map.hpp"
#include "engine/incremental_driver.hpp"
#include "engine/interleaved_blocks.hpp"
#include "engine/incomplete_rows.hpp"
#include "engine/missing_gmm_model.hpp"
#include "engine/missing_layout.hpp"
#include "engine/interrupt_scope.hpp"
#include "engine/placed_data.hpp"
#include "engine/primitives.hpp"
#include "engine/squarem_driver.hpp"

namespace cuem {
namespace {

// A FitResult from the driver's.
FitResult result_of(engine::BatchResult<Model>&& run, const std::string& placement_notice) {
  FitResult result;
  if (!placement_notice.empty()) result.notices.push_back(placement_notice);
  result.notices.insert(result.notices.end(), run.notices.begin(), run.notices.end());
  result.model = std::move(run.params);
  result.converged = run.converged;
  result.n_iter = run.n_iter;
  result.lower_bound = run.lower_bound;
  result.best_init = run.best_init;
  result.trace = std::move(run.trace);
  result.n_decreases = run.n_decreases;
  result.max_decrease = run.max_decrease;
  result.convergence_rate = run.convergence_rate;
  result.n_estep_passes = run.n_estep_passes;
  return result;
}

// The driver the options ask for, over any model whose Params is a cuem::Model (the
// Gaussian mixtures' parameter map serves SQUAREM).
template <class M>
engine::BatchResult<Model> run_driver(M& model, const FitOptions& o) {
  const engine::BatchOptions batch{o.n_init, o.max_iter, o.tol, o.seed, o.on_iteration};
  if (o.acceleration == Acceleration::squarem) return engine::run_squarem_em(model, batch);
  return engine::run_batch_em(model, batch);
}

// The placed rows cut into blocks of consecutive rows with the engine's Gaussian model over
// each: incremental EM's blocks or tiles (run_incremental), and out-of-core chunks. Block b
// holds rows [begin(b), begin(b + 1)). Where the placed primitives run E-steps over row ranges (CUDA)
// a block is a range of the data placed once (one set of device buffers, the rows resident
// or streamed through its pinned staging within the device memory limit, whatever the
// number of blocks); elsewhere each block is placed as its own primitives, on the fit's
// device (the CPU reads the rows in place).
struct RowBlocks {
  std::vector<std::size_t> starts;  // B + 1 row indices
  std::vector<std::unique_ptr<Primitives>> prims;
  std::vector<std::unique_ptr<engine::GaussianMixtureEM>> owned;
  std::vector<engine::GaussianMixtureEM*> models;

  // Blocks starting at `starts` (the last entry is N).
  RowBlocks(PlacedData::Impl& placed, const FitOptions& o, std::vector<std::size_t> block_starts)
      : starts(std::move(block_starts)) {
    Primitives& whole = placed.primitives();
    for (std::size_t b = 0; b + 1 < starts.size(); ++b) {
      const std::size_t begin = starts[b], end = starts[b + 1];
      if (whole.estep_over_rows()) {
        owned.push_back(std::make_unique<engine::GaussianMixtureEM>(whole, placed.X, o, placed.kmeans, begin, end));
      } else {
        prims.push_back(place_rows(placed, o, begin, end));
        owned.push_back(
            std::make_unique<engine::GaussianMixtureEM>(*prims.back(), rows_of(placed.X, begin, end), o, placed.kmeans));
      }
      models.push_back(owned.back().get());
    }
  }

  static DataView rows_of(DataView X, std::size_t begin, std::size_t end) {
    X.n_rows = end - begin;
    if (X.data) X.data += begin * X.row_stride;
    else X.data_f32 += begin * X.row_stride;
    return X;
  }

  // Rows [begin, end) placed as their own primitives on the fit's device (sharing its CUDA context).
  static std::unique_ptr<Primitives> place_rows(PlacedData::Impl& placed, const FitOptions& o, std::size_t begin,
                                                std::size_t end) {
    const ResourceOptions& ro = placed.resources->options();
    const PrimitivesRequest request{ro.device, ro.precision, ro.device_memory_limit, ro.cuda_tuning};
    const WeightView w = placed.w.empty() ? WeightView{} : WeightView(placed.w.data + begin, end - begin);
    std::unique_ptr<Primitives> p =
        make_primitives(rows_of(placed.X, begin, end), w, request, nullptr, &placed.resources->impl().cuda_context);
    p->reserve(o.covariance_type, o.n_components);
    if (o.interrupted) p->set_interrupt(o.interrupted);  // the blocks' primitives end with the fit
    return p;
  }

  // Out of core: a restart's start from the first chunk's rows alone (k-means reads one
  // chunk, not the file). Over ranges those rows are placed for the start and released
  // after it, so the device holds them only while a restart initialises.
  engine::ChunkedModel<engine::GaussianMixtureEM>::Start first_chunk_start(PlacedData::Impl& placed,
                                                                           const FitOptions& o) const {
    if (!prims.empty()) return {};  // chunk 0 has primitives of its own and initialises
    const std::size_t end = starts[1];
    return [&placed, &o, end](std::uint64_t seed, std::vector<std::string>* notices) {
      const std::unique_ptr<Primitives> p = place_rows(placed, o, 0, end);
      engine::GaussianMixtureEM first(*p, rows_of(placed.X, 0, end), o, placed.kmeans);
      return first.initialize(seed, notices);
    };
  }
};

// Whether incremental EM's blocks are interleaved tiles (engine/interleaved_blocks.hpp):
// for the incremental first pass only.
bool interleaved(const FitOptions& o) { return o.first_pass == FirstPass::incremental; }

// The row starts of incremental EM's tiles for N rows.
std::vector<std::size_t> incremental_starts(std::size_t N, const FitOptions& o) {
  return engine::incremental_tile_starts(N, static_cast<std::size_t>(o.incremental_blocks), interleaved(o));
}

// Incremental EM over the models of the tiles of incremental_starts: each tile a block
// (contiguous blocks), or interleaved, block b the tiles b, b + B, b + 2B, ... as one
// chunked model, their statistics summed in row order.
template <class M>
engine::BatchResult<Model> run_incremental(M& whole, const std::vector<M*>& tiles, const FitOptions& o) {
  const engine::BatchOptions batch{o.n_init, o.max_iter, o.tol, o.seed, o.on_iteration, o.max_block_steps};
  if (!interleaved(o)) return engine::run_incremental_em(whole, tiles, batch, o.first_pass);
  std::vector<std::unique_ptr<engine::ChunkedModel<M>>> owned;
  std::vector<engine::ChunkedModel<M>*> blocks;
  for (const std::vector<std::size_t>& of_block :
       engine::tiles_of_blocks(tiles.size(), static_cast<std::size_t>(o.incremental_blocks))) {
    std::vector<M*> members;
    for (std::size_t t : of_block) members.push_back(tiles[t]);
    owned.push_back(std::make_unique<engine::ChunkedModel<M>>(whole, std::move(members), nullptr));
    blocks.push_back(owned.back().get());
  }
  return engine::run_incremental_em(whole, blocks, batch, o.first_pass);
}

// The fit proper, on validated options and weights.
FitResult run_fit(PlacedData& data, const FitOptions& o) {
  PlacedData::Impl& placed = data.impl();
  const engine::ThreadCountScope threads(placed.resources->options().n_threads);
  Primitives& prims = placed.primitives();
  const engine::InterruptScope interrupt_scope(o.interrupted, {&prims});
  engine::GaussianMixtureEM model(prims, placed.X, o, placed.kmeans);
  FitResult result;
  if (o.chunk_rows > 0) {  // out of core: the whole data's primitives are never asked to read
    RowBlocks chunks(placed, o, engine::tile_starts(placed.X.n_rows, o.chunk_rows));
    const std::vector<std::size_t>& starts = chunks.starts;
    engine::ChunkedModel<engine::GaussianMixtureEM> chunked(
        model, chunks.models, [&](std::size_t c) { if (o.release_rows) o.release_rows(starts[c + 1]); },
        chunks.first_chunk_start(placed, o));
    result = result_of(run_driver(chunked, o), placed.notice);
    const Primitives& used = chunks.prims.empty() ? prims : *chunks.prims.front();
    result.device = used.description() + ", out of core in chunks of " + std::to_string(o.chunk_rows) + " rows";
  } else {
    prims.reserve(o.covariance_type, o.n_components);
    if (o.incremental_blocks > 1) {
      RowBlocks tiles(placed, o, incremental_starts(placed.X.n_rows, o));
      result = result_of(run_incremental(model, tiles.models, o), placed.notice);
    } else {
      result = result_of(run_driver(model, o), placed.notice);
    }
    // After the iterations: a backend settles its memory layout in the first E-step.
    result.device = prims.description();
  }
  if (!result.model.empty()) {
    const std::string swamped = model.final_notice(result.model);
    if (!swamped.empty()) result.notices.push_back(swamped);
  }
  return result;
}

std::string empty_rows_notice(const MissingSummary& s) {
  std::string rows;
  for (std::size_t i = 0; i < s.first_empty_rows.size(); ++i)
    rows += (i ? ", " : "") + std::to_string(s.first_empty_rows[i]);
  if (s.empty_rows > s.first_empty_rows.size()) rows += ", ...";
  return std::to_string(s.empty_rows) + (s.empty_rows == 1 ? " row has" : " rows have") +
         " every entry missing and carry no information: skipped (row " + rows + ", 0-based)";
}

// The fit of data with missing entries: the rows regrouped by pattern (a copy), the
// complete ones placed for the ordinary E-step, the filled copy for k-means
// (missing_range_model.hpp). Incremental EM keeps a second copy, cut in tiles; out of
// core, each chunk's copy is made for its E-step and dropped.
FitResult run_missing_fit(Resources& resources, DataView X, WeightView w, const FitOptions& o) {
  const engine::ThreadCountScope threads(resources.options().n_threads);
  const ResourceOptions& ro = resources.options();
  const PrimitivesRequest request{ro.device, ro.precision, ro.device_memory_limit, ro.cuda_tuning};
  std::shared_ptr<cuda::DeviceContext>* context = &resources.impl().cuda_context;
  // Ranges [starts[c], starts[c + 1]) of X's rows, each a model of its own.
  const auto ranges = [&](const std::vector<std::size_t>& starts, bool keep) {
    std::vector<std::unique_ptr<MissingRangeModel>> models;
    for (std::size_t c = 0; c + 1 < starts.size(); ++c) {
      DataView part = X;
      part.n_rows = starts[c + 1] - starts[c];
      if (part.data) part.data += starts[c] * X.row_stride;
      else part.data_f32 += starts[c] * X.row_stride;
      const WeightView pw = w.empty() ? WeightView{} : WeightView(w.data + starts[c], part.n_rows);
      models.push_back(std::make_unique<MissingRangeModel>(part, pw, starts[c], o, request, context, keep, false));
      if (!keep && o.release_rows) o.release_rows(starts[c + 1]);
    }
    return models;
  };
  const auto check_informative = [&](std::size_t informative, bool weighted, const std::string& where) {
    if (informative < static_cast<std::size_t>(o.n_components))
      throw DataError("n_components = " + std::to_string(o.n_components) + " is more than the " +
                      std::to_string(informative) + " rows" + where + " that have an observed entry" +
                      (weighted ? " and a positive weight" : "") + "; lower n_components");
  };

  FitResult result;
  MissingSummary summary;
  if (o.chunk_rows > 0) {
    const std::vector<std::size_t> starts = engine::tile_starts(X.n_rows, o.chunk_rows);
    const std::vector<std::unique_ptr<MissingRangeModel>> owned = ranges(starts, false);
    std::vector<MissingRangeModel*> chunks;
    std::set<std::vector<int>> patterns;
    for (const auto& m : owned) {
      chunks.push_back(m.get());
      const MissingSummary& s = m->summary();
      summary.missing_entries += s.missing_entries;
      summary.incomplete_rows += s.incomplete_rows;
      summary.empty_rows += s.empty_rows;
      for (std::size_t row : s.first_empty_rows)
        if (summary.first_empty_rows.size() < 5) summary.first_empty_rows.push_back(row);
      patterns.insert(m->pattern_sets().begin(), m->pattern_sets().end());
    }
    summary.n_patterns = patterns.size();
    // As the whole data's layout (make_missing_layout with require_columns) refuses it.
    for (std::size_t d = 0; d < X.n_cols; ++d)
      if (std::none_of(owned.begin(), owned.end(), [d](const auto& m) { return m->observed_columns()[d]; }))
        throw DataError("column " + std::to_string(d) + " (0-based) has no observed value in any chunk: nothing can "
                        "be learnt about it; drop the column");
    check_informative(owned.front()->informative_rows(), !w.empty(), " of the first chunk");
    engine::ChunkedModel<MissingRangeModel> chunked(
        *owned.front(), chunks, [&](std::size_t c) { if (o.release_rows) o.release_rows(starts[c + 1]); });
    result = result_of(run_driver(chunked, o), owned.front()->notice());
    result.device = owned.front()->description() + ", out of core in chunks of " + std::to_string(o.chunk_rows) + " rows";
  } else {
    MissingRangeModel model(X, w, 0, o, request, context, true, true);
    summary = model.summary();
    check_informative(model.informative_rows(), !w.empty(), "");
    if (o.incremental_blocks > 1) {
      const std::vector<std::unique_ptr<MissingRangeModel>> owned = ranges(incremental_starts(X.n_rows, o), true);
      std::vector<MissingRangeModel*> tiles;
      for (const auto& m : owned) tiles.push_back(m.get());
      result = result_of(run_incremental(model, tiles, o), model.notice());
    } else {
      result = result_of(run_driver(model, o), model.notice());
    }
    result.device = model.description();
  }
  result.missing = summary;
  if (summary.empty_rows > 0) result.notices.push_back(empty_rows_notice(summary));
  return result;
}

}  // namespace

// validate_data in chunks of o.chunk_rows rows, each released behind as the fit's passes
// are (out of core: the check reads every row once).
bool validate_data_in_chunks(DataView X, const FitOptions& o) {
  bool has_missing = false;
  for (std::size_t begin = 0; begin < X.n_rows; begin += o.chunk_rows) {
    DataView c = X;
    c.n_rows = std::min(o.chunk_rows, X.n_rows - begin);
    if (c.data) c.data += begin * X.row_stride;
    else c.data_f32 += begin * X.row_stride;
    try {
      has_missing = validate_data(c, o.missing) || has_missing;
    } catch (const DataError& e) {
      throw DataError("in the chunk of rows from " + std::to_string(begin) + " (0-based): " + e.what());
    }
    if (o.release_rows) o.release_rows(begin + c.n_rows);
  }
  return has_missing;
}

FitResult fit(DataView X, const FitOptions& o, WeightView sample_weight) {
  const bool has_missing = o.chunk_rows > 0 && X.n_rows > 0 ? validate_data_in_chunks(X, o) : validate_data(X, o.missing);
  validate_options(o, X);
  validate_weights(sample_weight, X, o.n_components);
  Resources resources({o.device, o.precision, o.n_threads, o.device_memory_limit, o.cuda_tuning});
  if (has_missing) return run_missing_fit(resources, X, sample_weight, o);
  PlacedData data = PlacedData::Impl::unchecked(resources, X, sample_weight);
  return run_fit(data, o);
}

FitResult fit(PlacedData& data, const FitOptions& o) {
  validate_options(o, data.data());
  validate_weights(data.weights(), data.data(), o.n_components);
  PlacedData::Impl& placed = data.impl();
  if (placed.has_missing) {
    if (o.missing != MissingPolicy::marginalize)
      throw DataError("the placed data hold missing entries (NaN) and the fit's missing policy is 'error'; fit "
                      "with missing='marginalize'");
    return run_missing_fit(*placed.resources, placed.X, placed.w, o);
  }
  return run_fit(data, o);
}

}  // namespace cuem
