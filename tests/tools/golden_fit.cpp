// Golden-model tool: fits a fixed matrix of cases and prints, for each, a SHA-256 of the
// fitted model's exact bytes, so that a refactor can show it changed no result
// (scripts/golden.sh compares the output with tests/golden/).
//
// Built twice: against the library (CPU cases) and against the emulated CUDA device
// library cuem_emu (device cases: the kernels' own source run on the host).
//
// Output: comment lines "# key value" that say what the results depend on (the CPU
// kernels' instruction level, the compiler), then one line a case:
//   <case name> <sha256 of its bytes> <lower bound or a summary value, %.17g>
//
// Options: --threads N (the fit's n_threads; 0 = OpenMP's default), --quick (skip the
// full-size benchmark configurations, for the ctest), --only SUBSTRING (cases whose name
// contains it).
#include <algorithm>
#include <array>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "cpu/cpu_kernels.hpp"
#include "cuem/cuem.hpp"

namespace {

// ---------------------------------------------------------------------------------------
// SHA-256 (FIPS 180-4), written here so that the tool needs nothing beyond the library.
class Sha256 {
 public:
  Sha256() { reset(); }

  void update(const void* data, std::size_t n) {
    const auto* p = static_cast<const unsigned char*>(data);
    total_ += n;
    while (n > 0) {
      const std::size_t take = std::min(n, std::size_t{64} - fill_);
      std::memcpy(block_.data() + fill_, p, take);
      fill_ += take;
      p += take;
      n -= take;
      if (fill_ == 64) {
        compress(block_.data());
        fill_ = 0;
      }
    }
  }

  std::string hex() {
    const std::uint64_t bits = total_ * 8;
    const unsigned char one = 0x80, zero = 0;
    update(&one, 1);
    while (fill_ != 56) update(&zero, 1);
    unsigned char len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(bits >> (56 - 8 * i));
    update(len, 8);
    char out[65];
    for (int i = 0; i < 8; ++i) std::snprintf(out + 8 * i, 9, "%08" PRIx32, h_[i]);
    reset();
    return std::string(out, 64);
  }

 private:
  static std::uint32_t rotr(std::uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

  void reset() {
    h_ = {0x6a09e667u, 0xbb67ae85u, 0x3c6ef372u, 0xa54ff53au,
          0x510e527fu, 0x9b05688cu, 0x1f83d9abu, 0x5be0cd19u};
    fill_ = 0;
    total_ = 0;
  }

  void compress(const unsigned char* b) {
    static const std::uint32_t k[64] = {
        0x428a2f98u, 0x71374491u, 0xb5c0fbcfu, 0xe9b5dba5u, 0x3956c25bu, 0x59f111f1u, 0x923f82a4u, 0xab1c5ed5u,
        0xd807aa98u, 0x12835b01u, 0x243185beu, 0x550c7dc3u, 0x72be5d74u, 0x80deb1feu, 0x9bdc06a7u, 0xc19bf174u,
        0xe49b69c1u, 0xefbe4786u, 0x0fc19dc6u, 0x240ca1ccu, 0x2de92c6fu, 0x4a7484aau, 0x5cb0a9dcu, 0x76f988dau,
        0x983e5152u, 0xa831c66du, 0xb00327c8u, 0xbf597fc7u, 0xc6e00bf3u, 0xd5a79147u, 0x06ca6351u, 0x14292967u,
        0x27b70a85u, 0x2e1b2138u, 0x4d2c6dfcu, 0x53380d13u, 0x650a7354u, 0x766a0abbu, 0x81c2c92eu, 0x92722c85u,
        0xa2bfe8a1u, 0xa81a664bu, 0xc24b8b70u, 0xc76c51a3u, 0xd192e819u, 0xd6990624u, 0xf40e3585u, 0x106aa070u,
        0x19a4c116u, 0x1e376c08u, 0x2748774cu, 0x34b0bcb5u, 0x391c0cb3u, 0x4ed8aa4au, 0x5b9cca4fu, 0x682e6ff3u,
        0x748f82eeu, 0x78a5636fu, 0x84c87814u, 0x8cc70208u, 0x90befffau, 0xa4506cebu, 0xbef9a3f7u, 0xc67178f2u};
    std::uint32_t w[64];
    for (int i = 0; i < 16; ++i)
      w[i] = (std::uint32_t{b[4 * i]} << 24) | (std::uint32_t{b[4 * i + 1]} << 16) |
             (std::uint32_t{b[4 * i + 2]} << 8) | std::uint32_t{b[4 * i + 3]};
    for (int i = 16; i < 64; ++i) {
      const std::uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
      const std::uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    std::uint32_t a = h_[0], bb = h_[1], c = h_[2], d = h_[3], e = h_[4], f = h_[5], g = h_[6], h = h_[7];
    for (int i = 0; i < 64; ++i) {
      const std::uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + k[i] + w[i];
      const std::uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & bb) ^ (a & c) ^ (bb & c));
      h = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = bb;
      bb = a;
      a = t1 + t2;
    }
    h_[0] += a;
    h_[1] += bb;
    h_[2] += c;
    h_[3] += d;
    h_[4] += e;
    h_[5] += f;
    h_[6] += g;
    h_[7] += h;
  }

