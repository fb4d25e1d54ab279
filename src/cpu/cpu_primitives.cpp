#include "cpu/cpu_primitives.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <exception>
#include <mutex>
#include <string>
#include <type_traits>
#include <vector>

#include "core/data_access.hpp"
#include "core/rng.hpp"
#include "cpu/aligned_buffer.hpp"
#include "cpu/cpu_kernels.hpp"
#include "cpu/kmeans_kernels.hpp"
#include "cpu/narrow_estep.hpp"
#include "cuem/errors.hpp"

namespace cuem {

std::size_t chunk_points(int K) noexcept {
  // About 2 MiB of responsibilities per chunk, a multiple of the E-step block; few chunks
  // keep the threads' synchronisation rare.
  const std::size_t target = (std::size_t{1} << 18) / static_cast<std::size_t>(std::max(K, 1));
  return std::clamp<std::size_t>(target, 256, 65536) / cpu::kBlockRows * cpu::kBlockRows;
}

namespace {

// Points per sub-block of the statistics pass: the rows one thread converts to float64
// and every one of its components then reads from L1.
constexpr int kStatsRows = 64;

// The parameters in the kernels' layout (cpu_kernels.hpp), built once per E-step. The
// lanes pass (narrow_estep.hpp) reads the padded factors; the row-block pass reads full
// and tied factors as column panels (cpu::pack_full_panels), built only for it.
struct EstepLayout {
  enum class For { lanes, row_blocks };

  CovarianceType type;
  int K;
  int D;
  const double* means;
  std::vector<double> factors;  // lanes, and diag and spherical row blocks
  std::vector<double> constants;
  cpu::AlignedBuffer panels;  // full and tied row blocks

