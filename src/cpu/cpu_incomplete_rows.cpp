// The float64 CPU E-step of the incomplete rows (engine/incomplete_rows.hpp), and the
// per-row values the evaluations and imputation read. Rows are taken in fixed blocks in
// layout order; within a block each pattern's conditional factors are computed once per
// component, then every row of the pattern is completed under each component.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "core/point_math.hpp"
#include "core/prepared_params.hpp"
#include "cpu/aligned_buffer.hpp"
#include "cpu/cpu_kernels.hpp"
#include "engine/conditional_gaussian.hpp"
#include "engine/incomplete_rows.hpp"

// The per-row loops are compiled per instruction-set level, as src/cpu/cpu_kernels.cpp's.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__ELF__) && \
    !defined(CUEM_NO_TARGET_CLONES)
#define CUEM_ROW_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define CUEM_ROW_CLONES
#endif

namespace cuem::engine {
namespace {

constexpr std::size_t kBlock = 1024;
constexpr std::size_t kTileMin = 8;  // a pattern segment this long goes through the tiled path

using v8d = double __attribute__((vector_size(64)));

// One row completed under every component: y_k (K x D) = x - mu_k over the row (its
// missing entries hold fill values, overwritten here) and, on the missing entries,
// -G_k y_k,o where G_k is given (full, tied), 0 otherwise. x: the row's D values;
// G[k]: |m| x |o| or null; yo: scratch of |o|.
CUEM_ROW_CLONES
void complete_row(const double* x, const int* obs, std::size_t o, const int* mis, std::size_t m, const double* means,
                  std::size_t K, std::size_t D, const double* const* G, double* y, double* yo) {
  for (std::size_t k = 0; k < K; ++k) {
    const double* mu = means + k * D;
    double* yk = y + k * D;
    for (std::size_t d = 0; d < D; ++d) yk[d] = x[d] - mu[d];
    const double* g = G[k];
    if (!g) {
      for (std::size_t a = 0; a < m; ++a) yk[mis[a]] = 0.0;
      continue;
    }
    for (std::size_t j = 0; j < o; ++j) yo[j] = yk[obs[j]];
    for (std::size_t a = 0; a < m; ++a) {
      // Four partial sums: an in-order sum would be one chain of dependent additions.
      const double* ga = g + a * o;
      double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
      std::size_t j = 0;
      for (; j + 4 <= o; j += 4) {
        s0 += ga[j] * yo[j];
        s1 += ga[j + 1] * yo[j + 1];
        s2 += ga[j + 2] * yo[j + 2];
        s3 += ga[j + 3] * yo[j + 3];
      }
      for (; j < o; ++j) s0 += ga[j] * yo[j];
      yk[mis[a]] = -((s0 + s1) + (s2 + s3));
    }
  }
}

// A tile of up to 16 rows of one pattern completed under one component, transposed:
// yt (D x 16) = xt - mu over every entry, then on the missing entries -G y_o (G null:
// 0). Each lane is one row and takes the same operations as any other lane, so a row's
// values do not depend on its tile.
CUEM_ROW_CLONES
void complete_tile(const double* xt, const int* obs, std::size_t o, const int* mis, std::size_t m, const double* mu,
                   std::size_t D, const double* G, double* yt) {
  for (std::size_t d = 0; d < D; ++d)
    for (std::size_t r = 0; r < 16; ++r) yt[d * 16 + r] = xt[d * 16 + r] - mu[d];
  for (std::size_t a = 0; a < m; ++a) {
    double acc[16] = {};
    if (G)
      for (std::size_t j = 0; j < o; ++j) {
        const double g = G[a * o + j];
        const double* yj = yt + static_cast<std::size_t>(obs[j]) * 16;
        for (std::size_t r = 0; r < 16; ++r) acc[r] += g * yj[r];
      }
    double* ym = yt + static_cast<std::size_t>(mis[a]) * 16;
    for (std::size_t r = 0; r < 16; ++r) ym[r] = -acc[r];
  }
}

// q_k = ||P_k^T y_k||^2 for every component (y: K x D; P: K factors, or one shared when
// `shared`, of D rows of W = pad8(D) columns with zeros below the diagonal and in the
// padding). Column block v of P^T y takes rows 0 .. v+7 of P; four components at a time
// keep four independent sums in registers. Each q_k's arithmetic is fixed by its row alone.
CUEM_ROW_CLONES
void mahalanobis_all(const double* y, const double* P, int K, int D, bool shared, double* q) {
  const int W = (D + 7) / 8 * 8;
  const std::size_t block = static_cast<std::size_t>(D) * static_cast<std::size_t>(W);
  for (int k0 = 0; k0 < K; k0 += 4) {
    const int n = K - k0 < 4 ? K - k0 : 4;
    double sums[4] = {0.0, 0.0, 0.0, 0.0};
    const double* yk[4];
    const double* Pk[4];
    for (int c = 0; c < 4; ++c) {
      const int k = k0 + (c < n ? c : 0);
      yk[c] = y + static_cast<std::size_t>(k) * static_cast<std::size_t>(D);
      Pk[c] = P + (shared ? 0 : static_cast<std::size_t>(k) * block);
    }
    for (int v = 0; v < W; v += 8) {
      v8d a0 = {}, a1 = {}, a2 = {}, a3 = {};
      const int i_end = v + 8 < D ? v + 8 : D;
      for (int i = 0; i < i_end; ++i) {
        const std::size_t at = static_cast<std::size_t>(i) * static_cast<std::size_t>(W) + static_cast<std::size_t>(v);
        v8d p0, p1, p2, p3;
        __builtin_memcpy(&p0, Pk[0] + at, sizeof p0);
        __builtin_memcpy(&p1, Pk[1] + at, sizeof p1);
        __builtin_memcpy(&p2, Pk[2] + at, sizeof p2);
        __builtin_memcpy(&p3, Pk[3] + at, sizeof p3);
        a0 += yk[0][i] * p0;
        a1 += yk[1][i] * p1;
        a2 += yk[2][i] * p2;
        a3 += yk[3][i] * p3;
      }
      a0 *= a0;
      a1 *= a1;
      a2 *= a2;
      a3 *= a3;
      for (int l = 0; l < 8; ++l) {
        sums[0] += a0[l];
        sums[1] += a1[l];
        sums[2] += a2[l];
        sums[3] += a3[l];
      }
    }
    for (int c = 0; c < n; ++c) q[k0 + c] = sums[c];
  }
}

// Completed rows collected per component and summed by the CPU backend's tiled scatter
// (cpu/cpu_kernels.hpp), which keeps tiles of S2 in registers across rows instead of
// reading and writing all of it per row. A batch is summed when full and at the end of a
// block, so the order of every sum is fixed by the rows alone.
class ScatterBatches {
 public:
  ScatterBatches(int K, int D, bool tied)
      : K_(K), D_(D), W_(cpu::pad8(D)), R4_(cpu::pad4(D)), tied_(tied),
        rows_(static_cast<std::size_t>(K) * kCap * static_cast<std::size_t>(W_)),
        g_(static_cast<std::size_t>(K) * kCap), count_(static_cast<std::size_t>(K), 0),
        y_(kCap * static_cast<std::size_t>(W_)), a_(kCap * static_cast<std::size_t>(W_)), index_(kCap),
        zero_(static_cast<std::size_t>(W_)), s1_(static_cast<std::size_t>(K) * static_cast<std::size_t>(W_)),
        s2_((tied ? 1 : static_cast<std::size_t>(K)) * static_cast<std::size_t>(R4_) * static_cast<std::size_t>(W_)) {
    for (std::size_t t = 0; t < kCap; ++t) index_[t] = static_cast<int>(t);
  }

