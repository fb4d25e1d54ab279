// The Bayesian mixture's plain functions: the weight prior's names and the posterior's
// expected weights. Kept apart from the model (src/engine/vb_gmm_model.cpp) so that the
// model-file reader, which the fuzz targets build alone, needs nothing of the engine.
#include <string>
#include <vector>

#include "cuem/bayesian.hpp"
#include "cuem/errors.hpp"

namespace cuem {

const char* to_string(WeightPrior prior) noexcept {
  return prior == WeightPrior::dirichlet_process ? "dirichlet_process" : "dirichlet_distribution";
}

WeightPrior parse_weight_prior(const std::string& name) {
  if (name == "dirichlet_process") return WeightPrior::dirichlet_process;
  if (name == "dirichlet_distribution") return WeightPrior::dirichlet_distribution;
  throw InvalidArgument("weight_concentration_prior_type must be 'dirichlet_process' or 'dirichlet_distribution', "
                        "got '" + name + "'");
}

// scikit-learn's _set_parameters: the expected stick lengths (normalised) or the
// Dirichlet's mean.
std::vector<double> BayesianPosterior::weights() const {
  const std::size_t K = static_cast<std::size_t>(n_components);
  std::vector<double> w(K);
  double total = 0.0;
  if (prior.type == WeightPrior::dirichlet_process) {
    double stick = 1.0;  // prod_{j<k} b_j / (a_j + b_j)
    for (std::size_t k = 0; k < K; ++k) {
      const double a = weight_concentration[k], b = weight_concentration[K + k];
      w[k] = a / (a + b) * stick;
      stick *= b / (a + b);
    }
  } else {
    w = weight_concentration;
  }
  for (double v : w) total += v;
  for (double& v : w) v /= total;
  return w;
}

}  // namespace cuem
