#pragma once
// Drawing points from a mixture one row at a time: the same draws as sample() (component
// counts from the weights, rows grouped by component, x = mu + L z with counter-based z),
// so a caller can produce any row of sample()'s output without holding the others. This
// is what lets `cuem generate` stream files larger than memory.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "cuem/model.hpp"

namespace cuem {

class MixtureSampler {
 public:
  /// Checks the model and counts each component's rows (one pass of n uniform draws);
  /// InvalidArgument for n == 0 or a covariance that is not positive definite.
  MixtureSampler(const Model& model, std::size_t n, std::uint64_t seed);

  std::size_t size() const noexcept { return n_; }
  int n_features() const noexcept { return model_.n_features; }

  /// The component of grouped row `row` (rows [start_k, start_k + count_k) are component k).
  int component_of(std::size_t row) const;
  /// Writes grouped row `row` of component `k` (component_of(row)) to x[0..D); `z` is D
  /// values of scratch (one per thread: draw is otherwise const and thread-safe).
  void draw(std::size_t row, int k, double* x, double* z) const;

 private:
  const Model& model_;
  std::size_t n_;
  std::uint64_t seed_;
  std::vector<std::size_t> ends_;  // ends_[k]: one past component k's last grouped row
  std::vector<double> factors_;    // lower Cholesky factors (full, tied)
};

}  // namespace cuem
