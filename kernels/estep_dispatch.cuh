#pragma once
// The E-step's dispatch: which kernels a chunk takes (estep_policy.cuh) and their launch
// shapes. Templated on S; estep_float.cu / estep_double.cu instantiate it behind the
// launch_* declarations of estep.hpp.
#include <algorithm>
#include <string>
#include <type_traits>

#include "cuda_check.cuh"
#include "device_memory.cuh"
#include "estep_fused.cuh"
#include "estep_policy.cuh"
#include "estep_posteriors.cuh"
#include "estep_stats.cuh"

namespace cuem::cuda {
namespace detail {

template <typename S>
void posteriors(const ComponentParams<S>& p, const S* X, std::size_t n, S* resp, std::size_t stride, S* log_prob,
                const CudaTuning& tuning, cudaStream_t stream) {
  if (n == 0) return;
  const auto blocks = checked_cast<unsigned>((n + kPosteriorThreads - 1) / kPosteriorThreads, "posterior blocks");
  const bool tiled_layout = p.type == CovarianceType::diag || p.type == CovarianceType::spherical;
  if (tiled_layout && p.K >= 8 && tuning.tiled) {
    // K <= 64: one tile holds every component and the kernel normalises; beyond, the
    // log joints go to normalize_kernel.
    const auto launch = [&](auto rk, auto out) {
      constexpr int RK = decltype(rk)::value;
      constexpr TileOut Out = decltype(out)::value;
      const dim3 grid(checked_cast<unsigned>((n + kTilePoints - 1) / kTilePoints, "posterior tiles"),
                      checked_cast<unsigned>((p.K + kTileComponents<RK> - 1) / kTileComponents<RK>, "component tiles"));
      if (grid.y > 65535u) throw DeviceError("too many components for the CUDA backend; use device 'cpu'");
      if (p.type == CovarianceType::diag)
        CUEM_LAUNCH((tiled_log_joint_kernel<S, CovarianceType::diag, RK, Out>), grid, kTileThreads, 0, stream)(
            p, X, n, resp, stride, log_prob);
      else
        CUEM_LAUNCH((tiled_log_joint_kernel<S, CovarianceType::spherical, RK, Out>), grid, kTileThreads, 0, stream)(
            p, X, n, resp, stride, log_prob);
      CUEM_CUDA_CHECK_LAUNCH();
    };
    using Normalised = std::integral_constant<TileOut, TileOut::responsibilities>;
    if (p.K <= 16) {
      launch(std::integral_constant<int, 1>{}, Normalised{});
    } else if (p.K <= 32) {
      launch(std::integral_constant<int, 2>{}, Normalised{});
    } else if (p.K <= 64) {
      launch(std::integral_constant<int, 4>{}, Normalised{});
    } else {
      launch(std::integral_constant<int, 4>{}, std::integral_constant<TileOut, TileOut::log_joint>{});
      CUEM_LAUNCH((normalize_kernel<S>), blocks, kPosteriorThreads, 0, stream)(p.K, n, resp, stride, log_prob);
      CUEM_CUDA_CHECK_LAUNCH();
    }
    return;
  }
  const bool full_layout = p.type == CovarianceType::full || p.type == CovarianceType::tied;
  if (full_layout && p.D >= kFullMinD && p.D <= kFullMaxD<S> && tuning.tiled) {
    const int TP = full_point_groups(p.D) * kFullRP;
    const dim3 grid(checked_cast<unsigned>((n + TP - 1) / TP, "posterior tiles"),
                    checked_cast<unsigned>((p.K + kFullComponents - 1) / kFullComponents, "component groups"));
    if (grid.y > 65535u) throw DeviceError("the CUDA backend handles at most 65535 x 8 components; use device 'cpu'");
    if (p.type == CovarianceType::full)
      CUEM_LAUNCH((tiled_full_log_joint_kernel<S, CovarianceType::full>), grid, kFullThreads, 0, stream)(
          p, X, n, resp, stride);
    else
      CUEM_LAUNCH((tiled_full_log_joint_kernel<S, CovarianceType::tied>), grid, kFullThreads, 0, stream)(
          p, X, n, resp, stride);
    CUEM_CUDA_CHECK_LAUNCH();
    CUEM_LAUNCH((normalize_kernel<S>), blocks, kPosteriorThreads, 0, stream)(p.K, n, resp, stride, log_prob);
    CUEM_CUDA_CHECK_LAUNCH();
    return;
  }
  switch (p.type) {
    case CovarianceType::full:
      CUEM_LAUNCH((posteriors_kernel<S, CovarianceType::full>), blocks, kPosteriorThreads, 0, stream)(
          p, X, n, resp, stride, log_prob);
      break;
    case CovarianceType::tied:
      CUEM_LAUNCH((posteriors_kernel<S, CovarianceType::tied>), blocks, kPosteriorThreads, 0, stream)(
          p, X, n, resp, stride, log_prob);
      break;
    case CovarianceType::diag:
      CUEM_LAUNCH((posteriors_kernel<S, CovarianceType::diag>), blocks, kPosteriorThreads, 0, stream)(
          p, X, n, resp, stride, log_prob);
      break;
    case CovarianceType::spherical:
      CUEM_LAUNCH((posteriors_kernel<S, CovarianceType::spherical>), blocks, kPosteriorThreads, 0, stream)(
          p, X, n, resp, stride, log_prob);
      break;
  }
  CUEM_CUDA_CHECK_LAUNCH();
}

// The fused E-step where it applies (one or two dimensions, K up to kFusedMaxK, the
// tiled kernels enabled); false where the caller must run posteriors and statistics.
template <typename S>
bool fused_estep(const ComponentParams<S>& p, const S* X, std::size_t n, double* partials, std::size_t L,
                 const CudaTuning& tuning, cudaStream_t stream) {
  if (!tuning.tiled || p.D < 1 || p.D > 2 || p.K < 1) return false;
  if (p.K > (p.D == 1 ? kFusedMaxK<S, 1> : kFusedMaxK<S, 2>)) return false;
  if (n == 0) return true;
  const auto blocks = checked_cast<unsigned>((n + kSegmentPoints - 1) / kSegmentPoints, "statistics segments");
  const auto launch = [&](auto type, auto dims) {
    constexpr CovarianceType C = decltype(type)::value;
    constexpr int D = decltype(dims)::value;
    CUEM_LAUNCH((fused_estep_kernel<S, C, D>), blocks, kFusedThreads, 0, stream)(p, X, n, partials, L);
  };
  const auto with_type = [&](auto dims) {
    switch (p.type) {
      case CovarianceType::full: launch(std::integral_constant<CovarianceType, CovarianceType::full>{}, dims); break;
      case CovarianceType::tied: launch(std::integral_constant<CovarianceType, CovarianceType::tied>{}, dims); break;
      case CovarianceType::diag: launch(std::integral_constant<CovarianceType, CovarianceType::diag>{}, dims); break;
      case CovarianceType::spherical:
        launch(std::integral_constant<CovarianceType, CovarianceType::spherical>{}, dims);
        break;
    }
  };
  if (p.D == 1)
    with_type(std::integral_constant<int, 1>{});
  else
    with_type(std::integral_constant<int, 2>{});
  CUEM_CUDA_CHECK_LAUNCH();
  return true;
}

// Statistics of every segment of the chunk; norm: null where resp holds responsibilities,
// else the normalisation buffer of a deferred E-step (resp then holds log joints).
template <typename S>
void segment_stats(int K, int D, const S* X, std::size_t n, const S* shift, const S* resp, const S* norm,
                   std::size_t stride, const S* log_prob, const unsigned* entries, int M, double* partials,
                   std::size_t L, const CudaTuning& tuning, cudaStream_t stream) {
  if (n == 0) return;
  if (D > max_stats_dim(sizeof(S)))
    throw DeviceError("D = " + std::to_string(D) + " is more dimensions than the CUDA statistics kernel stages (" +
                      std::to_string(max_stats_dim(sizeof(S))) + "); use device 'cpu'");
  const std::size_t n_segments = (n + kSegmentPoints - 1) / kSegmentPoints;
  const StatsPlan plan = plan_stats<S>(K, D, M, tuning);
  if (norm && plan.kernel != StatsKernel::tiled_diag && plan.kernel != StatsKernel::diag_segment)
    throw Error("internal: deferred normalisation for a statistics kernel that cannot apply it");
  const auto segments = checked_cast<unsigned>(n_segments, "statistics segments");
  switch (plan.kernel) {
    case StatsKernel::tiled_diag: {
      const auto launch = [&](auto rk, auto rd) {
        constexpr int RK = decltype(rk)::value;
        constexpr int RD = decltype(rd)::value;
        const dim3 grid(segments,
                        checked_cast<unsigned>((K + kStatTileComponents<RK> - 1) / kStatTileComponents<RK>,
                                               "component tiles"),
                        static_cast<unsigned>((D + kStatTileDimsOf<RD> - 1) / kStatTileDimsOf<RD>));
        if (grid.y > 65535u) throw DeviceError("too many components for the CUDA backend; use device 'cpu'");
        CUEM_LAUNCH((tiled_diag_stats_kernel<S, RK, RD>), grid, kStatTileThreads, 0, stream)(
            X, n, D, K, shift, resp, norm, stride, partials, L);
      };
      const auto with_dims = [&](auto rk) {
        if (narrow_stat_tiles(D))
          launch(rk, std::integral_constant<int, 2>{});
        else
          launch(rk, std::integral_constant<int, 4>{});
      };
      if (diag_stats_rk(K, tuning) == 2)
        with_dims(std::integral_constant<int, 2>{});
      else
        with_dims(std::integral_constant<int, 4>{});
      break;
    }
    case StatsKernel::diag_segment: {
      const dim3 grid(segments, checked_cast<unsigned>((K + plan.G - 1) / plan.G, "component groups"));
      CUEM_LAUNCH((diag_segment_stats_kernel<S>), grid, kDiagThreads, plan.smem, stream)(
          X, n, D, K, shift, resp, norm, stride, plan.G, plan.tile, partials, L);
      break;
    }
    case StatsKernel::multi_block: {
      const dim3 grid(segments, checked_cast<unsigned>((K + plan.G - 1) / plan.G, "component groups"));
      if (grid.y > 65535u) throw DeviceError("too many components for the CUDA backend; use device 'cpu'");
      CUEM_LAUNCH((multi_block_stats_kernel<S>), grid, kBlockStatsThreads, plan.smem, stream)(
          X, n, D, K, shift, resp, stride, plan.tile, partials, L);
      break;
    }
    case StatsKernel::generic: {
      const int lanes = std::min(M, kStatsThreads);
      const int groups = kStatsThreads / lanes;
      const dim3 grid(segments, checked_cast<unsigned>(K, "components"));
      if (grid.y > 65535u) throw DeviceError("the CUDA backend handles at most 65535 components; use device 'cpu'");
      CUEM_LAUNCH((segment_stats_kernel<S>), grid, kStatsThreads, plan.smem, stream)(
          X, n, D, shift, resp, stride, entries, M, lanes, groups, plan.tile, partials, L);
      break;
    }
  }
  CUEM_CUDA_CHECK_LAUNCH();
  // Each segment's log-likelihood after the statistics.
  CUEM_LAUNCH((segment_log_likelihood_kernel<S>), segments, kSumThreads, 0, stream)(
      log_prob, n, partials, L, static_cast<std::size_t>(K) * M);
  CUEM_CUDA_CHECK_LAUNCH();
}

// The two-kernel E-step of a chunk: posteriors, then the segments' statistics about
// p.means. Where defers_normalization holds and norm is given (deferred_norm_rows x
// stride values), the tiles' log joints go straight to the statistics kernel, which
// normalises them as it stages them (combine_tiles_kernel).
template <typename S>
void estep(const ComponentParams<S>& p, const S* X, std::size_t n, S* resp, std::size_t stride, S* log_prob,
           S* norm, const unsigned* entries, int M, double* partials, std::size_t L, const CudaTuning& tuning,
           cudaStream_t stream) {
  if (n == 0) return;
  if (!norm || !defers_normalization<S>(p.type, p.K, p.D, tuning)) {
    posteriors(p, X, n, resp, stride, log_prob, tuning, stream);
    segment_stats(p.K, p.D, X, n, p.means, resp, static_cast<const S*>(nullptr), stride, log_prob, entries, M,
                  partials, L, tuning, stream);
    return;
  }
  constexpr int RK = 4;
  const unsigned T = checked_cast<unsigned>((p.K + kTileComponents<RK> - 1) / kTileComponents<RK>, "component tiles");
  if (T > 65535u) throw DeviceError("too many components for the CUDA backend; use device 'cpu'");
  const dim3 grid(checked_cast<unsigned>((n + kTilePoints - 1) / kTilePoints, "posterior tiles"), T);
  if (p.type == CovarianceType::diag)
    CUEM_LAUNCH((tiled_log_joint_kernel<S, CovarianceType::diag, RK, TileOut::deferred>), grid, kTileThreads, 0,
                stream)(p, X, n, resp, stride, norm);
  else
    CUEM_LAUNCH((tiled_log_joint_kernel<S, CovarianceType::spherical, RK, TileOut::deferred>), grid, kTileThreads, 0,
                stream)(p, X, n, resp, stride, norm);
  CUEM_CUDA_CHECK_LAUNCH();
  const auto blocks = checked_cast<unsigned>((n + kPosteriorThreads - 1) / kPosteriorThreads, "posterior blocks");
  CUEM_LAUNCH((combine_tiles_kernel<S>), blocks, kPosteriorThreads, 0, stream)(static_cast<int>(T), n, norm, stride,
                                                                               log_prob);
  CUEM_CUDA_CHECK_LAUNCH();
  segment_stats(p.K, p.D, X, n, p.means, resp, norm, stride, log_prob, entries, M, partials, L, tuning, stream);
}

}  // namespace detail
}  // namespace cuem::cuda
