// The CUDA primitives: own the data on the device (or streams it from host memory in chunks,
// through two pinned staging buffers), uploads each iteration's parameters, runs the E-step
// kernels chunk by chunk and returns float64 sufficient statistics to the shared host code.
//
// Precision: the data are stored relative to a global origin (the column means, in
// float64) and converted to the arithmetic type S once. Subtracting the origin first
// keeps float32 from rounding away the spread of offset data (centred at 1e4, say).
// The statistics are about the shift c_k = origin + S(mu_k - origin), which the
// returned SufficientStats name exactly, so the host M-step stays exact in float64.
//
// Memory: the data (when they fit in the limit beside one chunk's workspace) plus, per
// chunk of C points, K x C responsibilities, C log-likelihoods and the segment partials
// (C / kSegmentPoints) x (K x M + 1) doubles. Nothing is proportional to N x K. k-means
// keeps one value per point (in the caller's PointValues): on the device beside resident
// data when the limit allows, else in pinned host memory, moved through the
// log-likelihood buffer chunk by chunk.
//
// Weights (sample_weight): placed with the data, in S (resident: N values beside the
// data; streamed: each chunk's beside its rows). A weighted pass scales each chunk's
// responsibilities and log-likelihoods by them before the unchanged statistics kernels
// sum them (sample_weights.hpp), and takes the weighted closest sums; an unweighted one
// runs exactly the code it ran before weights existed.
#include <cuda_runtime.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/cuda_primitives.hpp"
#include "core/data_access.hpp"
#include "cuem/model.hpp"
#include "cuda_check.cuh"
#include "device_context.cuh"
#include "device_memory.cuh"
#include "device_view.hpp"
#include "estep.hpp"
#include "host_threads.hpp"
#include "kmeans.hpp"
#include "random_resp.hpp"
#include "sample_weights.hpp"

namespace cuem::cuda {
namespace {

// A chunk starts on a segment boundary, so on a closest-sum block boundary too.
static_assert(kSegmentPoints % kClosestBlock == 0, "closest blocks must tile a segment");

std::size_t round_up(std::size_t v, std::size_t m) { return (v + m - 1) / m * m; }

// Labels returned per copy by nearest_labels (pinned memory: keep it small).
constexpr std::size_t kLabelPiece = std::size_t{1} << 22;

// Bytes of each of the two pinned buffers that streamed data pass through: large enough
// for copies near the link's bandwidth, small beside the chunks (which may fill most of
// the device).
constexpr std::size_t kStagingBytes = std::size_t{8} << 20;

// Parameters uploaded per iteration: log weights, log-dets, means (two parts), factors
// (a covariance's worth of values).
std::size_t param_count(CovarianceType type, int K, int D) {
  const std::size_t Kz = static_cast<std::size_t>(K), Dz = static_cast<std::size_t>(D);
  const std::size_t scaled = type == CovarianceType::diag ? 2 * Kz * Dz : 0;  // ComponentParams::scaled_means
  return 2 * Kz + 2 * Kz * Dz + covariance_size(type, K, D) + scaled;
}

// A coordinate relative to the origin in two parts, hi = S(v) and lo = S(v - hi), so
// that hi + lo carries what float32 alone would round away (estep.hpp, kmeans.hpp).
template <typename S>
void split(double v, S* hi, S* lo) {
  *hi = static_cast<S>(v);
  // Past S's range hi is infinite and so is the point's distance; a lo of -inf would make
  // it NaN.
  *lo = std::isfinite(static_cast<double>(*hi)) ? static_cast<S>(v - static_cast<double>(*hi)) : S(0);
}

template <typename S>
const char* precision_name() {
  return sizeof(S) == 4 ? "float32" : "float64";
}

// The k-means++ values of one caller (primitives.hpp): the squared distance to the
// nearest seed so far, on the device or in pinned host memory (as prepare() decided when
// they are first reset), and their block sums. Released with their device current, once
// the stream that may still use them (an interrupted pass) has finished. They hold the
// context their device buffers come from, so its pool outlives them.
template <typename S>
struct CudaPointValues final : PointValues {
  explicit CudaPointValues(std::shared_ptr<DeviceContext> ctx)
      : context(std::move(ctx)), device(context->device()), stream(context->compute().get()) {}
  ~CudaPointValues() override {
    const ScopedDeviceNoThrow on(device);
    CUEM_CUDA_CHECK_NOTHROW(cudaStreamSynchronize(stream));
    closest = {};
    closest_host = {};
    block_sums = {};
    block_sums_host = {};
    sample_host = {};
  }
  CudaPointValues(const CudaPointValues&) = delete;
  CudaPointValues& operator=(const CudaPointValues&) = delete;

  std::shared_ptr<DeviceContext> context;
  int device;
  cudaStream_t stream;
  bool on_device = true;             // else closest_host
  bool valid = false;                // a reset (and any later update) completed
  PoolBuffer<S> closest;             // N
  PinnedBuffer<S> closest_host;      // N, when the device has no room
  PoolBuffer<double> block_sums;     // per kClosestBlock points
  PinnedBuffer<double> block_sums_host;
  std::vector<double> sums;          // from the last reset/update, for sampling
  PinnedBuffer<S> sample_host;       // one block of values
};

template <typename S>
class CudaPrimitives final : public Primitives {
 public:
  CudaPrimitives(DataView X, WeightView w, const BackendOptions& o, const CudaTuning& tuning,
                 std::shared_ptr<DeviceContext> context)
      : X_(X), w_(w), device_(o.device), tuning_(tuning), context_(std::move(context)) {
    const ScopedDevice on(device_);
    cudaDeviceProp prop{};
    CUEM_CUDA_CHECK(cudaGetDeviceProperties(&prop, device_));
    device_name_ = prop.name;
    std::size_t free_b = 0, total_b = 0;
    CUEM_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    // What the context's pool holds cached is free to these primitives too.
    limit_ = o.memory_limit ? o.memory_limit : (free_b + context_->cached_bytes()) / 10 * 8;
    // Events belong to the device that is current when they are made (as the context's
    // streams do).
    compute_ = &context_->compute();
    copy_ = &context_->copy();
    for (int i = 0; i < 2; ++i) {
      copied_.emplace_back();
      consumed_.emplace_back();
      staged_.emplace_back();
    }
    total_weight_ = static_cast<double>(X_.n_rows);
    if (weighted()) {
      total_weight_ = 0.0;
      for (std::size_t i = 0; i < X_.n_rows; ++i) total_weight_ += w_.data[i];
    }
    if (X_.on_device()) {
      if (X_.device_ordinal != device_)
        throw InvalidArgument("the data live on cuda:" + std::to_string(X_.device_ordinal) + " but the fit runs on cuda:" +
                              std::to_string(device_) + "; choose the data's device");
      if (weighted())
        throw InvalidArgument("sample_weight with data in device memory is not supported yet; pass host data, or "
                              "no weights");
      origin_ = device_column_means();
      origin_dev_ = context_->allocate<double>(X_.n_cols);
      CUEM_CUDA_CHECK(cudaMemcpyAsync(origin_dev_.data(), origin_.data(), X_.n_cols * sizeof(double),
                                      cudaMemcpyHostToDevice, compute_->get()));
      compute_->synchronize();
    } else {
      origin_ = weighted() ? weighted_column_means() : column_means(X_);
    }
  }