  EstepLayout(const PreparedParams& p, For use) : type(p.type), K(p.K), D(p.D), means(p.means.data()) {
    const std::size_t uD = static_cast<std::size_t>(D);
    constants.resize(static_cast<std::size_t>(K));
    for (int k = 0; k < K; ++k) constants[k] = p.log_weights[k] + p.log_det[k];
    switch (type) {
      case CovarianceType::full:
      case CovarianceType::tied: {
        const std::size_t Dp = static_cast<std::size_t>(cpu::pad4(D));
        factors.assign(static_cast<std::size_t>(K) * uD * Dp, 0.0);
        for (int k = 0; k < K; ++k) {
          const double* P = p.factor(k);
          double* out = factors.data() + static_cast<std::size_t>(k) * uD * Dp;
          for (std::size_t i = 0; i < uD; ++i)
            for (std::size_t j = i; j < uD; ++j) out[i * Dp + j] = P[i * uD + j];
        }
        if (use == For::row_blocks) {
          panels = cpu::AlignedBuffer(static_cast<std::size_t>(K) * cpu::full_panel_size(D));
          cpu::pack_full_panels(factors.data(), D, K, panels.data());
          factors = {};
        }
        break;
      }
      case CovarianceType::diag:
        factors.resize(static_cast<std::size_t>(K) * uD);
        for (int k = 0; k < K; ++k) std::copy(p.factor(k), p.factor(k) + D, factors.begin() + k * uD);
        break;
      case CovarianceType::spherical:
        factors.resize(static_cast<std::size_t>(K));
        for (int k = 0; k < K; ++k) factors[k] = *p.factor(k);
        break;
    }
  }
};

// The layout for a pass over data of D columns: the lanes pass where it applies.
EstepLayout::For layout_for(CovarianceType type, int D) {
  return cpu::lanes_applies(type, D) ? EstepLayout::For::lanes : EstepLayout::For::row_blocks;
}

// Posteriors of points [begin, begin + count), one block of rows at a time, on the
// calling thread: 16 rows, or 32 for full and tied log joints (cpu::log_joints_full32, its
// factor values read once per 32 rows). Each row is computed in its own vector lane
// (padding lanes repeat the first row and are dropped), and every row of a type goes
// through the same kernel, so a row's values do not depend on the block it falls in
// however the compiler contracts the kernels' products and sums.
template <typename T>
void posteriors_range(const T* base, std::size_t n_cols, const EstepLayout& L, std::size_t begin,
                      std::size_t count, double* resp, double* log_prob) {
  constexpr int R = cpu::kBlockRows;
  const int D = L.D;
  const int K = L.K;
  const bool full = L.type == CovarianceType::full || L.type == CovarianceType::tied;
  const int lanes = full ? 2 * R : R;
  const std::size_t uD = static_cast<std::size_t>(D), uK = static_cast<std::size_t>(K);
  const std::size_t ul = static_cast<std::size_t>(lanes), uR = static_cast<std::size_t>(R);
  // One allocation for the block's buffers; each size a multiple of 8 doubles keeps
  // every part on a cache line.
  const std::size_t n_xt = uD * ul, n_lj = uK * ul, n_e = uK * uR;
  cpu::AlignedBuffer buf(2 * n_xt + n_lj + n_e + 2 * uR);
  double* xt = buf.data();
  double* yt = xt + n_xt;
  double* lj = yt + n_xt;
  double* e = lj + n_lj;
  double* row_max = e + n_e;
  double* row_sum = row_max + uR;
  for (std::size_t b0 = 0; b0 < count;) {
    const int rows = static_cast<int>(std::min<std::size_t>(ul, count - b0));
    for (int r = 0; r < lanes; ++r) {
      const T* x = base + (begin + b0 + static_cast<std::size_t>(r < rows ? r : 0)) * n_cols;
      for (int d = 0; d < D; ++d) xt[static_cast<std::size_t>(d * lanes + r)] = static_cast<double>(x[d]);
    }
    switch (L.type) {
      case CovarianceType::full:
      case CovarianceType::tied:
        cpu::log_joints_full32(xt, D, K, L.means, L.panels.data(), L.constants.data(), yt, lj, lj + uK * uR);
        break;
      case CovarianceType::diag:
        cpu::log_joints_diag(xt, D, K, L.means, L.factors.data(), L.constants.data(), lj);
        break;
      case CovarianceType::spherical:
        cpu::log_joints_spherical(xt, D, K, L.means, L.factors.data(), L.constants.data(), lj);
        break;
    }
    for (int h = 0; h * R < rows; ++h) {
      const std::size_t at = b0 + static_cast<std::size_t>(h * R);
      cpu::exp_normalise_block(lj + static_cast<std::size_t>(h) * uK * uR, K, e, row_max, row_sum);
      cpu::responsibilities_block(e, row_max, row_sum, K, std::min(R, rows - h * R), resp + at * uK,
                                  log_prob ? log_prob + at : nullptr);
    }
    b0 += static_cast<std::size_t>(rows);
  }
}

void posteriors_range(DataView X, const EstepLayout& L, std::size_t begin, std::size_t count, double* resp,
                      double* log_prob) {
  visit_rows(X, [&](const auto* base) { posteriors_range(base, X.row_stride, L, begin, count, resp, log_prob); });
}

// Posteriors of rows [begin, end) for narrow diag and spherical data: the narrow kernels'
// blocks (each point in its own lane, the row blocks' operations) over the threads.
void narrow_posteriors(DataView X, const EstepLayout& L, std::size_t begin, std::size_t end, double* log_prob,
                       double* resp) {
  const cpu::NarrowParams np{L.type, L.K, L.D, L.means, L.factors.data(), L.constants.data(), L.means};
  constexpr std::size_t R = cpu::kNarrowRows;
  const std::size_t uK = static_cast<std::size_t>(L.K), n = end - begin, blocks = (n + R - 1) / R;
  const int nt = worth_threads(n, L.K, L.D) ? omp_get_max_threads() : 1;
#pragma omp parallel num_threads(nt)
  {
    cpu::AlignedBuffer xt(static_cast<std::size_t>(L.D) * R), g(8 * uK), scratch(resp ? 0 : R * uK);
#pragma omp for schedule(static)
    for (std::ptrdiff_t q = 0; q < static_cast<std::ptrdiff_t>(blocks); ++q) {
      const std::size_t b = static_cast<std::size_t>(q) * R;
      const int rows = static_cast<int>(std::min(R, n - b));
      visit_rows(X, [&](const auto* base) {
        cpu::narrow_transpose(base + (begin + b) * X.row_stride, X.row_stride, L.D, rows, xt.data());
      });
      cpu::narrow_posteriors_block(np, xt.data(), rows, g.data(), resp ? resp + b * uK : scratch.data(),
                                   log_prob ? log_prob + b : nullptr);
    }
  }
}

// Rows [lo, hi) of `blocks` whole blocks of cpu::kBlockRows rows split evenly over nt parts.
std::pair<std::size_t, std::size_t> block_share(std::size_t count, int part, int nt) {
  const std::size_t blocks = (count + cpu::kBlockRows - 1) / cpu::kBlockRows;
  const std::size_t lo = blocks * static_cast<std::size_t>(part) / static_cast<std::size_t>(nt);
  const std::size_t hi = blocks * static_cast<std::size_t>(part + 1) / static_cast<std::size_t>(nt);
  return {std::min(count, lo * cpu::kBlockRows), std::min(count, hi * cpu::kBlockRows)};
}

// A unit of the statistics pass: component k, and for full scatters the 4-row tiles
// [tile_begin, tile_end) of its S2 (the task with the first tile also owns N_k and S1).
struct StatsTask {
  int k;
  int tile_begin;
  int tile_end;
};

// Accumulators of the statistics pass in the kernels' padded layout: each sum runs over
// all points in order, owned by one task at a time.
class StatsPass {
 public:
  StatsPass(CovarianceType type, int K, int D, const std::vector<double>& shift, int n_threads)
      : type_(type),
        K_(K),
        D_(D),
        W_(cpu::pad8(D)),
        full_(type == CovarianceType::full || type == CovarianceType::tied),
        centres_(static_cast<std::size_t>(K) * W_),
        nk_(static_cast<std::size_t>(K), 0.0),
        s1_(static_cast<std::size_t>(K) * W_),
        s2_(static_cast<std::size_t>(K) * (full_ ? static_cast<std::size_t>(cpu::pad4(D)) : 1) * W_) {
    for (int k = 0; k < K; ++k)
      std::copy(shift.begin() + static_cast<std::ptrdiff_t>(k) * D, shift.begin() + static_cast<std::ptrdiff_t>(k + 1) * D,
                centres_.begin() + static_cast<std::ptrdiff_t>(k) * W_);
    // Split full scatters by rows when there are too few components for the threads;
    // the split changes which task computes a sum, never the order of its terms.
    const int n_tiles = full_ ? cpu::pad4(D) / 4 : 1;
    const int groups = full_ && D > 8 && K < 2 * n_threads ? std::min(n_tiles, (2 * n_threads + K - 1) / K) : 1;
    for (int k = 0; k < K; ++k)
      for (int g = 0; g < groups; ++g) {
        const int b = n_tiles * g / groups, e = n_tiles * (g + 1) / groups;
        if (b < e) tasks_.push_back({k, b, e});
      }
  }

