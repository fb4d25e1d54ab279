#include "core/online_stats.hpp"

#include <cstddef>
#include <utility>

#include "cuem/errors.hpp"

namespace cuem {

SufficientStats per_unit_weight(const SufficientStats& s) {
  if (!(s.weight > 0.0)) throw DataError("a batch of total weight 0 carries no information");
  const double f = 1.0 / s.weight;
  SufficientStats r = s;
  for (double& v : r.nk) v *= f;
  for (double& v : r.s1) v *= f;
  for (double& v : r.s2) v *= f;
  r.log_likelihood *= f;
  r.weight = 1.0;
  return r;
}

void stepwise_update(SufficientStats& s, double rho, const SufficientStats& batch) {
  if (!(rho > 0.0 && rho <= 1.0)) throw Error("internal: a stepwise EM step size outside (0, 1]");
  SufficientStats b = per_unit_weight(batch);
  b.n_points = s.n_points + batch.n_points;
  if (rho == 1.0) {  // s may be the empty statistics of no step yet
    s = std::move(b);
    return;
  }
  if (b.type != s.type || b.K != s.K || b.D != s.D)
    throw Error("internal: stepwise statistics of different shapes");
  SufficientStats r = s.recentred(b.shift);
  const double keep = 1.0 - rho;
  for (std::size_t i = 0; i < r.nk.size(); ++i) r.nk[i] = keep * r.nk[i] + rho * b.nk[i];
  for (std::size_t i = 0; i < r.s1.size(); ++i) r.s1[i] = keep * r.s1[i] + rho * b.s1[i];
  for (std::size_t i = 0; i < r.s2.size(); ++i) r.s2[i] = keep * r.s2[i] + rho * b.s2[i];
  r.log_likelihood = keep * r.log_likelihood + rho * b.log_likelihood;
  r.weight = keep * r.weight + rho * b.weight;
  r.n_points = b.n_points;
  s = std::move(r);
}

}  // namespace cuem
