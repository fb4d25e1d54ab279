// Uses an installed cuem through its public header only: fits a two-component mixture
// to two small, well separated clusters and checks what comes back.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <vector>

#include "cuem/cuem.hpp"

namespace {

int failures = 0;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "FAILED: %s\n", what);
    ++failures;
  }
}

}  // namespace

int main() {
  try {
    // 2-D points: 12 around (0, 0) and 12 around (10, 10), on a fixed jitter pattern.
    const double jitter[12][2] = {{0.3, -0.2}, {-0.4, 0.1}, {0.1, 0.5},  {-0.2, -0.4},
                                  {0.5, 0.2},  {-0.1, -0.1}, {0.2, -0.5}, {-0.5, 0.3},
                                  {0.4, 0.4},  {-0.3, -0.3}, {0.0, 0.2},  {0.1, -0.2}};
    std::vector<double> x;
    for (const double centre : {0.0, 10.0}) {
      for (const auto& j : jitter) {
        x.push_back(centre + j[0]);
        x.push_back(centre + j[1]);
      }
    }
    const cuem::DataView data(x.data(), x.size() / 2, 2);

    cuem::FitOptions options;
    options.n_components = 2;
    options.covariance_type = cuem::CovarianceType::full;
    options.seed = 0;
    const cuem::FitResult result = cuem::fit(data, options);
    const cuem::Model& model = result.model;

    std::printf("cuem %s (CUDA backend: %s): converged %d after %d iterations, "
                "lower bound %.6f\n",
                cuem::version(), cuem::built_with_cuda() ? "yes" : "no", result.converged ? 1 : 0,
                result.n_iter, result.lower_bound);
    check(std::strcmp(cuem::version(), CUEM_VERSION_STRING) == 0, "version() matches the header");
    check(result.converged, "the fit converged");
    check(model.n_components == 2 && model.n_features == 2, "model shape 2 x 2");
    check(model.weights.size() == 2 && model.means.size() == 4 && model.covariances.size() == 8,
          "array sizes");
    if (failures != 0) return 1;

    // Components in either order: the one nearer the origin first.
    const int a = model.means[0] < model.means[2] ? 0 : 1;
    const int b = 1 - a;
    for (int k : {a, b}) {
      std::printf("  component %d: weight %.4f mean (%.4f, %.4f)\n", k, model.weights[k],
                  model.means[2 * k], model.means[2 * k + 1]);
    }
    check(std::fabs(model.weights[a] - 0.5) < 1e-6 && std::fabs(model.weights[b] - 0.5) < 1e-6,
          "equal weights");
    check(std::fabs(model.means[2 * a]) < 0.2 && std::fabs(model.means[2 * a + 1]) < 0.2,
          "first mean near (0, 0)");
    check(std::fabs(model.means[2 * b] - 10) < 0.2 && std::fabs(model.means[2 * b + 1] - 10) < 0.2,
          "second mean near (10, 10)");
    check(std::isfinite(result.lower_bound), "finite lower bound");

    const std::vector<int> labels = cuem::predict(model, data);
    check(labels.size() == data.n_rows, "one label per point");
    bool labels_ok = labels.size() == data.n_rows;
    for (std::size_t i = 0; labels_ok && i < labels.size(); ++i) {
      labels_ok = labels[i] == (i < 12 ? a : b);
    }
    check(labels_ok, "every point labelled with its own cluster");

    const std::vector<double> proba = cuem::predict_proba(model, data);
    bool rows_sum_to_one = proba.size() == 2 * data.n_rows;
    for (std::size_t i = 0; rows_sum_to_one && i < data.n_rows; ++i) {
      rows_sum_to_one = std::fabs(proba[2 * i] + proba[2 * i + 1] - 1.0) < 1e-12;
    }
    check(rows_sum_to_one, "posterior rows sum to 1");
    // lower_bound is of the parameters before the last M-step; EM only raises it.
    check(std::fabs(cuem::score(model, data) - result.lower_bound) < 1e-2,
          "score() close to the final lower bound");

    // An error a user can cause comes back as a typed exception.
    bool threw = false;
    try {
      cuem::FitOptions bad = options;
      bad.n_components = 100;  // K > N
      (void)cuem::fit(data, bad);
    } catch (const cuem::Error&) {
      threw = true;
    }
    check(threw, "K > N throws a cuem::Error");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "FAILED: unexpected exception: %s\n", e.what());
    return 1;
  }
  if (failures != 0) return 1;
  std::printf("consumer: all checks passed\n");
  return 0;
}
