#pragma once
// The incomplete rows' E-step (engine/incomplete_rows.hpp) on the device that a fit's
// primitives run on, chosen in one place that knows whether CUDA is built in (the host
// code that calls it does not).
#include <memory>

#include "engine/incomplete_rows.hpp"
#include "engine/missing_layout.hpp"
#include "engine/primitives.hpp"

namespace cuem {

/// CUDA (src/core/cuda_incomplete_rows.hpp) where `on` is CUDA primitives, in the
/// request's precision, on `*context` (a Resources' device context; made there if it
/// is empty; null: a context of its own); the float64 CPU implementation otherwise.
/// `layout` must outlive the result.
std::unique_ptr<engine::IncompleteRows> make_incomplete_rows(const engine::MissingLayout& layout,
                                                             const PrimitivesRequest& request, const Primitives& on,
                                                             std::shared_ptr<cuda::DeviceContext>* context = nullptr);

}  // namespace cuem
