#pragma once
// The chain of a hidden Markov model on the host, in float64, one sequence at a time
// (docs/HMM.md). The emissions come in per frame t as a normalised vector b_t (sums to 1)
// and its log scale s_t, so that p(x_t | z_t = k) = b_tk exp(s_t): the posteriors of
// the Gaussians under uniform weights give exactly this (b = responsibilities, s = log
// p(x_t) + log K), and the normalised form keeps the forward recursion far from underflow.
//
// Forward, scaled by powers of two: a_0 = pi * b_0, c_0 = 1; a_t = ((a_{t-1} A) * b_t) / c_t
// with c_t = 2^floor(log2 sum_k a_{t-1}(k)): a_{t-1} / c_t sums to [1, 2), a_t to less
// than 2, and the scaling rounds nothing; log p(x_0..x_{T-1}) = sum_t (log c_t + s_t) + log sum_k a_{T-1}(k).
// Backward: r_{T-1} = 1, r_t = A (b_{t+1} * r_{t+1}) scaled by the power of two of r_{t+1}'s sum.
// gamma_t = a_t * r_t / G_t with G_t = sum_k a_t(k) r_t(k); xi_t(i, j) = a_t(i) A_ij
// b_{t+1}(j) r_{t+1}(j) / (c_{t+1} G_{t+1}), since (a_t A) * b_{t+1} = c_{t+1} a_{t+1}.
// Viterbi in log space: d_0 = log pi + log b_0, d_t(j) = max_i (d_{t-1}(i) + log A_ij) + log b_t(j).
#include <cstddef>
#include <vector>
#include "engine/large_arrays.hpp"

namespace cuem::engine {

/// Sequence boundaries from lengths: offsets[i] .. offsets[i + 1]. Throws InvalidArgument
/// for lengths that are not positive or do not sum to n_rows; empty lengths: one sequence.
std::vector<std::size_t> sequence_offsets(const std::vector<std::size_t>& lengths, std::size_t n_rows);

/// The chain's view of a model: start probabilities, the transition matrix and its
/// transpose (the backward pass reads A's columns contiguously).
struct ChainModel {
  const double* pi = nullptr;
  const double* A = nullptr;
  const double* AT = nullptr;
  int K = 0;
};

/// Frames per time block of a sequence of T frames. The sums over a sequence (its
/// log-likelihood, its transition counts) run per block in time order, then over the
/// blocks in order: blocks are what threads share and what a segment of the bounded-memory
/// pass is made of, so the sums are the same however the work is split.
std::size_t chain_block_frames(std::size_t T) noexcept;

/// Scaled forward pass over n frames of a sequence: a_prev is a of the frame before the
/// first (null when the first is the sequence's frame 0, which starts from pi). Writes a
/// (n x K) and c (n): a restart from any a_prev the pass wrote gives its bits again.
/// Returns n, or the index of the first frame impossible under the chain.
std::size_t forward_segment(const ChainModel& m, const double* b, std::size_t n, const double* a_prev, double* a,
                            double* c);

/// Backward pass over n frames, each r_t scaled by a power of two (its scale cancels in
/// gamma and xi, so it needs no c from the forward pass and can run beside it): b_next and
/// r_next are the frame after the last (null when the last ends the sequence: r = 1).
void backward_segment(const ChainModel& m, const double* b, std::size_t n, const double* b_next,
                      const double* r_next, double* r);

/// Forward over frames [f0, f1) and backward over frames [g0, g1) of a whole sequence of T
/// frames (b, a, c and r its T-frame arrays), interleaved in one loop on the calling
/// thread; each pass continues from what the arrays hold (a of frame f0 - 1, r and b of
/// frame g1), so that a sequence runs as a series of such calls. The same operations per
/// frame as forward_segment and backward_segment, so the same bits. Returns f1, or the
/// first impossible frame in [f0, f1).
std::size_t interleaved_steps(const ChainModel& m, const double* b, std::size_t T, std::size_t f0, std::size_t f1,
                              std::size_t g0, std::size_t g1, double* a, double* c, double* r);

/// Frames [lo, hi) of a segment after both passes: gamma_t replaces b_t; xi (K x K, may
/// be null) has the pairs (t - 1, t) added, where the frame before index 0 has a_before
/// (null: index 0 starts the sequence, no pair); returns sum_t (log c_t + s_t), plus
/// log sum_k a_{hi-1}(k) where hi - 1 is the sequence's last frame (ends_sequence).
double combine_frames(const ChainModel& m, std::size_t lo, std::size_t hi, const double* a, const double* c,
                      const double* r, const double* s, double* b, const double* a_before, double* xi,
                      bool ends_sequence);

/// Scratch of one sequence's chain, kept between calls so that an iteration allocates nothing.
struct ChainWork {
  std::vector<double> a, c, r, xi_blocks, u;
};

/// work.a, c and r with the sizes sequences of up to T frames need (never less than they
/// have), for resize_large: a caller sizing other arrays too passes them all in one call.
std::vector<ArraySize> chain_arrays(ChainWork& work, std::size_t T, int K);

/// One sequence's forward-backward. b (T x K) is replaced by gamma; s (T) is read; xi_sum
/// (K x K, may be null) has sum_t xi_t added. Returns the sequence's log-likelihood.
/// `parallel`: run the forward and backward passes side by side and the blocks over the
/// threads (for one long sequence); the result is the same either way. Throws
/// NumericalError where a frame is impossible under the chain (every path has probability 0).
double forward_backward(const ChainModel& m, std::size_t T, double* b, const double* s, double* xi_sum,
                        ChainWork& work, bool parallel);

/// One sequence's forward pass only: its log-likelihood (the same sums as forward_backward's).
double forward_log_likelihood(const ChainModel& m, std::size_t T, const double* b, const double* s, ChainWork& work);

/// Throws the NumericalError of frame t (0-based within its sequence) being impossible.
[[noreturn]] void throw_impossible_frame(std::size_t t);

/// Per-sequence sums in fixed groups of consecutive sequences (at most 256 groups), each
/// summed in order, then the groups in order: what the chain's passes return, whether
/// the sequences ran over threads, one at a time or a segment at a time.
struct SequenceGroups {
  SequenceGroups(std::size_t n_sequences, int K, bool with_start, bool with_trans);
  std::size_t n_groups() const noexcept { return ll.size(); }
  std::size_t first(std::size_t g) const noexcept { return S * g / ll.size(); }  ///< first sequence of group g
  double* start_of(std::size_t g) noexcept { return start.empty() ? nullptr : start.data() + g * uK; }
  double* trans_of(std::size_t g) noexcept { return trans.empty() ? nullptr : trans.data() + g * uK * uK; }
  /// The totals: returns the log-likelihood; start and trans (may be null) receive theirs.
  double total(double* start_out, double* trans_out) const;

  std::size_t S, uK;
  std::vector<double> ll, start, trans;
};

/// One sequence's Viterbi path into states (T); returns log p(x, path). Ties go to the
/// lowest state index.
double viterbi(const double* startprob, const double* transmat, int K, std::size_t T, const double* b, const double* s,
               int* states, std::vector<double>& work);
/// The same over log emissions log_e (T x K, log p(x_t | k)).
double viterbi_log(const double* startprob, const double* transmat, int K, std::size_t T, const double* log_e,
                   int* states, std::vector<double>& work);

}  // namespace cuem::engine
