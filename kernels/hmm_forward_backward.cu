// The HMM chain on the device (hmm_forward_backward.hpp). A block takes a group of consecutive
// sequences, one after another; thread j holds states j, j + threads, ... of every
// K-vector, and entries tid, tid + threads, ... of the K x K transition sums.
//
// Why a block of one or two warps a sequence group: the chain is sequential in time, so
// a sequence's latency is its frames times one step, and a step is K multiply-adds per
// state and one barrier. Small blocks keep the barrier cheap and let many sequences (many
// blocks) fill the device; K <= 64 keeps a block's transition sums and vectors in shared
// memory. Few long sequences are cut into chunks that run as items of the same kernel
// from messages formed by the chunks' matrix products (below, "long sequences in chunks").
// Large K (65 to 512): a sequence across a block of up to eight warps, each thread its
// states' K multiply-adds a step, the transition sums in the group's slice of device
// memory (K^2 doubles, too many for shared memory), no chunks (their products' K^3 a frame
// would cost K times the chain itself).
//
// Forward: v_t(j) = (sum_i v_{t-1}(i) A_ij) / c_{t-1} * b_t(j), c_t = sum_j v_t(j) (summed
// by every thread in state order, so all threads agree without a second barrier),
// a_t = v_t / c_t kept in device memory. Backward, with gamma and xi formed on the way:
// r_{T-1} = 1, r_t(j) = (sum_k A_jk u_{t+1}(k)) / c_{t+1}, u_t = b_t * r_t,
// gamma_t = a_t * r_t / G_t with G_t = sum_j a_t(j) r_t(j), and
// xi sums += a_t(i) u_{t+1}(j) / (c_{t+1} G_{t+1}), multiplied by A_ij once a sequence ends
// (as the host chain does). One barrier a frame: the shared vectors are double-buffered
// (forward) and triple-buffered (backward), so a thread one step ahead never overwrites
// what a slower one still reads.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "cuda_check.cuh"
#include "device_memory.cuh"
#include "hmm_forward_backward.hpp"

