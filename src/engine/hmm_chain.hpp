#pragma once
// The chain of a hidden Markov model on the host, in float64, one sequence at a time
// (docs/HMM.md). The emissions come in per frame t as a normalised vector b_t (sums to 1)
// and its log scale s_t, so that p(x_t | z_t = k) = b_tk exp(s_t): the posteriors of
// the Gaussians under uniform weights give exactly this (b = responsibilities, s = log
// p(x_t) + log K), and the normalised form keeps the forward recursion far from underflow.
//
// Forward (scaled): a_0 = pi * b_0 / c_0, a_t = (a_{t-1} A) * b_t / c_t with c_t the sum
// that normalises a_t; log p(x_0..x_{T-1}) = sum_t (log c_t + s_t).
// Backward: r_{T-1} = 1, r_t = A (b_{t+1} * r_{t+1}) / c_{t+1}.
// gamma_t = a_t * r_t (normalised), xi_t(i, j) = a_t(i) A_ij b_{t+1}(j) r_{t+1}(j) / c_{t+1}.
// Viterbi in log space: d_0 = log pi + log b_0, d_t(j) = max_i (d_{t-1}(i) + log A_ij) + log b_t(j).
#include <cstddef>
#include <vector>

namespace cuem::engine {

/// Sequence boundaries from lengths: offsets[i] .. offsets[i + 1]. Throws InvalidArgument
/// for lengths that are not positive or do not sum to n_rows; empty lengths: one sequence.
std::vector<std::size_t> sequence_offsets(const std::vector<std::size_t>& lengths, std::size_t n_rows);

/// One sequence's forward-backward. b (T x K) is replaced by gamma; s (T) is read; xi_sum
/// (K x K, may be null) has sum_t xi_t added. transmat_t is transmat transposed. Returns
/// the sequence's log-likelihood. `work` is scratch (grown as needed). Throws
/// NumericalError where a frame is impossible under the chain (every path has probability 0).
double forward_backward(const double* startprob, const double* transmat, const double* transmat_t, int K,
                        std::size_t T, double* b, const double* s, double* xi_sum, std::vector<double>& work);

/// One sequence's forward pass only: its log-likelihood.
double forward_log_likelihood(const double* startprob, const double* transmat, int K, std::size_t T, const double* b,
                              const double* s, std::vector<double>& work);

/// One sequence's Viterbi path into states (T); returns log p(x, path). Ties go to the
/// lowest state index.
double viterbi(const double* startprob, const double* transmat, int K, std::size_t T, const double* b, const double* s,
               int* states, std::vector<double>& work);

}  // namespace cuem::engine
