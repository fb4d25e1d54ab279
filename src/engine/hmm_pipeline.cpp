#include "engine/hmm_pipeline.hpp"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <memory>
#include <thread>

#include "core/prepared_params.hpp"
#include "engine/large_arrays.hpp"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace cuem::engine {
namespace {

// Frames of emissions computed at a time (from either end), and frames of each recursion
// between two looks at the other thread's progress. Neither changes a result.
constexpr std::size_t kEmissionChunk = 1024;
constexpr std::size_t kStepChunk = 256;

// Waits for ready() or stop, spinning briefly, then yielding the core: on a machine with
// more threads than cores the thread waited for may need this one's.
template <class Ready>
void wait_for(Ready ready, const std::atomic<bool>& stop) {
  for (int spins = 0; !ready() && !stop.load(std::memory_order_acquire); ++spins) {
#if defined(__x86_64__)
    if (spins < 64) {
      _mm_pause();
      continue;
    }
#endif
    std::this_thread::yield();
  }
}

// One sequence's pipeline: frames [lo, lo + T) of the data, b and s its emission arrays.
class SequencePipeline {
 public:
  SequencePipeline(Primitives& prims, const PreparedParams& prepared, double log_K, const ChainModel& m,
                   std::size_t lo, std::size_t T, double* b, double* s, ChainWork& w)
      : prims_(prims), prepared_(prepared), log_K_(log_K), m_(m), lo_(lo), T_(T), uK_(static_cast<std::size_t>(m.K)),
        b_(b), s_(s), w_(w), B_(chain_block_frames(T)), n_blocks_((T + B_ - 1) / B_),
        n_chunks_((T + kEmissionChunk - 1) / kEmissionChunk), claimed_(new std::atomic<bool>[n_blocks_]),
        chunk_done_(new std::atomic<bool>[n_chunks_]), bwd_(T) {
    // a, c and r hold T frames already (pipelined_chain_pass sized them).
    w.xi_blocks.assign(n_blocks_ * uK_ * uK_, 0.0);
    block_ll_.assign(n_blocks_, 0.0);
    for (std::size_t q = 0; q < n_blocks_; ++q) claimed_[q].store(false, std::memory_order_relaxed);
    for (std::size_t q = 0; q < n_chunks_; ++q) chunk_done_[q].store(false, std::memory_order_relaxed);
  }

  std::size_t n_chunks() const noexcept { return n_chunks_; }
  std::size_t chunks_by_recursions() const noexcept { return chunks_by_recursions_; }

  // The sequence's log-likelihood; xi_sum (K x K) has its transition sums added.
  double run(bool two_threads, double* xi_sum) {
    if (two_threads) {
#pragma omp parallel num_threads(2)
      {
        // The emissions' own parallel loop runs on this thread alone where nesting is on.
        omp_set_num_threads(1);
        if (omp_get_num_threads() < 2) {
          if (omp_get_thread_num() == 0) run_serially();
        } else if (omp_get_thread_num() == 0) {
          guarded([&] { recursions(); });
          guarded([&] { combine_ready(); });
        } else {
          guarded([&] { emissions(); });
          guarded([&] { combine_ready(); });
        }
      }
    } else {
      run_serially();
    }
    if (error_) std::rethrow_exception(error_);
    if (bad_ < T_) throw_impossible_frame(bad_);
    const std::size_t KK = uK_ * uK_;
    double ll = 0.0;
    for (std::size_t q = 0; q < n_blocks_; ++q) {  // in order, as forward_backward sums them
      ll += block_ll_[q];
      for (std::size_t i = 0; i < KK; ++i) xi_sum[i] += w_.xi_blocks[q * KK + i];
    }
    return ll;
  }

 private:
  void run_serially() {
    guarded([&] {
      emissions();
      recursions();
      combine_ready();
    });
  }

  template <class F>
  void guarded(F&& f) {
    try {
      f();
    } catch (...) {
#pragma omp critical(cuem_hmm_pipeline_error)
      if (!error_) error_ = std::current_exception();
      stop_.store(true, std::memory_order_release);
    }
  }

