#pragma once
// Launchers of the device-view kernels (kernels/device_view.cu): data that already live
// on the device (a DataView in device memory, float32 or float64, rows row_stride apart)
// are centred and converted there, into the backend's working precision, with no trip
// through the host.
#include <cuda_runtime_api.h>

#include <cstddef>

namespace cuem::cuda {

/// Rows per block of launch_column_partials (the blocks' sums are combined on the host
/// in block order).
constexpr std::size_t kColumnPartialRows = 4096;

/// partials[b * D + d] = the float64 sum, in row order, of column d over rows
/// [b * kColumnPartialRows, (b + 1) * kColumnPartialRows) of the n rows of src, for
/// b < ceil(n / kColumnPartialRows).
void launch_column_partials(const float* src, std::size_t n, std::size_t D, std::size_t stride, double* partials,
                            cudaStream_t stream);
void launch_column_partials(const double* src, std::size_t n, std::size_t D, std::size_t stride, double* partials,
                            cudaStream_t stream);

/// dst row i = S(double(src row i) - origin), packed (D values a row), for i < n; the
/// device counterpart of convert_rows (host_threads.hpp), value for value.
void launch_convert_rows(const float* src, std::size_t n, std::size_t D, std::size_t stride, const double* origin,
                         float* dst, cudaStream_t stream);
void launch_convert_rows(const float* src, std::size_t n, std::size_t D, std::size_t stride, const double* origin,
                         double* dst, cudaStream_t stream);
void launch_convert_rows(const double* src, std::size_t n, std::size_t D, std::size_t stride, const double* origin,
                         float* dst, cudaStream_t stream);
void launch_convert_rows(const double* src, std::size_t n, std::size_t D, std::size_t stride, const double* origin,
                         double* dst, cudaStream_t stream);

}  // namespace cuem::cuda
