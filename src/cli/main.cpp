// The cuem command line: fit a Gaussian mixture to a CSV file and print the model.
//
// Exit codes: 0 ok, 2 usage error, 3 bad input data, 4 numerical failure, 5 device error.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/cuda_devices.hpp"
#include "cuem/cuem.hpp"
#include "io/csv.hpp"

namespace {

enum ExitCode { kOk = 0, kUsage = 2, kBadData = 3, kNumerical = 4, kDevice = 5, kInternal = 70 };

constexpr const char* kUsageText =
    "usage: cuem fit DATA.csv -k K [options]   fit a Gaussian mixture and print it\n"
    "       cuem info                          version and build options\n"
    "       cuem --version | --help\n"
    "\n"
    "fit options:\n"
    "  -k, --components K     number of mixture components (required)\n"
    "  --covariance TYPE      full (default), tied, diag or spherical\n"
    "  --init METHOD          kmeans (default), k-means++, random, random_from_data\n"
    "  --n-init N             restarts; the best lower bound wins (default 1)\n"
    "  --max-iter N           EM iterations per restart (default 100)\n"
    "  --tol X                convergence threshold on the mean log-likelihood (1e-3)\n"
    "  --reg-covar X          added to every covariance diagonal (1e-6)\n"
    "  --seed N               random seed (default 0)\n"
    "  --device DEV           cpu (default), auto, cuda or cuda:N\n"
    "  --threads N            CPU threads (default: all); results do not depend on it\n"
    "  --quiet                print only the model\n"
    "\n"
    "exit codes: 0 ok, 2 usage error, 3 bad input data, 4 numerical failure, 5 device error\n";

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

long long parse_int(const std::string& opt, const std::string& s) {
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || errno != 0) throw UsageError(opt + " needs an integer, got '" + s + "'");
  return v;
}

int parse_count(const std::string& opt, const std::string& s) {
  const long long v = parse_int(opt, s);
  if (v < 0 || v > 1000000000) throw UsageError(opt + " must be between 0 and 1e9, got '" + s + "'");
  return static_cast<int>(v);
}

double parse_double(const std::string& opt, const std::string& s) {
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0') throw UsageError(opt + " needs a number, got '" + s + "'");
  return v;
}

void print_matrix(const double* a, int rows, int cols, const char* indent) {
  for (int i = 0; i < rows; ++i) {
    std::printf("%s[", indent);
    for (int j = 0; j < cols; ++j) std::printf("%s%12.6g", j ? ", " : "", a[i * cols + j]);
    std::printf("]\n");
  }
}

void print_model(const cuem::FitResult& r, const std::vector<std::string>& names) {
  const cuem::Model& m = r.model;
  const int D = m.n_features;
  std::printf("Gaussian mixture: %d components, %s covariance, %d features\n", m.n_components,
              cuem::to_string(m.covariance_type), D);
  std::printf("%s after %d iterations; mean log-likelihood %.10g\n", r.converged ? "converged" : "NOT converged",
              r.n_iter, r.lower_bound);
  std::printf("features:");
  for (const std::string& n : names) std::printf(" %s", n.c_str());
  std::printf("\n");
  for (int k = 0; k < m.n_components; ++k) {
    std::printf("\ncomponent %d: weight %.6f\n  mean:\n", k, m.weights[k]);
    print_matrix(m.means.data() + static_cast<std::size_t>(k) * D, 1, D, "    ");
    switch (m.covariance_type) {
      case cuem::CovarianceType::full:
        std::printf("  covariance:\n");
        print_matrix(m.covariances.data() + static_cast<std::size_t>(k) * D * D, D, D, "    ");
        break;
      case cuem::CovarianceType::diag:
        std::printf("  variances:\n");
        print_matrix(m.covariances.data() + static_cast<std::size_t>(k) * D, 1, D, "    ");
        break;
      case cuem::CovarianceType::spherical: std::printf("  variance: %.6g\n", m.covariances[k]); break;
      case cuem::CovarianceType::tied: break;
    }
  }
  if (m.covariance_type == cuem::CovarianceType::tied) {
    std::printf("\nshared covariance:\n");
    print_matrix(m.covariances.data(), D, D, "    ");
  }
}

