// The incomplete rows' E-step on a CUDA device (src/core/cuda_incomplete_rows.hpp): the
// rows uploaded once, relative to the layout's fill (the observed column means, which
// plays the primitives' origin), in the arithmetic type; per iteration the conditional
// factors of each (pattern, component) computed on the host in float64
// (engine/conditional_gaussian.hpp), over the host threads, and uploaded batch by batch,
// two batches in turn, so that the host makes batch b + 1's factors while batch b's
// kernels (missing_estep.hpp) run; the segments' float64 partials added in order on the
// device.
//
// The conditional covariance term of S2 (sum over rows of w g_k C_k, C_k constant over a
// pattern) is (sum w g_k over the pattern) C_pk: the kernel sums w g_k per tile, a second
// kernel adds the tiles of each pattern in order, and the host adds each pattern's term
// in pattern order, in float64.
//
// Memory: the rows (n x D in S, and n weights in float64), the pattern tables (D ints a
// pattern), the tiles and segments (a few values each), two batches' factor tables
// (MissingBatchLimits; pinned on the host as well), per launch the segments' partials (at
// most kPartialBytes), their work rows (tile_rows x K doubles a segment) and the tiles'
// sums. Nothing is proportional to N x K.
#include <cuda_runtime.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <array>
#include <cstdint>
#include <exception>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/cuda_incomplete_rows.hpp"
#include "core/point_math.hpp"
#include "cuda_check.cuh"
#include "cuem/errors.hpp"
#include "device_context.cuh"
#include "device_memory.cuh"
#include "engine/conditional_gaussian.hpp"
#include "estep.hpp"
#include "host_threads.hpp"
#include "missing_estep.hpp"