  void add(int k, const double* y, double g) {
    const std::size_t kz = static_cast<std::size_t>(k);
    int& n = count_[kz];
    std::copy(y, y + D_, rows_.data() + (kz * kCap + static_cast<std::size_t>(n)) * static_cast<std::size_t>(W_));
    g_[kz * kCap + static_cast<std::size_t>(n)] = g;
    if (static_cast<std::size_t>(++n) == kCap) sum(k);
  }

  // Sums what is left and adds everything to s (full or tied layout), then starts over.
  void finish(SufficientStats& s) {
    const std::size_t D = static_cast<std::size_t>(D_), W = static_cast<std::size_t>(W_), R4 = static_cast<std::size_t>(R4_);
    for (int k = 0; k < K_; ++k) sum(k);
    for (std::size_t k = 0; k < static_cast<std::size_t>(K_); ++k)
      for (std::size_t i = 0; i < D; ++i) s.s1[k * D + i] += s1_[k * W + i];
    const std::size_t n_sets = tied_ ? 1 : static_cast<std::size_t>(K_);
    for (std::size_t k = 0; k < n_sets; ++k)
      for (std::size_t i = 0; i < D; ++i)
        for (std::size_t j = i; j < D; ++j) s.s2[(k * D + i) * D + j] += s2_[(k * R4 + i) * W + j];
    std::fill(s1_.begin(), s1_.end(), 0.0);
    std::fill(s2_.begin(), s2_.end(), 0.0);
  }