  ~CudaPrimitives() override {
    // The primitives' device must be current while its memory, streams and events are
    // released (the caller may have another one current), so they are released here, in
    // the scope of a no-throw device switch, rather than by the member destructors.
    const ScopedDeviceNoThrow on(device_);
    // Work may still be queued when an exception (an interrupt, say) unwinds the fit:
    // let it finish before the buffers it uses are freed (their frees are queued on the
    // compute stream, behind it, and return the blocks to the context's pool).
    if (compute_) CUEM_CUDA_CHECK_NOTHROW(cudaStreamSynchronize(compute_->get()));
    if (copy_) CUEM_CUDA_CHECK_NOTHROW(cudaStreamSynchronize(copy_->get()));
    data_ = {};
    origin_dev_ = {};
    weights_ = {};
    stream_staging_ = {};
    stream_slots_ = {};
    stream_weights_ = {};
    resp_ = {};
    log_prob_ = {};
    norm_ = {};
    partials_ = {};
    total_ = {};
    total_host_ = {};
    entries_ = {};
    params_ = {};
    params_host_ = {};
    eval_host_ = {};
    centres_ = {};
    centres_host_ = {};
    labels_host_ = {};
    copied_.clear();
    consumed_.clear();
    staged_.clear();
    compute_ = nullptr;
    copy_ = nullptr;
    context_.reset();
  }

  CudaPrimitives(const CudaPrimitives&) = delete;
  CudaPrimitives& operator=(const CudaPrimitives&) = delete;

  std::size_t rows() const noexcept override { return X_.n_rows; }
  std::size_t cols() const noexcept override { return X_.n_cols; }
  bool weighted() const noexcept override { return !w_.empty(); }
  double total_weight() const noexcept override { return total_weight_; }
  WeightView weights() const noexcept override { return w_; }
  // Host data: read in place; device data: one strided copy of the rows to the host.
  void copy_rows(std::size_t begin, std::size_t count, double* out) const override {
    const std::size_t D = X_.n_cols;
    if (!X_.on_device()) {
      for (std::size_t i = 0; i < count; ++i)
        for (std::size_t d = 0; d < D; ++d) out[i * D + d] = X_.value(begin + i, d);
      return;
    }
    if (count == 0) return;
    const ScopedDevice on(device_);
    visit_rows(X_, [&](const auto* base) {
      using T = std::remove_const_t<std::remove_pointer_t<decltype(base)>>;
      std::vector<T> rows(count * D);
      CUEM_CUDA_CHECK(cudaMemcpy2DAsync(rows.data(), D * sizeof(T), base + begin * X_.row_stride,
                                        X_.row_stride * sizeof(T), D * sizeof(T), count, cudaMemcpyDeviceToHost,
                                        compute_->get()));
      compute_->synchronize();
      for (std::size_t v = 0; v < count * D; ++v) out[v] = static_cast<double>(rows[v]);
    });
  }

  const char* name() const noexcept override { return "cuda"; }
  int cuda_device() const noexcept override { return device_; }

  double unit_roundoff() const noexcept override { return std::numeric_limits<S>::epsilon() / 2; }

  std::string description() const override {
    std::string s = "cuda:" + std::to_string(device_) + " (" + device_name_ + "), " + precision_name<S>();
    if (chunk_ != 0) {
      s += resident_ ? ", data resident" : ", data streamed through pinned staging buffers";
      s += ", chunks of " + std::to_string(chunk_) + " points";
    }
    return s;
  }

  SufficientStats gaussian_estep(const PreparedParams& p) override { return estep_over(p, 0, X_.n_rows); }

  // A block or chunk of the placed data (incremental EM, out of core): the same pass over
  // its pieces, through the buffers and staging placed once for all of the rows.
  SufficientStats gaussian_estep_rows(const PreparedParams& p, std::size_t begin, std::size_t end) override {
    if (begin > end || end > X_.n_rows)
      throw InvalidArgument("gaussian_estep_rows: rows [" + std::to_string(begin) + ", " + std::to_string(end) +
                            ") are not within the " + std::to_string(X_.n_rows) + " placed rows");
    SufficientStats st = estep_over(p, begin, end);
    st.n_points = end - begin;
    st.weight = static_cast<double>(end - begin);
    if (weighted()) {
      st.weight = 0.0;
      for (std::size_t i = begin; i < end; ++i) st.weight += w_.data[i];
    }
    return st;
  }
  bool estep_over_rows() const noexcept override { return true; }

 private:
  // The E-step's statistics over rows [begin, end), weight and n_points those of all rows.
  SufficientStats estep_over(const PreparedParams& p, std::size_t begin, std::size_t end) {
    const ScopedDevice on(device_);
    std::vector<double> shift;
    const ComponentParams<S> cp = begin_pass(p, &shift);
    const cudaStream_t s = compute_->get();
    CUEM_CUDA_CHECK(cudaMemsetAsync(total_.data(), 0, total_.bytes(), s));
    if (weighted()) {
      // Not fused, and normalised in place: the weights scale responsibilities between
      // the posteriors and the statistics.
      for_each_piece(begin, end, chunk_, [&](const S* x, std::size_t, std::size_t count, const S* w) {
        launch_posteriors(cp, x, count, resp_.data(), chunk_, log_prob_.data(), tuning_, s);
        launch_scale_rows(w, count, p.K, resp_.data(), chunk_, log_prob_.data(), s);
        launch_segment_stats(p.K, p.D, x, count, cp.means, resp_.data(), chunk_, log_prob_.data(), entries_.data(),
                             M_, partials_.data(), L_, tuning_, s);
        launch_accumulate_segments(partials_.data(), (count + kSegmentPoints - 1) / kSegmentPoints, L_,
                                   total_.data(), s);
      });
    } else {
      for_each_piece(begin, end, chunk_, [&](const S* x, std::size_t, std::size_t count) {
        if (!launch_fused_estep(cp, x, count, partials_.data(), L_, tuning_, s))
          launch_estep(cp, x, count, resp_.data(), chunk_, log_prob_.data(), norm_.data(), entries_.data(), M_,
                       partials_.data(), L_, tuning_, s);
        launch_accumulate_segments(partials_.data(), (count + kSegmentPoints - 1) / kSegmentPoints, L_,
                                   total_.data(), s);
      });
    }
    CUEM_CUDA_CHECK(cudaMemcpyAsync(total_host_.data(), total_.data(), total_.bytes(), cudaMemcpyDeviceToHost, s));
    compute_->synchronize();
    return unpack_stats(p, std::move(shift));
  }

 public:
  void posteriors(const PreparedParams& p, std::size_t begin, std::size_t end, double* log_prob,
                  double* resp) override {
    const ScopedDevice on(device_);
    std::vector<double> shift;
    const ComponentParams<S> cp = begin_pass(p, &shift);
    const cudaStream_t s = compute_->get();
    const std::size_t K = static_cast<std::size_t>(p.K);
    // Results come back through a pinned buffer of at most eval_chunk_ points. A piece's
    // responsibilities are laid out K x count (stride count, not chunk_) so that they
    // come back in one contiguous copy: a pitched copy with the chunk as its pitch is
    // refused above the device's pitch limit (memPitch, 2^31 - 1 bytes: chunks of about
    // 536M float32 points).
    for_each_piece(begin, end, eval_chunk_, [&](const S* x, std::size_t b, std::size_t count) {
      launch_posteriors(cp, x, count, resp_.data(), count, log_prob_.data(), tuning_, s);
      S* host_resp = eval_host_.data();
      S* host_lp = eval_host_.data() + K * eval_chunk_;
      if (resp)
        CUEM_CUDA_CHECK(
            cudaMemcpyAsync(host_resp, resp_.data(), K * count * sizeof(S), cudaMemcpyDeviceToHost, s));
      if (log_prob)
        CUEM_CUDA_CHECK(
            cudaMemcpyAsync(host_lp, log_prob_.data(), count * sizeof(S), cudaMemcpyDeviceToHost, s));
      compute_->synchronize();
      if (resp)
        for (std::size_t i = 0; i < count; ++i)
          for (std::size_t k = 0; k < K; ++k)
            resp[(b - begin + i) * K + k] = static_cast<double>(host_resp[k * count + i]);
      if (log_prob)
        for (std::size_t i = 0; i < count; ++i) log_prob[b - begin + i] = static_cast<double>(host_lp[i]);
    });
  }

