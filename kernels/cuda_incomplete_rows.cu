// The incomplete rows' E-step on a CUDA device (src/core/cuda_incomplete_rows.hpp): the
// rows uploaded once, relative to the layout's fill (the observed column means, which
// plays the primitives' origin), in the arithmetic type; per iteration the conditional
// factors of each (pattern, component) computed on the host in float64
// (engine/conditional_gaussian.hpp) and uploaded batch by batch; the kernels of
// missing_estep.hpp; the segments' float64 partials added in order on the device.
//
// The conditional covariance term of S2 (sum over rows of w g_k C_k, C_k constant over a
// pattern) is (sum w g_k over the pattern) C_pk: the kernel returns sum w g_k per tile,
// and the host adds the tiles of a pattern in order, then each pattern's term in pattern
// order, in float64.
//
// Memory: the rows (n x D in S, and n weights in float64), the pattern tables (D ints a
// pattern), the tiles and segments (a few values each), per batch the factor table
// (MissingBatchLimits), per launch the segments' partials (at most kPartialBytes), their
// work rows (tile_rows x K doubles a segment) and the tiles' sums. Nothing is
// proportional to N x K.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
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
// The partials of one launch: (segments of the launch) x (K M + 1) doubles.
constexpr std::size_t kPartialBytes = std::size_t{64} << 20;
constexpr std::size_t kMaxSegmentsPerLaunch = 1024;

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
    weighted_ = !layout_.weights.empty();
    total_weight_ = static_cast<double>(n_);
    if (weighted_) {
      total_weight_ = 0.0;
      for (std::size_t i = layout_.n_complete; i < layout_.n_rows; ++i) total_weight_ += layout_.weights[i];
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
    segment_tiles_ = {};
    g_offset_ = {};
    entries_ = {};
    params_ = {};
    batch_ = {};
    partials_ = {};
    work_ = {};
    tile_nk_ = {};
    total_ = {};
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

    // The components: means in two parts about the fill, the factors, log|P_k|.
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
    std::vector<double> log_det_p(Kz, 0.0);  // full, tied: log|P_k|
    if (full_scatter)
      for (std::size_t k = 0; k < Kz; ++k) {
        const double* P = model.precisions_cholesky.data() + (type == CovarianceType::tied ? 0 : k * D * D);
        for (std::size_t d = 0; d < D; ++d) log_det_p[k] += std::log(P[d * D + d]);
      }
    const std::vector<double> precisions = full_scatter ? engine::precision_matrices(model) : std::vector<double>{};

    CUEM_CUDA_CHECK(cudaMemsetAsync(total_.data(), 0, total_.bytes(), stream_));
    std::vector<double> c_term(s2_size(type, K, D_), 0.0);
    std::vector<double> pattern_nk;
    std::vector<std::vector<double>> covs;  // full, tied: C_pk of the batch's patterns
    for (const Batch& b : batches_) {
      const std::size_t Pb = b.pattern_end - b.pattern_begin;
      // The batch's constants (Pb x K), then its G table.
      S* hc = batch_host_.data();
      S* hg = hc + Pb * Kz;
      covs.assign(full_scatter ? Pb * Kz : 0, {});
      for (std::size_t q = 0; q < Pb; ++q) {
        const engine::MissingPattern& pat = layout_.patterns[b.pattern_begin + q];
        const double half_o_log2pi = 0.5 * static_cast<double>(pat.observed.size()) * math::kLog2Pi;
        for (std::size_t k = 0; k < Kz; ++k) {
          double log_det_o = 0.0;  // log|P_k| - log_det_mm
          if (full_scatter) {
            engine::ConditionalFactors f =
                engine::conditional_factors(model, precisions, static_cast<int>(k), pat);
            log_det_o = log_det_p[k] - f.log_det_mm;
            const std::size_t at = g_offset_host_[b.pattern_begin + q] + k * f.G.size();
            for (std::size_t i = 0; i < f.G.size(); ++i) hg[at + i] = static_cast<S>(f.G[i]);
            covs[q * Kz + k] = std::move(f.cov);
          } else if (type == CovarianceType::diag) {
            for (const int d : pat.observed) log_det_o += std::log(model.precisions_cholesky[k * D + d]);
          } else {
            log_det_o = static_cast<double>(pat.observed.size()) * std::log(model.precisions_cholesky[k]);
          }
          hc[q * Kz + k] = static_cast<S>(std::log(model.weights[k]) + log_det_o - half_o_log2pi);
        }
      }
      CUEM_CUDA_CHECK(cudaMemcpyAsync(batch_.data(), hc, (Pb * Kz + b.factor_values) * sizeof(S),
                                      cudaMemcpyHostToDevice, stream_));
      pattern_nk.assign(Pb * Kz, 0.0);
      for (std::size_t s0 = b.segment_begin; s0 < b.segment_end; s0 += segments_per_launch_) {
        const std::size_t s1 = std::min(b.segment_end, s0 + segments_per_launch_);
        const std::uint32_t first_tile = segment_bounds_[s0];
        const std::size_t n_tiles = segment_bounds_[s1] - first_tile;
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
        a.g = full_scatter ? batch_.data() + Pb * Kz : nullptr;
        a.constants = batch_.data();
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
        a.pattern_base = static_cast<std::uint32_t>(b.pattern_begin);
        cuda::launch_missing_estep(a, stream_);
        cuda::launch_accumulate_segments(partials_.data(), s1 - s0, L_, total_.data(), stream_);
        CUEM_CUDA_CHECK(cudaMemcpyAsync(tile_nk_host_.data(), tile_nk_.data(), n_tiles * Kz * sizeof(double),
                                        cudaMemcpyDeviceToHost, stream_));
        context_->compute().synchronize();
        // Tiles in order: each pattern's sum runs over its tiles in order.
        for (std::size_t t = 0; t < n_tiles; ++t) {
          const std::size_t q = tile_pattern_[first_tile + t] - b.pattern_begin;
          for (std::size_t k = 0; k < Kz; ++k) pattern_nk[q * Kz + k] += tile_nk_host_.data()[t * Kz + k];
        }
      }
      // sum w g_k C_pk, pattern by pattern, on the missing block.
      for (std::size_t q = 0; q < Pb; ++q) {
        const std::vector<int>& m = layout_.patterns[b.pattern_begin + q].missing;
        const std::size_t nm = m.size();
        for (std::size_t k = 0; k < Kz; ++k) {
          const double nk = pattern_nk[q * Kz + k];
          if (full_scatter) {
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
    CUEM_CUDA_CHECK(cudaMemcpyAsync(total_host_.data(), total_.data(), total_.bytes(), cudaMemcpyDeviceToHost,
                                    stream_));
    context_->compute().synchronize();
    return unpack(type, K, std::move(shift), c_term);
  }

 private:
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
    segments_per_launch_ = std::clamp<std::size_t>(kPartialBytes / (L_ * sizeof(double)), 1, kMaxSegmentsPerLaunch);

    // Patterns into batches (consecutive, within the limits), each batch's tiles into
    // segments (consecutive, within kSegmentRows and kSegmentTiles).
    batches_.clear();
    g_offset_host_.assign(layout_.patterns.size(), 0);
    std::vector<std::uint32_t> bounds;
    std::size_t max_batch = 0;
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
    partials_ = {};
    work_ = {};
    tile_nk_ = {};
    total_ = {};
    entries_ = upload(entries);
    segment_tiles_ = upload(bounds);
    g_offset_ = upload(g_offset_host_);
    params_ = context_->allocate<S>(2 * Kz * D + covariance_size(type, K, D_));
    params_host_ = PinnedBuffer<S>(2 * Kz * D + covariance_size(type, K, D_));
    batch_ = context_->allocate<S>(max_batch);
    batch_host_ = PinnedBuffer<S>(max_batch);
    partials_ = context_->allocate<double>(max_segments * L_);
    work_ = context_->allocate<double>(max_segments * static_cast<std::size_t>(tile_rows_) * Kz);
    tile_nk_ = context_->allocate<double>(max_tiles * Kz);
    tile_nk_host_ = PinnedBuffer<double>(max_tiles * Kz);
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
    st.n_points = n_;
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
  PoolBuffer<S> batch_;  // constants, G table
  PinnedBuffer<S> batch_host_;
  PoolBuffer<double> partials_;
  PoolBuffer<double> work_;
  PoolBuffer<double> tile_nk_;
  PinnedBuffer<double> tile_nk_host_;
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
