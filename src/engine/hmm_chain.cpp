#include "engine/hmm_chain.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>

#include "cuem/errors.hpp"
#include "engine/large_arrays.hpp"

// The three passes are compiled once per instruction-set level, chosen by the loader, with
// everything they call inlined into each clone (flatten), as src/cpu/cpu_kernels.cpp does.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__ELF__) && \
    !defined(CUEM_NO_TARGET_CLONES)
#define CUEM_CHAIN_CLONES \
  __attribute__((flatten, target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define CUEM_CHAIN_CLONES
#endif

namespace cuem::engine {
namespace {

// At most this many blocks per sequence (the per-block transition sums are K x K each),
// and at least this many frames per block.
constexpr std::size_t kMaxChainBlocks = 256;
constexpr std::size_t kMinBlockFrames = 64;

// sum_t log c_t as the log of running products (each c_t a power of two, so the products
// are exact; a sequence's last block adds the sum of its last a once), a log only when the
// product nears the bottom of the range.
struct LogProduct {
  double log_sum = 0.0, product = 1.0;
  void add(double ct) {
    if (ct < 0x1p-100) {
      log_sum += std::log(ct);
    } else {
      product *= ct;
      if (product < 0x1p-900) {
        log_sum += std::log(product);
        product = 1.0;
      }
    }
  }
  double value() const { return log_sum + std::log(product); }
};

// 2^-e and 2^e for e = floor(log2 v), v > 0, from v's exponent bits: a scale that rounds
// nothing, so no division sits on a recursion's chain of dependent operations and the
// order of the scaling and the other products does not change a bit. e is clamped to the
// normal range (a subnormal or zero v gets 2^1022; the next frame's scale does the rest).
struct PowerOfTwo {
  double down, up;
};
inline PowerOfTwo power_of_two_scale(double v) {
  std::uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof bits);
  const std::uint64_t e = std::min<std::uint64_t>(std::max<std::uint64_t>((bits >> 52) & 0x7ff, 1), 2045);
  const std::uint64_t down = (2046 - e) << 52, up = e << 52;
  PowerOfTwo p{};
  std::memcpy(&p.down, &down, sizeof down);
  std::memcpy(&p.up, &up, sizeof up);
  return p;
}

// Sums of K terms in four interleaved partial sums, combined in a fixed order: a quarter
// of a serial sum's dependency chain (the chain's passes are latency-bound), and the same
// result on every call.
inline double sum4(const double* v, int K) {
  double p0 = 0.0, p1 = 0.0, p2 = 0.0, p3 = 0.0;
  int k = 0;
  for (; k + 4 <= K; k += 4) {
    p0 += v[k];
    p1 += v[k + 1];
    p2 += v[k + 2];
    p3 += v[k + 3];
  }
  for (; k < K; ++k) p0 += v[k];
  return (p0 + p1) + (p2 + p3);
}
inline double dot4(const double* a, const double* b, int K) {
  double p0 = 0.0, p1 = 0.0, p2 = 0.0, p3 = 0.0;
  int k = 0;
  for (; k + 4 <= K; k += 4) {
    p0 += a[k] * b[k];
    p1 += a[k + 1] * b[k + 1];
    p2 += a[k + 2] * b[k + 2];
    p3 += a[k + 3] * b[k + 3];
  }
  for (; k < K; ++k) p0 += a[k] * b[k];
  return (p0 + p1) + (p2 + p3);
}

// The three passes with K known at compile time where it is small (KC > 0): the K-long
// loops then unroll into a few vector operations, which is most of the chain's speed at
// small K; KC = 0 takes K at run time. One frame of each recursion is a step function, so
// that the separate passes and the interleaved one do the same operations in the same order.

// Where the steps' products take four partial sums: compile-time K of 4 to 8 (at K 16
// they ran ~5x slower: the partial sums no longer stay in registers).
template <int KC>
constexpr bool kPartialSums = KC >= 4 && KC <= 8;

// out = v M for a K x K row-major M, as four partial sums over M's rows (row i into sum
// i mod 4, the rest past the last multiple of 4 into sum 0), added in a fixed order: a
// quarter of one sum's chain of dependent multiply-adds (the steps are latency-bound).
template <int KC>
inline void vector_matrix4(const double* __restrict v, const double* __restrict M, int K, double* __restrict out) {
  const std::size_t uK = static_cast<std::size_t>(K);
  double p[4][KC > 0 ? KC : 1] = {};
  int i = 0;
  for (; i + 4 <= K; i += 4)
    for (int q = 0; q < 4; ++q) {
      const double vi = v[i + q];
      const double* Mi = M + static_cast<std::size_t>(i + q) * uK;
      for (int j = 0; j < K; ++j) p[q][j] += vi * Mi[j];
    }
  for (; i < K; ++i) {
    const double vi = v[i];
    const double* Mi = M + static_cast<std::size_t>(i) * uK;
    for (int j = 0; j < K; ++j) p[0][j] += vi * Mi[j];
  }
  for (int j = 0; j < K; ++j) out[j] = (p[0][j] + p[1][j]) + (p[2][j] + p[3][j]);
}

// a_t from prev = a_{t-1} and prev_sum, its sum (null prev: t is the sequence's frame 0,
// from pi): a_t = ((a_{t-1} A) * b_t) 2^-e with 2^e = c_t from prev_sum. Returns a_t's
// sum (0: the frame is impossible).
template <int KC>
inline double forward_step(const ChainModel& m, int K, const double* __restrict prev, double prev_sum,
                           const double* __restrict bt, double* __restrict at, double& ct) {
  const std::size_t uK = static_cast<std::size_t>(K);
  if (!prev) {
    for (int k = 0; k < K; ++k) at[k] = m.pi[k] * bt[k];
    ct = 1.0;
    return sum4(at, K);
  }
  const PowerOfTwo scale = power_of_two_scale(prev_sum);
  if constexpr (kPartialSums<KC>) {
    // a_{t-1} A in four partial sums (vector_matrix4).
    vector_matrix4<KC>(prev, m.A, K, at);
  } else {
    for (int j = 0; j < K; ++j) at[j] = 0.0;
    for (int i = 0; i < K; ++i) {
      const double ai = prev[i];
      const double* Ai = m.A + static_cast<std::size_t>(i) * uK;
      for (int j = 0; j < K; ++j) at[j] += ai * Ai[j];
    }
  }
  for (int j = 0; j < K; ++j) at[j] *= bt[j] * scale.down;
  ct = scale.up;
  return sum4(at, K);
}

// r_t from bn = b_{t+1}, rn = r_{t+1} and rn_sum, its sum (null bn: t is the sequence's
// last frame, r = 1): r_t = (A (b_{t+1} * r_{t+1})) 2^-e with e from rn_sum (the scale of
// r cancels in gamma and xi). u is K of scratch. Returns r_t's sum.
template <int KC>
inline double backward_step(const ChainModel& m, int K, const double* __restrict bn, const double* __restrict rn,
                            double rn_sum, double* __restrict rt, double* __restrict u) {
  const std::size_t uK = static_cast<std::size_t>(K);
  if (!bn) {
    for (int k = 0; k < K; ++k) rt[k] = 1.0;
    return sum4(rt, K);
  }
  const PowerOfTwo scale = power_of_two_scale(rn_sum);
  for (int j = 0; j < K; ++j) u[j] = bn[j] * rn[j];
  // r_t = A u as a sum of A's columns (rows of A^T) scaled by u_j: contiguous updates
  // the compiler vectorises, where a dot product per row would be a serial reduction.
  if constexpr (kPartialSums<KC>) {
    // u^T A^T in four partial sums, as the forward step.
    vector_matrix4<KC>(u, m.AT, K, rt);
  } else {
    for (int i = 0; i < K; ++i) rt[i] = 0.0;
    for (int j = 0; j < K; ++j) {
      const double uj = u[j];
      const double* ATj = m.AT + static_cast<std::size_t>(j) * uK;
      for (int i = 0; i < K; ++i) rt[i] += uj * ATj[i];
    }
  }
  for (int k = 0; k < K; ++k) rt[k] *= scale.down;
  return sum4(rt, K);
}

// The separate passes: through the step functions where those take partial sums, else
// the same operations written out in the loop (the compiler keeps a_t in registers there
// and not through the step function: K 16's forward pass ran ~2.5x slower).
template <int KC>
std::size_t forward_k(const ChainModel& m, const double* __restrict b, std::size_t n, const double* a_prev,
                      double* __restrict a, double* __restrict c) {
  const int K = KC > 0 ? KC : m.K;
  const std::size_t uK = static_cast<std::size_t>(K);
  double prev_sum = a_prev ? sum4(a_prev, K) : 0.0;
  if constexpr (kPartialSums<KC>) {
    for (std::size_t t = 0; t < n; ++t) {
      double* at = a + t * uK;
      prev_sum = forward_step<KC>(m, K, t > 0 ? at - uK : a_prev, prev_sum, b + t * uK, at, c[t]);
      if (!(prev_sum > 0.0)) return t;
    }
    return n;
  }
  const double* A = m.A;
  for (std::size_t t = 0; t < n; ++t) {
    double* at = a + t * uK;
    const double* bt = b + t * uK;
    const double* prev = t > 0 ? at - uK : a_prev;
    if (!prev) {
      for (int k = 0; k < K; ++k) at[k] = m.pi[k] * bt[k];
      c[t] = 1.0;
    } else {
      const PowerOfTwo scale = power_of_two_scale(prev_sum);
      for (int j = 0; j < K; ++j) at[j] = 0.0;
      for (int i = 0; i < K; ++i) {
        const double ai = prev[i];
        const double* Ai = A + static_cast<std::size_t>(i) * uK;
        for (int j = 0; j < K; ++j) at[j] += ai * Ai[j];
      }
      for (int j = 0; j < K; ++j) at[j] *= bt[j] * scale.down;
      c[t] = scale.up;
    }
    prev_sum = sum4(at, K);
    if (!(prev_sum > 0.0)) return t;
  }
  return n;
}

template <int KC>
void backward_k(const ChainModel& m, const double* __restrict b, std::size_t n, const double* b_next,
                const double* r_next, double* __restrict r) {
  const int K = KC > 0 ? KC : m.K;
  const std::size_t uK = static_cast<std::size_t>(K);
  double u_store[KC > 0 ? KC : 1];
  std::vector<double> u_heap(KC > 0 ? 0 : uK);
  double* u = KC > 0 ? u_store : u_heap.data();
  double next_sum = b_next ? sum4(r_next, K) : 0.0;
  if constexpr (kPartialSums<KC>) {
    for (std::size_t t = n; t-- > 0;) {
      double* rt = r + t * uK;
      const bool inside = t + 1 < n;
      next_sum = backward_step<KC>(m, K, inside ? b + (t + 1) * uK : b_next, inside ? rt + uK : r_next, next_sum, rt, u);
    }
    return;
  }
  for (std::size_t t = n; t-- > 0;) {
    double* rt = r + t * uK;
    const double* bn = t + 1 < n ? b + (t + 1) * uK : b_next;
    const double* rn = t + 1 < n ? rt + uK : r_next;
    if (!bn) {  // the sequence's last frame
      for (int k = 0; k < K; ++k) rt[k] = 1.0;
    } else {
      const PowerOfTwo scale = power_of_two_scale(next_sum);
      for (int i = 0; i < K; ++i) rt[i] = 0.0;
      for (int j = 0; j < K; ++j) {
        const double uj = bn[j] * rn[j];  // not through scratch, which could alias rt for all the compiler knows
        const double* ATj = m.AT + static_cast<std::size_t>(j) * uK;
        for (int i = 0; i < K; ++i) rt[i] += uj * ATj[i];
      }
      for (int k = 0; k < K; ++k) rt[k] *= scale.down;
    }
    next_sum = sum4(rt, K);
  }
}

// Forward over [f0, f1) and backward over [g0, g1) (from g1 - 1 down) of one sequence of
// T frames, one step of each per iteration: the two recursions are independent chains of
// dependent operations, so each fills the other's stalls. Returns f1, or the first
// impossible frame of the forward range.
template <int KC>
std::size_t interleaved_k(const ChainModel& m, const double* __restrict b, std::size_t T, std::size_t f0,
                          std::size_t f1, std::size_t g0, std::size_t g1, double* __restrict a, double* __restrict c,
                          double* __restrict r) {
  const int K = KC > 0 ? KC : m.K;
  const std::size_t uK = static_cast<std::size_t>(K);
  double u_store[KC > 0 ? KC : 1];
  std::vector<double> u_heap(KC > 0 ? 0 : uK);
  double* u = KC > 0 ? u_store : u_heap.data();
  const std::size_t nf = f1 - f0, ng = g1 - g0, n = std::max(nf, ng);
  // The sums the steps carry, from the arrays where the passes continue.
  double f_sum = f0 > 0 ? sum4(a + (f0 - 1) * uK, K) : 0.0;
  double g_sum = g1 < T ? sum4(r + g1 * uK, K) : 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    if (i < nf) {
      const std::size_t t = f0 + i;
      double* at = a + t * uK;
      f_sum = forward_step<KC>(m, K, t > 0 ? at - uK : nullptr, f_sum, b + t * uK, at, c[t]);
      if (!(f_sum > 0.0)) return t;
    }
    if (i < ng) {
      const std::size_t t = g1 - 1 - i;
      double* rt = r + t * uK;
      const bool inside = t + 1 < T;
      g_sum = backward_step<KC>(m, K, inside ? b + (t + 1) * uK : nullptr, inside ? rt + uK : nullptr, g_sum, rt, u);
    }
  }
  return f1;
}

template <int KC>
double combine_k(const ChainModel& m, std::size_t lo, std::size_t hi, const double* __restrict a,
                 const double* __restrict c, const double* __restrict r, const double* __restrict s,
                 double* __restrict b, const double* a_before, double* xi, bool ends_sequence) {
  const int K = KC > 0 ? KC : m.K;
  const std::size_t uK = static_cast<std::size_t>(K);
  double u_store[KC > 0 ? KC : 1];
  double outer_store[KC > 0 ? KC * KC : 1];
  std::vector<double> heap(KC > 0 ? 0 : uK + uK * uK);
  double* __restrict u = KC > 0 ? u_store : heap.data();
  // sum_t a_{t-1} u_t^T over the block; xi = A_ij times it, once per block.
  double* __restrict outer = KC > 0 ? outer_store : heap.data() + uK;
  if (xi)
    for (std::size_t i = 0; i < uK * uK; ++i) outer[i] = 0.0;
  LogProduct log_c;
  double sum_s = 0.0;
  for (std::size_t t = lo; t < hi; ++t) {
    const double* at = a + t * uK;
    const double* rt = r + t * uK;
    double* bt = b + t * uK;
    const double G = dot4(at, rt, K);
    const double* ap = t > 0 ? at - uK : a_before;
    if (xi && ap) {
      // xi_{t-1}(i, j) = a_{t-1}(i) A_ij b_t(j) r_t(j) / (c_t G_t): its normaliser is
      // sum_j (a_{t-1} A)_j b_t(j) r_t(j) = c_t sum_j a_t(j) r_t(j).
      const double inv = 1.0 / (c[t] * G);
      for (int j = 0; j < K; ++j) u[j] = bt[j] * rt[j] * inv;
      for (int i = 0; i < K; ++i) {
        const double ai = ap[i];
        double* Oi = outer + static_cast<std::size_t>(i) * uK;
        for (int j = 0; j < K; ++j) Oi[j] += ai * u[j];
      }
    }
    const double inv = 1.0 / G;
    for (int k = 0; k < K; ++k) bt[k] = at[k] * rt[k] * inv;
    log_c.add(c[t]);
    sum_s += s[t];
  }
  if (ends_sequence) log_c.add(sum4(a + (hi - 1) * uK, K));  // the last a's sum: p(x) = its sum times prod c_t
  if (xi)
    for (std::size_t i = 0; i < uK * uK; ++i) xi[i] += m.A[i] * outer[i];
  return log_c.value() + sum_s;
}

// Calls f(std::integral_constant<int, KC>) with KC = K for the common small K, 0 otherwise.
template <class F>
decltype(auto) dispatch_k(int K, F&& f) {
  switch (K) {
    case 2: return f(std::integral_constant<int, 2>{});
    case 3: return f(std::integral_constant<int, 3>{});
    case 4: return f(std::integral_constant<int, 4>{});
    case 5: return f(std::integral_constant<int, 5>{});
    case 6: return f(std::integral_constant<int, 6>{});
    case 8: return f(std::integral_constant<int, 8>{});
    case 10: return f(std::integral_constant<int, 10>{});
    case 12: return f(std::integral_constant<int, 12>{});
    case 16: return f(std::integral_constant<int, 16>{});
    default: return f(std::integral_constant<int, 0>{});
  }
}

// Sizes the scratch for T frames: a, c, r (and the per-block transition sums, zeroed);
// `parallel`: a fresh allocation is first touched on two threads (large_arrays.hpp).
void reserve(ChainWork& w, std::size_t T, std::size_t uK, std::size_t n_blocks, bool with_xi, bool parallel) {
  resize_large(chain_arrays(w, T, static_cast<int>(uK)), parallel);
  if (with_xi) w.xi_blocks.assign(n_blocks * uK * uK, 0.0);
}

}  // namespace

void throw_impossible_frame(std::size_t t) {
  throw NumericalError("frame " + std::to_string(t) +
                       " of a sequence (0-based within it) has probability 0 under the chain: every path into it "
                       "uses a zero start or transition probability; check startprob_ and transmat_");
}

std::vector<ArraySize> chain_arrays(ChainWork& work, std::size_t T, int K) {
  const std::size_t TK = T * static_cast<std::size_t>(K);
  return {{&work.a, std::max(work.a.size(), TK)}, {&work.c, std::max(work.c.size(), T)},
          {&work.r, std::max(work.r.size(), TK)}};
}

std::size_t chain_block_frames(std::size_t T) noexcept {
  return std::max(kMinBlockFrames, (T + kMaxChainBlocks - 1) / kMaxChainBlocks);
}

CUEM_CHAIN_CLONES
std::size_t forward_segment(const ChainModel& m, const double* b, std::size_t n, const double* a_prev, double* a,
                            double* c) {
  return dispatch_k(m.K, [&](auto kc) { return forward_k<decltype(kc)::value>(m, b, n, a_prev, a, c); });
}

CUEM_CHAIN_CLONES
void backward_segment(const ChainModel& m, const double* b, std::size_t n, const double* b_next,
                      const double* r_next, double* r) {
  dispatch_k(m.K, [&](auto kc) { backward_k<decltype(kc)::value>(m, b, n, b_next, r_next, r); });
}

CUEM_CHAIN_CLONES
std::size_t interleaved_steps(const ChainModel& m, const double* b, std::size_t T, std::size_t f0, std::size_t f1,
                              std::size_t g0, std::size_t g1, double* a, double* c, double* r) {
  return dispatch_k(m.K, [&](auto kc) { return interleaved_k<decltype(kc)::value>(m, b, T, f0, f1, g0, g1, a, c, r); });
}

CUEM_CHAIN_CLONES
double combine_frames(const ChainModel& m, std::size_t lo, std::size_t hi, const double* a, const double* c,
                      const double* r, const double* s, double* b, const double* a_before, double* xi,
                      bool ends_sequence) {
  return dispatch_k(m.K, [&](auto kc) {
    return combine_k<decltype(kc)::value>(m, lo, hi, a, c, r, s, b, a_before, xi, ends_sequence);
  });
}

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

double forward_log_likelihood(const ChainModel& m, std::size_t T, const double* b, const double* s, ChainWork& w) {
  const std::size_t uK = static_cast<std::size_t>(m.K);
  reserve(w, T, uK, 0, false, false);
  const std::size_t bad = forward_segment(m, b, T, nullptr, w.a.data(), w.c.data());
  if (bad < T) throw_impossible_frame(bad);
  const std::size_t B = chain_block_frames(T);
  double ll = 0.0;
  for (std::size_t lo = 0; lo < T; lo += B) {
    LogProduct log_c;
    double sum_s = 0.0;
    const std::size_t hi = std::min(T, lo + B);
    for (std::size_t t = lo; t < hi; ++t) {
      log_c.add(w.c[t]);
      sum_s += s[t];
    }
    if (hi == T) log_c.add(sum4(w.a.data() + (T - 1) * uK, m.K));
    ll += log_c.value() + sum_s;  // as combine_frames sums a block
  }
  return ll;
}

double forward_backward(const ChainModel& m, std::size_t T, double* b, const double* s, double* xi_sum,
                        ChainWork& w, bool parallel) {
  const std::size_t uK = static_cast<std::size_t>(m.K), KK = uK * uK;
  const std::size_t B = chain_block_frames(T), n_blocks = (T + B - 1) / B;
  reserve(w, T, uK, n_blocks, xi_sum != nullptr, parallel);
  std::size_t bad = T;
  // The two passes are independent (the backward pass normalises itself).
#pragma omp parallel sections num_threads(2) if (parallel)
  {
#pragma omp section
    bad = forward_segment(m, b, T, nullptr, w.a.data(), w.c.data());
#pragma omp section
    backward_segment(m, b, T, nullptr, nullptr, w.r.data());
  }
  if (bad < T) throw_impossible_frame(bad);
  std::vector<double> block_ll(n_blocks);
#pragma omp parallel for schedule(static) if (parallel)
  for (std::ptrdiff_t q = 0; q < static_cast<std::ptrdiff_t>(n_blocks); ++q) {
    const std::size_t lo = static_cast<std::size_t>(q) * B;
    block_ll[static_cast<std::size_t>(q)] =
        combine_frames(m, lo, std::min(T, lo + B), w.a.data(), w.c.data(), w.r.data(), s, b, nullptr,
                       xi_sum ? w.xi_blocks.data() + static_cast<std::size_t>(q) * KK : nullptr, lo + B >= T);
  }
  double ll = 0.0;
  for (std::size_t q = 0; q < n_blocks; ++q) {
    ll += block_ll[q];
    if (xi_sum)
      for (std::size_t i = 0; i < KK; ++i) xi_sum[i] += w.xi_blocks[q * KK + i];
  }
  return ll;
}

SequenceGroups::SequenceGroups(std::size_t n_sequences, int K, bool with_start, bool with_trans)
    : S(n_sequences), uK(static_cast<std::size_t>(K)) {
  const std::size_t n = std::min<std::size_t>(S, 256);
  ll.assign(n, 0.0);
  if (with_start) start.assign(n * uK, 0.0);
  if (with_trans) trans.assign(n * uK * uK, 0.0);
}

double SequenceGroups::total(double* start_out, double* trans_out) const {
  double sum = 0.0;
  if (start_out) std::fill(start_out, start_out + uK, 0.0);
  if (trans_out) std::fill(trans_out, trans_out + uK * uK, 0.0);
  for (std::size_t g = 0; g < ll.size(); ++g) {
    sum += ll[g];
    if (start_out)
      for (std::size_t k = 0; k < uK; ++k) start_out[k] += start[g * uK + k];
    if (trans_out)
      for (std::size_t i = 0; i < uK * uK; ++i) trans_out[i] += trans[g * uK * uK + i];
  }
  return sum;
}

namespace {

// Viterbi in log space; log_e(t, k) gives log p(x_t | k).
template <class LogE>
double viterbi_impl(const double* pi, const double* A, int K, std::size_t T, LogE log_e, int* states,
                    std::vector<double>& work) {
  const std::size_t uK = static_cast<std::size_t>(K);
  if (work.size() < T * uK + 2 * uK) work.resize(T * uK + 2 * uK);
  double* delta = work.data();  // T x K
  double* log_pi = delta + T * uK;
  for (int k = 0; k < K; ++k) log_pi[k] = std::log(pi[k]);
  std::vector<double> log_A(uK * uK);
  for (std::size_t i = 0; i < uK * uK; ++i) log_A[i] = std::log(A[i]);
  for (int k = 0; k < K; ++k) delta[k] = log_pi[k] + log_e(std::size_t{0}, k);
  for (std::size_t t = 1; t < T; ++t) {
    const double* prev = delta + (t - 1) * uK;
    double* cur = delta + t * uK;
    for (int j = 0; j < K; ++j) {
      double best = -std::numeric_limits<double>::infinity();
      for (int i = 0; i < K; ++i) {
        const double v = prev[i] + log_A[static_cast<std::size_t>(i) * uK + j];
        if (v > best) best = v;
      }
      cur[j] = best + log_e(t, j);
    }
  }
  const double* last = delta + (T - 1) * uK;
  int state = 0;
  for (int k = 1; k < K; ++k)
    if (last[k] > last[state]) state = k;
  const double log_prob = last[state];
  if (!std::isfinite(log_prob)) throw_impossible_frame(T - 1);
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

}  // namespace

double viterbi(const double* pi, const double* A, int K, std::size_t T, const double* b, const double* s,
               int* states, std::vector<double>& work) {
  const std::size_t uK = static_cast<std::size_t>(K);
  return viterbi_impl(pi, A, K, T, [&](std::size_t t, int k) { return std::log(b[t * uK + static_cast<std::size_t>(k)]) + s[t]; },
                      states, work);
}

double viterbi_log(const double* pi, const double* A, int K, std::size_t T, const double* log_e, int* states,
                   std::vector<double>& work) {
  const std::size_t uK = static_cast<std::size_t>(K);
  return viterbi_impl(pi, A, K, T, [&](std::size_t t, int k) { return log_e[t * uK + static_cast<std::size_t>(k)]; },
                      states, work);
}

}  // namespace cuem::engine
