#include "cpu/cpu_backend.hpp"

#include <omp.h>

#include <algorithm>
#include <vector>

#include "core/data_access.hpp"
#include "core/point_math.hpp"

namespace cuem {

std::size_t chunk_points(int K) noexcept {
  // About 1 MiB of responsibilities per chunk, at least 64 points.
  const std::size_t target = (std::size_t{1} << 17) / static_cast<std::size_t>(std::max(K, 1));
  return std::clamp<std::size_t>(target, 64, 8192);
}

namespace {

template <typename T>
void posteriors_typed(const T* base, std::size_t n_cols, const PreparedParams& p, std::size_t begin,
                      std::size_t count, double* resp, double* log_prob) {
  const int K = p.K;
  const int D = p.D;
  const auto n = static_cast<std::ptrdiff_t>(count);
#pragma omp parallel for schedule(static) if (worth_threads(count, K, D))
  for (std::ptrdiff_t b = 0; b < n; ++b) {
    const T* x = base + (begin + static_cast<std::size_t>(b)) * n_cols;
    double* v = resp + static_cast<std::size_t>(b) * K;
    for (int k = 0; k < K; ++k) {
      const double* mu = p.means.data() + static_cast<std::size_t>(k) * D;
      const double* f = p.factor(k);
      double maha = 0.0;
      switch (p.type) {
        case CovarianceType::full:
        case CovarianceType::tied: maha = math::mahalanobis_sq_full(x, mu, f, D); break;
        case CovarianceType::diag: maha = math::mahalanobis_sq_diag(x, mu, f, D); break;
        case CovarianceType::spherical: maha = math::mahalanobis_sq_spherical(x, mu, *f, D); break;
      }
      v[k] = math::log_joint(p.log_weights[k], p.log_det[k], maha, D);
    }
    const double lse = math::normalize_log_joints(v, K);
    if (log_prob) log_prob[b] = lse;
  }
}

}  // namespace

void cpu_posteriors(DataView X, const PreparedParams& p, std::size_t begin, std::size_t count,
                    double* resp, double* log_prob) {
  visit_rows(X, [&](const auto* base) { posteriors_typed(base, X.n_cols, p, begin, count, resp, log_prob); });
}

SufficientStats accumulate_stats(DataView X, CovarianceType type, int K, std::vector<double> shift,
                                 const ResponsibilityFn& resp_fn, bool with_log_likelihood,
                                 const std::function<void()>& between_chunks) {
  const int D = static_cast<int>(X.n_cols);
  const std::size_t DD = static_cast<std::size_t>(D) * D;
  SufficientStats s = SufficientStats::zeros(type, K, D, std::move(shift));
  const bool tied = type == CovarianceType::tied;
  const bool full_scatter = type == CovarianceType::full || tied;
  // Tied statistics are the sum over components of full ones; summing each component
  // separately keeps the parallel tasks free of shared writes.
  std::vector<double> scatter_k;
  if (tied) scatter_k.assign(static_cast<std::size_t>(K) * DD, 0.0);
  double* s2_base = tied ? scatter_k.data() : s.s2.data();

  const std::size_t chunk = chunk_points(K);
  std::vector<double> resp(chunk * static_cast<std::size_t>(K));
  std::vector<double> log_prob(with_log_likelihood ? chunk : 0);
  for (std::size_t begin = 0; begin < X.n_rows; begin += chunk) {
    const std::size_t count = std::min(chunk, X.n_rows - begin);
    if (between_chunks) between_chunks();
    resp_fn(begin, count, resp.data(), with_log_likelihood ? log_prob.data() : nullptr);
    if (with_log_likelihood)
      for (std::size_t b = 0; b < count; ++b) s.log_likelihood += log_prob[b];

    // Tasks own disjoint sums (whole components, or single rows of a component's scatter
    // when there are too few components to keep the threads busy), and each sum runs over
    // the points in order: the result is bitwise the same however the work is split.
    const int rows_per_task = K >= 4 * omp_get_max_threads() ? D : 1;
    const int tasks_per_component = (D + rows_per_task - 1) / rows_per_task;
    visit_rows(X, [&](const auto* base) {
      const int n_tasks = K * tasks_per_component;
#pragma omp parallel for schedule(dynamic, 1) if (worth_threads(count, K, D))
      for (int t = 0; t < n_tasks; ++t) {
        const int k = t / tasks_per_component;
        const int row_begin = (t % tasks_per_component) * rows_per_task;
        const int row_end = std::min(D, row_begin + rows_per_task);
        const double* c = s.shift.data() + static_cast<std::size_t>(k) * D;
        double* s1 = s.s1.data() + static_cast<std::size_t>(k) * D;
        double* s2 = full_scatter ? s2_base + k * DD : s.s2.data() + static_cast<std::size_t>(k) * D;
        double nk = 0.0;
        for (std::size_t b = 0; b < count; ++b) {
          const double g = resp[b * K + k];
          if (g == 0.0) continue;  // hard assignments: most rows do not touch this component
          nk += g;
          const auto* x = base + (begin + b) * X.n_cols;
          for (int i = row_begin; i < row_end; ++i) {
            if (full_scatter)
              math::add_point_full_row(s1 + i, s2 + static_cast<std::size_t>(i) * D, x, c, g, D, i);
            else
              math::add_point_diag_dim(s1 + i, s2 + i, x, c, g, i);
          }
        }
        if (row_begin == 0) s.nk[k] += nk;
      }
    });
  }
  if (tied)
    for (int k = 0; k < K; ++k)
      for (std::size_t i = 0; i < DD; ++i) s.s2[i] += scatter_k[k * DD + i];
  s.n_points = X.n_rows;
  return s;
}

SufficientStats CpuBackend::estep(const PreparedParams& p) {
  return accumulate_stats(
      X_, p.type, p.K, p.means,
      [&](std::size_t begin, std::size_t count, double* resp, double* log_prob) {
        cpu_posteriors(X_, p, begin, count, resp, log_prob);
      },
      true, [this] { poll_interrupt(); });
}

void CpuBackend::evaluate(const PreparedParams& p, std::size_t begin, std::size_t end, double* log_prob,
                          double* resp) {
  const std::size_t chunk = chunk_points(p.K);
  std::vector<double> scratch(resp ? 0 : chunk * static_cast<std::size_t>(p.K));
  for (std::size_t b = begin; b < end; b += chunk) {
    const std::size_t count = std::min(chunk, end - b);
    double* r = resp ? resp + (b - begin) * static_cast<std::size_t>(p.K) : scratch.data();
    cpu_posteriors(X_, p, b, count, r, log_prob ? log_prob + (b - begin) : nullptr);
  }
}

}  // namespace cuem
