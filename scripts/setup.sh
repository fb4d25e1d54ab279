#!/usr/bin/env bash
# Installs what cuem needs on a fresh Debian 12 machine (idempotent; quiet when all is there).
# --fuzz adds clang and its sanitizer/fuzzer runtimes for scripts/fuzz.sh; --ccache adds
# ccache where it can (CI: the Python package's build then reuses the release build's
# objects; scripts/build.sh and scripts/test_python.sh use it where it is installed).
set -euo pipefail

fuzz=0
ccache=0
for arg in "$@"; do
  case "$arg" in
    --fuzz) fuzz=1 ;;
    --ccache) ccache=1 ;;
    *) echo "setup: unknown option $arg (use --fuzz, --ccache)" >&2; exit 2 ;;
  esac
done
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive

need=()
command -v cmake >/dev/null || need+=(cmake)
command -v g++ >/dev/null || need+=(g++)
command -v make >/dev/null || need+=(make)
[ -f /usr/lib/x86_64-linux-gnu/cmake/GTest/GTestConfig.cmake ] || [ -f /usr/lib/cmake/GTest/GTestConfig.cmake ] ||
  need+=(libgtest-dev)
[ -d /usr/lib/x86_64-linux-gnu/cmake/benchmark ] || [ -d /usr/lib/cmake/benchmark ] || need+=(libbenchmark-dev)
[ -f /usr/share/cmake/CLI11/CLI11Config.cmake ] || need+=(libcli11-dev)
[ -f /usr/share/cmake/nlohmann_json/nlohmann_jsonConfig.cmake ] || need+=(nlohmann-json3-dev)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
# Open MPI for the distributed fit (cuem fit --distributed; CUEM_WITH_MPI).
command -v mpirun >/dev/null || need+=(openmpi-bin)
command -v mpicxx >/dev/null || need+=(libopenmpi-dev)
if [ "$fuzz" = 1 ]; then
  command -v clang++-14 >/dev/null || need+=(clang-14)
  compgen -G "/usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a" >/dev/null ||
    need+=(libclang-rt-14-dev)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Optional: a build without it is only slower.
if [ "$ccache" = 1 ] && ! command -v ccache >/dev/null; then
  { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends ccache >/dev/null; } ||
    echo "setup: ccache not installed; building without it"
fi