namespace cuem {
namespace {

using cuda::MissingLaunch;
using cuda::MissingTile;
using cuda::PinnedBuffer;
using cuda::PoolBuffer;

// A segment (one block) holds at most this many rows and tiles: enough to amortise its
// partial, few enough that a million rows make a few hundred blocks. A batch of few tiles
// (patterns of one or two rows, whose factor tables fill a batch early) is spread over
// up to kTargetSegments segments instead, so that its launch still fills the device; the
// partition depends on the layout, the limits, the covariance type and K alone.
constexpr std::size_t kSegmentRows = 4096;
constexpr std::size_t kSegmentTiles = 256;
constexpr std::size_t kTargetSegments = 256;
// The partials of one launch, (segments of the launch) x (K M + 1) doubles, stay within
// this, and so do its work rows and its tiles' sums.
constexpr std::size_t kPartialBytes = std::size_t{64} << 20;
constexpr std::size_t kMaxSegmentsPerLaunch = 1024;
// A host thread's share of a batch's factors, at least.
constexpr std::size_t kPatternsPerThread = 16;

template <typename S>
void split(double v, S* hi, S* lo) {
  *hi = static_cast<S>(v);
  *lo = std::isfinite(static_cast<double>(*hi)) ? static_cast<S>(v - static_cast<double>(*hi)) : S(0);
}

// The per-(type, K) partition of the patterns into batches and of each batch's tiles
// into segments, and the launches that cover each batch.
struct Batch {
  std::size_t pattern_begin = 0, pattern_end = 0;
  std::size_t segment_begin = 0, segment_end = 0;
  std::size_t factor_values = 0;  // G values of the batch
};

template <typename S>
class CudaIncompleteRows final : public engine::IncompleteRows {
 public:
  CudaIncompleteRows(const engine::MissingLayout& layout, std::shared_ptr<cuda::DeviceContext> context,
                     const MissingBatchLimits& limits)
      : layout_(layout), context_(std::move(context)), device_(context_->device()), limits_(limits) {
    limits_.factor_values = std::max<std::size_t>(limits_.factor_values, 1);
    limits_.patterns = std::max<std::size_t>(limits_.patterns, 1);
    D_ = static_cast<int>(layout_.n_cols);
    n_ = layout_.n_rows - layout_.n_complete;
    tile_rows_ = cuda::missing_tile_rows(D_, sizeof(S));
    if (tile_rows_ < 1)
      throw InvalidArgument("the CUDA E-step with missing entries holds one row of D + 1 values in shared memory; " +
                            std::to_string(D_) + " features are too many (use the CPU)");
    const cuda::ScopedDevice on(device_);
    stream_ = context_->compute().get();
    batch_done_.emplace_back();
    batch_done_.emplace_back();
    weighted_ = !layout_.weights.empty();
    total_weight_ = static_cast<double>(n_);
    n_points_ = n_;
    if (weighted_) {  // a row of weight 0 is absent (the CPU implementation's count)
      total_weight_ = 0.0;
      n_points_ = 0;
      for (std::size_t i = layout_.n_complete; i < layout_.n_rows; ++i) {
        total_weight_ += layout_.weights[i];
        n_points_ += layout_.weights[i] != 0.0;
      }
    }
    if (n_ == 0) return;
    const std::size_t D = layout_.n_cols;
    // The rows relative to the fill, in S; a missing entry holds the fill, so 0 here.
    std::vector<S> x(n_ * D);
    for (std::size_t i = 0; i < n_; ++i)
      for (std::size_t d = 0; d < D; ++d)
        x[i * D + d] = static_cast<S>(layout_.value(layout_.n_complete + i, d) - layout_.fill[d]);
    X_ = upload(x);
    if (weighted_)
      w_ = upload(std::vector<double>(layout_.weights.begin() + static_cast<std::ptrdiff_t>(layout_.n_complete),
                                      layout_.weights.end()));
    // Pattern tables and tiles: fixed by the layout.
    const std::size_t P = layout_.patterns.size();
    std::vector<int> cols(P * D), n_obs(P);
    std::vector<MissingTile> tiles;
    pattern_first_tile_.resize(P + 1);
    for (std::size_t p = 0; p < P; ++p) {
      const engine::MissingPattern& pat = layout_.patterns[p];
      std::copy(pat.observed.begin(), pat.observed.end(), cols.begin() + p * D);
      std::copy(pat.missing.begin(), pat.missing.end(), cols.begin() + p * D + pat.observed.size());
      n_obs[p] = static_cast<int>(pat.observed.size());
      pattern_first_tile_[p] = tiles.size();
      for (std::size_t r = pat.begin; r < pat.end; r += static_cast<std::size_t>(tile_rows_)) {
        MissingTile t;
        t.row = r - layout_.n_complete;
        t.rows = static_cast<std::uint32_t>(std::min<std::size_t>(tile_rows_, pat.end - r));
        t.pattern = static_cast<std::uint32_t>(p);
        tiles.push_back(t);
      }
    }
    pattern_first_tile_[P] = tiles.size();
    tile_pattern_.resize(tiles.size());
    tile_rows_of_.resize(tiles.size());
    for (std::size_t t = 0; t < tiles.size(); ++t) {
      tile_pattern_[t] = tiles[t].pattern;
      tile_rows_of_[t] = tiles[t].rows;
    }
    if (tiles.size() > std::numeric_limits<std::uint32_t>::max())
      throw InvalidArgument("too many missingness patterns for the CUDA E-step");
    cols_ = upload(cols);
    n_observed_ = upload(n_obs);
    tiles_ = upload(tiles);
    pattern_first_tile_dev_ =
        upload(std::vector<std::uint32_t>(pattern_first_tile_.begin(), pattern_first_tile_.end()));
    threads_ = std::make_unique<cuda::HostThreads>(std::max(1, omp_get_max_threads()));
    context_->compute().synchronize();
  }

  ~CudaIncompleteRows() override {
    const cuda::ScopedDeviceNoThrow on(device_);
    CUEM_CUDA_CHECK_NOTHROW(cudaStreamSynchronize(stream_));
    X_ = {};
    w_ = {};
    cols_ = {};
    n_observed_ = {};
    tiles_ = {};
    pattern_first_tile_dev_ = {};
    segment_tiles_ = {};
    g_offset_ = {};
    entries_ = {};
    params_ = {};
    batch_ = {};
    pattern_nk_ = {};
    partials_ = {};
    work_ = {};
    tile_nk_ = {};
    total_ = {};
    batch_done_.clear();
    context_.reset();
  }
  CudaIncompleteRows(const CudaIncompleteRows&) = delete;
  CudaIncompleteRows& operator=(const CudaIncompleteRows&) = delete;

  double unit_roundoff() const noexcept override { return std::numeric_limits<S>::epsilon() / 2; }
  const char* name() const noexcept override { return "cuda"; }

