// armadillo_em: runs Armadillo's gmm_full / gmm_diag EM from given initial parameters and
// times it, for scripts/compare_peers.py (which compiles this file into a temporary folder
// with g++ -O3 -fopenmp ... -larmadillo; it is never built by CMake nor committed as a
// binary).
//
//   armadillo_em --cov full|diag --data X.bin --d D --k K --weights w.bin --means m.bin
//                --covs c.bin --iters N [--var-floor F] --out result.txt
//
// The .bin files are raw little-endian float64 in row-major order (numpy's tofile): the
// data N x D, weights K, means K x D, covariances K x D x D (full) or K x D (diag). Read
// as column-major Armadillo matrices these are already Armadillo's layout (one column
// per point, one column per mean, one slice per covariance), so nothing is transposed.
//
// The timed region is exactly learn(X, K, eucl_dist, keep_existing, km_iter = 0,
// em_iter = N, var_floor, print = false): no k-means, no seeding, N EM iterations from the
// given parameters (Armadillo stops early only if the mean log-likelihood changes by less
// than machine epsilon). Data loading is outside it.
//
// The result file is text, one array per line ("NAME COUNT V1 V2 ..."), with %.17g:
// status (1 = learn succeeded), seconds (wall time of learn), threads
// (omp_get_max_threads), version (Armadillo's major, minor, patch), weights, means
// (K x D row-major), covariances (K x D x D or K x D row-major).
//
// Exit status: 0 on success (also when learn reports failure: status says so), 64 on a
// usage or I/O error.
#include <armadillo>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace {

std::vector<double> read_doubles(const std::string& path, std::size_t expected) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) throw std::runtime_error("cannot open '" + path + "'");
  std::vector<double> v(expected);
  const std::size_t got = expected == 0 ? 0 : std::fread(v.data(), sizeof(double), expected, f);
  const bool extra = std::fgetc(f) != EOF;
  std::fclose(f);
  if (got != expected || extra) {
    throw std::runtime_error("'" + path + "' does not hold " + std::to_string(expected) + " float64 values");
  }
  return v;
}

// Reads the data straight into the matrix' memory: D x N column-major == N x D row-major.
void read_into(const std::string& path, double* dst, std::size_t count) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) throw std::runtime_error("cannot open '" + path + "'");
  const std::size_t got = std::fread(dst, sizeof(double), count, f);
  const bool extra = std::fgetc(f) != EOF;
  std::fclose(f);
  if (got != count || extra) {
    throw std::runtime_error("'" + path + "' does not hold " + std::to_string(count) + " float64 values");
  }
}

std::size_t file_values(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) throw std::runtime_error("cannot open '" + path + "'");
  std::fseek(f, 0, SEEK_END);
  const long bytes = std::ftell(f);
  std::fclose(f);
  if (bytes < 0 || bytes % static_cast<long>(sizeof(double)) != 0) {
    throw std::runtime_error("'" + path + "' is not a whole number of float64 values");
  }
  return static_cast<std::size_t>(bytes) / sizeof(double);
}

void write_array(std::FILE* out, const char* name, const double* v, std::size_t n) {
  std::fprintf(out, "%s %zu", name, n);
  for (std::size_t i = 0; i < n; ++i) std::fprintf(out, " %.17g", v[i]);
  std::fprintf(out, "\n");
}

template <typename Gmm, typename Covs>
void run_learn(const arma::mat& X, const arma::mat& means, const Covs& covs, const arma::rowvec& hefts,
               arma::uword k, arma::uword iters, double var_floor, std::FILE* out) {
  Gmm model;
  model.set_params(means, covs, hefts);
  const auto t0 = std::chrono::steady_clock::now();
  const bool ok = model.learn(X, k, arma::eucl_dist, arma::keep_existing, 0, iters, var_floor, false);
  const auto t1 = std::chrono::steady_clock::now();
  const double seconds = std::chrono::duration<double>(t1 - t0).count();
  const double status = ok ? 1.0 : 0.0;
  write_array(out, "status", &status, 1);
  write_array(out, "seconds", &seconds, 1);
  write_array(out, "weights", model.hefts.memptr(), model.hefts.n_elem);
  write_array(out, "means", model.means.memptr(), model.means.n_elem);
  if constexpr (std::is_same<Gmm, arma::gmm_full>::value) {
    write_array(out, "covariances", model.fcovs.memptr(), model.fcovs.n_elem);
  } else {
    write_array(out, "covariances", model.dcovs.memptr(), model.dcovs.n_elem);
  }
}

int run(int argc, char** argv) {
  std::map<std::string, std::string> a;
  for (int i = 1; i + 1 < argc; i += 2) a[argv[i]] = argv[i + 1];
  for (const char* req : {"--cov", "--data", "--d", "--k", "--weights", "--means", "--covs", "--iters", "--out"}) {
    if (a.count(req) == 0) throw std::runtime_error(std::string("missing ") + req);
  }
  const std::string cov = a["--cov"];
  if (cov != "full" && cov != "diag") throw std::runtime_error("--cov must be full or diag");
  const arma::uword d = std::stoul(a["--d"]);
  const arma::uword k = std::stoul(a["--k"]);
  const arma::uword iters = std::stoul(a["--iters"]);
  const double var_floor = a.count("--var-floor") ? std::stod(a["--var-floor"]) : 1e-10;

  const std::size_t total = file_values(a["--data"]);
  if (d == 0 || total % d != 0) throw std::runtime_error("the data file is not a multiple of D values");
  const arma::uword n = total / d;
  arma::mat X(d, n, arma::fill::none);
  read_into(a["--data"], X.memptr(), total);

  const std::vector<double> w = read_doubles(a["--weights"], k);
  const std::vector<double> m = read_doubles(a["--means"], k * d);
  const arma::rowvec hefts(w);
  const arma::mat means(m.data(), d, k);  // K x D row-major == D x K column-major

  std::FILE* out = std::fopen(a["--out"].c_str(), "w");
  if (out == nullptr) throw std::runtime_error("cannot open '" + a["--out"] + "' for writing");
#ifdef _OPENMP
  const double threads = omp_get_max_threads();
#else
  const double threads = 1;
#endif
  const double version[3] = {static_cast<double>(arma::arma_version::major),
                             static_cast<double>(arma::arma_version::minor),
                             static_cast<double>(arma::arma_version::patch)};
  write_array(out, "threads", &threads, 1);
  write_array(out, "version", version, 3);
  if (cov == "full") {
    const std::vector<double> c = read_doubles(a["--covs"], k * d * d);
    const arma::cube fcovs(c.data(), d, d, k);  // K x D x D row-major, symmetric
    run_learn<arma::gmm_full>(X, means, fcovs, hefts, k, iters, var_floor, out);
  } else {
    const std::vector<double> c = read_doubles(a["--covs"], k * d);
    const arma::mat dcovs(c.data(), d, k);
    run_learn<arma::gmm_diag>(X, means, dcovs, hefts, k, iters, var_floor, out);
  }
  if (std::fclose(out) != 0) throw std::runtime_error("writing the result failed");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "armadillo_em: %s\n", e.what());
    return 64;
  }
}