  // ---- k-means (Backend's k-means section) ---------------------------------------------

  void reserve(CovarianceType type, int K) override {
    const ScopedDevice on(device_);
    compute_->synchronize();
    prepare(type, K);
  }

  std::unique_ptr<PointValues> make_point_values() override {
    return std::make_unique<CudaPointValues<S>>(context_);
  }

  // One pass of the closest-distance bookkeeping over every chunk; the block sums come
  // back and are added in order on the host.
  double closest(PointValues& values, const double* c, cuem::ClosestMode mode) override {
    CudaPointValues<S>& v = cuda_values(values);
    const ScopedDevice on(device_);
    compute_->synchronize();
    if (!placed_) prepare(CovarianceType::diag, 1);
    if (mode != cuem::ClosestMode::reset)
      require_closest(v, mode == cuem::ClosestMode::update ? "closest(update)" : "closest(potential)");
    const std::size_t N = X_.n_rows;
    const std::size_t n_blocks = (N + kClosestBlock - 1) / kClosestBlock;
    if (v.block_sums.size() != n_blocks) {
      // On the device when prepare() budgeted it there, else in pinned host memory and
      // moved through the log-likelihood buffer chunk by chunk.
      v.on_device = closest_on_device_;
      if (v.on_device) {
        v.closest = context_->allocate<S>(N);
        v.sample_host = PinnedBuffer<S>(kClosestBlock);
      } else {
        v.closest_host = PinnedBuffer<S>(N);
      }
      v.block_sums = context_->allocate<double>(n_blocks);
      v.block_sums_host = PinnedBuffer<double>(n_blocks);
    }
    // A reset or update that stops half way (an interrupt) leaves no valid values.
    if (mode != cuem::ClosestMode::potential) v.valid = false;
    const CentreParts centres = upload_centres(c, 1, nullptr);
    const S* hi = centres.hi;
    const S* lo = centres.lo;
    const ClosestMode kernel_mode = mode == cuem::ClosestMode::reset    ? ClosestMode::reset
                                    : mode == cuem::ClosestMode::update ? ClosestMode::update
                                                                         : ClosestMode::potential;
    const cudaStream_t s = compute_->get();
    const auto pass = [&](const S* x, std::size_t begin, std::size_t count, const S* w) {
      S* values_dev = v.on_device ? v.closest.data() + begin : log_prob_.data();
      // Host values: every copy and the kernel run in order on the compute stream, so
      // the one device buffer is reused safely.
      if (!v.on_device && mode != cuem::ClosestMode::reset)
        CUEM_CUDA_CHECK(cudaMemcpyAsync(values_dev, v.closest_host.data() + begin, count * sizeof(S),
                                        cudaMemcpyHostToDevice, s));
      if (w)
        launch_weighted_closest(x, w, count, static_cast<int>(X_.n_cols), hi, lo, values_dev, kernel_mode,
                                v.block_sums.data(), begin / kClosestBlock, s);
      else
        launch_closest(x, count, static_cast<int>(X_.n_cols), hi, lo, values_dev, kernel_mode, v.block_sums.data(),
                       begin / kClosestBlock, s);
      if (!v.on_device && mode != cuem::ClosestMode::potential)
        CUEM_CUDA_CHECK(cudaMemcpyAsync(v.closest_host.data() + begin, values_dev, count * sizeof(S),
                                        cudaMemcpyDeviceToHost, s));
    };
    if (weighted())
      for_each_piece(0, N, chunk_, pass);
    else
      for_each_piece(0, N, chunk_, [&](const S* x, std::size_t b, std::size_t count) { pass(x, b, count, nullptr); });
    CUEM_CUDA_CHECK(cudaMemcpyAsync(v.block_sums_host.data(), v.block_sums.data(), n_blocks * sizeof(double),
                                    cudaMemcpyDeviceToHost, s));
    compute_->synchronize();
    double total = 0.0;
    for (std::size_t b = 0; b < n_blocks; ++b) total += v.block_sums_host.data()[b];
    if (mode != cuem::ClosestMode::potential)
      v.sums.assign(v.block_sums_host.data(), v.block_sums_host.data() + n_blocks);
    v.valid = true;
    return total;
  }

  // The block from the sums of the last reset/update, then a scan of that block's values
  // in float64 (the CPU primitives' rule).
  std::size_t sample_point(const PointValues& values, double r) override {
    const CudaPointValues<S>& v = cuda_values(values);
    const ScopedDevice on(device_);
    require_closest(v, "sample_point");
    compute_->synchronize();
    const std::size_t N = X_.n_rows;
    double prefix = 0.0;
    std::size_t b = 0;
    for (; b + 1 < v.sums.size(); ++b) {
      if (prefix + v.sums[b] > r) break;
      prefix += v.sums[b];
    }
    const std::size_t lo = b * kClosestBlock;
    const std::size_t hi = std::min(N, lo + kClosestBlock);
    const S* host = nullptr;
    if (v.on_device) {
      CUEM_CUDA_CHECK(cudaMemcpyAsync(v.sample_host.data(), v.closest.data() + lo, (hi - lo) * sizeof(S),
                                      cudaMemcpyDeviceToHost, compute_->get()));
      compute_->synchronize();
      host = v.sample_host.data();
    } else {
      host = v.closest_host.data() + lo;
    }
    double partial = 0.0;
    if (weighted()) {
      // w v as weighted_closest_kernel sums it: the weight as the device holds it.
      for (std::size_t i = lo; i < hi; ++i) {
        const S wi = static_cast<S>(w_.data[i]);
        if (wi != S(0)) partial += static_cast<double>(wi) * static_cast<double>(host[i - lo]);
        if (prefix + partial > r) return i;
      }
      return hi - 1;
    }
    for (std::size_t i = lo; i < hi; ++i) {
      partial += static_cast<double>(host[i - lo]);
      if (prefix + partial > r) return i;
    }
    return hi - 1;
  }

  // Hard one-hot responsibilities through the statistics kernel (diag layout): N_k and
  // the sums of each centre's points about the centre, and the inertia in the
  // log-likelihood slot; with weights the one-hot rows and distances scaled by them.
  LloydStep lloyd_step(const std::vector<double>& centers, int K) override {
    const ScopedDevice on(device_);
    compute_->synchronize();
    // N_k and S1 lead every layout; diag's is the smallest with them (spherical's has the
    // same entries, so a spherical fit keeps its buffers).
    prepare(ws_type_ == CovarianceType::spherical && ws_K_ == K ? CovarianceType::spherical : CovarianceType::diag,
            K);
    const std::size_t D = X_.n_cols;
    std::vector<double> shift;
    const CentreParts centres = upload_centres(centers.data(), K, &shift);
    const S* hi = centres.hi;
    const S* lo = centres.lo;
    const cudaStream_t s = compute_->get();
    CUEM_CUDA_CHECK(cudaMemsetAsync(total_.data(), 0, total_.bytes(), s));
    const auto step = [&](const S* x, std::size_t count, const S* w) {
      launch_hard_assign(x, count, static_cast<int>(D), K, hi, lo, nullptr, log_prob_.data(), resp_.data(), chunk_,
                         tuning_, s);
      if (w) launch_scale_rows(w, count, K, resp_.data(), chunk_, log_prob_.data(), s);
      launch_segment_stats(K, static_cast<int>(D), x, count, hi, resp_.data(), chunk_, log_prob_.data(),
                           entries_.data(), M_, partials_.data(), L_, tuning_, s);
      launch_accumulate_segments(partials_.data(), (count + kSegmentPoints - 1) / kSegmentPoints, L_, total_.data(), s);
    };
    if (weighted())
      for_each_piece(0, X_.n_rows, chunk_,
                     [&](const S* x, std::size_t, std::size_t count, const S* w) { step(x, count, w); });
    else
      for_each_piece(0, X_.n_rows, chunk_, [&](const S* x, std::size_t, std::size_t count) { step(x, count, nullptr); });
    CUEM_CUDA_CHECK(cudaMemcpyAsync(total_host_.data(), total_.data(), total_.bytes(), cudaMemcpyDeviceToHost, s));
    compute_->synchronize();
    const double* t = total_host_.data();
    LloydStep out;
    out.centers = centers;
    out.counts.assign(K, 0.0);
    out.inertia = t[static_cast<std::size_t>(K) * M_];
    for (int k = 0; k < K; ++k) {
      const double* e = t + static_cast<std::size_t>(k) * M_;
      out.counts[k] = e[0];
      if (e[0] == 0.0) continue;  // empty cluster: keep its centre
      for (std::size_t d = 0; d < D; ++d) out.centers[k * D + d] = shift[k * D + d] + e[1 + d] / e[0];
    }
    return out;
  }