  // Per-thread work buffers.
  struct Scratch {
    cpu::AlignedBuffer x, y, a, g;
    std::vector<int> index;
  };
  Scratch scratch() const {
    const std::size_t rows = kStatsRows * static_cast<std::size_t>(W_);
    return {cpu::AlignedBuffer(rows), cpu::AlignedBuffer(full_ ? rows : 0), cpu::AlignedBuffer(full_ ? rows : 0),
            cpu::AlignedBuffer(kStatsRows + 1), std::vector<int>(kStatsRows + 1)};
  }

  // Adds points [begin, begin + count) with responsibilities resp (count x K) to the sums
  // of the tasks t with t % nt == part.
  template <typename T>
  void add(const T* base, std::size_t n_cols, std::size_t begin, std::size_t count, const double* resp, int part,
           int nt, Scratch& s) {
    if (static_cast<std::size_t>(part) >= tasks_.size()) return;
    const std::size_t R4 = static_cast<std::size_t>(cpu::pad4(D_));
    for (std::size_t b0 = 0; b0 < count; b0 += kStatsRows) {
      const int rows = static_cast<int>(std::min<std::size_t>(kStatsRows, count - b0));
      // The kernels read rows of W doubles: float64 rows of that stride are read in place
      // when they lie on cache lines (every component reads them; split loads cost more
      // than one aligned copy).
      const double* xs = s.x.data();
      if constexpr (std::is_same_v<T, double>) {
        const double* rows0 = base + (begin + b0) * n_cols;
        if (D_ == W_ && n_cols == static_cast<std::size_t>(W_) &&
            reinterpret_cast<std::uintptr_t>(rows0) % cpu::AlignedBuffer::kAlignment == 0)
          xs = rows0;
      }
      if (xs == s.x.data())
        for (int r = 0; r < rows; ++r) {
          const T* x = base + (begin + b0 + static_cast<std::size_t>(r)) * n_cols;
          double* out = s.x.data() + static_cast<std::size_t>(r) * W_;
          for (int d = 0; d < D_; ++d) out[d] = static_cast<double>(x[d]);
        }
      for (std::size_t t = static_cast<std::size_t>(part); t < tasks_.size(); t += static_cast<std::size_t>(nt)) {
        const StatsTask& task = tasks_[t];
        const int k = task.k;
        const bool first = task.tile_begin == 0;
        // Rows with zero weight add nothing: hard assignments touch few components. The
        // list is built without branches (which mispredict on soft assignments).
        int n = 0;
        const double* g_col = resp + b0 * static_cast<std::size_t>(K_) + k;
        for (int r = 0; r < rows; ++r) {
          const double g = g_col[static_cast<std::size_t>(r) * K_];
          s.index[n] = r;
          s.g[n] = g;
          n += g != 0.0 ? 1 : 0;
        }
        if (n == 0) continue;
        const double* c = centres_.data() + static_cast<std::size_t>(k) * W_;
        double* s1 = s1_.data() + static_cast<std::size_t>(k) * W_;
        if (first)
          for (int i = 0; i < n; ++i) nk_[k] += s.g[i];
        if (full_ && W_ == 8) {  // D <= 8: each task owns its whole component
          cpu::add_full_narrow(xs, s.index.data(), s.g.data(), n, c, D_, s1,
                               s2_.data() + static_cast<std::size_t>(k) * R4 * W_);
        } else if (full_) {
          cpu::gather_shifted(xs, s.index.data(), s.g.data(), n, c, W_, s.y.data(), s.a.data(),
                              first ? s1 : nullptr);
          cpu::scatter_tiles(s.a.data(), s.y.data(), n, W_, task.tile_begin, task.tile_end,
                             s2_.data() + static_cast<std::size_t>(k) * R4 * W_);
        } else {
          cpu::add_diag(xs, s.index.data(), s.g.data(), n, c, W_, s1,
                        s2_.data() + static_cast<std::size_t>(k) * W_);
        }
      }
    }
  }