 private:
  static constexpr std::size_t kCap = 64;

  void sum(int k) {
    const std::size_t kz = static_cast<std::size_t>(k), W = static_cast<std::size_t>(W_);
    const int n = count_[kz];
    if (n == 0) return;
    cpu::gather_shifted(rows_.data() + kz * kCap * W, index_.data(), g_.data() + kz * kCap, n, zero_.data(), W_,
                        y_.data(), a_.data(), s1_.data() + kz * W);
    cpu::scatter_tiles(a_.data(), y_.data(), n, W_, 0, R4_ / 4,
                       s2_.data() + (tied_ ? 0 : kz) * static_cast<std::size_t>(R4_) * W);
    count_[kz] = 0;
  }

  int K_, D_, W_, R4_;
  bool tied_;
  cpu::AlignedBuffer rows_;  ///< K x kCap x W, zero padding
  cpu::AlignedBuffer g_;     ///< K x kCap
  std::vector<int> count_;   ///< K
  cpu::AlignedBuffer y_, a_;
  std::vector<int> index_;
  cpu::AlignedBuffer zero_;
  cpu::AlignedBuffer s1_;    ///< K x W
  cpu::AlignedBuffer s2_;    ///< (K or 1) x pad4(D) x W
};

// s1 += g y, s2 += g y * y elementwise.
CUEM_ROW_CLONES
void add_diagonal(double* s1, double* s2, const double* y, double g, int D) {
  for (int i = 0; i < D; ++i) {
    const double gy = g * y[i];
    s1[i] += gy;
    s2[i] += gy * y[i];
  }
}  // rows per block: the unit of work and of summation

// What the row visitor gives a consumer, per row: the completed deviations y_k (K x D,
// y_k = x^_k - mu_k; only those of components with a positive responsibility are
// certain to be this row's), the responsibilities and log p(x_o).
struct RowValues {
  std::size_t row = 0;  ///< layout row
  const double* y = nullptr;
  const double* resp = nullptr;
  double log_prob = 0;
};

// The factors of one pattern for every component (one set, shared, for tied models).
struct PatternFactors {
  std::vector<ConditionalFactors> f;
  const ConditionalFactors& of(int k) const { return f.size() == 1 ? f[0] : f[static_cast<std::size_t>(k)]; }
};

class RowVisitor {
 public:
  // every_deviation: y_k for every component in each row, not only for those of
  // positive responsibility (given weights may be positive where the model's are 0).
  RowVisitor(const MissingLayout& L, const Model& m, bool every_deviation = false)
      : L_(L), m_(m), every_(every_deviation), p_(prepare(m)), precisions_(precision_matrices(m)), K_(m.n_components), D_(m.n_features) {
    if (m.covariance_type != CovarianceType::full && m.covariance_type != CovarianceType::tied) return;
    // The factors padded to pad4(D) columns for the tiled rows (cpu::log_joints_full).
    {
      const std::size_t Dz = static_cast<std::size_t>(D_), P4 = static_cast<std::size_t>(cpu::pad4(D_));
      const std::size_t n4 = m.precisions_cholesky.size() / (Dz * Dz);
      square4_.assign(n4 * Dz * P4, 0.0);
      for (std::size_t f = 0; f < n4; ++f)
        for (std::size_t i = 0; i < Dz; ++i)
          for (std::size_t j = i; j < Dz; ++j) square4_[(f * Dz + i) * P4 + j] = m.precisions_cholesky[(f * Dz + i) * Dz + j];
    }
    // The factors with rows padded to W = pad8(D) and zeros below the diagonal, for
    // mahalanobis_all.
    const std::size_t D = static_cast<std::size_t>(D_), W = (D + 7) / 8 * 8;
    const std::size_t n = m.precisions_cholesky.size() / (D * D);
    square_.assign(n * D * W, 0.0);
    for (std::size_t f = 0; f < n; ++f)
      for (std::size_t i = 0; i < D; ++i)
        for (std::size_t j = i; j < D; ++j) square_[(f * D + i) * W + j] = m.precisions_cholesky[(f * D + i) * D + j];
  }