  SufficientStats estep(const Model& model) override {
    if (model.n_features != D_) throw InvalidArgument("the model's features do not match the data's");
    const CovarianceType type = model.covariance_type;
    const int K = model.n_components;
    const std::size_t Kz = static_cast<std::size_t>(K), D = static_cast<std::size_t>(D_);
    if (n_ == 0) {
      SufficientStats st = SufficientStats::zeros(type, K, D_, model.means);
      st.weight = 0.0;
      return st;
    }
    const cuda::ScopedDevice on(device_);
    plan(type, K);
    const bool full_scatter = type == CovarianceType::full || type == CovarianceType::tied;

    // The components: means in two parts about the fill, the factors.
    std::vector<double> shift(Kz * D);
    {
      const std::size_t F = covariance_size(type, K, D_);
      S* h = params_host_.data();
      for (std::size_t k = 0; k < Kz; ++k)
        for (std::size_t d = 0; d < D; ++d) {
          S* hi = h + k * D + d;
          S* lo = h + Kz * D + k * D + d;
          split(model.means[k * D + d] - layout_.fill[d], hi, lo);
          shift[k * D + d] = layout_.fill[d] + static_cast<double>(*hi) + static_cast<double>(*lo);
        }
      for (std::size_t i = 0; i < F; ++i) h[2 * Kz * D + i] = static_cast<S>(model.precisions_cholesky[i]);
      CUEM_CUDA_CHECK(cudaMemcpyAsync(params_.data(), h, (2 * Kz * D + F) * sizeof(S), cudaMemcpyHostToDevice,
                                      stream_));
    }
    Factors f;
    f.model = &model;
    f.full_scatter = full_scatter;
    if (full_scatter) {
      f.precisions = engine::precision_matrices(model);
      f.log_det_p.assign(Kz, 0.0);
      for (std::size_t k = 0; k < Kz; ++k) {
        const double* P = model.precisions_cholesky.data() + (type == CovarianceType::tied ? 0 : k * D * D);
        for (std::size_t d = 0; d < D; ++d) f.log_det_p[k] += std::log(P[d * D + d]);
      }
    }

    // Batch b's factors are made on the host while batch b - 1's kernels run; then batch
    // b - 1's conditional covariance term is added (in batch order, so in pattern order).
    CUEM_CUDA_CHECK(cudaMemsetAsync(total_.data(), 0, total_.bytes(), stream_));
    std::vector<double> c_term(s2_size(type, K, D_), 0.0);
    for (std::size_t b = 0; b <= batches_.size(); ++b) {
      if (b < batches_.size()) {
        make_factors(f, batches_[b], b % 2);
        enqueue(type, K, batches_[b], b % 2);
      }
      if (b > 0) add_covariance_term(f, batches_[b - 1], (b - 1) % 2, type, K, c_term);
    }
    CUEM_CUDA_CHECK(cudaMemcpyAsync(total_host_.data(), total_.data(), total_.bytes(), cudaMemcpyDeviceToHost,
                                    stream_));
    context_->compute().synchronize();
    return unpack(type, K, std::move(shift), c_term);
  }

 private:
  // What every batch's factors need from the model.
  struct Factors {
    const Model* model = nullptr;
    bool full_scatter = false;
    std::vector<double> precisions;  // full, tied: Lambda_k
    std::vector<double> log_det_p;   // full, tied: log|P_k|
  };

