#pragma once
// A non-owning view of an N x D row-major matrix, float64 or float32, whose rows start
// row_stride elements apart (a column slice or every other row of a larger matrix is
// viewed in place), in host memory or in a CUDA device's. float32 data is read in place
// (never copied) and every computation on it is still done in float64.
#include <cstddef>

namespace cuem {

/// Where a view's values are.
enum class Memory { host, device };

struct DataView {
  const double* data = nullptr;     ///< float64 rows; null when the data is float32
  const float* data_f32 = nullptr;  ///< float32 rows; null when the data is float64
  std::size_t n_rows = 0;           ///< N, the number of points
  std::size_t n_cols = 0;           ///< D, the number of features
  std::size_t row_stride = 0;       ///< elements from one row's start to the next's, >= n_cols
  Memory memory = Memory::host;     ///< device: only the CUDA backend on that device reads it
  int device_ordinal = 0;           ///< the CUDA device whose memory holds the values

  DataView() = default;
  DataView(const double* d, std::size_t rows, std::size_t cols) : DataView(d, rows, cols, cols) {}
  DataView(const float* d, std::size_t rows, std::size_t cols) : DataView(d, rows, cols, cols) {}
  DataView(const double* d, std::size_t rows, std::size_t cols, std::size_t stride)
      : data(d), n_rows(rows), n_cols(cols), row_stride(stride) {}
  DataView(const float* d, std::size_t rows, std::size_t cols, std::size_t stride)
      : data_f32(d), n_rows(rows), n_cols(cols), row_stride(stride) {}

  bool is_float32() const noexcept { return data_f32 != nullptr; }
  bool on_device() const noexcept { return memory == Memory::device; }
  bool empty_pointer() const noexcept { return data == nullptr && data_f32 == nullptr; }
  /// Row i of float64 host data (use value() or a typed visit for data of either type).
  const double* row(std::size_t i) const noexcept { return data + i * row_stride; }
  /// Element (i, d) of host data as a double, whatever the storage type.
  double value(std::size_t i, std::size_t d) const noexcept {
    return data_f32 ? static_cast<double>(data_f32[i * row_stride + d]) : data[i * row_stride + d];
  }
  /// Whether the rows follow one another with no gap (one block of N x D values).
  bool contiguous() const noexcept { return row_stride == n_cols || n_rows <= 1; }
};

/// `v` as a view of CUDA device memory on device `ordinal` (cudaMalloc'ed, or a torch.cuda
/// or CuPy tensor's): the CUDA backend converts it on the device and never uploads it; the
/// host reads back only the rows k-means seeds with and, when a cluster empties, relocates.
inline DataView device_view(DataView v, int ordinal) noexcept {
  v.memory = Memory::device;
  v.device_ordinal = ordinal;
  return v;
}

/// Per-point weights (scikit-learn's sample_weight): n non-negative float64 values, one
/// per row of the data they go with; a null view means every weight is 1.
struct WeightView {
  const double* data = nullptr;
  std::size_t n = 0;

  WeightView() = default;
  WeightView(const double* w, std::size_t count) : data(w), n(count) {}
  bool empty() const noexcept { return data == nullptr; }
  /// Weight of row i (1 without weights).
  double at(std::size_t i) const noexcept { return data ? data[i] : 1.0; }
};

}  // namespace cuem
