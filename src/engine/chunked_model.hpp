#pragma once
// A model over data read in chunks of rows, for data larger than memory (docs/ONLINE.md,
// "Out of core"): every E-step runs the chunks' models in order and sums their statistics
// in that order, telling the caller after each chunk that its rows are done (so that a
// file mapping can drop the pages behind the reader); the start is the first chunk's
// (k-means on its rows), so that initialisation reads one chunk, not the whole data.
// Any engine model whose Stats merge (model.hpp) can be chunked.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "cuem/errors.hpp"
#include "engine/model.hpp"

namespace cuem::engine {

template <class Model>
class ChunkedModel {
 public:
  using Params = typename Model::Params;
  using Stats = typename Model::Stats;

  /// `whole` runs the M-step; chunks[c] is the model over chunk c's rows; after_chunk(c),
  /// when given, is called after chunk c's E-step. All must outlive this.
  /// `start`, when given, initialises in place of chunks[0] (whose model may then be one
  /// that runs E-steps only: a row range of data placed once on a device).
  using Start = std::function<Params(std::uint64_t, std::vector<std::string>*)>;
  ChunkedModel(const Model& whole, std::vector<Model*> chunks, std::function<void(std::size_t)> after_chunk,
               Start start = {})
      : whole_(whole), chunks_(std::move(chunks)), after_chunk_(std::move(after_chunk)), start_(std::move(start)) {
    if (chunks_.empty()) throw Error("internal: a chunked model without chunks");
  }

  Params initialize(std::uint64_t seed, std::vector<std::string>* notices) {
    Params p = start_ ? start_(seed, notices) : chunks_.front()->initialize(seed, notices);
    if (after_chunk_) after_chunk_(0);
    return p;
  }
  Stats e_step(const Params& params) {
    Stats total = chunks_.front()->e_step(params);
    if (after_chunk_) after_chunk_(0);
    for (std::size_t c = 1; c < chunks_.size(); ++c) {
      total.merge(chunks_[c]->e_step(params));
      if (after_chunk_) after_chunk_(c);
    }
    return total;
  }
  Params m_step(const Stats& s) const { return whole_.m_step(s); }
  double unit_roundoff() const { return whole_.unit_roundoff(); }
  const Model& whole() const noexcept { return whole_; }

 private:
  const Model& whole_;
  std::vector<Model*> chunks_;
  std::function<void(std::size_t)> after_chunk_;
  Start start_;
};

/// The whole model's parameter map (squarem_driver.hpp), where it has one: SQUAREM runs
/// on chunked data as on placed data.
template <class M, class P>
auto to_unconstrained(const ChunkedModel<M>& m, const P& params) -> decltype(to_unconstrained(m.whole(), params)) {
  return to_unconstrained(m.whole(), params);
}
template <class M, class V, class P>
auto from_unconstrained(const ChunkedModel<M>& m, const V& v, const P& shape)
    -> decltype(from_unconstrained(m.whole(), v, shape)) {
  return from_unconstrained(m.whole(), v, shape);
}

}  // namespace cuem::engine