  // Batch b's constants (Pb x K), then its G table, into host buffer `slot`, and (full,
  // tied) the conditional covariances for the host's term; the patterns split over the
  // host threads (each (pattern, component) is computed alone, so the result does not
  // depend on the split).
  void make_factors(const Factors& f, const Batch& b, int slot) {
    const Model& model = *f.model;
    const std::size_t Kz = static_cast<std::size_t>(model.n_components), D = static_cast<std::size_t>(D_);
    const std::size_t Pb = b.pattern_end - b.pattern_begin;
    S* hc = batch_host_[slot].data();
    S* hg = hc + Pb * Kz;
    std::vector<std::vector<double>>& covs = covs_[slot];
    covs.assign(f.full_scatter ? Pb * Kz : 0, {});
    const CovarianceType type = model.covariance_type;
    const auto one = [&](std::size_t q) {
      const engine::MissingPattern& pat = layout_.patterns[b.pattern_begin + q];
      const double half_o_log2pi = 0.5 * static_cast<double>(pat.observed.size()) * math::kLog2Pi;
      for (std::size_t k = 0; k < Kz; ++k) {
        double log_det_o = 0.0;  // log|P_k| - log_det_mm
        if (f.full_scatter) {
          engine::ConditionalFactors c = engine::conditional_factors(model, f.precisions, static_cast<int>(k), pat);
          log_det_o = f.log_det_p[k] - c.log_det_mm;
          const std::size_t at = g_offset_host_[b.pattern_begin + q] + k * c.G.size();
          for (std::size_t i = 0; i < c.G.size(); ++i) hg[at + i] = static_cast<S>(c.G[i]);
          covs[q * Kz + k] = std::move(c.cov);
        } else if (type == CovarianceType::diag) {
          for (const int d : pat.observed) log_det_o += std::log(model.precisions_cholesky[k * D + d]);
        } else {
          log_det_o = static_cast<double>(pat.observed.size()) * std::log(model.precisions_cholesky[k]);
        }
        hc[q * Kz + k] = static_cast<S>(std::log(model.weights[k]) + log_det_o - half_o_log2pi);
      }
    };
    const int parts = static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(threads_->size()),
                                                             (Pb + kPatternsPerThread - 1) / kPatternsPerThread));
    std::vector<std::exception_ptr> failed(static_cast<std::size_t>(std::max(parts, 1)));
    auto part = [&](int i) {
      try {
        const std::size_t q0 = Pb * static_cast<std::size_t>(i) / static_cast<std::size_t>(parts);
        const std::size_t q1 = Pb * static_cast<std::size_t>(i + 1) / static_cast<std::size_t>(parts);
        for (std::size_t q = q0; q < q1; ++q) one(q);
      } catch (...) {
        failed[static_cast<std::size_t>(i)] = std::current_exception();
      }
    };
    threads_->run(std::max(parts, 1), part);
    for (const std::exception_ptr& e : failed)
      if (e) std::rethrow_exception(e);
  }

  // Batch b's upload, kernels and pattern sums, queued on the stream; its pattern sums
  // come back to host buffer `slot`.
  void enqueue(CovarianceType type, int K, const Batch& b, int slot) {
    const std::size_t Kz = static_cast<std::size_t>(K), D = static_cast<std::size_t>(D_);
    const std::size_t Pb = b.pattern_end - b.pattern_begin;
    const bool full_scatter = type == CovarianceType::full || type == CovarianceType::tied;
    CUEM_CUDA_CHECK(cudaMemcpyAsync(batch_[slot].data(), batch_host_[slot].data(),
                                    (Pb * Kz + b.factor_values) * sizeof(S), cudaMemcpyHostToDevice, stream_));
    CUEM_CUDA_CHECK(cudaMemsetAsync(pattern_nk_[slot].data(), 0, Pb * Kz * sizeof(double), stream_));
    for (std::size_t s0 = b.segment_begin; s0 < b.segment_end; s0 += segments_per_launch_) {
      const std::size_t s1 = std::min(b.segment_end, s0 + segments_per_launch_);
      const std::uint32_t first_tile = segment_bounds_[s0], end_tile = segment_bounds_[s1];
      MissingLaunch<S> a;
      a.type = type;
      a.K = K;
      a.D = D_;
      a.X = X_.data();
      a.w = weighted_ ? w_.data() : nullptr;
      a.means_hi = params_.data();
      a.means_lo = params_.data() + Kz * D;
      a.factors = params_.data() + 2 * Kz * D;
      a.cols = cols_.data();
      a.n_observed = n_observed_.data();
      a.g_offset = g_offset_.data();
      a.g = full_scatter ? batch_[slot].data() + Pb * Kz : nullptr;
      a.constants = batch_[slot].data();
      a.pattern_base = static_cast<std::uint32_t>(b.pattern_begin);
      a.tiles = tiles_.data();
      a.segment_tiles = segment_tiles_.data() + s0;
      a.n_segments = s1 - s0;
      a.first_tile = first_tile;
      a.tile_rows = tile_rows_;
      a.entries = entries_.data();
      a.M = M_;
      a.partials = partials_.data();
      a.L = L_;
      a.tile_nk = tile_nk_.data();
      a.work = work_.data();
      cuda::launch_missing_estep(a, stream_);
      cuda::launch_accumulate_segments(partials_.data(), s1 - s0, L_, total_.data(), stream_);
      cuda::launch_missing_pattern_sums(tile_nk_.data(), pattern_first_tile_dev_.data(), first_tile, end_tile,
                                        tile_pattern_[first_tile], tile_pattern_[end_tile - 1] + 1, K,
                                        static_cast<std::uint32_t>(b.pattern_begin), pattern_nk_[slot].data(),
                                        stream_);
    }
    CUEM_CUDA_CHECK(cudaMemcpyAsync(pattern_nk_host_[slot].data(), pattern_nk_[slot].data(),
                                    Pb * Kz * sizeof(double), cudaMemcpyDeviceToHost, stream_));
    batch_done_[static_cast<std::size_t>(slot)].record(stream_);
  }