int run_fit(const std::vector<std::string>& args) {
  std::string path;
  cuem::FitOptions o;
  bool have_k = false;
  bool quiet = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> const std::string& {
      if (i + 1 >= args.size()) throw UsageError(a + " needs a value");
      return args[++i];
    };
    if (a == "-k" || a == "--components") {
      o.n_components = parse_count(a, value());
      have_k = true;
    } else if (a == "--covariance") {
      o.covariance_type = cuem::parse_covariance_type(value());
    } else if (a == "--init") {
      o.init = cuem::parse_init_method(value());
    } else if (a == "--n-init") {
      o.n_init = parse_count(a, value());
    } else if (a == "--max-iter") {
      o.max_iter = parse_count(a, value());
    } else if (a == "--tol") {
      o.tol = parse_double(a, value());
    } else if (a == "--reg-covar") {
      o.reg_covar = parse_double(a, value());
    } else if (a == "--seed") {
      const long long s = parse_int(a, value());
      if (s < 0) throw UsageError("--seed must be >= 0");
      o.seed = static_cast<std::uint64_t>(s);
    } else if (a == "--device") {
      o.device = cuem::parse_device(value());
    } else if (a == "--threads") {
      o.n_threads = parse_count(a, value());
    } else if (a == "--quiet") {
      quiet = true;
    } else if (!a.empty() && a[0] == '-') {
      throw UsageError("unknown option '" + a + "'");
    } else if (path.empty()) {
      path = a;
    } else {
      throw UsageError("unexpected argument '" + a + "'");
    }
  }
  if (path.empty()) throw UsageError("fit needs a data file");
  if (!have_k) throw UsageError("fit needs the number of components: -k K");

  const cuem::io::Table t = cuem::io::read_csv(path);
  if (!quiet) std::fprintf(stderr, "cuem: %zu points x %zu features from %s\n", t.rows, t.cols, path.c_str());
  if (!quiet)
    o.on_iteration = [](const cuem::IterationInfo& info) {
      std::fprintf(stderr, "  init %d  iter %3d  mean log-likelihood %.10g  change %.3g  %.3f s\n", info.init,
                   info.iteration, info.mean_log_likelihood, info.change, info.seconds);
      return true;
    };
  const cuem::FitResult r = cuem::fit(cuem::DataView(t.values.data(), t.rows, t.cols), o);
  if (r.n_decreases > 0)
    std::fprintf(stderr, "cuem: warning: the log-likelihood fell %d time(s), by up to %g: please report this\n",
                 r.n_decreases, r.max_decrease);
  print_model(r, t.column_names);
  return kOk;
}

int run_info() {
  std::printf("cuem %s\n", cuem::version());
  std::printf("CUDA backend built: %s\n", cuem::built_with_cuda() ? "yes" : "no");
#if defined(CUEM_HAVE_CUDA)
  std::string reason;
  const auto devices = cuem::cuda::list_devices(&reason);
  if (devices.empty()) std::printf("CUDA devices: none (%s)\n", reason.c_str());
  for (const auto& d : devices)
    std::printf("CUDA device %d: %s, compute capability %d.%d, %.1f GiB (%.1f GiB free)\n", d.index, d.name.c_str(),
                d.compute_major, d.compute_minor, d.total_memory / 1073741824.0, d.free_memory / 1073741824.0);
#endif
  return kOk;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  try {
    if (args.empty()) throw UsageError("no command given");
    const std::string& cmd = args[0];
    if (cmd == "--help" || cmd == "-h" || cmd == "help") {
      std::fputs(kUsageText, stdout);
      return kOk;
    }
    if (cmd == "--version") {
      std::printf("cuem %s\n", cuem::version());
      return kOk;
    }
    if (cmd == "info") return run_info();
    if (cmd == "fit") {
      const std::vector<std::string> rest(args.begin() + 1, args.end());
      for (const std::string& a : rest)
        if (a == "--help" || a == "-h") {
          std::fputs(kUsageText, stdout);
          return kOk;
        }
      return run_fit(rest);
    }
    throw UsageError("unknown command '" + cmd + "'");
  } catch (const UsageError& e) {
    std::fprintf(stderr, "cuem: %s\n\n%s", e.what(), kUsageText);
    return kUsage;
  } catch (const cuem::InvalidArgument& e) {
    std::fprintf(stderr, "cuem: %s\n", e.what());
    return kUsage;
  } catch (const cuem::DataError& e) {
    std::fprintf(stderr, "cuem: bad input data: %s\n", e.what());
    return kBadData;
  } catch (const cuem::NumericalError& e) {
    std::fprintf(stderr, "cuem: numerical failure: %s\n", e.what());
    return kNumerical;
  } catch (const cuem::DeviceError& e) {
    std::fprintf(stderr, "cuem: device error: %s\n", e.what());
    return kDevice;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cuem: internal error: %s (please report this)\n", e.what());
    return kInternal;
  }
}