  std::size_t n_blocks() const { return (L_.n_rows - L_.n_complete + kBlock - 1) / kBlock; }

  // For each pattern segment of block b, in layout order: on_pattern(p, factors), then
  // on_row(values) for each of its rows, then on_end() (the factors are then reused).
  template <class OnPattern, class OnRow, class OnEnd>
  void visit_block(std::size_t b, OnPattern&& on_pattern, OnRow&& on_row, OnEnd&& on_end) const {
    const std::size_t K = static_cast<std::size_t>(K_), D = static_cast<std::size_t>(D_);
    const std::size_t lo = L_.n_complete + b * kBlock, hi = std::min(L_.n_rows, lo + kBlock);
    std::vector<double> y(K * D), v(K), q(K), yo(D), scratch;
    std::vector<const double*> gk(K);
    PatternFactors pf;
    // The first pattern reaching into the block: patterns are in layout order.
    auto it = std::upper_bound(L_.patterns.begin(), L_.patterns.end(), lo,
                               [](std::size_t r, const MissingPattern& p) { return r < p.end; });
    for (; it != L_.patterns.end() && it->begin < hi; ++it) {
      const MissingPattern& pat = *it;
      const std::size_t n_sets = m_.covariance_type == CovarianceType::tied ? 1 : K;
      pf.f.resize(n_sets);
      for (std::size_t k = 0; k < n_sets; ++k)
        conditional_factors(m_, precisions_, static_cast<int>(k), pat, pf.f[k], scratch);
      for (std::size_t k = 0; k < K; ++k) {
        const ConditionalFactors& f = pf.of(static_cast<int>(k));
        gk[k] = f.G.empty() ? nullptr : f.G.data();
      }
      on_pattern(pat, pf);
      const std::size_t o = pat.observed.size(), mm = pat.missing.size();
      const double half_norm = 0.5 * static_cast<double>(o) * math::kLog2Pi;
      const std::size_t seg_begin = std::max(lo, pat.begin), seg_end = std::min(hi, pat.end);
      std::size_t r = seg_begin;
      // Segments of many rows: tiles of 16 through the CPU backend's vector kernels.
      if (seg_end - seg_begin >= kTileMin) {
        for (; r < seg_end; r += 16) visit_tile(pat, pf, r, std::min<std::size_t>(16, seg_end - r), on_row);
      }
      for (; r < seg_end; ++r) {
        complete_row(L_.values.data() + r * D, pat.observed.data(), o, pat.missing.data(), mm, p_.means.data(), K, D, gk.data(), y.data(),
                     yo.data());
        switch (m_.covariance_type) {
          case CovarianceType::full:
          case CovarianceType::tied:
            mahalanobis_all(y.data(), square_.data(), K_, D_, m_.covariance_type == CovarianceType::tied, q.data());
            break;
          case CovarianceType::diag:
            for (std::size_t k = 0; k < K; ++k) {
              const double* yk = y.data() + k * D;
              q[k] = math::mahalanobis_sq_diag_of([&](int d) { return yk[d]; }, p_.factor(static_cast<int>(k)), D_);
            }
            break;
          case CovarianceType::spherical:
            for (std::size_t k = 0; k < K; ++k) {
              const double* yk = y.data() + k * D;
              q[k] = math::mahalanobis_sq_spherical_of([&](int d) { return yk[d]; }, *p_.factor(static_cast<int>(k)), D_);
            }
            break;
        }
        for (std::size_t k = 0; k < K; ++k)
          v[k] = p_.log_weights[k] + p_.log_det[k] - pf.of(static_cast<int>(k)).log_det_mm - half_norm - 0.5 * q[k];
        const double lp = math::normalize_log_joints(v.data(), K_);
        on_row(RowValues{r, y.data(), v.data(), lp});
      }
      on_end();
    }
  }

