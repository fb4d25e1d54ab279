#pragma once
// Typed access to a DataView's rows: hot loops are written once as a generic lambda and
// instantiated for float64 and float32 storage, so float32 data is never copied.
#include "cuem/data_view.hpp"

namespace cuem {

/// Calls f(base) with base the typed pointer to the first row (const double* or
/// const float*); row i starts at base + i * X.row_stride.
template <typename F>
decltype(auto) visit_rows(const DataView& X, F&& f) {
  if (X.data_f32) return f(X.data_f32);
  return f(X.data);
}

}  // namespace cuem
