#pragma once
// The HMM chain on the primitives' CUDA device (kernels/hmm_forward_backward.hpp): the same sums as
// chain_pass (hmm_model.hpp) from the same emissions, formed on the device in float64.
#include <cstddef>
#include <vector>

#include "cuem/hmm.hpp"
#include "engine/hmm_model.hpp"
#include "engine/primitives.hpp"

namespace cuem::engine {

/// How the device passes form the messages (Viterbi: deltas) entering the chunks of a long
/// sequence: by the shape, chunk after chunk, or by a log-depth tree over the chunk
/// products (the tests force each).
enum class ChunkScan { by_shape, sequential, tree };

/// Whether the E-step's chain runs on prims' device: a CUDA backend (in a build with
/// CUDA) and K within the device chain's limit (64 states).
bool device_chain_available(const Primitives& prims, int K) noexcept;

/// prims' CUDA device where device_chain_available, else -1: for callers that keep the
/// device beyond the primitives (evaluation: score, posteriors, decode).
int chain_device(const Primitives& prims, int K) noexcept;

/// chain_pass with start and trans, on prims' device: gamma replaces frames.b; returns the
/// total log-likelihood. `threads` (0: the default for K) is the block size, for the tests
/// that the sums do not depend on it; `chunk_frames` (0: by the shape) the frames of a chunk
/// of a long sequence (kernels/hmm_forward_backward.cu), for the tests of the chunked form. Throws NumericalError for an impossible frame, as
/// the host chain does; Error where device_chain_available is false. Where the device's
/// free memory cannot hold the pass (2 N K + 2 N doubles), the host chain runs instead.
double device_chain_pass(const Primitives& prims, const HmmModel& model, const std::vector<std::size_t>& offsets,
                         EmissionFrames& frames, double* start, double* trans, int threads = 0,
                         std::size_t chunk_frames = 0, ChunkScan scan = ChunkScan::by_shape);

/// device_chain_pass on CUDA device `device` (chain_device's); start and trans may be null
/// where their sums are not wanted, as for chain_pass (gamma replaces frames.b either way).
double device_chain_pass(int device, const HmmModel& model, const std::vector<std::size_t>& offsets,
                         EmissionFrames& frames, double* start, double* trans, int threads = 0,
                         std::size_t chunk_frames = 0, ChunkScan scan = ChunkScan::by_shape);

/// Viterbi paths of every sequence on prims' device into states (N), as engine::viterbi
/// gives them per sequence (ties to the lowest state); returns the sum of the paths'
/// log-probabilities. Few long sequences run in chunks (`chunk_frames` as for
/// device_chain_pass): their paths are the traceback of deltas that differ from the host's
/// by rounding only, so only near-ties can differ. Throws NumericalError where a sequence
/// has no path; the host's Viterbi runs where the device has no room.
double device_viterbi(const Primitives& prims, const HmmModel& model, const std::vector<std::size_t>& offsets,
                      const EmissionFrames& frames, int* states, int threads = 0, std::size_t chunk_frames = 0,
                      ChunkScan scan = ChunkScan::by_shape);

/// device_viterbi on CUDA device `device` from log emissions (N x K, as viterbi_log takes
/// them: decoding's exact log-densities), the host's viterbi_log where the device has no room.
double device_viterbi_log(int device, const std::vector<double>& startprob, const std::vector<double>& transmat,
                          const std::vector<std::size_t>& offsets, const double* log_e, int* states,
                          std::size_t chunk_frames = 0);

}  // namespace cuem::engine