  // Responsibilities formed on the device per chunk (one-hot from the hard assignment,
  // the 'random' draws, or the posteriors), then the statistics kernel about `shift` as
  // this device rounds it (origin + S(shift - origin), the result's shift).
  SufficientStats weighted_stats(const Responsibilities& g, CovarianceType type, int K,
                                 const std::vector<double>& shift) override {
    return stats_over(g, type, K, shift, 0, X_.n_rows);
  }

  // The 'given' weights over rows [begin, end) (the HMM's bounded-memory E-step): the
  // pieces start at `begin`, g.given holds those rows' weights.
  SufficientStats weighted_stats_rows(const Responsibilities& g, CovarianceType type, int K,
                                      const std::vector<double>& shift, std::size_t begin, std::size_t end) override {
    if (g.kind != Responsibilities::Kind::given)
      throw InvalidArgument("weighted_stats_rows: the weights must be given (an (end - begin) x K matrix)");
    if (begin > end || end > X_.n_rows)
      throw InvalidArgument("weighted_stats_rows: rows [" + std::to_string(begin) + ", " + std::to_string(end) +
                            ") are not within the " + std::to_string(X_.n_rows) + " placed rows");
    return stats_over(g, type, K, shift, begin, end);
  }
  bool stats_over_rows() const noexcept override { return true; }

 private:
  // weighted_stats over rows [begin, end); only 'given' weights take a part of the rows.
  SufficientStats stats_over(const Responsibilities& g, CovarianceType type, int K, const std::vector<double>& shift,
                             std::size_t begin, std::size_t end) {
    const ScopedDevice on(device_);
    compute_->synchronize();
    prepare(type, K);  // every layout's entries start with N_k and S1
    const std::size_t D = X_.n_cols;
    const std::size_t n = static_cast<std::size_t>(K) * D;
    if (shift.size() != n) throw InvalidArgument("weighted_stats: the shift must be K x D");
    // The shift goes to the parameter buffer, or to the centres' where the posteriors
    // need the parameter buffer for themselves.
    const bool posterior = g.kind == Responsibilities::Kind::posteriors;
    std::vector<double> used_shift;
    const S* shift_dev = nullptr;
    if (posterior) {
      shift_dev = upload_centres(shift.data(), K, &used_shift).hi;
    } else {
      used_shift.resize(n);
      S* h = params_host_.data();
      for (std::size_t i = 0; i < n; ++i) {
        const std::size_t d = i % D;
        S lo;
        split(shift[i] - origin_[d], &h[i], &lo);
        used_shift[i] = origin_[d] + static_cast<double>(h[i]);
      }
      CUEM_CUDA_CHECK(cudaMemcpyAsync(params_.data(), h, n * sizeof(S), cudaMemcpyHostToDevice, compute_->get()));
      shift_dev = params_.data();
    }
    switch (g.kind) {
      case Responsibilities::Kind::nearest: {
        if (!g.centers || g.centers->size() != n) throw InvalidArgument("weighted_stats: nearest needs K x D centres");
        const CentreParts centres = upload_centres(g.centers->data(), K, nullptr);
        stats_pass(K, shift_dev, [&](const S* x, std::size_t, std::size_t count, cudaStream_t s) {
          launch_hard_assign(x, count, static_cast<int>(D), K, centres.hi, centres.lo, nullptr, log_prob_.data(),
                             resp_.data(), chunk_, tuning_, s);
        });
        break;
      }
      case Responsibilities::Kind::random:
        stats_pass(K, shift_dev, [&](const S*, std::size_t b, std::size_t count, cudaStream_t s) {
          launch_random_resp(g.seed, K, b, count, resp_.data(), chunk_, s);
          // segment_log_likelihood_kernel sums log_prob: give it zeros.
          CUEM_CUDA_CHECK(cudaMemsetAsync(log_prob_.data(), 0, count * sizeof(S), s));
        });
        break;
      case Responsibilities::Kind::posteriors: {
        if (!g.params || g.params->K != K) throw InvalidArgument("weighted_stats: posteriors needs K components");
        const std::size_t n_params = param_count(g.params->type, K, static_cast<int>(D));
        if (params_.size() < n_params) {  // parameters of a larger layout than the statistics'
          params_ = {};
          params_ = context_->allocate<S>(n_params);
          params_host_ = PinnedBuffer<S>(n_params);
        }
        std::vector<double> unused;
        const ComponentParams<S> cp = upload_params(*g.params, &unused);
        stats_pass(K, shift_dev, [&](const S* x, std::size_t, std::size_t count, cudaStream_t s) {
          launch_posteriors(cp, x, count, resp_.data(), chunk_, log_prob_.data(), tuning_, s);
        });
        break;
      }
      case Responsibilities::Kind::given: {
        if (!g.given) throw InvalidArgument("weighted_stats: given needs an N x K matrix of weights");
        // The caller's rows transposed into resp_'s layout (k * chunk + i) in the
        // arithmetic type, through one host staging buffer reused per chunk.
        const std::size_t uK = static_cast<std::size_t>(K);
        std::vector<S> staging(uK * chunk_);
        stats_pass(K, shift_dev, [&](const S*, std::size_t b, std::size_t count, cudaStream_t s) {
          compute_->synchronize();  // the previous chunk's upload has read the staging buffer
          const double* src = g.given + (b - begin) * uK;
          for (std::size_t i = 0; i < count; ++i)
            for (std::size_t k = 0; k < uK; ++k) staging[k * chunk_ + i] = static_cast<S>(src[i * uK + k]);
          CUEM_CUDA_CHECK(
              cudaMemcpyAsync(resp_.data(), staging.data(), uK * chunk_ * sizeof(S), cudaMemcpyHostToDevice, s));
          // segment_log_likelihood_kernel sums log_prob: give it zeros.
          CUEM_CUDA_CHECK(cudaMemsetAsync(log_prob_.data(), 0, count * sizeof(S), s));
        }, begin, end);
        break;
      }
    }
    PreparedParams shape;
    shape.type = type;
    shape.K = K;
    shape.D = static_cast<int>(D);
    SufficientStats out = unpack_stats(shape, std::move(used_shift));
    out.log_likelihood = 0.0;  // the log-likelihood slot summed distances or nothing
    return out;
  }

 public:

  // The centres for a partition (they are its first estimate of the means), the origin
  // otherwise: where the float32 sums cancel least.
  std::vector<double> first_pass_shift(const Responsibilities& g, int K) const override {
    if (g.kind == Responsibilities::Kind::nearest && g.centers) return *g.centers;
    const std::size_t n = static_cast<std::size_t>(K) * X_.n_cols;
    std::vector<double> out(n);
    for (std::size_t i = 0; i < n; ++i) out[i] = origin_[i % X_.n_cols];
    return out;
  }

