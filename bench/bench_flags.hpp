#pragma once
// Google Benchmark's flags, checked strictly: a run with a flag it dropped measures
// something other than what was asked, and nobody notices in a scripted GPU run.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace cuem::bench {

/// Parses the benchmark flags; false (after saying why on stderr) for an unknown flag or a
/// --benchmark_min_time that is not a plain number of seconds. Version 1.7 (Debian 12's)
/// only warns on "0.2s" and runs with its default; 1.8 takes "0.2s" and, still, "0.2".
inline bool initialize_benchmark(int* argc, char** argv) {
  static const char kMinTime[] = "--benchmark_min_time=";
  for (int i = 1; i < *argc; ++i) {
    if (std::strncmp(argv[i], kMinTime, sizeof kMinTime - 1) != 0) continue;
    const char* value = argv[i] + sizeof kMinTime - 1;
    char* end = nullptr;
    std::strtod(value, &end);
    if (end == value || *end != '\0') {
      std::fprintf(stderr, "%s: %s: give the minimum time as a plain number of seconds (e.g. %s0.2)\n",
                   argv[0], argv[i], kMinTime);
      return false;
    }
  }
  benchmark::Initialize(argc, argv);
  return !benchmark::ReportUnrecognizedArguments(*argc, argv);
}

}  // namespace cuem::bench
