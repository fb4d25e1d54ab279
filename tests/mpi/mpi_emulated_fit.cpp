// A distributed fit on seeded synthetic data, for tests/mpi/mpi_fit_test.sh's 'emulated'
// case: linked against the emulated CUDA device (tests/emu), so that the CUDA backend's
// segments run under mpirun on a machine without a GPU.
//   mpirun -n R mpi_emulated_fit OUT DEVICE COVARIANCE K N D SEGMENT_ROWS MAX_ITER [weighted|hmm]
// Every rank makes the same data and keeps its rows; rank 0 writes the fitted weights,
// means and covariances to OUT as raw float64. 'weighted' gives row i the weight
// (7919 i) mod 4 (a quarter of the rows absent). 'hmm' fits a Gaussian HMM instead to
// sequences of 1 to 300 frames (units of whole sequences) and writes its start
// probabilities, transition matrix, means and covariances.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "engine/hmm_chain.hpp"
#include "mpi/communicator.hpp"
#include "mpi/distributed_fit.hpp"
#include "mpi/distributed_hmm.hpp"

int main(int argc, char** argv) {
  using namespace cuem;
  mpi::Communicator comm(&argc, &argv);
  const std::string mode = argc == 10 ? argv[9] : "";
  if (argc != 9 && !(argc == 10 && (mode == "weighted" || mode == "hmm")))
    comm.abort("usage: OUT DEVICE COVARIANCE K N D SEGMENT_ROWS MAX_ITER [weighted|hmm]", 2);
  try {
    const std::string out = argv[1];
    FitOptions o;
    o.device = parse_device(argv[2]);
    o.covariance_type = parse_covariance_type(argv[3]);
    o.n_components = std::atoi(argv[4]);
    const std::size_t N = std::strtoull(argv[5], nullptr, 10), D = std::strtoull(argv[6], nullptr, 10);
    o.max_iter = std::atoi(argv[8]);
    o.tol = 0;
    // Seeded clusters: centre k at 4 k along every axis, unit spread.
    std::mt19937_64 gen(17);
    std::normal_distribution<double> noise;
    std::vector<double> X(N * D);
    for (std::size_t i = 0; i < N; ++i)
      for (std::size_t d = 0; d < D; ++d)
        X[i * D + d] = 4.0 * static_cast<double>(i % static_cast<std::size_t>(o.n_components)) + noise(gen);
    const std::size_t S = std::strtoull(argv[7], nullptr, 10);
    if (mode == "hmm") {
      // Sequences of 1 to 300 frames; the last takes what is left.
      std::vector<std::size_t> lengths;
      for (std::size_t n = 0, i = 0; n < N; n += lengths.back(), ++i) lengths.push_back(std::min(N - n, 1 + (i * 97) % 300));
      const std::vector<std::size_t> offsets = engine::sequence_offsets(lengths, N);
      const mpi::SegmentLayout layout = mpi::sequence_units(offsets, S, comm.size());
      const DataView rows = mpi::row_range(DataView(X.data(), N, D), layout.rank_row_begin(comm.rank()),
                                           layout.rank_row_end(comm.rank()));
      std::vector<std::uint64_t> digests;
      const mpi::LocalStatus checked = mpi::run_local(
          [&] { digests = mpi::check_rows(rows, layout.rank_row_begin(comm.rank()), layout, comm.rank()); });
      const std::uint64_t digest = mpi::data_digest(comm, checked, digests);
      HmmOptions h;
      h.device = o.device;
      h.covariance_type = o.covariance_type;
      h.n_components = o.n_components;
      h.n_iter = o.max_iter;
      h.tol = 0;
      mpi::DistributedOptions d;
      d.segment_rows = S;
      const mpi::DistributedHmmResult r = mpi::fit_hmm_distributed(comm, rows, layout, offsets, h, d, digest);
      if (comm.rank() == 0) {
        std::FILE* f = std::fopen(out.c_str(), "wb");
        if (!f) comm.abort("cannot write " + out, 2);
        const HmmModel& m = r.fit.model;
        for (const std::vector<double>* v : {&m.startprob, &m.transmat, &m.emissions.means, &m.emissions.covariances})
          std::fwrite(v->data(), sizeof(double), v->size(), f);
        std::fclose(f);
        std::printf("%s\n", r.fit.device.c_str());
      }
      return 0;
    }
    const mpi::SegmentLayout layout{N, S, comm.size()};
    const DataView rows =
        mpi::row_range(DataView(X.data(), N, D), layout.rank_row_begin(comm.rank()), layout.rank_row_end(comm.rank()));
    std::vector<std::uint64_t> digests;
    const mpi::LocalStatus checked = mpi::run_local(
        [&] { digests = mpi::check_rows(rows, layout.rank_row_begin(comm.rank()), layout, comm.rank()); });
    const std::uint64_t digest = mpi::data_digest(comm, checked, digests);
    mpi::DistributedOptions d;
    d.segment_rows = layout.segment_rows;
    std::vector<double> weights;
    if (mode == "weighted")
      for (std::size_t i = 0; i < N; ++i) weights.push_back(static_cast<double>((i * 7919) % 4));
    const mpi::DistributedFitResult r = mpi::fit_distributed(
        comm, rows, layout, o, d, digest, weights.empty() ? WeightView{} : WeightView(weights.data(), N));
    if (comm.rank() == 0) {
      std::FILE* f = std::fopen(out.c_str(), "wb");
      if (!f) comm.abort("cannot write " + out, 2);
      for (const std::vector<double>* v : {&r.fit.model.weights, &r.fit.model.means, &r.fit.model.covariances})
        std::fwrite(v->data(), sizeof(double), v->size(), f);
      std::fclose(f);
      std::printf("%s\n", r.fit.device.c_str());
    }
  } catch (const std::exception& e) {
    comm.abort(e.what(), 1);
  }
  return 0;
}
