#include "engine/hmm_device_chain.hpp"

#include <string>

#include "cuem/errors.hpp"
#include "engine/hmm_chain.hpp"
#if defined(CUEM_HAVE_CUDA)
#include "hmm_forward_backward.hpp"  // kernels/
#endif

namespace cuem::engine {

bool device_chain_available(const Primitives& prims, int K) noexcept {
#if defined(CUEM_HAVE_CUDA)
  return prims.cuda_device() >= 0 && K >= 1 && K <= cuda::kHmmChainMaxStates;
#else
  (void)prims;
  (void)K;
  return false;
#endif
}

double device_chain_pass(const Primitives& prims, const HmmModel& model, const std::vector<std::size_t>& offsets,
                         EmissionFrames& frames, double* start, double* trans, int threads,
                         std::size_t chunk_frames) {
  const int K = model.n_components();
  if (!device_chain_available(prims, K))
    throw Error(std::string("internal: the HMM chain cannot run on the ") + prims.name() + " backend's device");
#if defined(CUEM_HAVE_CUDA)
  cuda::HmmChainInput in;
  in.startprob = model.startprob.data();
  in.transmat = model.transmat.data();
  in.K = K;
  in.offsets = &offsets;
  in.b = frames.b.data();
  in.s = frames.s.data();
  in.chunk_frames = chunk_frames;
  const cuda::HmmChainResult r = cuda::hmm_chain_pass(prims.cuda_device(), in, start, trans, threads);
  if (!r.ran) return chain_pass(model, offsets, frames, start, trans);  // no room on the device
  if (r.impossible) throw_impossible_frame(r.frame);
  return r.log_likelihood;
#else
  (void)offsets;
  (void)frames;
  (void)start;
  (void)trans;
  (void)threads;
  (void)chunk_frames;
  return 0.0;
#endif
}

double device_viterbi(const Primitives& prims, const HmmModel& model, const std::vector<std::size_t>& offsets,
                      const EmissionFrames& frames, int* states, int threads) {
  const int K = model.n_components();
  if (!device_chain_available(prims, K))
    throw Error(std::string("internal: Viterbi cannot run on the ") + prims.name() + " backend's device");
#if defined(CUEM_HAVE_CUDA)
  cuda::HmmChainInput in;
  in.startprob = model.startprob.data();
  in.transmat = model.transmat.data();
  in.K = K;
  in.offsets = &offsets;
  in.b = const_cast<double*>(frames.b.data());  // read only
  in.s = frames.s.data();
  const cuda::HmmChainResult r = cuda::hmm_viterbi(prims.cuda_device(), in, states, threads);
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
  return 0.0;
#endif
}

}  // namespace cuem::engine
