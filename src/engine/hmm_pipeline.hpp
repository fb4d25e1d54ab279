#pragma once
// The E-step's emissions and chain for a few long sequences as a pipeline on two threads
// (docs/HMM.md, "One long sequence on two threads"). Per sequence:
// - one thread runs the forward and backward recursions interleaved in one loop
//   (interleaved_steps: two independent latency-bound recursions fill each other's stalls),
//   from both ends towards the middle and past it;
// - the other computes the emissions (b, s) a chunk at a time from both ends ahead of the
//   recursions, then combines each time block (combine_frames: gamma, its xi and
//   log-likelihood sums) as soon as both messages of the block exist, while its frames are
//   still in cache; the recursion thread joins the combine when the recursions end.
// - where the recursions would wait for an emission chunk, their thread computes the next
//   unclaimed chunk itself (the two threads claim chunks from one counter, so the
//   emissions reach the middle sooner; the host primitives' posteriors keep no state
//   between calls, so two threads may compute disjoint rows at once).
// Each frame's operations and each block's sums are those of emission_frames followed by
// chain_pass, and the blocks are summed in order afterwards, so the result is bitwise the
// same on any thread count (one thread runs the three roles one after the other).
#include <cstddef>
#include <vector>

#include "engine/hmm_chain.hpp"
#include "engine/hmm_model.hpp"
#include "engine/primitives.hpp"

namespace cuem::engine {

/// Whether the E-step takes the pipeline: host primitives whose posteriors may run on one
/// thread beside the chain, sequences few enough that chain_pass would run them one at a
/// time (fewer than two per thread), and at most kPipelineMaxStates states: beyond that
/// the interleaved steps ran slower than the two recursions on two threads (K 16: the
/// step function's products leave registers; K 64: bound by its K^2 multiply-adds, not
/// their latency).
constexpr int kPipelineMaxStates = 8;
bool pipelined_chain_applies(const Primitives& prims, std::size_t n_sequences, int K, int n_threads) noexcept;

/// How the emission chunks were shared: all of them, and those the recursion thread
/// computed instead of waiting for them.
struct PipelineSplit {
  std::size_t chunks = 0, chunks_by_recursions = 0;
};

/// emission_frames(prims, model, frames) followed by chain_pass(model, offsets, frames,
/// start, trans, workspace), bitwise, with the two overlapped as above: frames.b holds
/// gamma afterwards and frames.s the log scales; start (K) and trans (K x K) receive the
/// sums; returns the log-likelihood; split (may be null) has the sequences' chunk counts
/// added. Throws NumericalError for an impossible frame.
double pipelined_chain_pass(Primitives& prims, const HmmModel& model, const std::vector<std::size_t>& offsets,
                            EmissionFrames& frames, double* start, double* trans, ChainWork& work,
                            PipelineSplit* split = nullptr);

}  // namespace cuem::engine
