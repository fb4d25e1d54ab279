// em_driver: runs one cuem::fit from given initial parameters, for
// scripts/compare_sklearn.py.
//
//   em_driver --cov full|tied|diag|spherical --k K --data X.bin --d D
//             [--n N] [--weights w.bin] [--means m.bin] [--precisions p.bin]
//             [--tol X] [--reg X] [--max-iter N] [--device cpu|cuda|auto]
//             [--precision float32|float64] [--device-memory BYTES] [--threads T] [--seed S] --out result.txt
//
// The .bin files are raw little-endian float64 in row-major order (numpy's tofile):
// the data N x D, weights K, means K x D, precisions in the shape of the covariance
// table of cuem/model.hpp (precision matrices, as scikit-learn's precisions_init).
// --n is checked against the size of the data file when given.
//
// The result file is text, one array per line, every number printed with %.17g:
//
//   NAME COUNT V1 V2 ...
//
// with the names converged, n_iter, lower_bound, n_decreases, max_decrease,
// n_components, n_features, weights, means, covariances, precisions_cholesky and
// trace (the mean log-likelihood of every iteration, in order).
//
// Exit status: 0 on success, 2 on a cuem::Error (message on stderr), 3 on another
// exception, 64 on a usage error.
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <iterator>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuem/covariance_type.hpp"
#include "cuem/data_view.hpp"
#include "cuem/errors.hpp"
#include "cuem/fit.hpp"
#include "cuem/model.hpp"
#include "cuem/options.hpp"

namespace {

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

const char* const kUsage =
    "usage: em_driver --cov full|tied|diag|spherical --k K --data X.bin --d D\n"
    "                 [--n N] [--weights w.bin] [--means m.bin] [--precisions p.bin]\n"
    "                 [--tol X] [--reg X] [--max-iter N] [--device cpu|cuda|auto]\n"
    "                 [--precision float32|float64] [--device-memory BYTES] [--threads T] [--seed S] --out result.txt\n";

bool host_is_little_endian() {
  const std::uint16_t one = 1;
  unsigned char first = 0;
  std::memcpy(&first, &one, 1);
  return first == 1;
}

std::vector<double> read_doubles(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw UsageError("cannot open '" + path + "' for reading");
  const auto size = static_cast<std::size_t>(in.tellg());
  if (size % sizeof(double) != 0) {
    throw UsageError("'" + path + "' holds " + std::to_string(size) + " bytes, not a whole number of float64 values");
  }
  // Straight into the values: no second copy of a large data file.
  std::vector<double> values(size / sizeof(double));
  in.seekg(0);
  if (size > 0 && !in.read(reinterpret_cast<char*>(values.data()), static_cast<std::streamsize>(size)))
    throw UsageError("cannot read '" + path + "'");
  return values;
}

long long parse_integer(const std::string& flag, const std::string& text) {
  errno = 0;
  char* end = nullptr;
  const long long value = std::strtoll(text.c_str(), &end, 10);
  if (errno != 0 || end == text.c_str() || *end != '\0') {
    throw UsageError(flag + " needs an integer, got '" + text + "'");
  }
  return value;
}

double parse_real(const std::string& flag, const std::string& text) {
  errno = 0;
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (errno != 0 || end == text.c_str() || *end != '\0') {
    throw UsageError(flag + " needs a number, got '" + text + "'");
  }
  return value;
}

void write_array(std::FILE* out, const char* name, const std::vector<double>& values) {
  std::fprintf(out, "%s %zu", name, values.size());
  for (const double v : values) std::fprintf(out, " %.17g", v);
  std::fprintf(out, "\n");
}

void write_scalar(std::FILE* out, const char* name, double value) {
  write_array(out, name, std::vector<double>{value});
}

int run(int argc, char** argv) {
  static const char* const known[] = {"--cov",     "--k",         "--data",  "--d",      "--n",
                                      "--weights", "--means",     "--precisions", "--tol",
                                      "--reg",     "--max-iter",  "--device", "--threads",
                                      "--seed",    "--out",       "--precision", "--device-memory"};
  std::map<std::string, std::string> args;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "-h" || flag == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    bool ok = false;
    for (const char* k : known) ok = ok || flag == k;
    if (!ok) throw UsageError("unknown argument '" + flag + "'");
    if (i + 1 >= argc) throw UsageError(flag + " needs a value");
    args[flag] = argv[++i];
  }
  for (const char* required : {"--cov", "--k", "--data", "--d", "--out"}) {
    if (args.count(required) == 0) throw UsageError(std::string("missing ") + required);
  }
  if (!host_is_little_endian()) throw UsageError("this driver reads little-endian float64 only");

