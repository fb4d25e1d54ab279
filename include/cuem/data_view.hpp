#pragma once
// A non-owning view of an N x D row-major float64 matrix in host memory.
#include <cstddef>

namespace cuem {

struct DataView {
  const double* data = nullptr;
  std::size_t n_rows = 0;  ///< N, the number of points
  std::size_t n_cols = 0;  ///< D, the number of features

  DataView() = default;
  DataView(const double* d, std::size_t rows, std::size_t cols) : data(d), n_rows(rows), n_cols(cols) {}

  const double* row(std::size_t i) const noexcept { return data + i * n_cols; }
};

}  // namespace cuem
