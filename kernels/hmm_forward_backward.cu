// The HMM chain on the device (hmm_forward_backward.hpp). A block takes a group of consecutive
// sequences, one after another; thread j holds states j, j + threads, ... of every
// K-vector, and entries tid, tid + threads, ... of the K x K transition sums.
//
// Why a block of one or two warps a sequence group: the chain is sequential in time, so
// a sequence's latency is its frames times one step, and a step is K multiply-adds per
// state and one barrier. Small blocks keep the barrier cheap and let many sequences (many
// blocks) fill the device; K <= 64 keeps a block's transition sums and vectors in shared
// memory. Long single sequences want the temporal-parallel scan instead (bench/NOTES.md).
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

struct ChainArgs {
  const double* pi;
  const double* A;
  const double* AT;
  int K;
  const std::size_t* offsets;
  std::size_t S, G;
  double* b;
  const double* s;
  double* a;
  double* c;
  double* group_ll;     // G
  double* group_start;  // G x K
  double* group_trans;  // G x K x K
  long long* bad;       // G x 2: sequence and frame of the first impossible frame, -1 none
};

__global__ void hmm_chain_kernel(ChainArgs p) {
  CUEM_DYNAMIC_SHARED(smem);
  const int K = p.K;
  const std::size_t uK = static_cast<std::size_t>(K), KK = uK * uK;
  double* xi = reinterpret_cast<double*>(smem);  // KK
  double* v = xi + KK;                           // 2K (forward)
  double* u = v + 2 * uK;                        // 3K (backward)
  double* ab = u + 3 * uK;                       // 3K
  double* gb = ab + 3 * uK;                      // 3K
  const int tid = static_cast<int>(threadIdx.x), nt = static_cast<int>(blockDim.x);
  const std::size_t g = blockIdx.x;
  const std::size_t q0 = p.S * g / p.G, q1 = p.S * (g + 1) / p.G;
  for (std::size_t e = static_cast<std::size_t>(tid); e < KK; e += static_cast<std::size_t>(nt)) xi[e] = 0.0;
  double ll_group = 0.0;  // thread 0's
  for (std::size_t q = q0; q < q1; ++q) {
    const std::size_t lo = p.offsets[q], T = p.offsets[q + 1] - lo;
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
        if (t == 0) {
          pred = p.pi[j];
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
          p.bad[2 * g + 1] = static_cast<long long>(t);
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
        double r = 1.0;
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
        // int indices: K <= 64, and a 64-bit division costs tens of instructions here.
        const double* at_vec = ab + at * uK;
        for (int e = tid; e < K * K; e += nt) xi[e] += at_vec[e / K] * un[e % K] * scale;
      }
      G_next = G;
    }
    // The sequence's sums into its group's, each entry by its one thread, in order.
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

struct ViterbiArgs {
  const double* log_pi;
  const double* log_A;
  int K;
  const std::size_t* offsets;
  std::size_t S, G;
  const double* b;
  const double* s;
  int* psi;  // N x K: each frame's best predecessor per state
  int* states;
  double* group_lp;  // G
  long long* bad;    // G x 2
};

// One block a group of sequences; delta double-buffered in shared memory (one barrier a
// frame, as the forward pass).
__global__ void hmm_viterbi_kernel(ViterbiArgs p) {
  CUEM_DYNAMIC_SHARED(smem);
  const int K = p.K;
  const std::size_t uK = static_cast<std::size_t>(K);
  double* delta = reinterpret_cast<double*>(smem);  // 2K
  const int tid = static_cast<int>(threadIdx.x), nt = static_cast<int>(blockDim.x);
  const std::size_t g = blockIdx.x;
  const std::size_t q0 = p.S * g / p.G, q1 = p.S * (g + 1) / p.G;
  double lp_group = 0.0;
  for (std::size_t q = q0; q < q1; ++q) {
    const std::size_t lo = p.offsets[q], T = p.offsets[q + 1] - lo;
    for (std::size_t t = 0; t < T; ++t) {
      double* cur = delta + (t & 1) * uK;
      const double* prev = delta + ((t + 1) & 1) * uK;
      for (int j = tid; j < K; j += nt) {
        const std::size_t at = (lo + t) * uK + static_cast<std::size_t>(j);
        if (t == 0) {
          cur[j] = p.log_pi[j] + log(p.b[at]) + p.s[lo];
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
          cur[j] = best + log(p.b[at]) + p.s[lo + t];
          p.psi[at] = arg;
        }
      }
      __syncthreads();
    }
    // The path, by one thread: the last frame's best state (the lowest on ties), then back.
    if (tid == 0) {
      const double* last = delta + ((T - 1) & 1) * uK;
      int state = 0;
      for (int k = 1; k < K; ++k)
        if (last[k] > last[state]) state = k;
      const double lp = last[state];
      if (!isfinite(lp)) {
        if (p.bad[2 * g] < 0) {
          p.bad[2 * g] = static_cast<long long>(q);
          p.bad[2 * g + 1] = static_cast<long long>(T - 1);
        }
      } else {
        lp_group += lp;
        p.states[lo + T - 1] = state;
        for (std::size_t t = T - 1; t-- > 0;) {
          state = p.psi[(lo + t + 1) * uK + static_cast<std::size_t>(state)];
          p.states[lo + t] = state;
        }
      }
    }
    __syncthreads();  // thread 0 has read the last delta before the next sequence writes it
  }
  if (tid == 0) p.group_lp[g] = lp_group;
}

// Whether `bytes` of scratch fit in the current device's free memory with room to spare
// (the fit's placed data and buffers are already allocated; the pool's cache is not counted).
bool fits_on_device(std::size_t bytes) {
  std::size_t free_b = 0, total_b = 0;
  CUEM_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
  return bytes <= free_b / 10 * 9;
}

}  // namespace

