#pragma once
// The HMM chain on a CUDA device (docs/HMM.md, "The chain on the GPU"): scaled forward and
// backward passes, the state posteriors, the transition sums and the log-likelihood of many
// sequences at once, in float64. Plain C++: src/engine/hmm_device_chain.cpp calls it.
#include <cstddef>
#include <vector>

namespace cuem::cuda {

/// The largest K the device chain takes: a block's eleven K-vectors live in shared memory
/// (45 KB at 512, under the 48 KiB every device gives without opting in); larger K stays
/// on the host chain.
inline constexpr int kHmmChainMaxStates = 512;
/// Up to this K a block's K x K transition sums live in shared memory too; above, in the
/// group's slice of device memory (the same entries by the same threads in the same order,
/// so the sums do not change). Also the largest K whose long sequences are cut into chunks
/// by shape (a chunk product costs K^3 a frame: above, one block runs a sequence across its
/// threads).
inline constexpr int kHmmSharedSumsStates = 64;

/// The threads of a block for K states: one warp up to 32, two up to 64, four up to 128,
/// eight above.
int hmm_chain_threads(int K) noexcept;

/// Whether `bytes` of scratch fit in the current device's free memory with a tenth to spare.
bool hmm_scratch_fits(std::size_t bytes);

struct HmmChainInput {
  const double* startprob = nullptr;  ///< K
  const double* transmat = nullptr;   ///< K x K, row-major
  int K = 0;
  const std::vector<std::size_t>* offsets = nullptr;  ///< S + 1 sequence boundaries
  double* b = nullptr;        ///< N x K normalised emissions, replaced by gamma
  const double* s = nullptr;  ///< N log scales
  /// N x K log emissions in place of b and s (hmm_viterbi only: decoding's exact ones).
  const double* log_e = nullptr;
  /// Frames a chunk of a long sequence (0: chosen by the shape; the tests force small ones).
  std::size_t chunk_frames = 0;
  /// The messages (hmm_viterbi: deltas) entering the chunks: chunk after chunk, or by a
  /// log-depth tree over the chunk products (inclusive scans); by the shape unless the
  /// tests force one.
  enum class Scan { by_shape, sequential, tree } scan = Scan::by_shape;
};

inline constexpr unsigned char kHmmStartsSequence = 1, kHmmEndsSequence = 2;

/// The items the device passes run, as both the forward-backward and Viterbi take them:
/// whole sequences, or the chunks of long ones where the sequences are too few to fill
/// the device and K is at most kHmmSharedSumsStates (or every sequence longer than `forced`
/// frames in chunks of `forced`, whatever K).
struct HmmItems {
  std::vector<std::size_t> bounds{0};  ///< I + 1 item boundaries (frames of the whole data)
  std::vector<unsigned char> flags;    ///< I: kHmmStartsSequence | kHmmEndsSequence
  /// I: the frames [from, to) of the item's chunk product (a first chunk's from its second
  /// frame; empty for whole sequences).
  std::vector<std::size_t> from, to;
  /// Per chunked sequence: its first frame, and its chunks, items [item_begin, item_end).
  std::vector<std::size_t> seq_lo, item_begin, item_end;
  /// I: the first and one past the last item of the item's sequence (the trees' bounds).
  std::vector<std::size_t> first, last;
  std::size_t size() const noexcept { return flags.size(); }
  std::size_t chunked() const noexcept { return seq_lo.size(); }
};
HmmItems hmm_items(const std::vector<std::size_t>& offsets, std::size_t forced_chunk_frames, int K);

/// Whether the chunks' entering messages take the tree: forced, or a sequence of more
/// chunks than the predicted crossover (bench/NOTES.md).
bool hmm_use_tree(const HmmItems& items, HmmChainInput::Scan scan);
/// The most chunks of any sequence (the trees' depth is its ceil(log2)).
std::size_t hmm_most_chunks(const HmmItems& items);

struct HmmChainResult {
  double log_likelihood = 0;
  /// Where a frame is impossible under the chain: its sequence and its frame within it
  /// (the first such sequence; nothing else is meaningful then).
  bool impossible = false;
  std::size_t sequence = 0, frame = 0;
  /// False where the device's free memory could not hold the pass (nothing ran: the
  /// caller takes the host path).
  bool ran = true;
};

/// Forward-backward of every sequence on `device`: start (K) and trans (K x K) receive the
/// sums of gamma_0 and xi. Sequences run in fixed groups of consecutive sequences, a block
/// a group; each entry of a group's sums is added by one thread in time and sequence
/// order, the groups then in order on the host: the results do not depend on `threads`
/// (0: hmm_chain_threads(K); otherwise a multiple of 32 up to 256), nor on the run.
HmmChainResult hmm_chain_pass(int device, const HmmChainInput& in, double* start, double* trans, int threads = 0);

/// Viterbi paths of every sequence on `device` (hmm_viterbi.cu), in log space as the host's
/// (engine::viterbi): delta_t(j) = max_i (delta_{t-1}(i) + log A_ij) + (log b_t(j) + s_t),
/// ties to the lowest state, each frame's best predecessor kept on the device and the path
/// read back by one thread per sequence, or per chunk where long sequences run in chunks
/// (the items of hmm_items; in.chunk_frames as for hmm_chain_pass). in.b is read only. states (N) receives the paths; the
/// log-likelihood field the sum of the paths' log-probabilities (per group in order, then
/// the groups in order); `impossible` where a sequence has no path (its last frame).
HmmChainResult hmm_viterbi(int device, const HmmChainInput& in, int* states, int threads = 0);

}  // namespace cuem::cuda
