#include "engine/hmm_chain.hpp"

#include <cmath>
#include <limits>
#include <string>

#include "cuem/errors.hpp"

namespace cuem::engine {
namespace {

[[noreturn]] void throw_impossible(std::size_t t) {
  throw NumericalError("frame " + std::to_string(t) +
                       " of a sequence (0-based within it) has probability 0 under the chain: every path into it "
                       "uses a zero start or transition probability; check startprob_ and transmat_");
}

// The scaled forward pass into a (T x K) and c (T); returns sum_t log c_t.
double forward(const double* pi, const double* A, int K, std::size_t T, const double* b, double* a, double* c) {
  const std::size_t uK = static_cast<std::size_t>(K);
  double log_scale = 0.0;
  for (std::size_t t = 0; t < T; ++t) {
    double* at = a + t * uK;
    const double* bt = b + t * uK;
    if (t == 0) {
      for (int k = 0; k < K; ++k) at[k] = pi[k] * bt[k];
    } else {
      const double* prev = at - uK;
      for (int j = 0; j < K; ++j) at[j] = 0.0;
      for (int i = 0; i < K; ++i) {
        const double ai = prev[i];
        if (ai == 0.0) continue;
        const double* Ai = A + static_cast<std::size_t>(i) * uK;
        for (int j = 0; j < K; ++j) at[j] += ai * Ai[j];
      }
      for (int j = 0; j < K; ++j) at[j] *= bt[j];
    }
    double sum = 0.0;
    for (int k = 0; k < K; ++k) sum += at[k];
    if (!(sum > 0.0)) throw_impossible(t);
    c[t] = sum;
    const double inv = 1.0 / sum;
    for (int k = 0; k < K; ++k) at[k] *= inv;
    log_scale += std::log(sum);
  }
  return log_scale;
}

}  // namespace

std::vector<std::size_t> sequence_offsets(const std::vector<std::size_t>& lengths, std::size_t n_rows) {
  std::vector<std::size_t> offsets{0};
  if (lengths.empty()) {
    offsets.push_back(n_rows);
    return offsets;
  }
  offsets.reserve(lengths.size() + 1);
  std::size_t total = 0;
  for (std::size_t i = 0; i < lengths.size(); ++i) {
    if (lengths[i] == 0)
      throw InvalidArgument("lengths[" + std::to_string(i) + "] is 0: every sequence needs at least one frame");
    total += lengths[i];
    offsets.push_back(total);
  }
  if (total != n_rows)
    throw InvalidArgument("lengths sum to " + std::to_string(total) + " frames but X has " + std::to_string(n_rows) +
                          " rows: give one length per sequence, in the order of the rows");
  return offsets;
}

double forward_log_likelihood(const double* pi, const double* A, int K, std::size_t T, const double* b,
                              const double* s, std::vector<double>& work) {
  const std::size_t uK = static_cast<std::size_t>(K);
  if (work.size() < T * uK + T) work.resize(T * uK + T);
  double ll = forward(pi, A, K, T, b, work.data(), work.data() + T * uK);
  for (std::size_t t = 0; t < T; ++t) ll += s[t];
  return ll;
}

double forward_backward(const double* pi, const double* A, const double* AT, int K, std::size_t T, double* b,
                        const double* s, double* xi_sum, std::vector<double>& work) {
  const std::size_t uK = static_cast<std::size_t>(K);
  if (work.size() < 2 * T * uK + T + 2 * uK) work.resize(2 * T * uK + T + 2 * uK);
  double* a = work.data();
  double* r = a + T * uK;
  double* c = r + T * uK;
  double* u = c + T;  // b_{t+1} * r_{t+1} / c_{t+1}
  double ll = forward(pi, A, K, T, b, a, c);
  for (std::size_t t = 0; t < T; ++t) ll += s[t];

  double* rt = r + (T - 1) * uK;
  for (int k = 0; k < K; ++k) rt[k] = 1.0;
  for (std::size_t t = T - 1; t-- > 0;) {
    const double* bn = b + (t + 1) * uK;
    const double* rn = r + (t + 1) * uK;
    const double inv = 1.0 / c[t + 1];
    for (int j = 0; j < K; ++j) u[j] = bn[j] * rn[j] * inv;
    // r_t = A u as a sum of A's columns (rows of A^T) scaled by u_j: contiguous updates
    // the compiler vectorises, where a dot product per row would be a serial reduction.
    double* rc = r + t * uK;
    for (int i = 0; i < K; ++i) rc[i] = 0.0;
    for (int j = 0; j < K; ++j) {
      const double uj = u[j];
      const double* ATj = AT + static_cast<std::size_t>(j) * uK;
      for (int i = 0; i < K; ++i) rc[i] += uj * ATj[i];
    }
    if (xi_sum) {
      const double* at = a + t * uK;
      for (int i = 0; i < K; ++i) {
        const double ai = at[i];
        if (ai == 0.0) continue;
        const double* Ai = A + static_cast<std::size_t>(i) * uK;
        double* Xi = xi_sum + static_cast<std::size_t>(i) * uK;
        for (int j = 0; j < K; ++j) Xi[j] += ai * Ai[j] * u[j];
      }
    }
  }
  // gamma into b (the emissions of frame t are no longer needed once r_t is formed).
  for (std::size_t t = 0; t < T; ++t) {
    double* g = b + t * uK;
    const double* at = a + t * uK;
    const double* rc = r + t * uK;
    double sum = 0.0;
    for (int k = 0; k < K; ++k) sum += g[k] = at[k] * rc[k];
    const double inv = 1.0 / sum;
    for (int k = 0; k < K; ++k) g[k] *= inv;
  }
  return ll;
}

double viterbi(const double* pi, const double* A, int K, std::size_t T, const double* b, const double* s,
               int* states, std::vector<double>& work) {
  const std::size_t uK = static_cast<std::size_t>(K);
  if (work.size() < T * uK + 2 * uK) work.resize(T * uK + 2 * uK);
  double* delta = work.data();  // T x K
  double* log_pi = delta + T * uK;
  for (int k = 0; k < K; ++k) log_pi[k] = std::log(pi[k]);
  std::vector<double> log_A(uK * uK);
  for (std::size_t i = 0; i < uK * uK; ++i) log_A[i] = std::log(A[i]);
  for (int k = 0; k < K; ++k) delta[k] = log_pi[k] + std::log(b[k]) + s[0];
  for (std::size_t t = 1; t < T; ++t) {
    const double* prev = delta + (t - 1) * uK;
    double* cur = delta + t * uK;
    for (int j = 0; j < K; ++j) {
      double best = -std::numeric_limits<double>::infinity();
      for (int i = 0; i < K; ++i) {
        const double v = prev[i] + log_A[static_cast<std::size_t>(i) * uK + j];
        if (v > best) best = v;
      }
      cur[j] = best + std::log(b[t * uK + j]) + s[t];
    }
  }
  const double* last = delta + (T - 1) * uK;
  int state = 0;
  for (int k = 1; k < K; ++k)
    if (last[k] > last[state]) state = k;
  const double log_prob = last[state];
  if (!std::isfinite(log_prob)) throw_impossible(T - 1);
  states[T - 1] = state;
  for (std::size_t t = T - 1; t-- > 0;) {
    const double* d = delta + t * uK;
    int best = 0;
    double best_v = d[0] + log_A[static_cast<std::size_t>(state)];
    for (int i = 1; i < K; ++i) {
      const double v = d[i] + log_A[static_cast<std::size_t>(i) * uK + state];
      if (v > best_v) {
        best_v = v;
        best = i;
      }
    }
    state = best;
    states[t] = state;
  }
  return log_prob;
}

}  // namespace cuem::engine