  std::array<std::uint32_t, 8> h_{};
  std::array<unsigned char, 64> block_{};
  std::size_t fill_ = 0;
  std::uint64_t total_ = 0;
};

// Values enter the hash as their exact bits, little-endian, each array led by its length,
// so that no two different results can serialise to the same bytes.
struct Bytes {
  Sha256 sha;
  void u64(std::uint64_t v) {
    unsigned char b[8];
    for (int i = 0; i < 8; ++i) b[i] = static_cast<unsigned char>(v >> (8 * i));
    sha.update(b, 8);
  }
  void i64(std::int64_t v) { u64(static_cast<std::uint64_t>(v)); }
  void f64(double v) {
    std::uint64_t bits;
    std::memcpy(&bits, &v, 8);
    u64(bits);
  }
  void f64s(const std::vector<double>& v) {
    u64(v.size());
    for (double x : v) f64(x);
  }
  void ints(const std::vector<int>& v) {
    u64(v.size());
    for (int x : v) i64(x);
  }
};

void hash_model(Bytes& b, const cuem::Model& m) {
  b.i64(static_cast<int>(m.covariance_type));
  b.i64(m.n_components);
  b.i64(m.n_features);
  b.f64s(m.weights);
  b.f64s(m.means);
  b.f64s(m.covariances);
  b.f64s(m.precisions_cholesky);
}

// The whole result except wall times and the device's description: model, n_iter,
// converged, lower bound, winning restart, the trace's values, the monotonicity count.
std::string hash_result(const cuem::FitResult& r) {
  Bytes b;
  hash_model(b, r.model);
  b.i64(r.n_iter);
  b.i64(r.converged ? 1 : 0);
  b.f64(r.lower_bound);
  b.i64(r.best_init);
  b.u64(r.trace.size());
  for (const cuem::TracePoint& t : r.trace) {
    b.i64(t.init);
    b.i64(t.iteration);
    b.f64(t.mean_log_likelihood);
  }
  b.i64(r.n_decreases);
  b.f64(r.max_decrease);
  return b.sha.hex();
}

struct Options {
  int threads = 0;
  bool quick = false;
  std::string only;
};

struct Runner {
  Options opt;
  int cases = 0;

  bool wanted(const std::string& name) const {
    return opt.only.empty() || name.find(opt.only) != std::string::npos;
  }
  void emit(const std::string& name, const std::string& sha, double value) {
    std::printf("%s %s %.17g\n", name.c_str(), sha.c_str(), value);
    std::fflush(stdout);
    ++cases;
  }
  // Runs fit for a case; returns the result so that evaluation cases can reuse the model.
  cuem::FitResult fit_case(const std::string& name, cuem::DataView X, cuem::FitOptions o,
                           const std::string& must_describe = {}) {
    o.n_threads = opt.threads;
    cuem::FitResult r = cuem::fit(X, o);
    if (!must_describe.empty() && r.device.find(must_describe) == std::string::npos)
      throw std::runtime_error(name + ": expected a device described as '" + must_describe + "', got '" +
                               r.device + "'");
    emit(name, hash_result(r), r.lower_bound);
    return r;
  }
};

// The bundled data: a header line, then rows of comma-separated numbers (strtod rounds
// correctly, so the bits read do not depend on the reader).
struct Table {
  std::vector<double> X;
  std::size_t rows = 0, cols = 0;
};

Table read_csv(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  Table t;
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::stringstream ss(line);
    std::string cell;
    std::size_t n = 0;
    while (std::getline(ss, cell, ',')) {
      char* end = nullptr;
      t.X.push_back(std::strtod(cell.c_str(), &end));
      if (end == cell.c_str()) throw std::runtime_error(path + ": not a number: " + cell);
      ++n;
    }
    if (t.cols == 0) t.cols = n;
    if (n != t.cols) throw std::runtime_error(path + ": ragged row");
    ++t.rows;
  }
  return t;
}

const cuem::CovarianceType kTypes[] = {cuem::CovarianceType::full, cuem::CovarianceType::tied,
                                       cuem::CovarianceType::diag, cuem::CovarianceType::spherical};
const cuem::InitMethod kInits[] = {cuem::InitMethod::kmeans, cuem::InitMethod::kmeans_plusplus,
                                   cuem::InitMethod::random, cuem::InitMethod::random_from_data};

