#include "engine/hmm_device_chain.hpp"

#include <string>

#include "cuem/errors.hpp"
#include "engine/hmm_chain.hpp"
#if defined(CUEM_HAVE_CUDA)
#include "hmm_forward_backward.hpp"  // kernels/
#endif

namespace cuem::engine {

bool device_chain_available(const Primitives& prims, int K) noexcept { return chain_device(prims, K) >= 0; }

int chain_device(const Primitives& prims, int K) noexcept {
#if defined(CUEM_HAVE_CUDA)
  return K >= 1 && K <= cuda::kHmmChainMaxStates ? prims.cuda_device() : -1;
#else
  (void)prims;
  (void)K;
  return -1;
#endif
}

namespace {

#if defined(CUEM_HAVE_CUDA)
cuda::HmmChainInput::Scan kernel_scan(ChunkScan scan) {
  return scan == ChunkScan::tree         ? cuda::HmmChainInput::Scan::tree
         : scan == ChunkScan::sequential ? cuda::HmmChainInput::Scan::sequential
                                         : cuda::HmmChainInput::Scan::by_shape;
}
#endif

[[noreturn]] void no_device_chain(const std::string& what, const std::string& where) {
  throw Error("internal: " + what + " cannot run on " + where);
}

}  // namespace

double device_chain_pass(const Primitives& prims, const HmmModel& model, const std::vector<std::size_t>& offsets,
                         EmissionFrames& frames, double* start, double* trans, int threads,
                         std::size_t chunk_frames, ChunkScan scan) {
  const int device = chain_device(prims, model.n_components());
  if (device < 0) no_device_chain("the HMM chain", std::string("the ") + prims.name() + " backend's device");
  return device_chain_pass(device, model, offsets, frames, start, trans, threads, chunk_frames, scan);
}

double device_chain_pass(int device, const HmmModel& model, const std::vector<std::size_t>& offsets,
                         EmissionFrames& frames, double* start, double* trans, int threads,
                         std::size_t chunk_frames, ChunkScan scan) {
#if defined(CUEM_HAVE_CUDA)
  const int K = model.n_components();
  const std::size_t uK = static_cast<std::size_t>(K);
  if (device < 0) no_device_chain("the HMM chain", "no device");
  cuda::HmmChainInput in;
  in.startprob = model.startprob.data();
  in.transmat = model.transmat.data();
  in.K = K;
  in.offsets = &offsets;
  in.b = frames.b.data();
  in.s = frames.s.data();
  in.chunk_frames = chunk_frames;
  in.scan = kernel_scan(scan);
  // The device forms both sums; the caller's null asks only not to receive them.
  std::vector<double> scratch((start ? 0 : uK) + (trans ? 0 : uK * uK));
  const cuda::HmmChainResult r = cuda::hmm_chain_pass(device, in, start ? start : scratch.data(),
                                                      trans ? trans : scratch.data() + (start ? 0 : uK), threads);
  if (!r.ran) return chain_pass(model, offsets, frames, start, trans);  // no room on the device
  if (r.impossible) throw_impossible_frame(r.frame);
  return r.log_likelihood;
#else
  (void)model;
  (void)offsets;
  (void)frames;
  (void)start;
  (void)trans;
  (void)threads;
  (void)chunk_frames;
  (void)scan;
  no_device_chain("the HMM chain", "device " + std::to_string(device) + " (a build without CUDA)");
#endif
}

double device_viterbi(const Primitives& prims, const HmmModel& model, const std::vector<std::size_t>& offsets,
                      const EmissionFrames& frames, int* states, int threads, std::size_t chunk_frames,
                      ChunkScan scan) {
  const int K = model.n_components();
  const int device = chain_device(prims, K);
  if (device < 0) no_device_chain("Viterbi", std::string("the ") + prims.name() + " backend's device");
#if defined(CUEM_HAVE_CUDA)
  cuda::HmmChainInput in;
  in.startprob = model.startprob.data();
  in.transmat = model.transmat.data();
  in.K = K;
  in.offsets = &offsets;
  in.b = const_cast<double*>(frames.b.data());  // read only
  in.s = frames.s.data();
  in.chunk_frames = chunk_frames;
  in.scan = kernel_scan(scan);
  const cuda::HmmChainResult r = cuda::hmm_viterbi(device, in, states, threads);
  if (r.ran) {
    if (r.impossible) throw_impossible_frame(r.frame);
    return r.log_likelihood;
  }
  // No room on the device: the host's, sequence by sequence.
  double total = 0.0;
  std::vector<double> work;
  const std::size_t uK = static_cast<std::size_t>(K);
  for (std::size_t q = 0; q + 1 < offsets.size(); ++q) {
    const std::size_t lo = offsets[q];
    total += viterbi(model.startprob.data(), model.transmat.data(), K, offsets[q + 1] - lo, frames.b.data() + lo * uK,
                     frames.s.data() + lo, states + lo, work);
  }
  return total;
#else
  (void)offsets;
  (void)frames;
  (void)states;
  (void)threads;
  (void)chunk_frames;
  (void)scan;
  return 0.0;
#endif
}

double device_viterbi_log(int device, const std::vector<double>& startprob, const std::vector<double>& transmat,
                          const std::vector<std::size_t>& offsets, const double* log_e, int* states,
                          std::size_t chunk_frames) {
  const int K = static_cast<int>(startprob.size());
#if defined(CUEM_HAVE_CUDA)
  if (device < 0) no_device_chain("Viterbi", "no device");
  cuda::HmmChainInput in;
  in.startprob = startprob.data();
  in.transmat = transmat.data();
  in.K = K;
  in.offsets = &offsets;
  in.log_e = log_e;
  in.chunk_frames = chunk_frames;
  const cuda::HmmChainResult r = cuda::hmm_viterbi(device, in, states);
  if (r.ran) {
    if (r.impossible) throw_impossible_frame(r.frame);
    return r.log_likelihood;
  }
  double total = 0.0;  // no room on the device: the host's, sequence by sequence
  std::vector<double> work;
  const std::size_t uK = static_cast<std::size_t>(K);
  for (std::size_t q = 0; q + 1 < offsets.size(); ++q) {
    const std::size_t lo = offsets[q];
    total += viterbi_log(startprob.data(), transmat.data(), K, offsets[q + 1] - lo, log_e + lo * uK, states + lo,
                         work);
  }
  return total;
#else
  (void)transmat;
  (void)offsets;
  (void)log_e;
  (void)states;
  (void)chunk_frames;
  no_device_chain("Viterbi", "device " + std::to_string(device) + " (a build without CUDA) for " +
                                 std::to_string(K) + " states");
#endif
}

}  // namespace cuem::engine
