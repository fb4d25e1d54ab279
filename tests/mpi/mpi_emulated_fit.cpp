// A distributed fit on seeded synthetic data, for tests/mpi/mpi_fit_test.sh's 'emulated'
// case: linked against the emulated CUDA device (tests/emu), so that the CUDA backend's
// segments run under mpirun on a machine without a GPU.
//   mpirun -n R mpi_emulated_fit OUT DEVICE COVARIANCE K N D SEGMENT_ROWS MAX_ITER [weighted]
// Every rank makes the same data and keeps its rows; rank 0 writes the fitted weights,
// means and covariances to OUT as raw float64. 'weighted' gives row i the weight
// (7919 i) mod 4 (a quarter of the rows absent).
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "mpi/communicator.hpp"
#include "mpi/distributed_fit.hpp"

int main(int argc, char** argv) {
  using namespace cuem;
  mpi::Communicator comm(&argc, &argv);
  if (argc != 9 && !(argc == 10 && std::string(argv[9]) == "weighted"))
    comm.abort("usage: OUT DEVICE COVARIANCE K N D SEGMENT_ROWS MAX_ITER [weighted]", 2);
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
    const mpi::SegmentLayout layout{N, std::strtoull(argv[7], nullptr, 10), comm.size()};
    const DataView rows =
        mpi::row_range(DataView(X.data(), N, D), layout.rank_row_begin(comm.rank()), layout.rank_row_end(comm.rank()));
    std::vector<std::uint64_t> digests;
    const mpi::LocalStatus checked = mpi::run_local(
        [&] { digests = mpi::check_rows(rows, layout.rank_row_begin(comm.rank()), layout, comm.rank()); });
    const std::uint64_t digest = mpi::data_digest(comm, checked, digests);
    mpi::DistributedOptions d;
    d.segment_rows = layout.segment_rows;
    std::vector<double> weights;
    if (argc == 10)
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