  // Claims the next emission chunk (from both ends alternately: claim n is chunk n / 2
  // from the front where n is even, from the back where odd, so the claims meet in the
  // middle) and computes it; false once every chunk is claimed. Either thread claims: the
  // recursion thread computes chunks where it would otherwise wait for them.
  bool emit_next_chunk() {
    const std::size_t n = next_chunk_.fetch_add(1, std::memory_order_relaxed);
    if (n >= n_chunks_) return false;
    const std::size_t chunk = n % 2 == 0 ? n / 2 : n_chunks_ - 1 - n / 2;
    const std::size_t r0 = chunk * kEmissionChunk, r1 = std::min(T_, r0 + kEmissionChunk);
    prims_.posteriors(prepared_, lo_ + r0, lo_ + r1, s_ + r0, b_ + r0 * uK_);
    for (std::size_t t = r0; t < r1; ++t) s_[t] += log_K_;
    chunk_done_[chunk].store(true, std::memory_order_release);
    return true;
  }

  void emissions() {
    while (!stop_.load(std::memory_order_acquire) && emit_next_chunk()) {
    }
  }

  // Whether the emissions of frames [f0, f1) are computed (f0 < f1 <= T).
  bool emitted(std::size_t f0, std::size_t f1) const {
    for (std::size_t q = f0 / kEmissionChunk; q <= (f1 - 1) / kEmissionChunk; ++q)
      if (!chunk_done_[q].load(std::memory_order_acquire)) return false;
    return true;
  }

  // Forward from frame 0 and backward from frame T - 1, a step chunk of each at a time,
  // each over the whole sequence; fwd_ and bwd_ say how far they are ([0, fwd_) and
  // [bwd_, T) done).
  void recursions() {
    for (std::size_t done = 0; done < T_ && !stop_.load(std::memory_order_acquire);) {
      const std::size_t n = std::min(kStepChunk, T_ - done);
      const std::size_t f0 = done, f1 = done + n, g1 = T_ - done, g0 = g1 - n;
      // The forward steps read b of [f0, f1), the backward steps b of (g0, g1] (frame T
      // is none); rather than wait for a chunk, this thread computes the next one.
      const auto ready = [&] { return emitted(f0, f1) && emitted(g0, std::min(T_, g1 + 1)); };
      while (!ready() && !stop_.load(std::memory_order_acquire) && emit_next_chunk()) ++chunks_by_recursions_;
      wait_for(ready, stop_);
      if (stop_.load(std::memory_order_acquire)) return;
      const std::size_t bad = interleaved_steps(m_, b_, T_, f0, f1, g0, g1, w_.a.data(), w_.c.data(), w_.r.data());
      if (bad < f1) {
        bad_ = bad;
        stop_.store(true, std::memory_order_release);
        return;
      }
      done = f1;
      fwd_.store(f1, std::memory_order_release);
      bwd_.store(g0, std::memory_order_release);
    }
  }

  // Block q can be combined once a and c cover it and r covers it and the frame before it
  // (whose backward step reads the block's first b, which the combine overwrites).
  bool block_ready(std::size_t q) const {
    const std::size_t lo = q * B_, hi = std::min(T_, lo + B_);
    return fwd_.load(std::memory_order_acquire) >= hi &&
           bwd_.load(std::memory_order_acquire) <= (lo > 0 ? lo - 1 : 0);
  }

  // Claims and combines ready blocks until every block is claimed (or the work stops).
  void combine_ready() {
    const std::size_t KK = uK_ * uK_;
    while (!stop_.load(std::memory_order_acquire)) {
      // The progress before the scan: a change after it may make a block ready that the
      // scan saw as not, so the wait below is for a change from these values.
      const std::size_t f = fwd_.load(std::memory_order_acquire), g = bwd_.load(std::memory_order_acquire);
      bool all_claimed = true, did = false;
      for (std::size_t q = 0; q < n_blocks_; ++q) {
        if (claimed_[q].load(std::memory_order_relaxed)) continue;
        all_claimed = false;
        if (!block_ready(q)) continue;
        did = true;  // combined here, or just claimed by the other thread: look again
        if (claimed_[q].exchange(true, std::memory_order_acq_rel)) continue;
        const std::size_t lo = q * B_;
        block_ll_[q] = combine_frames(m_, lo, std::min(T_, lo + B_), w_.a.data(), w_.c.data(), w_.r.data(), s_, b_,
                                      nullptr, w_.xi_blocks.data() + q * KK, lo + B_ >= T_);
      }
      if (all_claimed) return;
      if (!did)
        wait_for([&] { return fwd_.load(std::memory_order_acquire) != f || bwd_.load(std::memory_order_acquire) != g; },
                 stop_);
    }
  }