  cuem::FitOptions options;
  options.covariance_type = cuem::parse_covariance_type(args["--cov"]);
  options.n_components = static_cast<int>(parse_integer("--k", args["--k"]));
  options.n_init = 1;
  if (args.count("--tol")) options.tol = parse_real("--tol", args["--tol"]);
  if (args.count("--reg")) options.reg_covar = parse_real("--reg", args["--reg"]);
  if (args.count("--max-iter")) options.max_iter = static_cast<int>(parse_integer("--max-iter", args["--max-iter"]));
  if (args.count("--device")) options.device = cuem::parse_device(args["--device"]);
  if (args.count("--precision")) options.precision = cuem::parse_precision(args["--precision"]);
  if (args.count("--device-memory"))
    options.device_memory_limit = static_cast<std::size_t>(parse_integer("--device-memory", args["--device-memory"]));
  if (args.count("--threads")) options.n_threads = static_cast<int>(parse_integer("--threads", args["--threads"]));
  if (args.count("--seed")) options.seed = static_cast<std::uint64_t>(parse_integer("--seed", args["--seed"]));
  if (args.count("--weights")) options.weights_init = read_doubles(args["--weights"]);
  if (args.count("--means")) options.means_init = read_doubles(args["--means"]);
  if (args.count("--precisions")) options.precisions_init = read_doubles(args["--precisions"]);

  const long long d = parse_integer("--d", args["--d"]);
  if (d <= 0) throw UsageError("--d must be positive");
  const std::vector<double> data = read_doubles(args["--data"]);
  if (data.size() % static_cast<std::size_t>(d) != 0) {
    throw UsageError("the data file holds " + std::to_string(data.size()) +
                     " values, not a multiple of D = " + std::to_string(d));
  }
  const std::size_t n = data.size() / static_cast<std::size_t>(d);
  if (args.count("--n") && parse_integer("--n", args["--n"]) != static_cast<long long>(n)) {
    throw UsageError("--n is " + args["--n"] + " but the data file holds " + std::to_string(n) + " rows");
  }

  const cuem::FitResult result =
      cuem::fit(cuem::DataView(data.data(), n, static_cast<std::size_t>(d)), options);

  std::vector<double> trace;
  std::vector<double> trace_seconds;
  for (const cuem::TracePoint& p : result.trace) {
    if (p.init != result.best_init) continue;
    trace.push_back(p.mean_log_likelihood);
    trace_seconds.push_back(p.seconds);
  }

  const std::string out_path = args["--out"];
  std::FILE* out = std::fopen(out_path.c_str(), "w");
  if (out == nullptr) throw UsageError("cannot open '" + out_path + "' for writing");
  write_scalar(out, "converged", result.converged ? 1.0 : 0.0);
  write_scalar(out, "n_iter", result.n_iter);
  write_scalar(out, "lower_bound", result.lower_bound);
  write_scalar(out, "n_decreases", result.n_decreases);
  write_scalar(out, "max_decrease", result.max_decrease);
  write_scalar(out, "n_components", result.model.n_components);
  write_scalar(out, "n_features", result.model.n_features);
  write_array(out, "weights", result.model.weights);
  write_array(out, "means", result.model.means);
  write_array(out, "covariances", result.model.covariances);
  write_array(out, "precisions_cholesky", result.model.precisions_cholesky);
  write_array(out, "trace", trace);
  write_array(out, "trace_seconds", trace_seconds);
  const bool write_failed = std::ferror(out) != 0;
  if (std::fclose(out) != 0 || write_failed) throw UsageError("writing '" + out_path + "' failed");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const UsageError& e) {
    std::fprintf(stderr, "em_driver: %s\n%s", e.what(), kUsage);
    return 64;
  } catch (const cuem::Error& e) {
    std::fprintf(stderr, "em_driver: cuem error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "em_driver: unexpected error: %s\n", e.what());
    return 3;
  }
}