int hmm_chain_threads(int K) noexcept { return K <= 32 ? 32 : 64; }

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
  const std::size_t per_group = (KK + uK + 3) * sizeof(double);
  const std::size_t G = std::min<std::size_t>({S, std::max<std::size_t>(1, kGroupSumsBytes / per_group),
                                               std::size_t{0x7fffffff}});
  const ScopedDevice on(device);
  if (!fits_on_device((2 * N * uK + 2 * N + G * (1 + uK + KK) + uK + 2 * KK) * sizeof(double) +
                      (S + 1) * sizeof(std::size_t))) {
    out.ran = false;
    return out;
  }
  const Stream stream;
  const cudaStream_t st = stream.get();
  std::vector<double> AT(KK);
  for (std::size_t i = 0; i < uK; ++i)
    for (std::size_t j = 0; j < uK; ++j) AT[j * uK + i] = in.transmat[i * uK + j];
  DeviceBuffer<double> model(uK + 2 * KK), b(N * uK), s(N), a(N * uK), c(N), sums(G * (1 + uK + KK));
  DeviceBuffer<std::size_t> offs(S + 1);
  DeviceBuffer<long long> bad(2 * G);
  CUEM_CUDA_CHECK(cudaMemcpyAsync(model.data(), in.startprob, uK * sizeof(double), cudaMemcpyHostToDevice, st));
  CUEM_CUDA_CHECK(
      cudaMemcpyAsync(model.data() + uK, in.transmat, KK * sizeof(double), cudaMemcpyHostToDevice, st));
  CUEM_CUDA_CHECK(
      cudaMemcpyAsync(model.data() + uK + KK, AT.data(), KK * sizeof(double), cudaMemcpyHostToDevice, st));
  CUEM_CUDA_CHECK(cudaMemcpyAsync(b.data(), in.b, N * uK * sizeof(double), cudaMemcpyHostToDevice, st));
  CUEM_CUDA_CHECK(cudaMemcpyAsync(s.data(), in.s, N * sizeof(double), cudaMemcpyHostToDevice, st));
  CUEM_CUDA_CHECK(
      cudaMemcpyAsync(offs.data(), offsets.data(), (S + 1) * sizeof(std::size_t), cudaMemcpyHostToDevice, st));
  CUEM_CUDA_CHECK(cudaMemsetAsync(sums.data(), 0, sums.size() * sizeof(double), st));
  CUEM_CUDA_CHECK(cudaMemsetAsync(bad.data(), 0xff, bad.size() * sizeof(long long), st));
  ChainArgs args{model.data(), model.data() + uK, model.data() + uK + KK, K, offs.data(), S, G, b.data(), s.data(),
                 a.data(), c.data(), sums.data(), sums.data() + G, sums.data() + G * (1 + uK), bad.data()};
  const std::size_t shared = (KK + 11 * uK) * sizeof(double);
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
      out.impossible = true;
      out.sequence = static_cast<std::size_t>(host_bad[2 * g]);
      out.frame = static_cast<std::size_t>(host_bad[2 * g + 1]);
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
  const std::size_t G = std::min<std::size_t>({S, kGroupSumsBytes / sizeof(double), std::size_t{0x7fffffff}});
  const ScopedDevice on(device);
  if (!fits_on_device((N * uK + N + G + uK + KK) * sizeof(double) + (N * uK + N) * sizeof(int) +
                      (S + 1) * sizeof(std::size_t))) {
    out.ran = false;
    return out;
  }
  const Stream stream;
  const cudaStream_t st = stream.get();
  // The logarithms of the model on the host, as engine::viterbi takes them.
  std::vector<double> logs(uK + KK);
  for (std::size_t k = 0; k < uK; ++k) logs[k] = std::log(in.startprob[k]);
  for (std::size_t e = 0; e < KK; ++e) logs[uK + e] = std::log(in.transmat[e]);
  DeviceBuffer<double> model(uK + KK), b(N * uK), s(N), lp(G);
  DeviceBuffer<int> psi(N * uK), path(N);
  DeviceBuffer<std::size_t> offs(S + 1);
  DeviceBuffer<long long> bad(2 * G);
  CUEM_CUDA_CHECK(cudaMemcpyAsync(model.data(), logs.data(), logs.size() * sizeof(double), cudaMemcpyHostToDevice, st));
  CUEM_CUDA_CHECK(cudaMemcpyAsync(b.data(), in.b, N * uK * sizeof(double), cudaMemcpyHostToDevice, st));
  CUEM_CUDA_CHECK(cudaMemcpyAsync(s.data(), in.s, N * sizeof(double), cudaMemcpyHostToDevice, st));
  CUEM_CUDA_CHECK(
      cudaMemcpyAsync(offs.data(), offsets.data(), (S + 1) * sizeof(std::size_t), cudaMemcpyHostToDevice, st));
  CUEM_CUDA_CHECK(cudaMemsetAsync(bad.data(), 0xff, bad.size() * sizeof(long long), st));
  ViterbiArgs args{model.data(), model.data() + uK, K, offs.data(), S, G, b.data(), s.data(), psi.data(), path.data(),
                   lp.data(), bad.data()};
  CUEM_LAUNCH(hmm_viterbi_kernel, checked_cast<unsigned>(G, "HMM Viterbi blocks"), threads,
              2 * uK * sizeof(double), st)(args);
  CUEM_CUDA_CHECK_LAUNCH();
  std::vector<double> host_lp(G);
  std::vector<long long> host_bad(bad.size());
  CUEM_CUDA_CHECK(cudaMemcpyAsync(states, path.data(), N * sizeof(int), cudaMemcpyDeviceToHost, st));
  CUEM_CUDA_CHECK(cudaMemcpyAsync(host_lp.data(), lp.data(), G * sizeof(double), cudaMemcpyDeviceToHost, st));
  CUEM_CUDA_CHECK(
      cudaMemcpyAsync(host_bad.data(), bad.data(), bad.size() * sizeof(long long), cudaMemcpyDeviceToHost, st));
  stream.synchronize();
  for (std::size_t g = 0; g < G; ++g)
    if (host_bad[2 * g] >= 0) {
      out.impossible = true;
      out.sequence = static_cast<std::size_t>(host_bad[2 * g]);
      out.frame = static_cast<std::size_t>(host_bad[2 * g + 1]);
      return out;
    }
  for (std::size_t g = 0; g < G; ++g) out.log_likelihood += host_lp[g];
  return out;
}

}  // namespace cuem::cuda