  // The sums in SufficientStats' layout; tied scatters are summed over k in order.
  void finish(SufficientStats& s) const {
    const std::size_t D = static_cast<std::size_t>(D_), W = static_cast<std::size_t>(W_);
    const std::size_t R4 = static_cast<std::size_t>(cpu::pad4(D_));
    for (int k = 0; k < K_; ++k) {
      s.nk[k] = nk_[k];
      for (std::size_t i = 0; i < D; ++i) s.s1[k * D + i] = s1_[k * W + i];
      const double* a2 = s2_.data() + static_cast<std::size_t>(k) * (full_ ? R4 : 1) * W;
      switch (type_) {
        case CovarianceType::full:
          for (std::size_t i = 0; i < D; ++i)
            for (std::size_t j = i; j < D; ++j) s.s2[k * D * D + i * D + j] = a2[i * W + j];
          break;
        case CovarianceType::tied:
          for (std::size_t i = 0; i < D; ++i)
            for (std::size_t j = i; j < D; ++j) s.s2[i * D + j] += a2[i * W + j];
          break;
        case CovarianceType::diag:
        case CovarianceType::spherical:
          for (std::size_t i = 0; i < D; ++i) s.s2[k * D + i] = a2[i];
          break;
      }
    }
  }

 private:
  CovarianceType type_;
  int K_;
  int D_;
  int W_;
  bool full_;
  cpu::AlignedBuffer centres_;    // K x W
  std::vector<double> nk_;    // K
  cpu::AlignedBuffer s1_;         // K x W
  cpu::AlignedBuffer s2_;         // K x pad4(D) x W (full, tied) or K x W
  std::vector<StatsTask> tasks_;
};

// Log joints, log p(x) and responsibilities for points [begin, begin + count), in
// parallel over blocks of points; every point's values are the same however the points
// are split (posteriors_range).
void posteriors_parallel(DataView X, const EstepLayout& L, std::size_t begin, std::size_t count, double* resp,
                         double* log_prob) {
  const int nt = worth_threads(count, L.K, L.D) ? omp_get_max_threads() : 1;
#pragma omp parallel num_threads(nt)
  {
    const auto [lo, hi] = block_share(count, omp_get_thread_num(), omp_get_num_threads());
    if (lo < hi)
      posteriors_range(X, L, begin + lo, hi - lo, resp + lo * static_cast<std::size_t>(L.K),
                       log_prob ? log_prob + lo : nullptr);
  }
}

// Given weights of narrow rows go to the lanes' statistics pass (narrow_estep.hpp), which
// reads them once, component-major, instead of copying them into the general pass's chunks.
bool given_in_lanes(CovarianceType type, const DataView& X, int K, const std::vector<double>& shift) {
  return cpu::narrow_applies(type, static_cast<int>(X.n_cols)) &&
         shift.size() == static_cast<std::size_t>(K) * X.n_cols;
}

}  // namespace

SufficientStats accumulate_stats(DataView X, CovarianceType type, int K, std::vector<double> shift,
                                 const ResponsibilityFn& resp_fn, bool with_log_likelihood,
                                 const std::function<void()>& between_chunks, WeightView w) {
  const int D = static_cast<int>(X.n_cols);
  SufficientStats s = SufficientStats::zeros(type, K, D, std::move(shift));
  const std::size_t chunk = chunk_points(K);
  const int n_threads = worth_threads(std::min(chunk, X.n_rows), K, D) ? omp_get_max_threads() : 1;
  StatsPass pass(type, K, D, s.shift, n_threads);
  cpu::AlignedBuffer resp(chunk * static_cast<std::size_t>(K));
  cpu::AlignedBuffer log_prob(with_log_likelihood ? chunk : 0);
  std::exception_ptr error;
  std::mutex error_mutex;

  // One parallel region for the whole pass. Per chunk: the calling thread polls, the
  // threads fill the responsibilities of their share of rows, then each thread adds the
  // chunk to the sums of the tasks it owns (fixed ownership, points in order).
#pragma omp parallel num_threads(n_threads)
  {
    const int part = omp_get_thread_num();
    const int nt = omp_get_num_threads();
    StatsPass::Scratch scratch = pass.scratch();
    for (std::size_t begin = 0; begin < X.n_rows; begin += chunk) {
      const std::size_t count = std::min(chunk, X.n_rows - begin);
      if (part == 0 && between_chunks) {  // on the caller's thread: Python polls signals there
        try {
          between_chunks();
        } catch (...) {
          const std::lock_guard<std::mutex> lock(error_mutex);
          error = std::current_exception();
        }
      }
      const auto [lo, hi] = block_share(count, part, nt);
      if (lo < hi) {
        try {
          double* r = resp.data() + lo * static_cast<std::size_t>(K);
          resp_fn(begin + lo, hi - lo, r, with_log_likelihood ? log_prob.data() + lo : nullptr);
          if (!w.empty())  // g_nk w_n: the statistics pass then sums weighted rows as they are
            for (std::size_t b = lo; b < hi; ++b, r += K)
              for (int k = 0; k < K; ++k) r[k] *= w.data[begin + b];
        } catch (...) {
          const std::lock_guard<std::mutex> lock(error_mutex);
          if (!error) error = std::current_exception();
        }
      }
#pragma omp barrier
      if (error) break;  // every thread sees the same value after the barrier
      if (with_log_likelihood && part == nt - 1) {
        if (w.empty()) {
          for (std::size_t b = 0; b < count; ++b) s.log_likelihood += log_prob[b];
        } else {
          // A point of zero weight is left out: 0 * -inf would be NaN.
          for (std::size_t b = 0; b < count; ++b)
            if (w.data[begin + b] != 0.0) s.log_likelihood += w.data[begin + b] * log_prob[b];
        }
      }
      visit_rows(X, [&](const auto* base) { pass.add(base, X.row_stride, begin, count, resp.data(), part, nt, scratch); });
#pragma omp barrier
    }
  }
  if (error) std::rethrow_exception(error);
  pass.finish(s);
  s.n_points = X.n_rows;
  s.weight = static_cast<double>(X.n_rows);
  if (!w.empty()) {
    s.weight = 0.0;
    for (std::size_t i = 0; i < X.n_rows; ++i) s.weight += w.data[i];
  }
  return s;
}

CpuPrimitives::CpuPrimitives(DataView X, WeightView w) : X_(X), w_(w), total_weight_(static_cast<double>(X.n_rows)) {
  if (X_.on_device())
    throw InvalidArgument("the data are in the memory of CUDA device " + std::to_string(X_.device_ordinal) +
                          ", which the CPU backend cannot read: fit on device 'cuda:" +
                          std::to_string(X_.device_ordinal) + "', or copy the data to the host");
  if (!w_.empty()) {
    if (w_.n != X_.n_rows)
      throw InvalidArgument("sample_weight has " + std::to_string(w_.n) + " values for " +
                            std::to_string(X_.n_rows) + " rows");
    total_weight_ = 0.0;
    for (std::size_t i = 0; i < X_.n_rows; ++i) total_weight_ += w_.data[i];
  }
}

SufficientStats CpuPrimitives::gaussian_estep(const PreparedParams& p) {
  const EstepLayout L(p, layout_for(p.type, p.D));
  if (cpu::lanes_applies(p.type, p.D)) {
    const cpu::NarrowParams np{p.type, p.K, p.D, L.means, L.factors.data(), L.constants.data(), L.means,
                               cpu::kNegligibleWeight};
    SufficientStats s = cpu::lanes_estep(X_, np, w_, [this] { poll_interrupt(); });
    s.weight = total_weight_;
    return s;
  }
  SufficientStats s = accumulate_stats(
      X_, p.type, p.K, p.means,
      [&](std::size_t begin, std::size_t count, double* resp, double* log_prob) {
        posteriors_range(X_, L, begin, count, resp, log_prob);
      },
      true, [this] { poll_interrupt(); }, w_);
  s.weight = total_weight_;
  return s;
}

void CpuPrimitives::posteriors(const PreparedParams& p, std::size_t begin, std::size_t end, double* log_prob,
                               double* resp) {
  // Diag and spherical: the narrow kernels give the row-block path's bits (their full log
  // joints take another order of operations than the row blocks' 32-row panels).
  if ((p.type == CovarianceType::diag || p.type == CovarianceType::spherical) && cpu::narrow_applies(p.type, p.D)) {
    narrow_posteriors(X_, EstepLayout(p, EstepLayout::For::lanes), begin, end, log_prob, resp);
    return;
  }
  const EstepLayout L(p, EstepLayout::For::row_blocks);
  const std::size_t chunk = chunk_points(p.K);
  std::vector<double> scratch(resp ? 0 : chunk * static_cast<std::size_t>(p.K));
  for (std::size_t b = begin; b < end; b += chunk) {
    const std::size_t count = std::min(chunk, end - b);
    double* r = resp ? resp + (b - begin) * static_cast<std::size_t>(p.K) : scratch.data();
    posteriors_parallel(X_, L, b, count, r, log_prob ? log_prob + (b - begin) : nullptr);
  }
}

SufficientStats CpuPrimitives::weighted_stats(const Responsibilities& g, CovarianceType type, int K,
                                              const std::vector<double>& shift) {
  const int D = static_cast<int>(X_.n_cols);
  const std::size_t uK = static_cast<std::size_t>(K);
  ResponsibilityFn fill;
  std::unique_ptr<EstepLayout> layout;
  switch (g.kind) {
    case Responsibilities::Kind::nearest:
      if (!g.centers || g.centers->size() != uK * X_.n_cols)
        throw InvalidArgument("weighted_stats: nearest needs K x D centres");
      fill = [&](std::size_t begin, std::size_t count, double* resp, double*) {
        std::fill(resp, resp + count * uK, 0.0);
        std::vector<int> labels(count);
        // The k-means kernel, so that a label here is the one k-means gave.
        visit_rows(X_, [&](const auto* base) {
          cpu::nearest_rows(base + begin * X_.row_stride, X_.row_stride, D, static_cast<int>(count), g.centers->data(), K,
                            labels.data(), nullptr);
        });
        for (std::size_t b = 0; b < count; ++b) resp[b * uK + static_cast<std::size_t>(labels[b])] = 1.0;
      };
      break;
    case Responsibilities::Kind::random:
      // The draws of the 'random' start: u_nk = uniform(seed, kRandomResp, n K + k),
      // normalised per point (kernels/random_resp.hpp draws the same on a device).
      fill = [&](std::size_t begin, std::size_t count, double* resp, double*) {
        for (std::size_t b = 0; b < count; ++b) {
          double* r = resp + b * uK;
          const std::uint64_t n = begin + b;
          double sum = 0.0;
          for (int k = 0; k < K; ++k) sum += r[k] = rng::uniform(g.seed, rng::kRandomResp, n * uK + k);
          for (int k = 0; k < K; ++k) r[k] /= sum;
        }
      };
      break;
    case Responsibilities::Kind::posteriors:
      if (!g.params || g.params->K != K) throw InvalidArgument("weighted_stats: posteriors needs K components");
      if (cpu::lanes_applies(type, D) && g.params->type == type && g.params->D == D) {
        layout = std::make_unique<EstepLayout>(*g.params, EstepLayout::For::lanes);
        // The E-step's own pass, so that this composition stays the E-step bitwise.
        if (shift.size() != uK * X_.n_cols) throw InvalidArgument("weighted_stats: the shift must be K x D");
        const cpu::NarrowParams np{type, K, D, layout->means, layout->factors.data(), layout->constants.data(),
                                   shift.data(), cpu::kNegligibleWeight};
        SufficientStats s = cpu::lanes_estep(X_, np, w_, [this] { poll_interrupt(); });
        s.log_likelihood = 0.0;
        s.weight = total_weight_;
        return s;
      }
      layout = std::make_unique<EstepLayout>(*g.params, EstepLayout::For::row_blocks);
      fill = [&](std::size_t begin, std::size_t count, double* resp, double*) {
        posteriors_range(X_, *layout, begin, count, resp, nullptr);
      };
      break;
    case Responsibilities::Kind::given:
      if (!g.given) throw InvalidArgument("weighted_stats: given needs an N x K matrix of weights");
      if (given_in_lanes(type, X_, K, shift)) {
        SufficientStats s = cpu::lanes_given_stats(X_, type, K, shift.data(), g.given, w_, [this] { poll_interrupt(); });
        s.weight = total_weight_;
        return s;
      }
      fill = [&](std::size_t begin, std::size_t count, double* resp, double*) {
        std::copy(g.given + begin * uK, g.given + (begin + count) * uK, resp);
      };
      break;
  }
  SufficientStats s = accumulate_stats(X_, type, K, shift, fill, false, [this] { poll_interrupt(); }, w_);
  s.weight = total_weight_;
  return s;
}

SufficientStats CpuPrimitives::weighted_stats_rows(const Responsibilities& g, CovarianceType type, int K,
                                                   const std::vector<double>& shift, std::size_t begin,
                                                   std::size_t end) {
  if (g.kind != Responsibilities::Kind::given || !g.given)
    throw InvalidArgument("weighted_stats_rows: needs given weights of the rows");
  if (begin > end || end > X_.n_rows) throw InvalidArgument("weighted_stats_rows: rows out of range");
  // The same pass over a view of the rows (and of their weights).
  DataView rows = X_;
  rows.n_rows = end - begin;
  if (X_.is_float32())
    rows.data_f32 = X_.data_f32 + begin * X_.row_stride;
  else
    rows.data = X_.data + begin * X_.row_stride;
  WeightView w = w_;
  if (!w.empty()) {
    w.data += begin;
    w.n = end - begin;
  }
  if (given_in_lanes(type, rows, K, shift))
    return cpu::lanes_given_stats(rows, type, K, shift.data(), g.given, w, [this] { poll_interrupt(); });
  const std::size_t uK = static_cast<std::size_t>(K);
  const ResponsibilityFn fill = [&](std::size_t b, std::size_t count, double* resp, double*) {
    std::copy(g.given + b * uK, g.given + (b + count) * uK, resp);
  };
  return accumulate_stats(rows, type, K, shift, fill, false, [this] { poll_interrupt(); }, w);
}

std::vector<double> CpuPrimitives::first_pass_shift(const Responsibilities&, int K) const {
  return std::vector<double>(static_cast<std::size_t>(K) * X_.n_cols, 0.0);
}

}  // namespace cuem
