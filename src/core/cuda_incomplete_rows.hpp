#pragma once
// The CUDA E-step over the incomplete rows of a MissingLayout (engine/incomplete_rows.hpp)
// as the host code sees it: a factory behind plain C++ declarations (defined in
// kernels/cuda_incomplete_rows.cu; present only in builds with CUDA).
#include <cstddef>
#include <memory>

#include "engine/incomplete_rows.hpp"
#include "engine/missing_layout.hpp"
#include "engine/primitives.hpp"

namespace cuem {

/// How many patterns one batch's tables hold. Per iteration the host computes each
/// (pattern, component)'s conditional factors and uploads them batch by batch (two
/// batches' tables on the device and in pinned host memory: 2 x 16 MiB in float32 and
/// 2 x 32 MiB in float64 at the defaults, plus the constants), so they stay within these
/// bounds whatever the number of patterns (one per row, at worst). A single pattern
/// whose factors exceed `factor_values` is a batch of its own, and the tables grow to
/// hold it.
struct MissingBatchLimits {
  std::size_t factor_values = std::size_t{1} << 22;  ///< G values (|m| x |o| a component) a batch
  std::size_t patterns = std::size_t{1} << 14;       ///< patterns a batch
  /// Segments (blocks) a launch, at most; 0: as many as 64 MiB of partials allow. The
  /// results do not depend on it: it groups the same blocks into launches.
  std::size_t segments_per_launch = 0;
};

/// The incomplete rows of `layout` (which must outlive the result) on the CUDA device of
/// `request` (cuda:N, or 'auto' as cuda:0), in its precision, on `context` (its device
/// must be the request's) or, without one, on a context of its own. The rows are
/// uploaded once, here. Throws DeviceError when the device cannot be used.
std::unique_ptr<engine::IncompleteRows> make_cuda_incomplete_rows(const engine::MissingLayout& layout,
                                                                  const PrimitivesRequest& request,
                                                                  std::shared_ptr<cuda::DeviceContext> context,
                                                                  const MissingBatchLimits& limits = {});

}  // namespace cuem