  // The workspace is sized per layout: the first pass keeps the fit's.
  CovarianceType first_pass_layout(CovarianceType type) const override { return type; }

  // The variance of one part holding every point, from the two passes on the device (two
  // host passes over G-scale data would take longer than the fit).
  double mean_feature_variance() override {
    const std::size_t D = X_.n_cols;
    const std::vector<double> zero(D, 0.0);
    const SufficientStats all =
        two_pass_stats(*this, Responsibilities::nearest_centre(zero), CovarianceType::diag, 1);
    double sum = 0.0;
    for (std::size_t d = 0; d < D; ++d) {
      const double m = all.s1[d] / all.nk[0];
      // float32 sums can round a constant feature's variance below zero; k-means' stop
      // test (shift <= tol * variance) would then never pass.
      sum += std::max(0.0, all.s2[d] / all.nk[0] - m * m);
    }
    return sum / static_cast<double>(D);
  }

  void nearest_labels(const std::vector<double>& centers, int K, std::size_t begin, std::size_t count,
                      int* labels) override {
    const ScopedDevice on(device_);
    compute_->synchronize();
    if (!placed_) prepare(CovarianceType::diag, K);
    // The labels go through the log-likelihood buffer (chunk_ values of S, each at least
    // an int's size) and a pinned buffer of at most `piece` labels.
    static_assert(sizeof(S) >= sizeof(int), "labels reuse the log-likelihood buffer");
    int* labels_dev = reinterpret_cast<int*>(log_prob_.data());
    const std::size_t piece = std::min({chunk_, count, kLabelPiece});
    if (labels_host_.size() < piece) {
      labels_host_ = {};
      labels_host_ = PinnedBuffer<int>(piece);
    }
    const CentreParts centres = upload_centres(centers.data(), K, nullptr);
    const S* hi = centres.hi;
    const S* lo = centres.lo;
    const cudaStream_t s = compute_->get();
    for_each_piece(begin, begin + count, piece, [&](const S* x, std::size_t b, std::size_t n) {
      launch_hard_assign(x, n, static_cast<int>(X_.n_cols), K, hi, lo, labels_dev, nullptr, nullptr, 0, tuning_, s);
      CUEM_CUDA_CHECK(cudaMemcpyAsync(labels_host_.data(), labels_dev, n * sizeof(int), cudaMemcpyDeviceToHost, s));
      compute_->synchronize();
      std::copy(labels_host_.data(), labels_host_.data() + n, labels + (b - begin));
    });
  }

 private:
  static CudaPointValues<S>& cuda_values(PointValues& v) {
    auto* p = dynamic_cast<CudaPointValues<S>*>(&v);
    if (!p) throw InvalidArgument("these point values belong to another backend");
    return *p;
  }
  static const CudaPointValues<S>& cuda_values(const PointValues& v) {
    return cuda_values(const_cast<PointValues&>(v));
  }

  static void require_closest(const CudaPointValues<S>& v, const char* what) {
    if (!v.valid) throw InvalidArgument(std::string(what) + " needs the closest distances of a completed reset first");
  }

  struct CentreParts {
    const S* hi;
    const S* lo;
  };

  // Statistics (in the prepared layout, about `shift` on the device) of the
  // responsibilities `fill(x, begin, count, stream)` leaves in resp_ for each chunk (times
  // the weights, where there are any), into total_host_.
  template <typename Fill>
  void stats_pass(int K, const S* shift, const Fill& fill, std::size_t first = 0,
                  std::size_t last = std::numeric_limits<std::size_t>::max()) {
    last = std::min(last, X_.n_rows);
    const cudaStream_t s = compute_->get();
    const int D = static_cast<int>(X_.n_cols);
    CUEM_CUDA_CHECK(cudaMemsetAsync(total_.data(), 0, total_.bytes(), s));
    const auto pass = [&](const S* x, std::size_t b, std::size_t count, const S* w) {
      fill(x, b, count, s);
      if (w) launch_scale_rows(w, count, K, resp_.data(), chunk_, log_prob_.data(), s);
      launch_segment_stats(K, D, x, count, shift, resp_.data(), chunk_, log_prob_.data(), entries_.data(), M_,
                           partials_.data(), L_, tuning_, s);
      launch_accumulate_segments(partials_.data(), (count + kSegmentPoints - 1) / kSegmentPoints, L_, total_.data(), s);
    };
    if (weighted())
      for_each_piece(first, last, chunk_, pass);
    else
      for_each_piece(first, last, chunk_, [&](const S* x, std::size_t b, std::size_t count) { pass(x, b, count, nullptr); });
    CUEM_CUDA_CHECK(cudaMemcpyAsync(total_host_.data(), total_.data(), total_.bytes(), cudaMemcpyDeviceToHost, s));
    compute_->synchronize();
  }

  // Queues the upload of K centres (K x D, float64) in two parts relative to the origin;
  // returns the device parts (hi, lo). `shift`, when given, receives origin + hi.
  CentreParts upload_centres(const double* c, int K, std::vector<double>* shift) {
    const std::size_t D = X_.n_cols;
    const std::size_t n = static_cast<std::size_t>(K) * D;
    if (centres_host_.size() < 2 * n) {
      centres_host_ = PinnedBuffer<S>(2 * n);
      centres_ = {};
      centres_ = context_->allocate<S>(2 * n);
    }
    S* h = centres_host_.data();
    if (shift) shift->assign(n, 0.0);
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t d = i % D;
      split(c[i] - origin_[d], &h[i], &h[n + i]);
      if (shift) (*shift)[i] = origin_[d] + static_cast<double>(h[i]);
    }
    CUEM_CUDA_CHECK(cudaMemcpyAsync(centres_.data(), h, 2 * n * sizeof(S), cudaMemcpyHostToDevice, compute_->get()));
    return {centres_.data(), centres_.data() + n};
  }

  static std::vector<double> column_means(DataView X) {
    std::vector<double> m(X.n_cols, 0.0);
    if (X.n_rows == 0) return m;
    visit_rows(X, [&](const auto* base) {
      for (std::size_t i = 0; i < X.n_rows; ++i)
        for (std::size_t d = 0; d < X.n_cols; ++d) m[d] += static_cast<double>(base[i * X.row_stride + d]);
    });
    for (double& v : m) v /= static_cast<double>(X.n_rows);
    return m;
  }

  // The weighted column means: a row of weight 0 moves neither the origin nor so the
  // rounding of the others, as if it were not there (with unit weights the same
  // arithmetic as column_means).
  std::vector<double> weighted_column_means() const {
    std::vector<double> m(X_.n_cols, 0.0);
    if (!(total_weight_ > 0.0)) return column_means(X_);
    visit_rows(X_, [&](const auto* base) {
      for (std::size_t i = 0; i < X_.n_rows; ++i) {
        if (w_.data[i] == 0.0) continue;
        for (std::size_t d = 0; d < X_.n_cols; ++d)
          m[d] += w_.data[i] * static_cast<double>(base[i * X_.row_stride + d]);
      }
    });
    for (double& v : m) v /= total_weight_;
    return m;
  }