  // sum over the batch's patterns, in order, of (sum w g_k) C_pk on the missing block,
  // once the batch's pattern sums are back.
  void add_covariance_term(const Factors& f, const Batch& b, int slot, CovarianceType type, int K,
                           std::vector<double>& c_term) {
    batch_done_[static_cast<std::size_t>(slot)].synchronize();
    const Model& model = *f.model;
    const std::size_t Kz = static_cast<std::size_t>(K), D = static_cast<std::size_t>(D_);
    const double* pattern_nk = pattern_nk_host_[slot].data();
    const std::vector<std::vector<double>>& covs = covs_[slot];
    for (std::size_t q = 0; q < b.pattern_end - b.pattern_begin; ++q) {
      const std::vector<int>& m = layout_.patterns[b.pattern_begin + q].missing;
      const std::size_t nm = m.size();
      for (std::size_t k = 0; k < Kz; ++k) {
        const double nk = pattern_nk[q * Kz + k];
        if (f.full_scatter) {
          double* out = c_term.data() + (type == CovarianceType::tied ? 0 : k * D * D);
          const std::vector<double>& C = covs[q * Kz + k];
          for (std::size_t i = 0; i < nm; ++i)
            for (std::size_t j = i; j < nm; ++j) out[m[i] * D + m[j]] += nk * C[i * nm + j];
        } else {
          for (std::size_t i = 0; i < nm; ++i) {
            const double p = type == CovarianceType::diag ? model.precisions_cholesky[k * D + m[i]]
                                                          : model.precisions_cholesky[k];
            c_term[k * D + m[i]] += nk / (p * p);
          }
        }
      }
    }
  }

  template <typename T>
  PoolBuffer<T> upload(const std::vector<T>& host) {
    PoolBuffer<T> buf = context_->allocate<T>(host.size());
    if (!host.empty())
      CUEM_CUDA_CHECK(
          cudaMemcpyAsync(buf.data(), host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice, stream_));
    return buf;
  }

