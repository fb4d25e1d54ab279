#include "core/sufficient_stats.hpp"

#include <utility>

#include "cuem/errors.hpp"

namespace cuem {

std::size_t s2_size(CovarianceType type, int K, int D) noexcept {
  const auto Kz = static_cast<std::size_t>(K);
  const auto Dz = static_cast<std::size_t>(D);
  switch (type) {
    case CovarianceType::full: return Kz * Dz * Dz;
    case CovarianceType::tied: return Dz * Dz;
    case CovarianceType::diag:
    case CovarianceType::spherical: return Kz * Dz;
  }
  return 0;
}

SufficientStats SufficientStats::zeros(CovarianceType type, int K, int D, std::vector<double> shift) {
  SufficientStats s;
  s.type = type;
  s.K = K;
  s.D = D;
  s.shift = std::move(shift);
  s.nk.assign(K, 0.0);
  s.s1.assign(static_cast<std::size_t>(K) * D, 0.0);
  s.s2.assign(s2_size(type, K, D), 0.0);
  return s;
}

SufficientStats SufficientStats::recentred(const std::vector<double>& to) const {
  const std::size_t Dz = static_cast<std::size_t>(D);
  if (to.size() != shift.size()) throw Error("internal: re-centring statistics to a shift of another shape");
  SufficientStats r = *this;
  r.shift = to;
  for (std::size_t k = 0; k < static_cast<std::size_t>(K); ++k) {
    std::vector<double> delta(Dz);
    for (std::size_t i = 0; i < Dz; ++i) delta[i] = shift[k * Dz + i] - to[k * Dz + i];
    const double* d = delta.data();
    const double n = nk[k];
    const double* s1k = s1.data() + k * Dz;
    for (std::size_t i = 0; i < Dz; ++i) r.s1[k * Dz + i] = s1k[i] + n * d[i];
    switch (type) {
      case CovarianceType::full:
      case CovarianceType::tied: {
        double* s2k = r.s2.data() + (type == CovarianceType::full ? k * Dz * Dz : 0);
        for (std::size_t i = 0; i < Dz; ++i)
          for (std::size_t j = i; j < Dz; ++j) s2k[i * Dz + j] += s1k[i] * d[j] + d[i] * s1k[j] + n * d[i] * d[j];
        break;
      }
      case CovarianceType::diag:
      case CovarianceType::spherical:
        for (std::size_t i = 0; i < Dz; ++i) r.s2[k * Dz + i] += 2.0 * s1k[i] * d[i] + n * d[i] * d[i];
        break;
    }
  }
  return r;
}

void SufficientStats::merge(const SufficientStats& o) {
  if (o.type != type || o.K != K || o.D != D || o.shift.size() != shift.size())
    throw Error("internal: merging sufficient statistics of different shapes");
  if (o.shift != shift) {
    merge(o.recentred(shift));
    return;
  }
  for (std::size_t i = 0; i < nk.size(); ++i) nk[i] += o.nk[i];
  for (std::size_t i = 0; i < s1.size(); ++i) s1[i] += o.s1[i];
  for (std::size_t i = 0; i < s2.size(); ++i) s2[i] += o.s2[i];
  log_likelihood += o.log_likelihood;
  n_points += o.n_points;
  weight += o.weight;
}

}  // namespace cuem