  // The column means of data in device memory: per-block float64 sums on the device, added
  // on the host in block order (a different order from column_means', so the origin may
  // differ from a host view's in its last bits; the data are centred about it exactly).
  std::vector<double> device_column_means() const {
    const std::size_t N = X_.n_rows, D = X_.n_cols;
    std::vector<double> m(D, 0.0);
    if (N == 0) return m;
    const std::size_t blocks = (N + kColumnPartialRows - 1) / kColumnPartialRows;
    const PoolBuffer<double> partials = context_->allocate<double>(blocks * D);
    std::vector<double> host(blocks * D);
    const cudaStream_t s = compute_->get();
    visit_rows(X_, [&](const auto* base) { launch_column_partials(base, N, D, X_.row_stride, partials.data(), s); });
    CUEM_CUDA_CHECK(cudaMemcpyAsync(host.data(), partials.data(), host.size() * sizeof(double), cudaMemcpyDeviceToHost, s));
    compute_->synchronize();
    for (std::size_t b = 0; b < blocks; ++b)
      for (std::size_t d = 0; d < D; ++d) m[d] += host[b * D + d];
    // The host never scans device data (validate_data cannot read it); a NaN or Inf
    // anywhere makes its column's sum non-finite, so it is caught here, by column.
    for (std::size_t d = 0; d < D; ++d)
      if (!std::isfinite(m[d]))
        throw DataError("the data in device memory hold NaN or Inf (or values whose sum overflows) in column " +
                        std::to_string(d) + " (0-based); remove or impute non-finite values before fitting");
    for (double& v : m) v /= static_cast<double>(N);
    return m;
  }

  // Rows [begin, begin + count) of device-resident data converted to S relative to the
  // origin, into dst (device memory), on `stream`.
  void convert_device_rows(std::size_t begin, std::size_t count, S* dst, cudaStream_t stream) const {
    visit_rows(X_, [&](const auto* base) {
      launch_convert_rows(base + begin * X_.row_stride, count, X_.n_cols, X_.row_stride, origin_dev_.data(), dst,
                          stream);
    });
  }

  // Rows [begin, begin + count) converted to S relative to the origin, into dst, on the
  // pool's threads.
  void convert_rows(HostThreads& pool, std::size_t begin, std::size_t count, S* dst) const {
    visit_rows(X_, [&](const auto* base) {
      cuda::convert_rows(pool, base, X_.n_cols, X_.row_stride, origin_.data(), begin, count, dst);
    });
  }

  // Threads for converting runs of `values` values: the fit's thread count (fit sets
  // OpenMP's, where the CPU backend reads it too), else OpenMP's default, the host's
  // cores; fewer where a run has too little work for them. OpenMP is only asked, not
  // used: nvcc compiles the .cu files without it.
  static int host_thread_count(std::size_t values) {
    const std::size_t asked = static_cast<std::size_t>(std::max(1, omp_get_max_threads()));
    return static_cast<int>(std::min(asked, std::max<std::size_t>(1, values / kMinValuesPerThread)));
  }

  // Bytes of work buffers per point of a chunk, and the chunk-independent remainder.
  // (Responsibilities, log p(x) and the E-step's normalisation rows, launch_estep;
  // streaming: two slots of rows, and of weights where there are any.)
  std::size_t workspace_per_point(CovarianceType type, int K, int M, bool streaming) const {
    const std::size_t Kz = static_cast<std::size_t>(K);
    const std::size_t L = Kz * static_cast<std::size_t>(M) + 1;
    const std::size_t norm_rows = deferred_norm_rows(type, K, static_cast<int>(X_.n_cols), sizeof(S), tuning_);
    std::size_t b = (Kz + 1 + norm_rows) * sizeof(S) + (L * sizeof(double) + kSegmentPoints - 1) / kSegmentPoints;
    if (streaming) b += 2 * (X_.n_cols + (weighted() ? 1 : 0)) * sizeof(S);
    return b;
  }

  // Sizes the data placement (once) and the work buffers (whenever K or the type
  // changes). Never called between the kernels of one E-step.
  void prepare(CovarianceType type, int K) {
    const int D = static_cast<int>(X_.n_cols);
    if (K == ws_K_ && type == ws_type_) return;
    const std::vector<unsigned> entries = stats_entries(type, D);
    const int M = static_cast<int>(entries.size());
    const std::size_t L = static_cast<std::size_t>(K) * M + 1;
    const std::size_t n_params = param_count(type, K, D);
    const std::size_t N = X_.n_rows;
    // k-means: the closest-sum blocks and K centres in two parts.
    const std::size_t kmeans_fixed = (N + kClosestBlock - 1) / kClosestBlock * sizeof(double) +
                                     2 * static_cast<std::size_t>(K) * X_.n_cols * sizeof(S);
    const std::size_t fixed = L * sizeof(double) + entries.size() * sizeof(unsigned) + n_params * sizeof(S) +
                              kmeans_fixed + (std::size_t{1} << 20);
    // The data, and the weights that are placed with them.
    const std::size_t data_bytes = checked_bytes(N * (X_.n_cols + (weighted() ? 1 : 0)), sizeof(S));
    const std::size_t closest_bytes = checked_bytes(N, sizeof(S));
    const std::size_t min_chunk = std::min(round_up(N, kSegmentPoints), kSegmentPoints * 8);
    if (!placed_) {
      const std::size_t min_work = workspace_per_point(type, K, M, false) * min_chunk;
      resident_ = data_bytes + fixed + min_work <= limit_;
      // k-means's one value per point stays on the device when it fits beside resident
      // data; otherwise it lives in pinned host memory and travels with the chunks.
      closest_on_device_ = resident_ && data_bytes + closest_bytes + fixed + min_work <= limit_;
      place_data();
      placed_ = true;
    }
    const std::size_t used = (resident_ ? data_bytes : 0) + (closest_on_device_ ? closest_bytes : 0) + fixed;
    const std::size_t per_point = workspace_per_point(type, K, M, !resident_);
    const std::size_t room = limit_ > used ? (limit_ - used) / per_point : 0;
    std::size_t chunk = std::min(room / kSegmentPoints * kSegmentPoints, round_up(N, kSegmentPoints));
    if (chunk == 0)
      throw DeviceError("the device memory limit (" + format_bytes(limit_) + ") is too small for " +
                        std::to_string(K) + " components in " + std::to_string(D) + " dimensions: one chunk of " +
                        std::to_string(kSegmentPoints) + " points needs " +
                        format_bytes(used + per_point * kSegmentPoints) +
                        ". Raise device_memory_limit (--device-memory) or use fewer components.");
    // Release the old buffers first so that their memory can be reused (and the limit is
    // never exceeded by old and new together). Until the new ones exist the workspace
    // matches no layout, so a failed allocation is retried by the next call.
    ws_K_ = -1;
    resp_ = {};
    log_prob_ = {};
    norm_ = {};
    partials_ = {};
    total_ = {};
    entries_ = {};
    params_ = {};
    chunk_ = chunk;
    M_ = M;
    L_ = L;
    resp_ = context_->allocate<S>(static_cast<std::size_t>(K) * chunk_);
    log_prob_ = context_->allocate<S>(chunk_);
    norm_ = context_->allocate<S>(deferred_norm_rows(type, K, D, sizeof(S), tuning_) * chunk_);
    partials_ = context_->allocate<double>(chunk_ / kSegmentPoints * L_);
    total_ = context_->allocate<double>(L_);
    total_host_ = PinnedBuffer<double>(L_);
    entries_ = context_->allocate<unsigned>(entries.size());
    // From pageable memory: the call returns once `entries` has been staged.
    CUEM_CUDA_CHECK(cudaMemcpyAsync(entries_.data(), entries.data(), entries.size() * sizeof(unsigned),
                                    cudaMemcpyHostToDevice, compute_->get()));
    params_ = context_->allocate<S>(n_params);
    params_host_ = PinnedBuffer<S>(n_params);
    // Evaluation returns K + 1 values per point through pinned memory: keep that small.
    const std::size_t eval_target = (std::size_t{64} << 20) / ((static_cast<std::size_t>(K) + 1) * sizeof(S));
    eval_chunk_ = std::clamp<std::size_t>(eval_target, 1, chunk_);
    eval_host_ = PinnedBuffer<S>((static_cast<std::size_t>(K) + 1) * eval_chunk_);
    // Exactly two chunks: a larger chunk of an earlier layout (a k-means step's) must not
    // outlive it, or the slots would exceed this layout's budget.
    if (!resident_ && stream_slots_.size() != 2 * chunk_ * X_.n_cols) {
      stream_slots_ = {};
      stream_slots_ = context_->allocate<S>(2 * chunk_ * X_.n_cols);
    }
    if (!resident_ && weighted() && stream_weights_.size() != 2 * chunk_) {
      stream_weights_ = {};
      stream_weights_ = context_->allocate<S>(2 * chunk_);
    }
    context_->copy_after_compute();  // the copy stream writes the slots
    ws_K_ = K;
    ws_type_ = type;
  }