namespace cuem::cuda {
namespace {

// The bytes of the groups' sums kept on the device at once bound the number of groups.
constexpr std::size_t kGroupSumsBytes = std::size_t{64} << 20;
constexpr std::size_t kMinGroups = 64;

struct ChainArgs {
  const double* pi;
  const double* A;
  const double* AT;
  int K;
  const std::size_t* offsets;  // S + 1 boundaries of the items: sequences, or chunks of them
  const unsigned char* flags;  // S: kStartsSequence | kEndsSequence (null: every item is a sequence)
  const double* a_in;          // S x K: a of the frame before an item that does not start its sequence
  const double* r_in;          // S x K: r of the last frame of an item that does not end its sequence
  std::size_t S, G;
  double* b;
  const double* s;
  double* a;
  double* c;
  double* group_ll;     // G
  double* group_start;  // G x K
  double* group_trans;  // G x K x K
  long long* bad;       // G x 2: item and frame (of the whole data) first impossible, -1 none
  double* xi;           // G x K x K: an item's transition sums where K > kHmmSharedSumsStates (else null)
};

constexpr unsigned char kStartsSequence = kHmmStartsSequence, kEndsSequence = kHmmEndsSequence;

__global__ void hmm_chain_kernel(ChainArgs p) {
  CUEM_DYNAMIC_SHARED(smem);
  const int K = p.K;
  const std::size_t uK = static_cast<std::size_t>(K), KK = uK * uK;
  double* shared = reinterpret_cast<double*>(smem);
  const std::size_t g = blockIdx.x;
  double* xi = p.xi ? p.xi + g * KK : shared;  // KK, in shared memory up to kHmmSharedSumsStates
  double* v = p.xi ? shared : shared + KK;     // 2K (forward)
  double* u = v + 2 * uK;                        // 3K (backward)
  double* ab = u + 3 * uK;                       // 3K
  double* gb = ab + 3 * uK;                      // 3K
  const int tid = static_cast<int>(threadIdx.x), nt = static_cast<int>(blockDim.x);
  const std::size_t q0 = p.S * g / p.G, q1 = p.S * (g + 1) / p.G;
  for (std::size_t e = static_cast<std::size_t>(tid); e < KK; e += static_cast<std::size_t>(nt)) xi[e] = 0.0;
  double ll_group = 0.0;  // thread 0's
  for (std::size_t q = q0; q < q1; ++q) {
    const std::size_t lo = p.offsets[q], T = p.offsets[q + 1] - lo;
    const unsigned char fl = p.flags ? p.flags[q] : kStartsSequence | kEndsSequence;
    const double* a_in = fl & kStartsSequence ? nullptr : p.a_in + q * uK;
    const double* r_in = fl & kEndsSequence ? nullptr : p.r_in + q * uK;
    const double* bq = p.b + lo * uK;
    double* aq = p.a + lo * uK;
    double* cq = p.c + lo;
    // ---- forward
    double c_prev = 1.0, ll = 0.0;
    for (std::size_t t = 0; t < T; ++t) {
      double* vp = v + (t & 1) * uK;
      const double* vq = v + ((t + 1) & 1) * uK;
      for (int j = tid; j < K; j += nt) {
        double pred;
        if (t == 0 && !a_in) {
          pred = p.pi[j];
        } else if (t == 0) {  // a_in sums to 1: c_prev = 1
          pred = 0.0;
          for (int i = 0; i < K; ++i) pred += a_in[i] * p.A[i * K + j];
        } else {
          pred = 0.0;
          for (int i = 0; i < K; ++i) pred += vq[i] * p.A[i * K + j];
          pred /= c_prev;
        }
        vp[j] = pred * bq[t * uK + static_cast<std::size_t>(j)];
      }
      __syncthreads();
      double c = 0.0;
      for (int j = 0; j < K; ++j) c += vp[j];
      if (!(c > 0.0)) {  // the same c in every thread: the whole block leaves
        if (tid == 0) {
          p.bad[2 * g] = static_cast<long long>(q);
          p.bad[2 * g + 1] = static_cast<long long>(lo + t);
        }
        return;
      }
      for (int j = tid; j < K; j += nt) aq[t * uK + static_cast<std::size_t>(j)] = vp[j] / c;
      if (tid == 0) {
        cq[t] = c;
        ll += log(c) + p.s[lo + t];
      }
      c_prev = c;
    }
    __syncthreads();  // the forward pass's a (other threads' states) before the backward reads them
    // ---- backward, gamma and the transition sums
    double* gq = p.b + lo * uK;
    double G_next = 1.0;
    for (std::size_t t = T; t-- > 0;) {
      const std::size_t at = t % 3, an = (t + 1) % 3;
      double* ut = u + at * uK;
      const double* un = u + an * uK;
      for (int j = tid; j < K; j += nt) {
        double r = r_in ? r_in[j] : 1.0;
        if (t + 1 < T) {
          r = 0.0;
          for (int k = 0; k < K; ++k) r += p.AT[k * K + j] * un[k];
          r /= cq[t + 1];
        }
        const double aj = aq[t * uK + static_cast<std::size_t>(j)];
        ut[j] = gq[t * uK + static_cast<std::size_t>(j)] * r;
        ab[at * uK + static_cast<std::size_t>(j)] = aj;
        gb[at * uK + static_cast<std::size_t>(j)] = aj * r;
      }
      __syncthreads();
      double G = 0.0;
      for (int j = 0; j < K; ++j) G += gb[at * uK + static_cast<std::size_t>(j)];
      for (int j = tid; j < K; j += nt)
        gq[t * uK + static_cast<std::size_t>(j)] = gb[at * uK + static_cast<std::size_t>(j)] / G;
      if (t + 1 < T) {
        const double scale = 1.0 / (cq[t + 1] * G_next);
        // int indices: K^2 fits (K <= 512), and a 64-bit division costs tens of instructions here.
        const double* at_vec = ab + at * uK;
        for (int e = tid; e < K * K; e += nt) xi[e] += at_vec[e / K] * un[e % K] * scale;
      }
      G_next = G;
    }
    if (a_in) {  // the pair (frame before the item, its first frame)
      const double scale = 1.0 / (cq[0] * G_next);
      for (int e = tid; e < K * K; e += nt) xi[e] += a_in[e / K] * u[e % K] * scale;
    }
    // The item's sums into its group's, each entry by its one thread, in order.
    if (!a_in)
      for (int j = tid; j < K; j += nt) p.group_start[g * uK + static_cast<std::size_t>(j)] += gq[j];
    for (std::size_t e = static_cast<std::size_t>(tid); e < KK; e += static_cast<std::size_t>(nt)) {
      p.group_trans[g * KK + e] += p.A[e] * xi[e];
      xi[e] = 0.0;
    }
    if (tid == 0) ll_group += ll;
    __syncthreads();  // the next sequence's forward reuses v
  }
  if (tid == 0) p.group_ll[g] = ll_group;
}

// ---- long sequences in chunks (few sequences: one block each would leave the device idle)
//
// A sequence of T frames is cut into chunks of C frames; with M_k the product over chunk
// k's frames of A diag(b_t) (chunk 0 from its second frame), the forward message entering
// chunk k + 1 is f_k = f_{k-1} M_k normalised (f_0 from pi * b_0), and the backward message
// at chunk k's last frame r_k = M_{k+1} r_{k+1} normalised (r = 1 at the sequence's end).
// The chunks then run as items of hmm_chain_kernel from those messages, all at once. The
// products are normalised by their largest entry (exact, and the same in any order, so
// the results do not depend on the block size).

struct ProductArgs {
  const double* A;
  int K;
  const double* b;
  const std::size_t* from;  // per item: its product runs over frames [from, to) (empty: none)
  const std::size_t* to;
  const unsigned char* flags;
  std::size_t stride;  // doubles an item: 2 K^2, or 4 K^2 with the tree's halves
  double* M;           // per item: the product ends in the first K x K
};

__global__ void hmm_chunk_product_kernel(ProductArgs p) {
  CUEM_DYNAMIC_SHARED(smem);
  const int K = p.K;
  const std::size_t uK = static_cast<std::size_t>(K), KK = uK * uK;
  const int tid = static_cast<int>(threadIdx.x), nt = static_cast<int>(blockDim.x);
  double* red = reinterpret_cast<double*>(smem);  // 2 x threads
  const std::size_t i = blockIdx.x;
  double* M = p.M + i * p.stride;
  const std::size_t from = p.from[i], to = p.to[i];
  double inv = 1.0;
  for (std::size_t t = from; t < to; ++t) {
    const std::size_t n = t - from;
    const double* src = M + (n & 1) * KK;  // the product so far (n >= 1)
    double* dst = M + ((n + 1) & 1) * KK;
    double mx = 0.0;
    for (int e = tid; e < K * K; e += nt) {
      const int r = e / K, col = e % K;
      double v;
      if (n == 0) {
        v = p.A[e];
      } else {
        v = 0.0;
        for (int m = 0; m < K; ++m) v += src[r * K + m] * p.A[m * K + col];
        v *= inv;
      }
      v *= p.b[t * uK + static_cast<std::size_t>(col)];
      dst[e] = v;
      mx = v > mx ? v : mx;
    }
    red[(n & 1) * nt + tid] = mx;
    __syncthreads();
    mx = 0.0;
    for (int k = 0; k < nt; ++k) mx = red[(n & 1) * nt + k] > mx ? red[(n & 1) * nt + k] : mx;
    inv = mx > 0.0 ? 1.0 / mx : 1.0;
  }
  // The result into the first half, scaled by inv (an even count of frames ends there).
  const std::size_t n = to - from;
  if (n == 0) {  // a first chunk of one frame: the identity, for the tree
    if (p.flags[i] != (kStartsSequence | kEndsSequence))
      for (int e = tid; e < K * K; e += nt) M[e] = e / K == e % K ? 1.0 : 0.0;
    return;
  }
  const double* res = M + (n & 1) * KK;
  __syncthreads();
  if (n & 1)
    for (int e = tid; e < K * K; e += nt) M[e] = res[e] * inv;
  else
    for (int e = tid; e < K * K; e += nt) M[e] *= inv;
}

struct MessageArgs {
  const double* pi;
  int K;
  const double* b;
  const std::size_t* seq_lo;      // per chunked sequence: its first frame
  const std::size_t* item_begin;  // per chunked sequence: its chunks are items [item_begin, item_end)
  const std::size_t* item_end;
  const std::size_t* item_from;   // per item: where its product starts (to know empty products)
  const std::size_t* item_to;
  const double* M;                // per item, 2 x K x K (the product in the first half)
  double* a_in;                   // per item, K
  double* r_in;                   // per item, K
};

// One block a chunked sequence: its chunks' entering messages, chunk after chunk.
__global__ void hmm_chunk_messages_kernel(MessageArgs p) {
  CUEM_DYNAMIC_SHARED(smem);
  const int K = p.K;
  const std::size_t uK = static_cast<std::size_t>(K), KK = uK * uK;
  const int tid = static_cast<int>(threadIdx.x), nt = static_cast<int>(blockDim.x);
  double* f = reinterpret_cast<double*>(smem);  // K
  double* tmp = f + uK;                         // K
  const std::size_t q = blockIdx.x;
  const std::size_t i0 = p.item_begin[q], i1 = p.item_end[q];
  // out = normalised (in x M) (forward) or normalised (M r) (backward), from shared `f`.
  const auto step = [&](const double* M, bool forward, double* out) {
    for (int j = tid; j < K; j += nt) {
      double v = 0.0;
      for (int k = 0; k < K; ++k) v += forward ? f[k] * M[k * K + j] : M[j * K + k] * f[k];
      tmp[j] = v;
    }
    __syncthreads();
    double sum = 0.0;
    for (int k = 0; k < K; ++k) sum += tmp[k];
    const double inv = sum > 0.0 ? 1.0 / sum : 0.0;  // 0: no path; the chain pass reports it
    __syncthreads();
    for (int j = tid; j < K; j += nt) {
      f[j] = tmp[j] * inv;
      if (out) out[j] = f[j];
    }
    __syncthreads();
  };
  // Forward: f_0 = pi * b_0 normalised, through chunk 0's product, then chunk by chunk.
  for (int j = tid; j < K; j += nt) f[j] = p.pi[j] * p.b[p.seq_lo[q] * uK + static_cast<std::size_t>(j)];
  __syncthreads();
  {
    double sum = 0.0;
    for (int k = 0; k < K; ++k) sum += f[k];
    const double inv = sum > 0.0 ? 1.0 / sum : 0.0;
    __syncthreads();
    for (int j = tid; j < K; j += nt) f[j] *= inv;
    __syncthreads();
  }
  for (std::size_t i = i0; i + 1 < i1; ++i) {
    if (p.item_to[i] > p.item_from[i]) {
      step(p.M + i * 2 * KK, true, p.a_in + (i + 1) * uK);
    } else {
      for (int j = tid; j < K; j += nt) p.a_in[(i + 1) * uK + static_cast<std::size_t>(j)] = f[j];
      __syncthreads();
    }
  }
  // Backward: r = 1 at the end, r_k = M_{k+1} r_{k+1}.
  for (int j = tid; j < K; j += nt) f[j] = 1.0 / K;
  __syncthreads();
  for (std::size_t i = i1 - 1; i > i0; --i) step(p.M + i * 2 * KK, false, p.r_in + (i - 1) * uK);
}

// The messages by a log-depth tree (hmm_use_tree): inclusive scans of the chunk products
// within each sequence, prefix products P_k = M_first ... M_k (forward) and suffix products
// Q_k = M_k ... M_last (backward), a Hillis-Steele level a launch; each item's 4 K x K hold
// P in halves 0 and 1 and Q in halves 2 and 3, alternating level by level (the first level
// reads both from the product). Products normalised by their largest entry as above.
struct TreeLevelArgs {
  int K;
  std::size_t offset;
  int src_half;
  bool first_level;
  const std::size_t* first;  // per item: its sequence's first item, and one past its last
  const std::size_t* last;
  const unsigned char* flags;
  double* M;  // per item 4 K^2
};

__global__ void hmm_chunk_tree_level_kernel(TreeLevelArgs p) {
  CUEM_DYNAMIC_SHARED(smem);
  const int K = p.K;
  const std::size_t uK = static_cast<std::size_t>(K), KK = uK * uK;
  const int tid = static_cast<int>(threadIdx.x), nt = static_cast<int>(blockDim.x);
  double* red = reinterpret_cast<double*>(smem);  // 2 x threads
  const std::size_t i = blockIdx.x;
  if (p.flags[i] == (kStartsSequence | kEndsSequence)) return;
  const std::size_t h = static_cast<std::size_t>(p.src_half);
  const auto at = [&](std::size_t item, std::size_t half) { return p.M + item * 4 * KK + half * KK; };
  const double* pre = at(i, h);
  const double* suf = at(i, p.first_level ? 0 : 2 + h);
  double* pre_out = at(i, 1 - h);
  double* suf_out = at(i, 3 - h);
  const bool left = i - p.first[i] >= p.offset, right = i + p.offset < p.last[i];
  const double* pre_l = left ? at(i - p.offset, h) : nullptr;
  const double* suf_r = right ? at(i + p.offset, p.first_level ? 0 : 2 + h) : nullptr;
  double mx_p = 0.0, mx_s = 0.0;
  for (int e = tid; e < K * K; e += nt) {
    const int r = e / K, col = e % K;
    double vp = pre[e], vs = suf[e];
    if (left) {
      vp = 0.0;
      for (int m = 0; m < K; ++m) vp += pre_l[r * K + m] * pre[m * K + col];
    }
    if (right) {
      vs = 0.0;
      for (int m = 0; m < K; ++m) vs += suf[r * K + m] * suf_r[m * K + col];
    }
    pre_out[e] = vp;
    suf_out[e] = vs;
    mx_p = vp > mx_p ? vp : mx_p;
    mx_s = vs > mx_s ? vs : mx_s;
  }
  red[tid] = mx_p;
  red[nt + tid] = mx_s;
  __syncthreads();
  mx_p = mx_s = 0.0;
  for (int k = 0; k < nt; ++k) {
    mx_p = red[k] > mx_p ? red[k] : mx_p;
    mx_s = red[nt + k] > mx_s ? red[nt + k] : mx_s;
  }
  const double inv_p = left && mx_p > 0.0 ? 1.0 / mx_p : 1.0, inv_s = right && mx_s > 0.0 ? 1.0 / mx_s : 1.0;
  for (int e = tid; e < K * K; e += nt) {
    pre_out[e] *= inv_p;
    suf_out[e] *= inv_s;
  }
}

// After the tree, one block a chunk: a_in = f_0 P_{k-1} and r_in = Q_{k+1} 1, normalised
// to sum 1 (f_0 = pi b_0 normalised), as the sequential messages are.
struct TreeMessageArgs {
  const double* pi;
  int K;
  const double* b;
  const std::size_t* offsets;  // item boundaries
  const std::size_t* first;
  const unsigned char* flags;
  int half;
  const double* M;
  double* a_in;
  double* r_in;
};

__global__ void hmm_chunk_tree_messages_kernel(TreeMessageArgs p) {
  CUEM_DYNAMIC_SHARED(smem);
  const int K = p.K;
  const std::size_t uK = static_cast<std::size_t>(K), KK = uK * uK;
  const int tid = static_cast<int>(threadIdx.x), nt = static_cast<int>(blockDim.x);
  double* f0 = reinterpret_cast<double*>(smem);  // K
  double* fa = f0 + uK;                          // K
  double* fr = fa + uK;                          // K
  const std::size_t i = blockIdx.x;
  const unsigned char fl = p.flags[i];
  const std::size_t half = static_cast<std::size_t>(p.half);
  const auto sum_of = [&](const double* v) {  // every thread in state order: all agree
    double sum = 0.0;
    for (int k = 0; k < K; ++k) sum += v[k];
    return sum > 0.0 ? 1.0 / sum : 0.0;  // 0: no path; the chain pass reports it
  };
  if (!(fl & kStartsSequence)) {
    const std::size_t lo = p.offsets[p.first[i]];
    for (int j = tid; j < K; j += nt) f0[j] = p.pi[j] * p.b[lo * uK + static_cast<std::size_t>(j)];
    __syncthreads();
    const double inv0 = sum_of(f0);
    __syncthreads();
    for (int j = tid; j < K; j += nt) f0[j] *= inv0;
    __syncthreads();
    const double* P = p.M + (i - 1) * 4 * KK + half * KK;
    for (int j = tid; j < K; j += nt) {
      double v = 0.0;
      for (int k = 0; k < K; ++k) v += f0[k] * P[k * K + j];
      fa[j] = v;
    }
  }
  if (!(fl & kEndsSequence)) {
    const double* Q = p.M + (i + 1) * 4 * KK + (2 + half) * KK;
    for (int j = tid; j < K; j += nt) {
      double v = 0.0;
      for (int k = 0; k < K; ++k) v += Q[j * K + k];
      fr[j] = v;
    }
  }
  __syncthreads();
  if (!(fl & kStartsSequence)) {
    const double inv = sum_of(fa);
    for (int j = tid; j < K; j += nt) p.a_in[i * uK + static_cast<std::size_t>(j)] = fa[j] * inv;
  }
  if (!(fl & kEndsSequence)) {
    const double inv = sum_of(fr);
    for (int j = tid; j < K; j += nt) p.r_in[i * uK + static_cast<std::size_t>(j)] = fr[j] * inv;
  }
}

// The frames of a chunk of a sequence of T frames among S (0: the whole sequence is one
// item). Chunks of about sqrt(T) frames balance the chunk pass against the messages'
// sequential pass. Only where the sequences are far too few to fill the device (a device
// holds a few thousand of these blocks): the products cost K times the chain's work a
// frame, which many sequences of moderate length do not repay (bench/NOTES.md).
constexpr std::size_t kChunkBelowSequences = 256, kMinChunkFrames = 256;
std::size_t chunk_frames(std::size_t T, std::size_t S, std::size_t forced, int K) {
  if (forced) return T > forced ? forced : 0;
  if (S >= kChunkBelowSequences || K > kHmmSharedSumsStates) return 0;
  const std::size_t C =
      std::max(kMinChunkFrames, static_cast<std::size_t>(std::ceil(std::sqrt(static_cast<double>(T)))));
  return T >= 2 * C ? C : 0;
}


}  // namespace

int hmm_chain_threads(int K) noexcept { return K <= 32 ? 32 : K <= 64 ? 64 : K <= 128 ? 128 : 256; }

HmmItems hmm_items(const std::vector<std::size_t>& offsets, std::size_t forced_chunk_frames, int K) {
  HmmItems it;
  const std::size_t S = offsets.size() - 1;
  for (std::size_t q = 0; q < S; ++q) {
    const std::size_t lo = offsets[q], hi = offsets[q + 1], T = hi - lo;
    const std::size_t C = chunk_frames(T, S, forced_chunk_frames, K);
    if (C == 0) {
      it.first.push_back(it.flags.size());
      it.last.push_back(it.flags.size() + 1);
      it.bounds.push_back(hi);
      it.flags.push_back(kStartsSequence | kEndsSequence);
      it.from.push_back(0);
      it.to.push_back(0);
      continue;
    }
    it.seq_lo.push_back(lo);
    it.item_begin.push_back(it.flags.size());
    for (std::size_t c0 = lo; c0 < hi; c0 += C) {
      const std::size_t c1 = std::min(hi, c0 + C);
      it.bounds.push_back(c1);
      it.flags.push_back(
          static_cast<unsigned char>((c0 == lo ? kStartsSequence : 0) | (c1 == hi ? kEndsSequence : 0)));
      it.from.push_back(c0 == lo ? c0 + 1 : c0);
      it.to.push_back(c1);
    }
    it.item_end.push_back(it.flags.size());
    it.first.resize(it.flags.size(), it.item_begin.back());
    it.last.resize(it.flags.size(), it.item_end.back());
  }
  return it;
}

// Sequences of more chunks than this take the tree: its ceil(log2 n) levels (a launch each,
// K^3 a chunk) then cost less than n one-after-another K^2 steps (bench/NOTES.md).
constexpr std::size_t kTreeAboveChunks = 64;

bool hmm_use_tree(const HmmItems& items, HmmChainInput::Scan scan) {
  if (scan != HmmChainInput::Scan::by_shape) return scan == HmmChainInput::Scan::tree && items.chunked() > 0;
  for (std::size_t q = 0; q < items.chunked(); ++q)
    if (items.item_end[q] - items.item_begin[q] > kTreeAboveChunks) return true;
  return false;
}

std::size_t hmm_most_chunks(const HmmItems& items) {
  std::size_t most = 0;
  for (std::size_t q = 0; q < items.chunked(); ++q) most = std::max(most, items.item_end[q] - items.item_begin[q]);
  return most;
}

// The fit's placed data and buffers are already allocated; the pool's cache is not counted.
bool hmm_scratch_fits(std::size_t bytes) {
  std::size_t free_b = 0, total_b = 0;
  CUEM_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
  return bytes <= free_b / 10 * 9;
}

HmmChainResult hmm_chain_pass(int device, const HmmChainInput& in, double* start, double* trans, int threads) {
  const int K = in.K;
  if (K < 1 || K > kHmmChainMaxStates)
    throw InvalidArgument("the device HMM chain takes 1 to " + std::to_string(kHmmChainMaxStates) + " states, not " +
                          std::to_string(K));
  if (threads == 0) threads = hmm_chain_threads(K);
  if (threads < 32 || threads > 256 || threads % 32 != 0)
    throw InvalidArgument("the device HMM chain's threads must be a multiple of 32 up to 256");
  const std::vector<std::size_t>& offsets = *in.offsets;
  const std::size_t S = offsets.size() - 1, N = offsets.back(), uK = static_cast<std::size_t>(K), KK = uK * uK;
  HmmChainResult out;
  std::fill(start, start + uK, 0.0);
  std::fill(trans, trans + KK, 0.0);
  if (S == 0 || N == 0) return out;
  // The items: whole sequences, or chunks of the long ones when there are few sequences.
  const HmmItems it = hmm_items(offsets, in.chunk_frames, K);
  const std::vector<std::size_t>&items = it.bounds, &from = it.from, &to = it.to, &seq_lo = it.seq_lo,
                                   &item_begin = it.item_begin, &item_end = it.item_end;
  const std::vector<unsigned char>& flags = it.flags;
  const std::size_t I = flags.size(), n_chunked = seq_lo.size();
  const bool shared_sums = K <= kHmmSharedSumsStates;
  const std::size_t per_group = ((shared_sums ? 1 : 2) * KK + uK + 3) * sizeof(double);
  // At least kMinGroups blocks where the items allow, however large K: fewer leave the
  // device idle.
  const std::size_t G = std::min<std::size_t>({I, std::max<std::size_t>(kMinGroups, kGroupSumsBytes / per_group),
                                               std::size_t{0x7fffffff}});
  const bool tree = hmm_use_tree(it, in.scan);
  const std::size_t stride = (tree ? 4 : 2) * KK;  // per item: the product and its scratch, the tree's halves
  const std::size_t chunk_doubles = n_chunked ? I * (stride + 2 * uK) : 0;
  const ScopedDevice on(device);
  const std::size_t xi_doubles = shared_sums ? 0 : G * KK;
  if (!hmm_scratch_fits((2 * N * uK + 2 * N + G * (1 + uK + KK) + uK + 2 * KK + chunk_doubles + xi_doubles) *
                            sizeof(double) +
                      (I + 1) * (sizeof(std::size_t) + 5 * sizeof(std::size_t) + 1))) {
    out.ran = false;
    return out;
  }
  const Stream stream;
  const cudaStream_t st = stream.get();
  std::vector<double> AT(KK);
  for (std::size_t i = 0; i < uK; ++i)
    for (std::size_t j = 0; j < uK; ++j) AT[j * uK + i] = in.transmat[i * uK + j];
  DeviceBuffer<double> model(uK + 2 * KK), b(N * uK), s(N), a(N * uK), c(N), sums(G * (1 + uK + KK));
  DeviceBuffer<std::size_t> offs(I + 1);
  DeviceBuffer<long long> bad(2 * G);
  DeviceBuffer<unsigned char> flag_dev(I);
  DeviceBuffer<double> chunk_work(chunk_doubles);  // per item: the product (2 K^2), a_in, r_in
  DeviceBuffer<double> xi_work(xi_doubles);        // per group: an item's transition sums (large K)
  DeviceBuffer<std::size_t> chunk_index(n_chunked ? (tree ? 4 : 2) * I + 3 * n_chunked : 0);
  CUEM_CUDA_CHECK(cudaMemcpyAsync(model.data(), in.startprob, uK * sizeof(double), cudaMemcpyHostToDevice, st));
  CUEM_CUDA_CHECK(
      cudaMemcpyAsync(model.data() + uK, in.transmat, KK * sizeof(double), cudaMemcpyHostToDevice, st));
  CUEM_CUDA_CHECK(
      cudaMemcpyAsync(model.data() + uK + KK, AT.data(), KK * sizeof(double), cudaMemcpyHostToDevice, st));
  CUEM_CUDA_CHECK(cudaMemcpyAsync(b.data(), in.b, N * uK * sizeof(double), cudaMemcpyHostToDevice, st));
  CUEM_CUDA_CHECK(cudaMemcpyAsync(s.data(), in.s, N * sizeof(double), cudaMemcpyHostToDevice, st));
  CUEM_CUDA_CHECK(
      cudaMemcpyAsync(offs.data(), items.data(), (I + 1) * sizeof(std::size_t), cudaMemcpyHostToDevice, st));
  CUEM_CUDA_CHECK(cudaMemcpyAsync(flag_dev.data(), flags.data(), I, cudaMemcpyHostToDevice, st));
  CUEM_CUDA_CHECK(cudaMemsetAsync(sums.data(), 0, sums.size() * sizeof(double), st));
  CUEM_CUDA_CHECK(cudaMemsetAsync(bad.data(), 0xff, bad.size() * sizeof(long long), st));
  double* M = chunk_work.data();
  double* a_in = n_chunked ? M + I * stride : nullptr;
  double* r_in = n_chunked ? a_in + I * uK : nullptr;
  if (n_chunked) {
    // The chunks' products, then each chunked sequence's messages.
    std::vector<std::size_t> index(from);
    index.insert(index.end(), to.begin(), to.end());
    index.insert(index.end(), seq_lo.begin(), seq_lo.end());
    index.insert(index.end(), item_begin.begin(), item_begin.end());
    index.insert(index.end(), item_end.begin(), item_end.end());
    if (tree) {
      index.insert(index.end(), it.first.begin(), it.first.end());
      index.insert(index.end(), it.last.begin(), it.last.end());
    }
    CUEM_CUDA_CHECK(cudaMemcpyAsync(chunk_index.data(), index.data(), index.size() * sizeof(std::size_t),
                                    cudaMemcpyHostToDevice, st));
    const std::size_t* ix = chunk_index.data();
    const unsigned blocks = checked_cast<unsigned>(I, "HMM chunk blocks");
    const std::size_t reduce_bytes = 2 * static_cast<std::size_t>(threads) * sizeof(double);
    const ProductArgs pa{model.data() + uK, K, b.data(), ix, ix + I, flag_dev.data(), stride, M};
    CUEM_LAUNCH(hmm_chunk_product_kernel, blocks, threads, reduce_bytes, st)(pa);
    CUEM_CUDA_CHECK_LAUNCH();
    if (tree) {
      const std::size_t* first = ix + 2 * I + 3 * n_chunked;
      int half = 0;
      const std::size_t most = hmm_most_chunks(it);
      for (std::size_t offset = 1; offset < most; offset *= 2, half ^= 1) {
        const TreeLevelArgs ta{K, offset, half, offset == 1, first, first + I, flag_dev.data(), M};
        CUEM_LAUNCH(hmm_chunk_tree_level_kernel, blocks, threads, reduce_bytes, st)(ta);
        CUEM_CUDA_CHECK_LAUNCH();
      }
      const TreeMessageArgs ma{model.data(), K, b.data(), offs.data(), first, flag_dev.data(), half, M, a_in, r_in};
      CUEM_LAUNCH(hmm_chunk_tree_messages_kernel, blocks, threads, 3 * uK * sizeof(double), st)(ma);
      CUEM_CUDA_CHECK_LAUNCH();
    } else {
      const MessageArgs ma{model.data(), K, b.data(), ix + 2 * I, ix + 2 * I + n_chunked,
                           ix + 2 * I + 2 * n_chunked, ix, ix + I, M, a_in, r_in};
      CUEM_LAUNCH(hmm_chunk_messages_kernel, checked_cast<unsigned>(n_chunked, "HMM message blocks"), threads,
                  2 * uK * sizeof(double), st)(ma);
      CUEM_CUDA_CHECK_LAUNCH();
    }
  }
  ChainArgs args{model.data(), model.data() + uK, model.data() + uK + KK, K, offs.data(), flag_dev.data(), a_in,
                 r_in, I, G, b.data(), s.data(), a.data(), c.data(), sums.data(), sums.data() + G,
                 sums.data() + G * (1 + uK), bad.data(), shared_sums ? nullptr : xi_work.data()};
  const std::size_t shared = ((shared_sums ? KK : 0) + 11 * uK) * sizeof(double);
  CUEM_LAUNCH(hmm_chain_kernel, checked_cast<unsigned>(G, "HMM chain blocks"), threads, shared, st)(args);
  CUEM_CUDA_CHECK_LAUNCH();
  std::vector<double> host_sums(sums.size());
  std::vector<long long> host_bad(bad.size());
  CUEM_CUDA_CHECK(cudaMemcpyAsync(in.b, b.data(), N * uK * sizeof(double), cudaMemcpyDeviceToHost, st));
  CUEM_CUDA_CHECK(
      cudaMemcpyAsync(host_sums.data(), sums.data(), sums.size() * sizeof(double), cudaMemcpyDeviceToHost, st));
  CUEM_CUDA_CHECK(
      cudaMemcpyAsync(host_bad.data(), bad.data(), bad.size() * sizeof(long long), cudaMemcpyDeviceToHost, st));
  stream.synchronize();
  for (std::size_t g = 0; g < G; ++g)
    if (host_bad[2 * g] >= 0) {
      // The item's frame, as its sequence counts it.
      const std::size_t frame = static_cast<std::size_t>(host_bad[2 * g + 1]);
      out.impossible = true;
      out.sequence = static_cast<std::size_t>(std::upper_bound(offsets.begin(), offsets.end(), frame) -
                                              offsets.begin()) - 1;
      out.frame = frame - offsets[out.sequence];
      return out;
    }
  // The groups in order.
  for (std::size_t g = 0; g < G; ++g) {
    out.log_likelihood += host_sums[g];
    for (std::size_t k = 0; k < uK; ++k) start[k] += host_sums[G + g * uK + k];
    for (std::size_t e = 0; e < KK; ++e) trans[e] += host_sums[G * (1 + uK) + g * KK + e];
  }
  return out;
}

}  // namespace cuem::cuda