// Precision matrices (what precisions_init takes) from a model's precision factors.
std::vector<double> precisions_of(const cuem::Model& m) {
  const std::size_t D = static_cast<std::size_t>(m.n_features);
  const std::vector<double>& P = m.precisions_cholesky;
  std::vector<double> out;
  switch (m.covariance_type) {
    case cuem::CovarianceType::full:
    case cuem::CovarianceType::tied: {
      const std::size_t mats = m.covariance_type == cuem::CovarianceType::full ? m.n_components : 1;
      out.assign(mats * D * D, 0.0);
      for (std::size_t k = 0; k < mats; ++k)
        for (std::size_t i = 0; i < D; ++i)
          for (std::size_t j = 0; j < D; ++j) {
            double s = 0;
            for (std::size_t l = 0; l < D; ++l) s += P[k * D * D + i * D + l] * P[k * D * D + j * D + l];
            out[k * D * D + i * D + j] = s;
          }
      break;
    }
    case cuem::CovarianceType::diag:
    case cuem::CovarianceType::spherical:
      for (double p : P) out.push_back(p * p);
      break;
  }
  return out;
}

std::string type_name(cuem::CovarianceType t) { return cuem::to_string(t); }

// Where the device cases run: "cuda" on the emulated build; the CPU build runs "cpu".
#if defined(CUEM_EMULATED_DEVICE)
constexpr bool kDevice = true;
#else
constexpr bool kDevice = false;
#endif

std::vector<cuem::Precision> precisions() {
  if (kDevice) return {cuem::Precision::float32, cuem::Precision::float64};
  return {cuem::Precision::float64};  // the CPU ignores the precision
}

std::string suffix(cuem::Precision p) {
  if (!kDevice) return "";
  return p == cuem::Precision::float32 ? "/f32" : "/f64";
}

cuem::FitOptions base_options(cuem::Precision p) {
  cuem::FitOptions o;
  o.device = cuem::parse_device(kDevice ? "cuda" : "cpu");
  o.precision = p;
  return o;
}

// Bundled data x covariance types x inits x n_init 1, 2; evaluation of the kmeans model
// of each type on a few points (the data's first rows and points off the data).
void bundled_cases(Runner& run, const std::string& data_dir) {
  const Table iris = read_csv(data_dir + "/iris.csv");
  const cuem::DataView X(iris.X.data(), iris.rows, iris.cols);
  std::vector<double> points(iris.X.begin(), iris.X.begin() + 8 * static_cast<std::ptrdiff_t>(iris.cols));
  for (std::size_t d = 0; d < iris.cols; ++d) points.push_back(100.0 + static_cast<double>(d));
  for (std::size_t d = 0; d < iris.cols; ++d) points.push_back(-3.5 * static_cast<double>(d + 1));
  const std::size_t n_points = points.size() / iris.cols;
  const cuem::DataView P(points.data(), n_points, iris.cols);
  std::vector<float> iris32(iris.X.begin(), iris.X.end());
  const cuem::DataView X32(iris32.data(), iris.rows, iris.cols);

  for (cuem::Precision prec : precisions())
    for (cuem::CovarianceType type : kTypes) {
      for (cuem::InitMethod init : kInits)
        for (int n_init : {1, 2}) {
          const std::string name = "iris/" + type_name(type) + "/" + cuem::to_string(init) + "/n_init" +
                                   std::to_string(n_init) + suffix(prec);
          if (!run.wanted(name)) continue;
          cuem::FitOptions o = base_options(prec);
          o.n_components = 3;
          o.covariance_type = type;
          o.init = init;
          o.n_init = n_init;
          o.seed = 7;
          const cuem::FitResult r = run.fit_case(name, X, o);
          if (init != cuem::InitMethod::kmeans || n_init != 1) continue;
          // The fitted model evaluated where it was fitted.
          cuem::EvaluateOptions where;
          where.device = o.device;
          where.precision = prec;
          const std::string ev = "iris/" + type_name(type) + "/evaluate" + suffix(prec);
          Bytes b;
          const std::vector<double> proba = cuem::predict_proba(r.model, P, where);
          const std::vector<double> logp = cuem::score_samples(r.model, P, where);
          const std::vector<int> labels = cuem::predict(r.model, P, where);
          b.f64s(proba);
          b.f64s(logp);
          b.ints(labels);
          run.emit(ev, b.sha.hex(), logp[0]);
        }
      // float32 input data, the default init.
      const std::string name = "iris_f32data/" + type_name(type) + suffix(prec);
      if (!run.wanted(name)) continue;
      cuem::FitOptions o = base_options(prec);
      o.n_components = 3;
      o.covariance_type = type;
      o.seed = 7;
      run.fit_case(name, X32, o);
    }
}