  Primitives& prims_;
  const PreparedParams& prepared_;
  const double log_K_;
  const ChainModel& m_;
  const std::size_t lo_, T_, uK_;
  double* const b_;
  double* const s_;
  ChainWork& w_;
  const std::size_t B_, n_blocks_, n_chunks_;
  std::unique_ptr<std::atomic<bool>[]> claimed_, chunk_done_;
  std::vector<double> block_ll_;
  std::atomic<std::size_t> next_chunk_{0}, fwd_{0}, bwd_;
  std::atomic<bool> stop_{false};
  std::size_t chunks_by_recursions_ = 0;  // written by the recursion thread alone
  std::size_t bad_ = static_cast<std::size_t>(-1);
  std::exception_ptr error_;
};

}  // namespace

bool pipelined_chain_applies(const Primitives& prims, std::size_t n_sequences, int K, int n_threads) noexcept {
  return prims.stats_over_rows() && prims.cuda_device() < 0 && K <= kPipelineMaxStates &&
         n_sequences < static_cast<std::size_t>(std::max(n_threads, 1)) * 2;
}

double pipelined_chain_pass(Primitives& prims, const HmmModel& model, const std::vector<std::size_t>& offsets,
                            EmissionFrames& frames, double* start, double* trans, ChainWork& work,
                            PipelineSplit* split) {
  const int K = model.n_components();
  const std::size_t uK = static_cast<std::size_t>(K);
  const std::size_t N = prims.rows(), S = offsets.size() - 1;
  const bool two_threads = omp_get_max_threads() >= 2;
  // The frames' arrays and the chain's, sized for the longest sequence, first touched here
  // on both threads (a fit's first E-step; later ones reuse them).
  std::size_t T_max = 0;
  for (std::size_t q = 0; q < S; ++q) T_max = std::max(T_max, offsets[q + 1] - offsets[q]);
  std::vector<ArraySize> arrays = chain_arrays(work, T_max, K);
  arrays.push_back({&frames.b, N * uK});
  arrays.push_back({&frames.s, N});
  resize_large(arrays, two_threads);
  // As emission_frames: the posteriors under uniform weights, and log K added to their scale.
  const Model uniform = hmm_emissions(model.covariance_type(), K, model.n_features(), model.emissions.means,
                                      model.emissions.covariances);
  const PreparedParams prepared = prepare(uniform);
  const double log_K = std::log(static_cast<double>(K));
  std::vector<double> transposed(uK * uK);
  for (std::size_t i = 0; i < uK; ++i)
    for (std::size_t j = 0; j < uK; ++j) transposed[j * uK + i] = model.transmat[i * uK + j];
  const ChainModel chain{model.startprob.data(), model.transmat.data(), transposed.data(), K};
  // chain_pass's sums: sequences in fixed groups, each summed in order, then the groups.
  SequenceGroups groups(S, K, true, true);
  for (std::size_t g = 0; g < groups.n_groups(); ++g) {
    for (std::size_t q = groups.first(g); q < groups.first(g + 1); ++q) {
      const std::size_t lo = offsets[q], T = offsets[q + 1] - lo;
      double* b = frames.b.data() + lo * uK;
      SequencePipeline p(prims, prepared, log_K, chain, lo, T, b, frames.s.data() + lo, work);
      groups.ll[g] += p.run(two_threads, groups.trans_of(g));
      if (split) {
        split->chunks += p.n_chunks();
        split->chunks_by_recursions += p.chunks_by_recursions();
      }
      for (std::size_t k = 0; k < uK; ++k) groups.start_of(g)[k] += b[k];
    }
  }
  return groups.total(start, trans);
}

}  // namespace cuem::engine
