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

void SufficientStats::merge(const SufficientStats& o) {
  if (o.type != type || o.K != K || o.D != D || o.shift != shift)
    throw Error("internal: merging sufficient statistics of different shapes or shifts");
  for (std::size_t i = 0; i < nk.size(); ++i) nk[i] += o.nk[i];
  for (std::size_t i = 0; i < s1.size(); ++i) s1[i] += o.s1[i];
  for (std::size_t i = 0; i < s2.size(); ++i) s2[i] += o.s2[i];
  log_likelihood += o.log_likelihood;
  n_points += o.n_points;
}

}  // namespace cuem