// The benchmark configurations' data and start parameters (bench/bench_common.hpp), each
// with every covariance type, 3 EM iterations from the start model (tol 0: all 3 run).
void config_cases(Runner& run, std::size_t divide_n) {
  for (cuem::bench::Config c : cuem::bench::cpu_configs()) {
    c.N /= divide_n;
    // Enough points a component for a full covariance in D dimensions (config D at a
    // hundredth would leave singular components).
    if (divide_n > 1) c.N = std::max(c.N, static_cast<std::size_t>(2 * c.K * c.D));
    const std::string shape = "cfg" + c.name + "/N" + std::to_string(c.N);
    bool any = false;
    for (cuem::CovarianceType type : kTypes)
      for (cuem::Precision prec : precisions())
        any = any || run.wanted(shape + "/" + type_name(type) + suffix(prec));
    if (!any) continue;
    const std::vector<double>& X = cuem::bench::data_for(c);
    const cuem::DataView view(X.data(), c.N, static_cast<std::size_t>(c.D));
    for (cuem::CovarianceType type : kTypes) {
      c.type = type;
      const cuem::Model start = cuem::bench::start_model(c, X);
      for (cuem::Precision prec : precisions()) {
        const std::string name = shape + "/" + type_name(type) + suffix(prec);
        if (!run.wanted(name)) continue;
        cuem::FitOptions o = base_options(prec);
        o.n_components = c.K;
        o.covariance_type = type;
        o.max_iter = 3;
        o.tol = 0.0;
        o.weights_init = start.weights;
        o.means_init = start.means;
        o.precisions_init = precisions_of(start);
        run.fit_case(name, view, o);
      }
    }
  }
}

// Data that do not fit a small device memory limit: streamed through the staging
// buffers in chunks (the fit checks that the backend says so).
void streamed_cases(Runner& run) {
  cuem::bench::Config c{"A", 100003, 2, 8, cuem::CovarianceType::full};
  const std::vector<double>& X = cuem::bench::data_for(c);
  const cuem::DataView view(X.data(), c.N, static_cast<std::size_t>(c.D));
  for (cuem::CovarianceType type : kTypes)
    for (cuem::Precision prec : precisions()) {
      const std::string name = "streamed/N100003/" + type_name(type) + suffix(prec);
      if (!run.wanted(name)) continue;
      cuem::FitOptions o = base_options(prec);
      o.n_components = c.K;
      o.covariance_type = type;
      o.max_iter = 5;
      o.seed = 3;
      o.device_memory_limit = std::size_t{2} << 20;
      run.fit_case(name, view, o, "streamed");
    }
  // float32 input streamed (converted per pass into the staging buffers).
  const std::vector<float> X32(X.begin(), X.end());
  const std::string name = "streamed_f32data/N100003/full/f32";
  if (!run.wanted(name)) return;
  cuem::FitOptions o = base_options(cuem::Precision::float32);
  o.n_components = c.K;
  o.max_iter = 5;
  o.seed = 3;
  o.device_memory_limit = std::size_t{2} << 20;
  run.fit_case(name, cuem::DataView(X32.data(), c.N, static_cast<std::size_t>(c.D)), o, "streamed");
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  std::string data_dir = CUEM_GOLDEN_DATA_DIR;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) {
      opt.threads = std::atoi(argv[++i]);
    } else if (a == "--quick") {
      opt.quick = true;
    } else if (a == "--only" && i + 1 < argc) {
      opt.only = argv[++i];
    } else if (a == "--data" && i + 1 < argc) {
      data_dir = argv[++i];
    } else {
      std::fprintf(stderr, "usage: %s [--threads N] [--quick] [--only SUBSTRING] [--data DIR]\n", argv[0]);
      return 2;
    }
  }
  try {
    // The hash itself, against FIPS 180-4's example: a wrong hash would still be stable
    // and so pass every comparison.
    Sha256 self;
    self.update("abc", 3);
    if (self.hex() != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
      throw std::runtime_error("SHA-256 self-test failed");
    Runner run{opt};
    // What the bits depend on besides the code: scripts/golden.sh compares only where
    // these match the golden file's.
    std::printf("# kind %s\n", kDevice ? "emulated" : "cpu");
    std::printf("# level %s\n", cuem::cpu::kernel_level());
    std::printf("# compiler %s\n", __VERSION__);
    bundled_cases(run, data_dir);
    if (kDevice) {
      config_cases(run, 100);
      streamed_cases(run);
    } else {
      config_cases(run, 10);
      if (!opt.quick) config_cases(run, 1);
    }
    if (run.cases == 0) {
      std::fprintf(stderr, "golden_fit: no case ran\n");
      return 1;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "golden_fit: %s\n", e.what());
    return 1;
  }
  return 0;
}
