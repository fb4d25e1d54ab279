#pragma once
// The Gaussian mixture as fit() builds it, on the float64 CPU, over a data set held by the
// fixture, and models over blocks of consecutive rows: what the incremental and SQUAREM
// driver tests run the drivers on.
#include <memory>
#include <utility>
#include <vector>

#include "cpu/cpu_primitives.hpp"
#include "cuem/fit.hpp"
#include "cuem/resources.hpp"
#include "engine/batch_driver.hpp"
#include "engine/gmm_model.hpp"
#include "engine/placed_data.hpp"
#include "test_util.hpp"

namespace cuem_test {

struct GmmBlocks {
  Dataset ds;
  cuem::FitOptions o;
  cuem::Resources resources;
  cuem::PlacedData data;
  std::vector<std::unique_ptr<cuem::CpuPrimitives>> block_prims;
  std::vector<std::unique_ptr<cuem::engine::GaussianMixtureEM>> block_models;

  GmmBlocks(Dataset d, const cuem::FitOptions& opts)
      : ds(std::move(d)), o(opts), resources({cuem::parse_device("cpu"), cuem::Precision::float64, 0, 0, {}}),
        data(resources, ds.view()) {
    data.impl().primitives().reserve(o.covariance_type, o.n_components);
  }
  cuem::engine::GaussianMixtureEM model() {
    cuem::PlacedData::Impl& placed = data.impl();
    return cuem::engine::GaussianMixtureEM(placed.primitives(), placed.X, o, placed.kmeans);
  }
  std::vector<cuem::engine::GaussianMixtureEM*> blocks(std::size_t B) {
    std::vector<cuem::engine::GaussianMixtureEM*> out;
    for (std::size_t b = 0; b < B; ++b) {
      const std::size_t begin = b * ds.n / B, end = (b + 1) * ds.n / B;
      const cuem::DataView X(ds.x.data() + begin * ds.d, end - begin, static_cast<std::size_t>(ds.d));
      block_prims.push_back(std::make_unique<cuem::CpuPrimitives>(X, cuem::WeightView{}));
      block_models.push_back(
          std::make_unique<cuem::engine::GaussianMixtureEM>(*block_prims.back(), X, o, data.impl().kmeans));
      out.push_back(block_models.back().get());
    }
    return out;
  }
  cuem::engine::BatchOptions batch(double tol, int max_iter) const { return {o.n_init, max_iter, tol, o.seed, {}}; }
};

}  // namespace cuem_test
