// The float64 CPU E-step of the incomplete rows (engine/incomplete_rows.hpp), and the
// per-row values the evaluations and imputation read. Rows are taken in fixed blocks in
// layout order; within a block each pattern's conditional factors are computed once per
// component, then every row of the pattern is completed under each component.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/point_math.hpp"
#include "core/prepared_params.hpp"
#include "engine/conditional_gaussian.hpp"
#include "engine/incomplete_rows.hpp"

namespace cuem::engine {
namespace {

constexpr std::size_t kBlock = 1024;  // rows per block: the unit of work and of summation

// What the row visitor gives a consumer, per row: the completed deviations y_k (K x D,
// y_k = x^_k - mu_k), the responsibilities and log p(x_o).
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
  RowVisitor(const MissingLayout& L, const Model& m)
      : L_(L), m_(m), p_(prepare(m)), precisions_(precision_matrices(m)), K_(m.n_components), D_(m.n_features) {}

  std::size_t n_blocks() const { return (L_.n_rows - L_.n_complete + kBlock - 1) / kBlock; }

  // For each pattern segment of block b, in layout order: on_pattern(p, factors), then
  // on_row(values) for each of its rows, then on_end() (the factors are then reused).
  template <class OnPattern, class OnRow, class OnEnd>
  void visit_block(std::size_t b, OnPattern&& on_pattern, OnRow&& on_row, OnEnd&& on_end) const {
    const std::size_t K = static_cast<std::size_t>(K_), D = static_cast<std::size_t>(D_);
    const std::size_t lo = L_.n_complete + b * kBlock, hi = std::min(L_.n_rows, lo + kBlock);
    std::vector<double> y(K * D), v(K);
    PatternFactors pf;
    // The first pattern reaching into the block: patterns are in layout order.
    auto it = std::upper_bound(L_.patterns.begin(), L_.patterns.end(), lo,
                               [](std::size_t r, const MissingPattern& p) { return r < p.end; });
    for (; it != L_.patterns.end() && it->begin < hi; ++it) {
      const MissingPattern& pat = *it;
      const std::size_t n_sets = m_.covariance_type == CovarianceType::tied ? 1 : K;
      pf.f.resize(n_sets);
      for (std::size_t k = 0; k < n_sets; ++k) pf.f[k] = conditional_factors(m_, precisions_, static_cast<int>(k), pat);
      on_pattern(pat, pf);
      const std::size_t o = pat.observed.size(), mm = pat.missing.size();
      const double half_norm = 0.5 * static_cast<double>(o) * math::kLog2Pi;
      for (std::size_t r = std::max(lo, pat.begin); r < std::min(hi, pat.end); ++r) {
        for (std::size_t k = 0; k < K; ++k) {
          const double* mu = p_.means.data() + k * D;
          double* yk = y.data() + k * D;
          for (int d : pat.observed) yk[d] = L_.value(r, static_cast<std::size_t>(d)) - mu[d];
          const ConditionalFactors& f = pf.of(static_cast<int>(k));
          for (std::size_t a = 0; a < mm; ++a) {
            double s = 0.0;
            if (!f.G.empty()) {
              const double* g = f.G.data() + a * o;
              for (std::size_t j = 0; j < o; ++j) s -= g[j] * yk[pat.observed[j]];
            }
            yk[pat.missing[a]] = s;
          }
          double q = 0.0;
          switch (m_.covariance_type) {
            case CovarianceType::full:
            case CovarianceType::tied:
              q = math::mahalanobis_sq_full_of([&](int i) { return yk[i]; }, p_.factor(static_cast<int>(k)), D_);
              break;
            case CovarianceType::diag:
              q = math::mahalanobis_sq_diag_of([&](int d) { return yk[d]; }, p_.factor(static_cast<int>(k)), D_);
              break;
            case CovarianceType::spherical:
              q = math::mahalanobis_sq_spherical_of([&](int d) { return yk[d]; }, *p_.factor(static_cast<int>(k)), D_);
              break;
          }
          v[k] = p_.log_weights[k] + p_.log_det[k] - f.log_det_mm - half_norm - 0.5 * q;
        }
        const double lp = math::normalize_log_joints(v.data(), K_);
        on_row(RowValues{r, y.data(), v.data(), lp});
      }
      on_end();
    }
  }

