#pragma once
// A model over data spread on MPI ranks whose E-step is more than the primitives' sums (an
// HMM's chain over whole sequences): each rank runs the model's own E-step on each of its
// segments, on that segment's backend, and the segments' statistics are summed in global
// segment order over the ranks (DistributedPrimitives::reduced_sum). The segments are fixed
// by the data, not by R, so every rank gets the same statistics for any number of ranks.
// Initialisation and M-step are the whole model's, over the distributed primitives, run
// alike on every rank (docs/DISTRIBUTED.md).
//
// Besides an engine model (src/engine/model.hpp), Model provides zero_stats(params), the
// statistics of no data, and its Stats additive_parts(stats) and
// set_additive_parts(stats&, values) (found by argument-dependent lookup).
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "cuem/errors.hpp"
#include "mpi/distributed_primitives.hpp"

namespace cuem::mpi {

template <class Model>
class DistributedModel {
 public:
  using Params = typename Model::Params;
  using Stats = typename Model::Stats;

  /// `whole` is over `prims`; segments[i] over prims.local_segment(i), for every local
  /// segment. All must outlive this.
  DistributedModel(Model& whole, std::vector<Model*> segments, DistributedPrimitives& prims)
      : whole_(whole), segments_(std::move(segments)), prims_(prims) {
    if (segments_.size() != prims_.local_segments()) throw Error("internal: a model per local segment");
  }

  Params initialize(std::uint64_t seed, std::vector<std::string>* notices) { return whole_.initialize(seed, notices); }
  Stats e_step(const Params& params) {
    Stats total = whole_.zero_stats(params);
    const std::size_t length = additive_parts(total).size();
    set_additive_parts(total, prims_.reduced_sum(
                                  [&] {
                                    std::vector<std::vector<double>> parts;
                                    for (Model* m : segments_) parts.push_back(additive_parts(m->e_step(params)));
                                    return parts;
                                  },
                                  length));
    return total;
  }
  Params m_step(const Stats& s) { return whole_.m_step(s); }
  double unit_roundoff() const { return whole_.unit_roundoff(); }
  const Model& whole() const noexcept { return whole_; }

 private:
  Model& whole_;
  std::vector<Model*> segments_;
  DistributedPrimitives& prims_;
};

/// The whole model's parameter map (squarem_driver.hpp), where it has one.
template <class M, class P>
auto to_unconstrained(const DistributedModel<M>& m, const P& params) -> decltype(to_unconstrained(m.whole(), params)) {
  return to_unconstrained(m.whole(), params);
}
template <class M, class V, class P>
auto from_unconstrained(const DistributedModel<M>& m, const V& v, const P& shape)
    -> decltype(from_unconstrained(m.whole(), v, shape)) {
  return from_unconstrained(m.whole(), v, shape);
}

}  // namespace cuem::mpi
