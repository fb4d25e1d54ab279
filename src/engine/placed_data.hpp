#pragma once
// The inside of the long-lived handles of include/cuem/resources.hpp.
#include <omp.h>

#include <memory>
#include <string>

#include "cuem/resources.hpp"
#include "engine/primitives.hpp"
#include "init/kmeans.hpp"

namespace cuem {

struct Resources::Impl {
  ResourceOptions options;
  /// A CUDA device's streams and memory pool, made when the first PlacedData on this
  /// Resources makes CUDA primitives and shared by all of them (null on the CPU).
  std::shared_ptr<cuda::DeviceContext> cuda_context;
};

struct PlacedData::Impl {
  Resources* resources = nullptr;
  DataView X;
  WeightView w;
  std::string notice;
  std::unique_ptr<Primitives> placed;
  KMeansShared kmeans;
  /// X holds NaN entries, allowed by MissingPolicy::marginalize at construction: fits and
  /// evaluations then take the missing-data paths, which place their own rearranged copy.
  bool has_missing = false;  ///< what k-means learns once about the data (every fit's restarts share it)

  /// Placed data for X and w that the caller has validated (validate_data,
  /// validate_weights): each check is one pass over the data, made once per call.
  static PlacedData unchecked(Resources& resources, DataView X, WeightView w);

  /// The primitives over the placed data, made at the first use, so that a fit reports
  /// its option errors before it asks for a device.
  Primitives& primitives();
};

namespace engine {

/// Sets OpenMP's thread count for this thread's parallel regions and restores it.
class ThreadCountScope {
 public:
  explicit ThreadCountScope(int n) : previous_(omp_get_max_threads()), active_(n > 0) {
    if (active_) omp_set_num_threads(n);
  }
  ~ThreadCountScope() {
    if (active_) omp_set_num_threads(previous_);
  }
  ThreadCountScope(const ThreadCountScope&) = delete;
  ThreadCountScope& operator=(const ThreadCountScope&) = delete;

 private:
  int previous_;
  bool active_;
};

}  // namespace engine
}  // namespace cuem
