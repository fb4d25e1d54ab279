#include "core/incremental_bound.hpp"

#include <cmath>
#include <cstddef>
#include <vector>

#include "core/prepared_params.hpp"
#include "cuem/errors.hpp"

namespace cuem {

double expected_complete_log_likelihood(const SufficientStats& s, const Model& theta) {
  if (s.type != theta.covariance_type || s.K != theta.n_components || s.D != theta.n_features)
    throw Error("internal: statistics and parameters of different shapes");
  const PreparedParams p = prepare(theta);
  const SufficientStats c = s.recentred(theta.means);  // scatter about theta's own means
  const std::size_t D = static_cast<std::size_t>(s.D);
  const double log_2pi = std::log(2.0 * 3.14159265358979323846);
  double q = 0.0;
  // tr(P^T C P) for an upper-triangle-stored symmetric C and a dense factor P.
  const auto trace_full = [D](const double* C, const double* P) {
    double t = 0.0;
    for (std::size_t j = 0; j < D; ++j)
      for (std::size_t a = 0; a < D; ++a) {
        double ca = 0.0;  // (C P)_aj
        for (std::size_t b = 0; b < D; ++b) ca += (a <= b ? C[a * D + b] : C[b * D + a]) * P[b * D + j];
        t += P[a * D + j] * ca;
      }
    return t;
  };
  for (int k = 0; k < s.K; ++k) {
    const std::size_t kz = static_cast<std::size_t>(k);
    q += s.nk[kz] * (p.log_weights[kz] - 0.5 * static_cast<double>(D) * log_2pi + p.log_det[kz]);
    const double* f = p.factor(k);
    switch (s.type) {
      case CovarianceType::full: q -= 0.5 * trace_full(c.s2.data() + kz * D * D, f); break;
      case CovarianceType::tied: break;  // one term for all components, below
      case CovarianceType::diag:
        for (std::size_t j = 0; j < D; ++j) q -= 0.5 * f[j] * f[j] * c.s2[kz * D + j];
        break;
      case CovarianceType::spherical: {
        double t = 0.0;
        for (std::size_t j = 0; j < D; ++j) t += c.s2[kz * D + j];
        q -= 0.5 * f[0] * f[0] * t;
        break;
      }
    }
  }
  if (s.type == CovarianceType::tied) q -= 0.5 * trace_full(c.s2.data(), p.factor(0));
  return q;
}

}  // namespace cuem