  // Resident: the converted data on the device, uploaded through two pinned staging
  // buffers so that conversion overlaps the copies. Streaming: only those two buffers;
  // every pass converts the rows again as it copies them (chunk_data), so pinned memory
  // stays at 2 x kStagingBytes whatever N and the chunk are, and the host threads stay
  // for those passes: one thread converts several times slower than the link copies.
  // Weights follow the data the same way: resident after them, streamed beside each
  // chunk's rows.
  void place_data() {
    const std::size_t N = X_.n_rows, D = X_.n_cols;
    if (X_.on_device()) {  // converted on the device: no staging, no host threads
      if (resident_) {
        data_ = context_->allocate<S>(N * D);
        convert_device_rows(0, N, data_.data(), compute_->get());
        compute_->synchronize();
      }
      return;
    }
    if (!resident_) {
      stage_rows_ = std::max<std::size_t>(1, std::min(kStagingBytes / (D * sizeof(S)), N));
      stream_staging_ = PinnedBuffer<S>(2 * stage_rows_ * D);
      host_threads_ = std::make_unique<HostThreads>(host_thread_count(stage_rows_ * D));
      return;
    }
    data_ = context_->allocate<S>(N * D);
    if (weighted()) weights_ = context_->allocate<S>(N);
    context_->copy_after_compute();
    const std::size_t rows = std::max<std::size_t>(1, (std::size_t{4} << 20) / (D * sizeof(S)));
    HostThreads pool(host_thread_count(std::min(rows, N) * D));
    PinnedBuffer<S> staging[2] = {PinnedBuffer<S>(rows * D), PinnedBuffer<S>(rows * D)};
    Event done[2];
    const cudaStream_t s = copy_->get();
    std::size_t c = 0;
    for (std::size_t begin = 0; begin < N; begin += rows, ++c) {
      const std::size_t count = std::min(rows, N - begin);
      const int b = static_cast<int>(c % 2);
      if (c >= 2) done[b].synchronize();
      convert_rows(pool, begin, count, staging[b].data());
      CUEM_CUDA_CHECK(cudaMemcpyAsync(data_.data() + begin * D, staging[b].data(), count * D * sizeof(S),
                                      cudaMemcpyHostToDevice, s));
      done[b].record(s);
    }
    const std::size_t run = rows * D;
    for (std::size_t begin = 0; weighted() && begin < N; begin += run, ++c) {
      const std::size_t count = std::min(run, N - begin);
      const int b = static_cast<int>(c % 2);
      if (c >= 2) done[b].synchronize();
      convert_weights(begin, count, staging[b].data());
      CUEM_CUDA_CHECK(cudaMemcpyAsync(weights_.data() + begin, staging[b].data(), count * sizeof(S),
                                      cudaMemcpyHostToDevice, s));
      done[b].record(s);
    }
    copy_->synchronize();
  }

  // Weights [begin, begin + count) in S, into dst.
  void convert_weights(std::size_t begin, std::size_t count, S* dst) const {
    for (std::size_t i = 0; i < count; ++i) dst[i] = static_cast<S>(w_.data[begin + i]);
  }

  // Runs f(x, begin, count) over the points [first, last) in pieces of at most `step`
  // (at most a chunk), polling the interrupt before each; f(x, begin, count, w) where f
  // takes the piece's weights too (null without weights; streamed only for such an f). f
  // queues its work on the compute stream; a streamed piece's slot is then marked free for
  // the copy two pieces on.
  template <typename F>
  void for_each_piece(std::size_t first, std::size_t last, std::size_t step, F&& f) {
    constexpr bool with_weights = std::is_invocable_v<F&, const S*, std::size_t, std::size_t, const S*>;
    std::size_t c = 0;
    for (std::size_t b = first; b < last; b += step, ++c) {
      poll_interrupt();
      const std::size_t count = std::min(step, last - b);
      const int slot = static_cast<int>(c % 2);
      if constexpr (with_weights) {
        const S* w = nullptr;
        const S* x = chunk_data(b, count, slot, &w);
        f(x, b, count, w);
      } else {
        f(chunk_data(b, count, slot, nullptr), b, count);
      }
      if (!resident_) consumed_[slot].record(compute_->get());
    }
  }

  // The device rows of points [begin, begin + count). When streaming, the rows go to the
  // device slot once the compute stream has finished with it (the piece two back), in
  // runs of stage_rows_ through the two pinned staging buffers in turn: each run is
  // converted by the host threads once the copy that last read its buffer has landed, so
  // the conversion of a run overlaps the copy of the one before, and the whole piece's
  // conversion the kernels of the previous piece. The compute stream waits for the copies.
  // `w` (may be null): receives the piece's weights on the device (null without weights),
  // which a streamed piece then copies after its rows, through the same staging buffers.
  const S* chunk_data(std::size_t begin, std::size_t count, int slot, const S** w) {
    const std::size_t D = X_.n_cols;
    if (w) *w = nullptr;
    if (resident_) {
      if (w && weighted()) *w = weights_.data() + begin;
      return data_.data() + begin * D;
    }
    S* dst = stream_slots_.data() + static_cast<std::size_t>(slot) * chunk_ * D;
    if (X_.on_device()) {
      // In stream order after the kernels that last read the slot.
      convert_device_rows(begin, count, dst, compute_->get());
      return dst;
    }
    CUEM_CUDA_CHECK(cudaStreamWaitEvent(copy_->get(), consumed_[slot].get(), 0));
    for (std::size_t r = 0; r < count; r += stage_rows_) {
      const std::size_t rows = std::min(stage_rows_, count - r);
      const int b = staging_turn_;
      staging_turn_ ^= 1;
      S* staging = stream_staging_.data() + static_cast<std::size_t>(b) * stage_rows_ * D;
      staged_[b].synchronize();
      convert_rows(*host_threads_, begin + r, rows, staging);
      CUEM_CUDA_CHECK(
          cudaMemcpyAsync(dst + r * D, staging, rows * D * sizeof(S), cudaMemcpyHostToDevice, copy_->get()));
      staged_[b].record(copy_->get());
    }
    if (w && weighted()) {
      S* w_dst = stream_weights_.data() + static_cast<std::size_t>(slot) * chunk_;
      const std::size_t run = stage_rows_ * D;
      for (std::size_t r = 0; r < count; r += run) {
        const std::size_t n = std::min(run, count - r);
        const int b = staging_turn_;
        staging_turn_ ^= 1;
        S* staging = stream_staging_.data() + static_cast<std::size_t>(b) * run;
        staged_[b].synchronize();
        convert_weights(begin + r, n, staging);
        CUEM_CUDA_CHECK(cudaMemcpyAsync(w_dst + r, staging, n * sizeof(S), cudaMemcpyHostToDevice, copy_->get()));
        staged_[b].record(copy_->get());
      }
      *w = w_dst;
    }
    copied_[slot].record(copy_->get());
    CUEM_CUDA_CHECK(cudaStreamWaitEvent(compute_->get(), copied_[slot].get(), 0));
    return dst;
  }