  const MissingLayout& layout() const { return L_; }
  const PreparedParams& prepared() const { return p_; }

 private:
  const MissingLayout& L_;
  const Model& m_;
  PreparedParams p_;
  std::vector<double> precisions_;
  int K_, D_;
};

// Adds block b's expected statistics into s (zeroed, about the model's means).
void block_stats(const RowVisitor& visit, std::size_t b, SufficientStats& s) {
  const MissingLayout& L = visit.layout();
  const std::size_t K = static_cast<std::size_t>(s.K), D = static_cast<std::size_t>(s.D);
  const CovarianceType type = s.type;
  std::vector<double> mass(K, 0.0);  // sum of w g per component over the current pattern segment
  const MissingPattern* current = nullptr;
  const PatternFactors* factors = nullptr;
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
        for (std::size_t k = 0; k < K; ++k) {
          const double g = w * r.resp[k];
          if (g == 0.0) continue;
          mass[k] += g;
          s.nk[k] += g;
          const double* y = r.y + k * D;
          double* s1 = s.s1.data() + k * D;
          for (std::size_t i = 0; i < D; ++i) s1[i] += g * y[i];
          switch (type) {
            case CovarianceType::full:
            case CovarianceType::tied: {
              double* s2 = s.s2.data() + (type == CovarianceType::full ? k * D * D : 0);
              for (std::size_t i = 0; i < D; ++i) {
                const double gy = g * y[i];
                double* row = s2 + i * D;
                for (std::size_t j = i; j < D; ++j) row[j] += gy * y[j];
              }
              break;
            }
            case CovarianceType::diag:
            case CovarianceType::spherical: {
              double* s2 = s.s2.data() + k * D;
              for (std::size_t i = 0; i < D; ++i) s2[i] += g * y[i] * y[i];
              break;
            }
          }
        }
      },
      flush);
}

class CpuIncompleteRows final : public IncompleteRows {
 public:
  explicit CpuIncompleteRows(const MissingLayout& L) : L_(L) {}

  SufficientStats estep(const Model& model) override {
    const RowVisitor visit(L_, model);
    const SufficientStats zero = SufficientStats::zeros(model.covariance_type, model.n_components,
                                                        model.n_features, model.means);
    SufficientStats total = zero;
    const std::size_t B = visit.n_blocks();
    const std::size_t T = static_cast<std::size_t>(std::max(1, omp_get_max_threads()));
    std::vector<SufficientStats> part(std::min(T, std::max<std::size_t>(B, 1)), zero);
    // Waves of blocks: each block's sum is the same whoever computes it, and the blocks
    // are added in order, so the result does not depend on the thread count.
    for (std::size_t first = 0; first < B; first += part.size()) {
      const std::size_t n = std::min(part.size(), B - first);
#pragma omp parallel for schedule(dynamic, 1)
      for (std::ptrdiff_t i = 0; i < static_cast<std::ptrdiff_t>(n); ++i) {
        part[static_cast<std::size_t>(i)] = zero;
        block_stats(visit, first + static_cast<std::size_t>(i), part[static_cast<std::size_t>(i)]);
      }
      for (std::size_t i = 0; i < n; ++i) total.merge(part[i]);
    }
    return total;
  }

  const char* name() const noexcept override { return "cpu"; }

 private:
  const MissingLayout& L_;
};

}  // namespace

std::unique_ptr<IncompleteRows> make_cpu_incomplete_rows(const MissingLayout& layout) {
  return std::make_unique<CpuIncompleteRows>(layout);
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
