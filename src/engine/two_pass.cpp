// The two-pass statistics of a responsibility source (primitives.hpp), written once for
// every backend: the means from a first pass, then the statistics about them, so that the
// M-step works on centred sums whatever the data's offset.
#include <cstddef>
#include <vector>

#include "engine/primitives.hpp"

namespace cuem {

SufficientStats two_pass_stats(Primitives& prims, const Responsibilities& g, CovarianceType type, int K) {
  const std::size_t D = prims.cols();
  const SufficientStats first =
      prims.weighted_stats(g, prims.first_pass_layout(type), K, prims.first_pass_shift(g, K));
  std::vector<double> means(static_cast<std::size_t>(K) * D, 0.0);
  for (std::size_t k = 0; k < static_cast<std::size_t>(K); ++k) {
    if (!(first.nk[k] > 0.0)) continue;  // no weight: mean 0
    for (std::size_t d = 0; d < D; ++d) {
      const std::size_t i = k * D + d;
      const double offset = first.s1[i] / first.nk[k];
      // About zero the mean is the plain quotient (0 + q would turn a -0.0 into +0.0).
      means[i] = first.shift[i] == 0.0 ? offset : first.shift[i] + offset;
    }
  }
  SufficientStats out = prims.weighted_stats(g, type, K, means);
  out.log_likelihood = 0.0;
  return out;
}

}  // namespace cuem