  // Batches, segments and the buffers for a covariance type and K (kept while they stay).
  void plan(CovarianceType type, int K) {
    if (planned_ && type == plan_type_ && K == plan_K_) return;
    context_->compute().synchronize();
    planned_ = false;
    const std::size_t Kz = static_cast<std::size_t>(K), D = static_cast<std::size_t>(D_);
    const bool with_g = type == CovarianceType::full || type == CovarianceType::tied;
    const std::vector<unsigned> entries = cuda::stats_entries(type, D_);
    M_ = static_cast<int>(entries.size());
    L_ = Kz * entries.size() + 1;
    // A launch's partials, work rows and tile sums each within kPartialBytes.
    const std::size_t per_segment_bytes =
        std::max({L_, static_cast<std::size_t>(tile_rows_) * Kz, kSegmentTiles * Kz}) * sizeof(double);
    segments_per_launch_ = std::clamp<std::size_t>(kPartialBytes / per_segment_bytes, 1, kMaxSegmentsPerLaunch);
    if (limits_.segments_per_launch > 0)
      segments_per_launch_ = std::min(segments_per_launch_, limits_.segments_per_launch);

    // Patterns into batches (consecutive, within the limits), each batch's tiles into
    // segments (consecutive, within kSegmentRows and kSegmentTiles).
    batches_.clear();
    g_offset_host_.assign(layout_.patterns.size(), 0);
    std::vector<std::uint32_t> bounds;
    std::size_t max_batch = 0, max_patterns = 0;
    const std::size_t P = layout_.patterns.size();
    std::size_t p = 0;
    while (p < P) {
      Batch b;
      b.pattern_begin = p;
      for (; p < P && p - b.pattern_begin < limits_.patterns; ++p) {
        const engine::MissingPattern& pat = layout_.patterns[p];
        const std::size_t g = with_g ? Kz * pat.observed.size() * pat.missing.size() : 0;
        if (p > b.pattern_begin && b.factor_values + g > limits_.factor_values) break;
        g_offset_host_[p] = b.factor_values;
        b.factor_values += g;
      }
      b.pattern_end = p;
      b.segment_begin = bounds.size();
      std::size_t t = pattern_first_tile_[b.pattern_begin];
      const std::size_t t_end = pattern_first_tile_[b.pattern_end];
      const std::size_t per_segment =
          std::clamp<std::size_t>((t_end - t + kTargetSegments - 1) / kTargetSegments, 1, kSegmentTiles);
      while (t < t_end) {
        bounds.push_back(static_cast<std::uint32_t>(t));
        std::size_t rows = 0, count = 0;
        while (t < t_end && count < per_segment && (count == 0 || rows + tile_rows_of_[t] <= kSegmentRows)) {
          rows += tile_rows_of_[t];
          ++count;
          ++t;
        }
      }
      b.segment_end = bounds.size();
      max_batch = std::max(max_batch, (b.pattern_end - b.pattern_begin) * Kz + b.factor_values);
      max_patterns = std::max(max_patterns, b.pattern_end - b.pattern_begin);
      batches_.push_back(b);
    }
    bounds.push_back(static_cast<std::uint32_t>(pattern_first_tile_[P]));
    segment_bounds_ = bounds;
    std::size_t max_tiles = 0, max_segments = 0;
    for (const Batch& b : batches_)
      for (std::size_t s0 = b.segment_begin; s0 < b.segment_end; s0 += segments_per_launch_) {
        const std::size_t s1 = std::min(b.segment_end, s0 + segments_per_launch_);
        max_segments = std::max(max_segments, s1 - s0);
        max_tiles = std::max<std::size_t>(max_tiles, bounds[s1] - bounds[s0]);
      }

    entries_ = {};
    segment_tiles_ = {};
    g_offset_ = {};
    params_ = {};
    batch_ = {};
    pattern_nk_ = {};
    partials_ = {};
    work_ = {};
    tile_nk_ = {};
    total_ = {};
    entries_ = upload(entries);
    segment_tiles_ = upload(bounds);
    g_offset_ = upload(g_offset_host_);
    params_ = context_->allocate<S>(2 * Kz * D + covariance_size(type, K, D_));
    params_host_ = PinnedBuffer<S>(2 * Kz * D + covariance_size(type, K, D_));
    for (int slot = 0; slot < 2; ++slot) {
      batch_[slot] = context_->allocate<S>(max_batch);
      batch_host_[slot] = PinnedBuffer<S>(max_batch);
      pattern_nk_[slot] = context_->allocate<double>(max_patterns * Kz);
      pattern_nk_host_[slot] = PinnedBuffer<double>(max_patterns * Kz);
    }
    partials_ = context_->allocate<double>(max_segments * L_);
    work_ = context_->allocate<double>(max_segments * static_cast<std::size_t>(tile_rows_) * Kz);
    tile_nk_ = context_->allocate<double>(max_tiles * Kz);
    total_ = context_->allocate<double>(L_);
    total_host_ = PinnedBuffer<double>(L_);
    context_->compute().synchronize();
    plan_type_ = type;
    plan_K_ = K;
    planned_ = true;
  }

  // The device's totals in the statistics layout, plus the conditional covariance term.
  SufficientStats unpack(CovarianceType type, int K, std::vector<double> shift, const std::vector<double>& c_term) {
    const std::size_t Dz = static_cast<std::size_t>(D_), DD = Dz * Dz;
    SufficientStats st = SufficientStats::zeros(type, K, D_, std::move(shift));
    const double* t = total_host_.data();
    const bool full_scatter = type == CovarianceType::full || type == CovarianceType::tied;
    for (int k = 0; k < K; ++k) {
      const double* e = t + static_cast<std::size_t>(k) * M_;
      st.nk[k] = e[0];
      for (std::size_t i = 0; i < Dz; ++i) st.s1[k * Dz + i] = e[1 + i];
      const double* s2 = e + 1 + Dz;
      if (full_scatter) {
        // Tied: the sum over components, in component order.
        double* out = type == CovarianceType::tied ? st.s2.data() : st.s2.data() + k * DD;
        std::size_t idx = 0;
        for (std::size_t i = 0; i < Dz; ++i)
          for (std::size_t j = i; j < Dz; ++j) out[i * Dz + j] += s2[idx++];
      } else {
        for (std::size_t d = 0; d < Dz; ++d) st.s2[k * Dz + d] = s2[d];
      }
    }
    for (std::size_t i = 0; i < st.s2.size(); ++i) st.s2[i] += c_term[i];
    st.log_likelihood = t[static_cast<std::size_t>(K) * M_];
    st.n_points = n_points_;
    st.weight = total_weight_;
    return st;
  }