  // Rows [r0, r0 + n) of pattern p (n <= 16), as visit_block's rows.
  template <class OnRow>
  void visit_tile(const MissingPattern& p, const PatternFactors& pf, std::size_t r0, std::size_t n, OnRow& on_row) const {
    const std::size_t K = static_cast<std::size_t>(K_), D = static_cast<std::size_t>(D_);
    const std::size_t o = p.observed.size(), m = p.missing.size();
    thread_local cpu::AlignedBuffer xt, yt, scratch, lj, zero, y, e, resp;
    double row_max[16], row_sum[16], log_prob[16];
    xt.assign(D * 16, 0.0);
    yt.resize(K * D * 16);
    scratch.resize(D * 16);
    lj.resize(K * 16);
    zero.assign(D, 0.0);
    y.assign(K * D, 0.0);
    e.resize(K * 16);
    resp.resize(16 * K);
    for (std::size_t r = 0; r < n; ++r)
      for (std::size_t d = 0; d < D; ++d) xt[d * 16 + r] = L_.values[(r0 + r) * D + d];
    const double shift = 0.5 * static_cast<double>(m) * math::kLog2Pi;  // the kernel normalises over D entries
    for (std::size_t k = 0; k < K; ++k) {
      const ConditionalFactors& f = pf.of(static_cast<int>(k));
      double* ytk = yt.data() + k * D * 16;
      complete_tile(xt.data(), p.observed.data(), o, p.missing.data(), m, p_.means.data() + k * D, D,
                    f.G.empty() ? nullptr : f.G.data(), ytk);
      const double c = p_.log_weights[k] + p_.log_det[k] - f.log_det_mm + shift;
      const int ki = static_cast<int>(k);
      switch (m_.covariance_type) {
        case CovarianceType::full:
        case CovarianceType::tied:
          cpu::log_joints_full(ytk, D_, 1, zero.data(),
                               square4_.data() + (m_.covariance_type == CovarianceType::full ? k * D * static_cast<std::size_t>(cpu::pad4(D_)) : 0),
                               &c, scratch.data(), lj.data() + k * 16);
          break;
        case CovarianceType::diag: cpu::log_joints_diag(ytk, D_, 1, zero.data(), p_.factor(ki), &c, lj.data() + k * 16); break;
        case CovarianceType::spherical:
          cpu::log_joints_spherical(ytk, D_, 1, zero.data(), p_.factor(ki), &c, lj.data() + k * 16);
          break;
      }
    }
    // The vector normalisation of the CPU E-step, then each row's completed deviations
    // for the components that take part of it (the others' are left as they were).
    cpu::exp_normalise_block(lj.data(), K_, e.data(), row_max, row_sum);
    cpu::responsibilities_block(e.data(), row_max, row_sum, K_, static_cast<int>(n), resp.data(), log_prob);
    for (std::size_t r = 0; r < n; ++r) {
      const double* g = resp.data() + r * K;
      for (std::size_t k = 0; k < K; ++k) {
        if (g[k] == 0.0 && !every_) continue;
        const double* ytk = yt.data() + k * D * 16;
        for (std::size_t d = 0; d < D; ++d) y[k * D + d] = ytk[d * 16 + r];
      }
      on_row(RowValues{r0 + r, y.data(), g, log_prob[r]});
    }
  }

  const MissingLayout& layout() const { return L_; }
  const PreparedParams& prepared() const { return p_; }

