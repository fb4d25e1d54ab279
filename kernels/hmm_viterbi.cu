// Viterbi on the device (hmm_forward_backward.hpp): one block a group of consecutive items
// (hmm_items: whole sequences, or the chunks of few long ones) as the forward-backward
// kernel takes them; delta double-buffered in shared memory (one barrier a frame), each
// frame's best predecessor per state kept in device memory, a whole sequence's path read
// back by one thread.
//
// Long sequences in chunks: the max-plus form of the forward pass's one-level scan. With
// M_k(i, j) the best log-weight over chunk k's frames of a path from state i at the frame
// before the chunk to state j at its last frame (chunk 0 from its second frame), the delta
// entering chunk k + 1 is d_k = max_i (d_{k-1}(i) + M_k(i, j)) (d from pi at the first
// frame). Each chunk then runs the sequential pass from its entering delta, keeping beside
// delta the state at the frame before the chunk that each state's best path comes from
// (its origin). Walking the chunks backward through their origins gives each chunk's last
// state, the very state the frame-by-frame traceback reaches; each chunk then traces its
// own frames back. The path is therefore a traceback of the chunks' deltas, ties to the
// lowest state; those deltas differ from the sequential pass's only by the rounding of
// the chunk products' sums.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "cuda_check.cuh"
#include "device_memory.cuh"
#include "hmm_forward_backward.hpp"

