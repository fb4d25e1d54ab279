// Viterbi on the device (hmm_forward_backward.hpp): one block a group of consecutive
// sequences as the forward-backward kernel takes them; delta double-buffered in shared
// memory (one barrier a frame), each frame's best predecessor per state kept in device
// memory, the path read back by one thread a sequence.
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
  const std::size_t G = std::min<std::size_t>({S, kViterbiGroups, std::size_t{0x7fffffff}});
  const ScopedDevice on(device);
  if (!hmm_scratch_fits((N * uK + N + G + uK + KK) * sizeof(double) + (N * uK + N) * sizeof(int) +
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