 private:
  const MissingLayout& L_;
  const Model& m_;
  bool every_;
  PreparedParams p_;
  std::vector<double> precisions_;
  std::vector<double> square_;
  std::vector<double> square4_;
  int K_, D_;
};

// Adds block b's expected statistics into s (zeroed, about the model's means), each row
// weighted by its responsibilities or, where `given` is not null, by its row of `given`
// ((n_rows - n_complete) x K).
void block_stats(const RowVisitor& visit, std::size_t b, SufficientStats& s, const double* given) {
  const MissingLayout& L = visit.layout();
  const std::size_t K = static_cast<std::size_t>(s.K), D = static_cast<std::size_t>(s.D);
  const CovarianceType type = s.type;
  std::vector<double> mass(K, 0.0);  // sum of w g per component over the current pattern segment
  const MissingPattern* current = nullptr;
  const PatternFactors* factors = nullptr;
  const bool square = type == CovarianceType::full || type == CovarianceType::tied;
  std::unique_ptr<ScatterBatches> batches;
  if (square) batches = std::make_unique<ScatterBatches>(s.K, s.D, type == CovarianceType::tied);
  // The conditional covariances enter S2 once per segment, scaled by the segment's mass.
  auto flush = [&]() {
    if (!current) return;
    const std::vector<int>& mi = current->missing;
    const std::size_t m = mi.size();
    for (std::size_t k = 0; k < K; ++k) {
      if (mass[k] == 0.0) continue;
      const std::vector<double>& C = factors->of(static_cast<int>(k)).cov;
      for (std::size_t a = 0; a < m; ++a) {
        const std::size_t da = static_cast<std::size_t>(mi[a]);
        switch (type) {
          case CovarianceType::full:
          case CovarianceType::tied: {
            double* s2 = s.s2.data() + (type == CovarianceType::full ? k * D * D : 0);
            for (std::size_t c = a; c < m; ++c) s2[da * D + static_cast<std::size_t>(mi[c])] += mass[k] * C[a * m + c];
            break;
          }
          case CovarianceType::diag:
          case CovarianceType::spherical: s.s2[k * D + da] += mass[k] * C[a * m + a]; break;
        }
      }
      mass[k] = 0.0;
    }
  };
  visit.visit_block(
      b,
      [&](const MissingPattern& p, const PatternFactors& f) {
        current = &p;
        factors = &f;
      },
      [&](const RowValues& r) {
        const double w = L.weights.empty() ? 1.0 : L.weights[r.row];
        if (w == 0.0) return;  // absent: its log-density may be -inf
        s.log_likelihood += w * r.log_prob;
        s.weight += w;
        ++s.n_points;
        const double* resp = given ? given + (r.row - L.n_complete) * K : r.resp;
        for (std::size_t k = 0; k < K; ++k) {
          const double g = w * resp[k];
          if (g == 0.0) continue;
          mass[k] += g;
          s.nk[k] += g;
          const double* y = r.y + k * D;
          if (square) {
            batches->add(static_cast<int>(k), y, g);
          } else {
            add_diagonal(s.s1.data() + k * D, s.s2.data() + k * D, y, g, s.D);
          }
        }
      },
      flush);
  if (batches) batches->finish(s);
}

// The statistics of every incomplete row (block_stats), summed block by block in order.
SufficientStats sum_blocks(const MissingLayout& L, const Model& model, const double* given) {
  const RowVisitor visit(L, model, given != nullptr);
  const SufficientStats zero = SufficientStats::zeros(model.covariance_type, model.n_components,
                                                      model.n_features, model.means);
  SufficientStats total = zero;
  const std::size_t B = visit.n_blocks();
  const std::size_t T = static_cast<std::size_t>(std::max(1, omp_get_max_threads()));
  // Waves of blocks: each block's sum is the same whoever computes it, and the blocks
  // are added in order, so the result does not depend on the thread count. A wave is
  // as many blocks as 64 MiB of partial sums hold (at least one per thread), so that
  // most data sets take one wave, and one barrier.
  const std::size_t part_bytes = (zero.s1.size() + zero.s2.size() + zero.nk.size()) * sizeof(double);
  const std::size_t wave = std::max(T, (std::size_t{64} << 20) / std::max<std::size_t>(part_bytes, 1));
  std::vector<SufficientStats> part(std::min(wave, std::max<std::size_t>(B, 1)), zero);
  for (std::size_t first = 0; first < B; first += part.size()) {
    const std::size_t n = std::min(part.size(), B - first);
#pragma omp parallel for schedule(dynamic, 1)
    for (std::ptrdiff_t i = 0; i < static_cast<std::ptrdiff_t>(n); ++i) {
      part[static_cast<std::size_t>(i)] = zero;
      block_stats(visit, first + static_cast<std::size_t>(i), part[static_cast<std::size_t>(i)], given);
    }
    for (std::size_t i = 0; i < n; ++i) total.merge(part[i]);
  }
  return total;
}

class CpuIncompleteRows final : public IncompleteRows {
 public:
  explicit CpuIncompleteRows(const MissingLayout& L) : L_(L) {}