namespace cuem::cuda {
namespace {

// The groups' log-probabilities kept on the device at once bound the number of groups.
constexpr std::size_t kViterbiGroups = std::size_t{1} << 23;

constexpr int kTraceThreads = 64;

struct ViterbiArgs {
  const double* log_pi;
  const double* log_A;
  int K;
  const std::size_t* offsets;  // I + 1 item boundaries
  const unsigned char* flags;  // I
  const double* d_in;          // I x K: the delta entering an item that does not start its sequence
  std::size_t S, G;            // items, groups
  const double* b;
  const double* s;
  int* psi;  // N x K: each frame's best predecessor per state
  int* states;
  double* group_lp;  // G: the whole sequences' log-probabilities
  long long* bad;    // G: the first whole sequence's last frame without a path, -1 none
  double* d_end;     // I x K: a chunk's last delta
  int* origin;       // I x K: a chunk's origins at its last frame
};

// log b_t(j) + s_t, as the host's viterbi forms it; b itself where s is null (the caller's
// log emissions).
__device__ inline double log_emission(const double* b, const double* s, std::size_t t, std::size_t uK, int j) {
  const double v = b[t * uK + static_cast<std::size_t>(j)];
  return s ? log(v) + s[t] : v;
}

__global__ void hmm_viterbi_kernel(ViterbiArgs p) {
  CUEM_DYNAMIC_SHARED(smem);
  const int K = p.K;
  const std::size_t uK = static_cast<std::size_t>(K);
  double* delta = reinterpret_cast<double*>(smem);        // 2K
  int* org = reinterpret_cast<int*>(delta + 2 * uK);      // 2K
  const int tid = static_cast<int>(threadIdx.x), nt = static_cast<int>(blockDim.x);
  const std::size_t g = blockIdx.x;
  const std::size_t q0 = p.S * g / p.G, q1 = p.S * (g + 1) / p.G;
  double lp_group = 0.0;
  for (std::size_t q = q0; q < q1; ++q) {
    const std::size_t lo = p.offsets[q], T = p.offsets[q + 1] - lo;
    const unsigned char fl = p.flags[q];
    const bool whole = fl == (kHmmStartsSequence | kHmmEndsSequence);
    const double* d_in = fl & kHmmStartsSequence ? nullptr : p.d_in + q * uK;
    for (std::size_t t = 0; t < T; ++t) {
      double* cur = delta + (t & 1) * uK;
      const double* prev = t == 0 ? d_in : delta + ((t + 1) & 1) * uK;
      int* org_cur = org + (t & 1) * uK;
      const int* org_prev = org + ((t + 1) & 1) * uK;
      for (int j = tid; j < K; j += nt) {
        const std::size_t at = (lo + t) * uK + static_cast<std::size_t>(j);
        if (t == 0 && !d_in) {
          cur[j] = p.log_pi[j] + log_emission(p.b, p.s, lo, uK, j);
          org_cur[j] = j;
        } else {
          double best = -INFINITY;
          int arg = 0;
          for (int i = 0; i < K; ++i) {
            const double v = prev[i] + p.log_A[i * K + j];
            if (v > best) {
              best = v;
              arg = i;
            }
          }
          cur[j] = best + log_emission(p.b, p.s, lo + t, uK, j);
          p.psi[at] = arg;
          org_cur[j] = t == 0 ? arg : org_prev[arg];
        }
      }
      __syncthreads();
    }
    const double* last = delta + ((T - 1) & 1) * uK;
    if (!whole) {  // a chunk: its last delta and origins for the walk across chunks
      for (int j = tid; j < K; j += nt) {
        p.d_end[q * uK + static_cast<std::size_t>(j)] = last[j];
        p.origin[q * uK + static_cast<std::size_t>(j)] = org[((T - 1) & 1) * uK + static_cast<std::size_t>(j)];
      }
    } else if (tid == 0) {
      // The path, by one thread: the last frame's best state (the lowest on ties), then back.
      int state = 0;
      for (int k = 1; k < K; ++k)
        if (last[k] > last[state]) state = k;
      const double lp = last[state];
      if (!isfinite(lp)) {
        if (p.bad[g] < 0) p.bad[g] = static_cast<long long>(lo + T - 1);
      } else {
        lp_group += lp;
        p.states[lo + T - 1] = state;
        for (std::size_t t = T - 1; t-- > 0;) {
          state = p.psi[(lo + t + 1) * uK + static_cast<std::size_t>(state)];
          p.states[lo + t] = state;
        }
      }
    }
    __syncthreads();  // the last delta read before the next item writes it
  }
  if (tid == 0) p.group_lp[g] = lp_group;
}

struct MaxPlusProductArgs {
  const double* log_A;
  int K;
  const double* b;
  const double* s;
  const std::size_t* from;  // per item: its product runs over frames [from, to) (empty: none)
  const std::size_t* to;
  const unsigned char* flags;
  double* M;  // n x 2 x K x K: the product ends in the first half
};

// M(i, j) = max_m (M(i, m) + log A_mj) + log e_t(j), frame after frame: the same terms as
// the sequential pass, summed from the chunk's start rather than the sequence's.
__global__ void hmm_viterbi_product_kernel(MaxPlusProductArgs p) {
  const int K = p.K;
  const std::size_t uK = static_cast<std::size_t>(K), KK = uK * uK;
  const int tid = static_cast<int>(threadIdx.x), nt = static_cast<int>(blockDim.x);
  const std::size_t i = blockIdx.x;
  double* M = p.M + i * 2 * KK;
  const std::size_t from = p.from[i], to = p.to[i];
  for (std::size_t t = from; t < to; ++t) {
    const std::size_t n = t - from;
    const double* src = M + (n & 1) * KK;
    double* dst = M + ((n + 1) & 1) * KK;
    int le_col = -1;  // a thread's column repeats where threads is a multiple of K: one log a frame
    double le = 0.0;
    for (int e = tid; e < K * K; e += nt) {
      const int r = e / K, col = e % K;
      if (col != le_col) {
        le = log_emission(p.b, p.s, t, uK, col);
        le_col = col;
      }
      double best;
      if (n == 0) {
        best = p.log_A[e];
      } else {
        best = -INFINITY;
        for (int m = 0; m < K; ++m) {
          const double v = src[r * K + m] + p.log_A[m * K + col];
          best = v > best ? v : best;
        }
      }
      dst[e] = best + le;
    }
    __syncthreads();
  }
  const std::size_t n = to - from;
  if (n & 1)
    for (int e = tid; e < K * K; e += nt) M[e] = M[KK + static_cast<std::size_t>(e)];
  if (n == 0 && p.flags[i] != (kHmmStartsSequence | kHmmEndsSequence))  // a first chunk of one frame
    for (int e = tid; e < K * K; e += nt) M[e] = e / K == e % K ? 0.0 : -INFINITY;
}

// One level of the tree (Hillis-Steele): every chunk at least `offset` chunks into its
// sequence takes P_{i - offset} x P_i (max-plus), the others keep theirs; the halves of
// each item's 2 x K x K alternate level by level, so after L levels item i holds the
// product of its sequence's chunks up to i in half L % 2.
struct TreeLevelArgs {
  int K;
  std::size_t offset;
  int src_half;
  const std::size_t* first;  // per item: its sequence's first item
  const unsigned char* flags;
  double* M;
};

__global__ void hmm_viterbi_tree_level_kernel(TreeLevelArgs p) {
  const int K = p.K;
  const std::size_t uK = static_cast<std::size_t>(K), KK = uK * uK;
  const int tid = static_cast<int>(threadIdx.x), nt = static_cast<int>(blockDim.x);
  const std::size_t i = blockIdx.x;
  if (p.flags[i] == (kHmmStartsSequence | kHmmEndsSequence)) return;
  const std::size_t src = static_cast<std::size_t>(p.src_half) * KK, dst = KK - src;
  const double* right = p.M + i * 2 * KK + src;
  double* out = p.M + i * 2 * KK + dst;
  if (i - p.first[i] < p.offset) {
    for (int e = tid; e < K * K; e += nt) out[e] = right[e];
    return;
  }
  const double* left = p.M + (i - p.offset) * 2 * KK + src;
  for (int e = tid; e < K * K; e += nt) {
    const int r = e / K, col = e % K;
    double best = -INFINITY;
    for (int m = 0; m < K; ++m) {
      const double v = left[r * K + m] + right[m * K + col];
      best = v > best ? v : best;
    }
    out[e] = best;
  }
}

// After the tree: the delta entering each chunk but the first, from its sequence's first
// frame's delta through the product of the chunks before it; one block a chunk.
struct TreeMessageArgs {
  const double* log_pi;
  int K;
  const double* b;
  const double* s;
  const std::size_t* offsets;  // item boundaries
  const std::size_t* first;
  const unsigned char* flags;
  int half;
  const double* M;
  double* d_in;
};

__global__ void hmm_viterbi_tree_messages_kernel(TreeMessageArgs p) {
  CUEM_DYNAMIC_SHARED(smem);
  const int K = p.K;
  const std::size_t uK = static_cast<std::size_t>(K), KK = uK * uK;
  const int tid = static_cast<int>(threadIdx.x), nt = static_cast<int>(blockDim.x);
  const std::size_t i = blockIdx.x;
  if (p.flags[i] & kHmmStartsSequence) return;  // whole sequences and first chunks
  double* d0 = reinterpret_cast<double*>(smem);  // K
  const std::size_t lo = p.offsets[p.first[i]];
  for (int j = tid; j < K; j += nt) d0[j] = p.log_pi[j] + log_emission(p.b, p.s, lo, uK, j);
  __syncthreads();
  const double* P = p.M + (i - 1) * 2 * KK + static_cast<std::size_t>(p.half) * KK;
  for (int j = tid; j < K; j += nt) {
    double best = -INFINITY;
    for (int k = 0; k < K; ++k) {
      const double v = d0[k] + P[k * K + j];
      best = v > best ? v : best;
    }
    p.d_in[i * uK + static_cast<std::size_t>(j)] = best;
  }
}

struct MaxPlusMessageArgs {
  const double* log_pi;
  int K;
  const double* b;
  const double* s;
  const std::size_t* seq_lo;  // per chunked sequence
  const std::size_t* item_begin;
  const std::size_t* item_end;
  const std::size_t* item_from;
  const std::size_t* item_to;
  const double* M;  // per item, 2 x K x K
  double* d_in;     // per item, K
};

// One block a chunked sequence: the delta entering each chunk, chunk after chunk.
__global__ void hmm_viterbi_messages_kernel(MaxPlusMessageArgs p) {
  CUEM_DYNAMIC_SHARED(smem);
  const int K = p.K;
  const std::size_t uK = static_cast<std::size_t>(K), KK = uK * uK;
  const int tid = static_cast<int>(threadIdx.x), nt = static_cast<int>(blockDim.x);
  double* f = reinterpret_cast<double*>(smem);  // 2K, double-buffered
  const std::size_t q = blockIdx.x, i0 = p.item_begin[q], i1 = p.item_end[q];
  for (int j = tid; j < K; j += nt) f[j] = p.log_pi[j] + log_emission(p.b, p.s, p.seq_lo[q], uK, j);
  __syncthreads();
  std::size_t n = 0;
  for (std::size_t i = i0; i + 1 < i1; ++i) {
    double* out = p.d_in + (i + 1) * uK;
    const double* cur = f + (n & 1) * uK;
    if (p.item_to[i] > p.item_from[i]) {
      const double* M = p.M + i * 2 * KK;
      double* nxt = f + ((n + 1) & 1) * uK;
      for (int j = tid; j < K; j += nt) {
        double best = -INFINITY;
        for (int k = 0; k < K; ++k) {
          const double v = cur[k] + M[k * K + j];
          best = v > best ? v : best;
        }
        nxt[j] = best;
        out[j] = best;
      }
      ++n;
      __syncthreads();
    } else {
      for (int j = tid; j < K; j += nt) out[j] = cur[j];
    }
  }
}

// One thread a chunked sequence: its last state from its last chunk's delta, then each
// earlier chunk's last state through the origins.
struct BoundaryArgs {
  int K;
  std::size_t n;
  const std::size_t* item_begin;
  const std::size_t* item_end;
  const double* d_end;
  const int* origin;
  int* end_state;    // per item
  double* seq_lp;    // per chunked sequence (not finite: no path)
};

__global__ void hmm_viterbi_boundaries_kernel(BoundaryArgs p) {
  const std::size_t q = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (q >= p.n) return;
  const std::size_t uK = static_cast<std::size_t>(p.K), i0 = p.item_begin[q], i1 = p.item_end[q];
  const double* last = p.d_end + (i1 - 1) * uK;
  int state = 0;
  for (int k = 1; k < p.K; ++k)
    if (last[k] > last[state]) state = k;
  p.seq_lp[q] = last[state];
  p.end_state[i1 - 1] = state;
  for (std::size_t i = i1 - 1; i > i0; --i) {
    state = p.origin[i * uK + static_cast<std::size_t>(state)];
    p.end_state[i - 1] = state;
  }
}

// One thread a chunk: its frames traced back from its last state.
struct TraceArgs {
  int K;
  std::size_t I;
  const std::size_t* offsets;
  const unsigned char* flags;
  const int* end_state;
  const int* psi;
  int* states;
};

__global__ void hmm_viterbi_trace_kernel(TraceArgs p) {
  const std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= p.I || p.flags[i] == (kHmmStartsSequence | kHmmEndsSequence)) return;
  const std::size_t uK = static_cast<std::size_t>(p.K), lo = p.offsets[i], hi = p.offsets[i + 1];
  int state = p.end_state[i];
  p.states[hi - 1] = state;
  for (std::size_t t = hi - 1; t > lo; --t) {
    state = p.psi[t * uK + static_cast<std::size_t>(state)];
    p.states[t - 1] = state;
  }
}

}  // namespace

