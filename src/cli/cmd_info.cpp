// cuem info: version, build options and the CUDA devices found.
#include <nlohmann/json.hpp>
#include <omp.h>

#include <cstdio>

#include "cli/common.hpp"
#include "cpu/cpu_kernels.hpp"
#include "cuem/version.hpp"
#if defined(CUEM_HAVE_CUDA)
#include "core/cuda_devices.hpp"
#endif

namespace cuem::cli {
namespace {

#if defined(__clang__)
constexpr const char* kCompiler = "Clang " __clang_version__;
#elif defined(__GNUC__)
constexpr const char* kCompiler = "GCC " __VERSION__;
#else
constexpr const char* kCompiler = __VERSION__;
#endif

int run(const GlobalFlags& flags) {
  nlohmann::json devices = nlohmann::json::array();
  std::string device_note = "this build has no CUDA code";
#if defined(CUEM_HAVE_CUDA)
  const auto found = cuda::list_devices(&device_note);
  for (const auto& d : found)
    devices.push_back({{"index", d.index},
                       {"name", d.name},
                       {"compute_capability", std::to_string(d.compute_major) + "." + std::to_string(d.compute_minor)},
                       {"total_memory_bytes", d.total_memory},
                       {"free_memory_bytes", d.free_memory}});
#endif
  nlohmann::json j = {{"version", version()},
                      {"cuda_built", built_with_cuda()},
                      {"openmp_max_threads", omp_get_max_threads()},
                      {"compiler", kCompiler},
                      {"cpu_kernels", cpu::kernel_level()},
                      {"devices", devices}};
  if (devices.empty()) j["devices_note"] = device_note;
  if (flags.json) {
    std::printf("%s\n", j.dump(1).c_str());
    return kOk;
  }
  std::printf("cuem %s\n", version());
  std::printf("CUDA code built:   %s\n", built_with_cuda() ? "yes" : "no");
  std::printf("CPU threads:       %d (OpenMP)\n", omp_get_max_threads());
  std::printf("CPU kernels:       %s\n", cpu::kernel_level());
  std::printf("compiler:          %s\n", kCompiler);
  if (devices.empty()) std::printf("CUDA devices:      none (%s)\n", device_note.c_str());
  for (const auto& d : devices)
    std::printf("CUDA device %d:     %s, compute capability %s, %.1f GiB (%.1f GiB free)\n", d["index"].get<int>(),
                d["name"].get<std::string>().c_str(), d["compute_capability"].get<std::string>().c_str(),
                d["total_memory_bytes"].get<double>() / 1073741824.0, d["free_memory_bytes"].get<double>() / 1073741824.0);
  return kOk;
}

}  // namespace

void add_info_command(CLI::App& app, const GlobalFlags& flags, int& exit_code) {
  CLI::App* cmd = app.add_subcommand("info", "version, build options and devices");
  cmd->callback([&flags, &exit_code] { exit_code = run(flags); });
}

}  // namespace cuem::cli