  SufficientStats estep(const Model& model) override { return sum_blocks(L_, model, nullptr); }

  const char* name() const noexcept override { return "cpu"; }

 private:
  const MissingLayout& L_;
};

}  // namespace

std::unique_ptr<IncompleteRows> make_cpu_incomplete_rows(const MissingLayout& layout) {
  return std::make_unique<CpuIncompleteRows>(layout);
}

SufficientStats incomplete_weighted_stats(const MissingLayout& layout, const Model& model, const double* weights) {
  return sum_blocks(layout, model, weights);
}

void incomplete_posteriors(const MissingLayout& L, const Model& model, double* log_prob, double* resp) {
  const RowVisitor visit(L, model);
  const std::size_t K = static_cast<std::size_t>(model.n_components);
  const std::ptrdiff_t B = static_cast<std::ptrdiff_t>(visit.n_blocks());
#pragma omp parallel for schedule(dynamic, 1)
  for (std::ptrdiff_t b = 0; b < B; ++b)
    visit.visit_block(
        static_cast<std::size_t>(b), [](const MissingPattern&, const PatternFactors&) {},
        [&](const RowValues& r) {
          const std::size_t i = r.row - L.n_complete;
          if (log_prob) log_prob[i] = r.log_prob;
          if (resp) std::copy(r.resp, r.resp + K, resp + i * K);
        },
        [] {});
}

void incomplete_conditionals(const MissingLayout& L, const Model& model, double* filled, double* variance) {
  const RowVisitor visit(L, model);
  const std::size_t K = static_cast<std::size_t>(model.n_components), D = static_cast<std::size_t>(model.n_features);
  const std::ptrdiff_t B = static_cast<std::ptrdiff_t>(visit.n_blocks());
  const std::vector<double>& mu = visit.prepared().means;
#pragma omp parallel for schedule(dynamic, 1)
  for (std::ptrdiff_t b = 0; b < B; ++b) {
    const MissingPattern* pat = nullptr;
    const PatternFactors* pf = nullptr;
    visit.visit_block(
        static_cast<std::size_t>(b),
        [&](const MissingPattern& p, const PatternFactors& f) {
          pat = &p;
          pf = &f;
        },
        [&](const RowValues& r) {
          const std::size_t i = r.row - L.n_complete;
          double* out = filled + i * D;
          for (int d : pat->observed) out[d] = L.value(r.row, static_cast<std::size_t>(d));
          double* var = variance ? variance + i * D : nullptr;
          if (var)
            for (int d : pat->observed) var[d] = 0.0;
          const std::size_t m = pat->missing.size();
          for (std::size_t a = 0; a < m; ++a) {
            const std::size_t d = static_cast<std::size_t>(pat->missing[a]);
            double mean = 0.0;  // E[x_d | x_o]
            for (std::size_t k = 0; k < K; ++k) mean += r.resp[k] * (mu[k * D + d] + r.y[k * D + d]);
            out[d] = mean;
            if (!var) continue;
            double v = 0.0;  // the law of total variance: within components, then between
            for (std::size_t k = 0; k < K; ++k) {
              const double gap = mu[k * D + d] + r.y[k * D + d] - mean;
              v += r.resp[k] * (pf->of(static_cast<int>(k)).cov[a * m + a] + gap * gap);
            }
            var[d] = v;
          }
        },
        [] {});
  }
}

}  // namespace cuem::engine