HmmChainResult hmm_viterbi(int device, const HmmChainInput& in, int* states, int threads) {
  const int K = in.K;
  if (K < 1 || K > kHmmChainMaxStates)
    throw InvalidArgument("the device Viterbi takes 1 to " + std::to_string(kHmmChainMaxStates) + " states, not " +
                          std::to_string(K));
  if (threads == 0) threads = hmm_chain_threads(K);
  if (threads < 32 || threads > 256 || threads % 32 != 0)
    throw InvalidArgument("the device Viterbi's threads must be a multiple of 32 up to 256");
  const std::vector<std::size_t>& offsets = *in.offsets;
  const std::size_t S = offsets.size() - 1, N = offsets.back(), uK = static_cast<std::size_t>(K), KK = uK * uK;
  HmmChainResult out;
  if (S == 0 || N == 0) return out;
  const HmmItems it = hmm_items(offsets, in.chunk_frames, K);
  const std::size_t I = it.size(), n_chunked = it.chunked();
  const std::size_t most_chunks = hmm_most_chunks(it);
  const bool tree = hmm_use_tree(it, in.scan);
  const std::size_t G = std::min<std::size_t>({I, kViterbiGroups, std::size_t{0x7fffffff}});
  // Per item where any sequence is chunked: the product (2 K^2), d_in and d_end (K each).
  const std::size_t chunk_doubles = n_chunked ? I * (2 * KK + 2 * uK) + n_chunked : 0;
  const std::size_t chunk_ints = n_chunked ? I * (uK + 1) : 0;
  const ScopedDevice on(device);
  if (!hmm_scratch_fits((N * uK + N + G + uK + KK + chunk_doubles) * sizeof(double) +
                        (N * uK + N + chunk_ints) * sizeof(int) + G * sizeof(long long) + I +
                        (I + 1 + 3 * I + 3 * n_chunked) * sizeof(std::size_t))) {
    out.ran = false;
    return out;
  }
  const Stream stream;
  const cudaStream_t st = stream.get();
  // The logarithms of the model on the host, as engine::viterbi takes them.
  std::vector<double> logs(uK + KK);
  for (std::size_t k = 0; k < uK; ++k) logs[k] = std::log(in.startprob[k]);
  for (std::size_t e = 0; e < KK; ++e) logs[uK + e] = std::log(in.transmat[e]);
  DeviceBuffer<double> model(uK + KK), b(N * uK), s(in.log_e ? 0 : N), lp(G), chunk_work(chunk_doubles);
  DeviceBuffer<int> psi(N * uK), path(N), chunk_states(chunk_ints);
  DeviceBuffer<std::size_t> offs(I + 1), chunk_index(n_chunked ? (tree ? 3 : 2) * I + 3 * n_chunked : 0);
  DeviceBuffer<long long> bad(G);
  DeviceBuffer<unsigned char> flag_dev(I);
  CUEM_CUDA_CHECK(cudaMemcpyAsync(model.data(), logs.data(), logs.size() * sizeof(double), cudaMemcpyHostToDevice, st));
  CUEM_CUDA_CHECK(
      cudaMemcpyAsync(b.data(), in.log_e ? in.log_e : in.b, N * uK * sizeof(double), cudaMemcpyHostToDevice, st));
  if (!in.log_e) CUEM_CUDA_CHECK(cudaMemcpyAsync(s.data(), in.s, N * sizeof(double), cudaMemcpyHostToDevice, st));
  const double* s_dev = in.log_e ? nullptr : s.data();
  CUEM_CUDA_CHECK(
      cudaMemcpyAsync(offs.data(), it.bounds.data(), (I + 1) * sizeof(std::size_t), cudaMemcpyHostToDevice, st));
  CUEM_CUDA_CHECK(cudaMemcpyAsync(flag_dev.data(), it.flags.data(), I, cudaMemcpyHostToDevice, st));
  CUEM_CUDA_CHECK(cudaMemsetAsync(bad.data(), 0xff, bad.size() * sizeof(long long), st));
  double* M = chunk_work.data();
  double* d_in = n_chunked ? M + I * 2 * KK : nullptr;
  double* d_end = n_chunked ? d_in + I * uK : nullptr;
  double* seq_lp = n_chunked ? d_end + I * uK : nullptr;
  int* origin = chunk_states.data();
  int* end_state = n_chunked ? origin + I * uK : nullptr;
  const std::size_t* ix = chunk_index.data();
  if (n_chunked) {
    // The chunks' max-plus products, then each chunked sequence's entering deltas.
    std::vector<std::size_t> index(it.from);
    index.insert(index.end(), it.to.begin(), it.to.end());
    index.insert(index.end(), it.seq_lo.begin(), it.seq_lo.end());
    index.insert(index.end(), it.item_begin.begin(), it.item_begin.end());
    index.insert(index.end(), it.item_end.begin(), it.item_end.end());
    if (tree) index.insert(index.end(), it.first.begin(), it.first.end());
    CUEM_CUDA_CHECK(cudaMemcpyAsync(chunk_index.data(), index.data(), index.size() * sizeof(std::size_t),
                                    cudaMemcpyHostToDevice, st));
    const unsigned blocks = checked_cast<unsigned>(I, "HMM Viterbi chunk blocks");
    const MaxPlusProductArgs pa{model.data() + uK, K, b.data(), s_dev, ix, ix + I, flag_dev.data(), M};
    CUEM_LAUNCH(hmm_viterbi_product_kernel, blocks, threads, 0, st)(pa);
    CUEM_CUDA_CHECK_LAUNCH();
    if (tree) {
      const std::size_t* first = ix + 2 * I + 3 * n_chunked;
      int half = 0;
      for (std::size_t offset = 1; offset < most_chunks; offset *= 2, half ^= 1) {
        const TreeLevelArgs ta{K, offset, half, first, flag_dev.data(), M};
        CUEM_LAUNCH(hmm_viterbi_tree_level_kernel, blocks, threads, 0, st)(ta);
        CUEM_CUDA_CHECK_LAUNCH();
      }
      const TreeMessageArgs ma{model.data(), K, b.data(), s_dev, offs.data(), first, flag_dev.data(), half, M, d_in};
      CUEM_LAUNCH(hmm_viterbi_tree_messages_kernel, blocks, threads, uK * sizeof(double), st)(ma);
      CUEM_CUDA_CHECK_LAUNCH();
    } else {
      const MaxPlusMessageArgs ma{model.data(), K, b.data(), s_dev, ix + 2 * I, ix + 2 * I + n_chunked,
                                  ix + 2 * I + 2 * n_chunked, ix, ix + I, M, d_in};
      CUEM_LAUNCH(hmm_viterbi_messages_kernel, checked_cast<unsigned>(n_chunked, "HMM Viterbi message blocks"),
                  threads, 2 * uK * sizeof(double), st)(ma);
      CUEM_CUDA_CHECK_LAUNCH();
    }
  }
  const ViterbiArgs args{model.data(), model.data() + uK, K, offs.data(), flag_dev.data(), d_in, I, G, b.data(),
                         s_dev, psi.data(), path.data(), lp.data(), bad.data(), d_end, origin};
  CUEM_LAUNCH(hmm_viterbi_kernel, checked_cast<unsigned>(G, "HMM Viterbi blocks"), threads,
              2 * uK * (sizeof(double) + sizeof(int)), st)(args);
  CUEM_CUDA_CHECK_LAUNCH();
  if (n_chunked) {
    const BoundaryArgs ba{K, n_chunked, ix + 2 * I + n_chunked, ix + 2 * I + 2 * n_chunked, d_end, origin,
                          end_state, seq_lp};
    CUEM_LAUNCH(hmm_viterbi_boundaries_kernel,
                checked_cast<unsigned>((n_chunked + kTraceThreads - 1) / kTraceThreads, "HMM Viterbi boundary blocks"),
                kTraceThreads, 0, st)(ba);
    CUEM_CUDA_CHECK_LAUNCH();
    const TraceArgs ta{K, I, offs.data(), flag_dev.data(), end_state, psi.data(), path.data()};
    CUEM_LAUNCH(hmm_viterbi_trace_kernel,
                checked_cast<unsigned>((I + kTraceThreads - 1) / kTraceThreads, "HMM Viterbi trace blocks"),
                kTraceThreads, 0, st)(ta);
    CUEM_CUDA_CHECK_LAUNCH();
  }
  std::vector<double> host_lp(G), host_seq_lp(n_chunked);
  std::vector<long long> host_bad(bad.size());
  CUEM_CUDA_CHECK(cudaMemcpyAsync(states, path.data(), N * sizeof(int), cudaMemcpyDeviceToHost, st));
  CUEM_CUDA_CHECK(cudaMemcpyAsync(host_lp.data(), lp.data(), G * sizeof(double), cudaMemcpyDeviceToHost, st));
  CUEM_CUDA_CHECK(
      cudaMemcpyAsync(host_bad.data(), bad.data(), bad.size() * sizeof(long long), cudaMemcpyDeviceToHost, st));
  if (n_chunked)
    CUEM_CUDA_CHECK(cudaMemcpyAsync(host_seq_lp.data(), seq_lp, n_chunked * sizeof(double), cudaMemcpyDeviceToHost,
                                    st));
  stream.synchronize();
  // The first sequence without a path: the lowest last frame among the whole sequences'
  // and the chunked ones'.
  std::size_t bad_frame = N;
  for (std::size_t g = 0; g < G && bad_frame == N; ++g)
    if (host_bad[g] >= 0) bad_frame = static_cast<std::size_t>(host_bad[g]);
  for (std::size_t q = 0; q < n_chunked; ++q)
    if (!std::isfinite(host_seq_lp[q])) bad_frame = std::min(bad_frame, it.bounds[it.item_end[q]] - 1);
  if (bad_frame < N) {
    out.impossible = true;
    out.sequence =
        static_cast<std::size_t>(std::upper_bound(offsets.begin(), offsets.end(), bad_frame) - offsets.begin()) - 1;
    out.frame = bad_frame - offsets[out.sequence];
    return out;
  }
  // The whole sequences' groups in order, then the chunked sequences in order.
  for (std::size_t g = 0; g < G; ++g) out.log_likelihood += host_lp[g];
  for (std::size_t q = 0; q < n_chunked; ++q) out.log_likelihood += host_seq_lp[q];
  return out;
}

}  // namespace cuem::cuda