  // The start of an E-step or evaluation (the caller has made the device current): the
  // previous work finished, buffers sized for the shape, the parameters queued.
  ComponentParams<S> begin_pass(const PreparedParams& p, std::vector<double>* shift) {
    compute_->synchronize();
    prepare(p.type, p.K);
    return upload_params(p, shift);
  }

  // Converts the parameters to S (means relative to the origin) and queues their upload.
  // `shift` receives the means the device actually uses, in float64.
  ComponentParams<S> upload_params(const PreparedParams& p, std::vector<double>* shift) {
    const std::size_t K = static_cast<std::size_t>(p.K), D = static_cast<std::size_t>(p.D);
    const std::size_t F = covariance_size(p.type, p.K, p.D);
    S* h = params_host_.data();
    S* h_logw = h;
    S* h_logdet = h + K;
    S* h_means = h + 2 * K;
    S* h_means_lo = h_means + K * D;
    S* h_factors = h_means_lo + K * D;
    shift->assign(K * D, 0.0);
    for (std::size_t k = 0; k < K; ++k) {
      h_logw[k] = static_cast<S>(p.log_weights[k]);
      h_logdet[k] = static_cast<S>(p.log_det[k]);
      for (std::size_t d = 0; d < D; ++d) {
        split(p.means[k * D + d] - origin_[d], &h_means[k * D + d], &h_means_lo[k * D + d]);
        (*shift)[k * D + d] = origin_[d] + static_cast<double>(h_means[k * D + d]);
      }
    }
    for (std::size_t i = 0; i < F; ++i) h_factors[i] = static_cast<S>(p.prec_chol[i]);
    const bool scaled = p.type == CovarianceType::diag;
    if (scaled) {  // (mu - origin) times the factor as the device holds it, in two parts
      S* h_scaled = h_factors + F;
      for (std::size_t i = 0; i < K * D; ++i)
        split((p.means[i] - origin_[i % D]) * static_cast<double>(h_factors[i]), &h_scaled[i], &h_scaled[K * D + i]);
    }
    const std::size_t n = param_count(p.type, p.K, p.D);
    CUEM_CUDA_CHECK(cudaMemcpyAsync(params_.data(), h, n * sizeof(S), cudaMemcpyHostToDevice, compute_->get()));
    ComponentParams<S> cp;
    cp.type = p.type;
    cp.K = p.K;
    cp.D = p.D;
    S* d = params_.data();
    cp.log_weights = d;
    cp.log_det = d + K;
    cp.means = d + 2 * K;
    cp.means_lo = d + 2 * K + K * D;
    cp.factors = d + 2 * K + 2 * K * D;
    if (scaled) {
      cp.scaled_means = cp.factors + F;
      cp.scaled_means_lo = cp.scaled_means + K * D;
    }
    return cp;
  }

  SufficientStats unpack_stats(const PreparedParams& p, std::vector<double> shift) const {
    const int K = p.K, D = p.D;
    const std::size_t Dz = static_cast<std::size_t>(D), DD = Dz * Dz;
    SufficientStats st = SufficientStats::zeros(p.type, K, D, std::move(shift));
    const double* t = total_host_.data();
    const bool full_scatter = p.type == CovarianceType::full || p.type == CovarianceType::tied;
    for (int k = 0; k < K; ++k) {
      const double* e = t + static_cast<std::size_t>(k) * M_;
      st.nk[k] = e[0];
      for (std::size_t i = 0; i < Dz; ++i) st.s1[k * Dz + i] = e[1 + i];
      const double* s2 = e + 1 + Dz;
      if (full_scatter) {
        // Tied: the sum over components, in component order (as the CPU backend adds).
        double* out = p.type == CovarianceType::tied ? st.s2.data() : st.s2.data() + k * DD;
        std::size_t idx = 0;
        for (std::size_t i = 0; i < Dz; ++i)
          for (std::size_t j = i; j < Dz; ++j) out[i * Dz + j] += s2[idx++];
      } else {
        for (std::size_t d = 0; d < Dz; ++d) st.s2[k * Dz + d] = s2[d];
      }
    }
    st.log_likelihood = t[static_cast<std::size_t>(K) * M_];
    st.n_points = X_.n_rows;
    st.weight = total_weight_;
    return st;
  }

  DataView X_;
  WeightView w_;               // empty: unweighted
  double total_weight_ = 0.0;  // sum of w in float64, in order (N without weights)
  int device_ = 0;
  CudaTuning tuning_;  // the kernel choices, passed to every launch that makes one
  std::string device_name_;
  std::size_t limit_ = 0;
  std::vector<double> origin_;
  PoolBuffer<double> origin_dev_;           // the origin on the device, for data in device memory
  std::shared_ptr<DeviceContext> context_;  // the streams and the pool every device buffer comes from
  Stream* compute_ = nullptr;               // the context's
  Stream* copy_ = nullptr;
  std::vector<Event> copied_;    // per streaming slot: its copy has landed
  std::vector<Event> consumed_;  // per streaming slot: the kernels reading it are done
  std::vector<Event> staged_;    // per staging buffer: the copy that last read it has landed

  bool placed_ = false;
  bool resident_ = true;
  PoolBuffer<S> data_;              // resident: N x D
  PoolBuffer<S> weights_;           // resident, weighted: N
  PinnedBuffer<S> stream_staging_;  // streaming: 2 x stage_rows_ rows, converted on the host
  std::size_t stage_rows_ = 0;
  int staging_turn_ = 0;            // the staging buffer the next run goes through
  std::unique_ptr<HostThreads> host_threads_;  // streaming: converts the runs
  PoolBuffer<S> stream_slots_;      // streaming: 2 chunks
  PoolBuffer<S> stream_weights_;    // streaming, weighted: 2 chunks' weights

  int ws_K_ = -1;
  CovarianceType ws_type_ = CovarianceType::full;
  std::size_t chunk_ = 0;
  std::size_t eval_chunk_ = 0;
  int M_ = 0;
  std::size_t L_ = 0;
  PoolBuffer<S> resp_;
  PoolBuffer<S> log_prob_;
  PoolBuffer<S> norm_;  // launch_estep's normalisation rows (empty where it normalises in place)
  PoolBuffer<double> partials_;
  PoolBuffer<double> total_;
  PinnedBuffer<double> total_host_;
  PoolBuffer<unsigned> entries_;
  PoolBuffer<S> params_;
  PinnedBuffer<S> params_host_;
  PinnedBuffer<S> eval_host_;

  // k-means
  bool closest_on_device_ = true;           // the k-means++ values fit beside resident data
  PoolBuffer<S> centres_;                   // K x D hi, then K x D lo
  PinnedBuffer<S> centres_host_;
  PinnedBuffer<int> labels_host_;           // at most kLabelPiece labels
};

}  // namespace

std::shared_ptr<DeviceContext> make_device_context(int device, std::size_t cache_limit) {
  return std::make_shared<DeviceContext>(device, cache_limit);
}

std::unique_ptr<Primitives> make_primitives(DataView X, WeightView w, const BackendOptions& options,
                                            const CudaTuning& tuning, std::shared_ptr<DeviceContext> context) {
  if (!w.empty() && w.n != X.n_rows)
    throw InvalidArgument("sample_weight has " + std::to_string(w.n) + " values for " + std::to_string(X.n_rows) +
                          " rows");
  if (context && context->device() != options.device)
    throw InvalidArgument("the device context is for cuda:" + std::to_string(context->device()) +
                          ", not cuda:" + std::to_string(options.device));
  // The per-call path: a context of its own, whose pool goes with the primitives.
  if (!context) context = make_device_context(options.device, options.memory_limit);
  if (options.precision == Precision::float64)
    return std::make_unique<CudaPrimitives<double>>(X, w, options, tuning, std::move(context));
  return std::make_unique<CudaPrimitives<float>>(X, w, options, tuning, std::move(context));
}

}  // namespace cuem::cuda