  const engine::MissingLayout& layout_;
  std::shared_ptr<cuda::DeviceContext> context_;
  int device_ = 0;
  MissingBatchLimits limits_;
  cudaStream_t stream_ = nullptr;
  int D_ = 0;
  std::size_t n_ = 0;  // incomplete rows
  std::size_t n_points_ = 0;  // of positive weight
  int tile_rows_ = 0;
  bool weighted_ = false;
  double total_weight_ = 0.0;

  // Fixed by the layout.
  PoolBuffer<S> X_;
  PoolBuffer<double> w_;
  PoolBuffer<int> cols_;
  PoolBuffer<int> n_observed_;
  PoolBuffer<MissingTile> tiles_;
  std::vector<std::size_t> pattern_first_tile_;  // P + 1
  PoolBuffer<std::uint32_t> pattern_first_tile_dev_;
  std::unique_ptr<cuda::HostThreads> threads_;  // the factors of a batch's patterns
  std::vector<std::uint32_t> tile_pattern_;
  std::vector<std::uint32_t> tile_rows_of_;

  // Fixed by the plan (covariance type and K).
  bool planned_ = false;
  CovarianceType plan_type_ = CovarianceType::full;
  int plan_K_ = 0;
  int M_ = 0;
  std::size_t L_ = 0;
  std::size_t segments_per_launch_ = 1;
  std::vector<Batch> batches_;
  std::vector<std::uint32_t> segment_bounds_;
  std::vector<std::uint64_t> g_offset_host_;
  PoolBuffer<unsigned> entries_;
  PoolBuffer<std::uint32_t> segment_tiles_;
  PoolBuffer<std::uint64_t> g_offset_;
  PoolBuffer<S> params_;  // means hi, lo (K x D each), factors
  PinnedBuffer<S> params_host_;
  // Two of each, batches in turn: batch b + 1's factors are made while batch b runs.
  std::array<PoolBuffer<S>, 2> batch_;  // constants, G table
  std::array<PinnedBuffer<S>, 2> batch_host_;
  std::array<std::vector<std::vector<double>>, 2> covs_;  // full, tied: C_pk of the batch
  std::array<PoolBuffer<double>, 2> pattern_nk_;  // the batch's patterns' sums of w g
  std::array<PinnedBuffer<double>, 2> pattern_nk_host_;
  std::vector<cuda::Event> batch_done_;  // per slot: the batch's pattern sums are back
  PoolBuffer<double> partials_;
  PoolBuffer<double> work_;
  PoolBuffer<double> tile_nk_;
  PoolBuffer<double> total_;
  PinnedBuffer<double> total_host_;
};

}  // namespace

std::unique_ptr<engine::IncompleteRows> make_cuda_incomplete_rows(const engine::MissingLayout& layout,
                                                                  const PrimitivesRequest& request,
                                                                  std::shared_ptr<cuda::DeviceContext> context,
                                                                  const MissingBatchLimits& limits) {
  if (request.device.kind == DeviceKind::cpu)
    throw InvalidArgument("make_cuda_incomplete_rows: the request names the CPU");
  const int device = request.device.kind == DeviceKind::cuda ? request.device.index : 0;
  if (context && context->device() != device)
    throw InvalidArgument("the device context is for cuda:" + std::to_string(context->device()) + ", not cuda:" +
                          std::to_string(device));
  if (!context) context = cuda::make_device_context(device, request.device_memory_limit);
  if (request.precision == Precision::float64)
    return std::make_unique<CudaIncompleteRows<double>>(layout, std::move(context), limits);
  return std::make_unique<CudaIncompleteRows<float>>(layout, std::move(context), limits);
}

}  // namespace cuem
