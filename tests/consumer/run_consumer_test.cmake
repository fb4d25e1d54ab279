# Installs a cuem build into a fresh prefix, then configures, builds and runs the
# consumer project in this folder against it, with find_package(cuem).
#
#   cmake -DCUEM_BINARY_DIR=<cuem build> -DCONSUMER_SOURCE_DIR=<this folder>
#         -DWORK_DIR=<scratch folder, emptied first> [-DCUEM_CONFIG=<configuration>]
#         -P run_consumer_test.cmake
#
# The consumer is built with what the cuem build used: its generator, C++ compiler and
# flags, build type, the CUDA toolkit it found (the installed package config then calls
# find_dependency(CUDAToolkit)) and, for a sanitizer build, the sanitizer flags (the
# static library's instrumented code needs the sanitizer runtimes at link time).
cmake_minimum_required(VERSION 3.24)

foreach(var CUEM_BINARY_DIR CONSUMER_SOURCE_DIR WORK_DIR)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "run_consumer_test.cmake needs -D${var}=...")
  endif()
endforeach()
if(NOT EXISTS "${CUEM_BINARY_DIR}/CMakeCache.txt")
  message(FATAL_ERROR "${CUEM_BINARY_DIR} is not a configured cuem build (no CMakeCache.txt)")
endif()

# Reads NAME's value from the cuem build's cache into CUEM_<NAME> (empty when absent).
file(STRINGS "${CUEM_BINARY_DIR}/CMakeCache.txt" _cache_lines)
function(read_cuem_cache name)
  set(value "")
  foreach(line IN LISTS _cache_lines)
    if(line MATCHES "^${name}(:[A-Za-z_]+)?=(.*)$")
      set(value "${CMAKE_MATCH_2}")
      break()
    endif()
  endforeach()
  set(CUEM_${name} "${value}" PARENT_SCOPE)
endfunction()
foreach(name CMAKE_GENERATOR CMAKE_GENERATOR_PLATFORM CMAKE_GENERATOR_TOOLSET CMAKE_MAKE_PROGRAM
             CMAKE_CXX_COMPILER CMAKE_CXX_FLAGS CMAKE_EXE_LINKER_FLAGS CMAKE_BUILD_TYPE
             CMAKE_CONFIGURATION_TYPES CUEM_WITH_CUDA CUEM_SANITIZE CMAKE_CUDA_COMPILER
             CUDAToolkit_ROOT CUDAToolkit_BIN_DIR)
  read_cuem_cache(${name})
endforeach()

# The configuration to install and build: -DCUEM_CONFIG, else the build's build type,
# else (multi-configuration generators) the first configured type.
if(DEFINED CUEM_CONFIG AND NOT "${CUEM_CONFIG}" STREQUAL "")
  set(config "${CUEM_CONFIG}")
elseif(NOT "${CUEM_CMAKE_BUILD_TYPE}" STREQUAL "")
  set(config "${CUEM_CMAKE_BUILD_TYPE}")
elseif(NOT "${CUEM_CMAKE_CONFIGURATION_TYPES}" STREQUAL "")
  list(GET CUEM_CMAKE_CONFIGURATION_TYPES 0 config)
else()
  set(config "Release")
endif()

set(prefix "${WORK_DIR}/prefix")
set(build "${WORK_DIR}/build")
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

# Runs one step; on failure stops the test with the step's command and output.
function(run_step what)
  execute_process(COMMAND ${ARGN}
                  RESULT_VARIABLE rc
                  OUTPUT_VARIABLE out
                  ERROR_VARIABLE out)
  if(NOT rc STREQUAL "0")
    string(REPLACE ";" " " cmd "${ARGN}")
    message(FATAL_ERROR "install_consumer: ${what} failed (${rc})\n"
                        "command: ${cmd}\n"
                        "output:\n${out}")
  endif()
  message(STATUS "install_consumer: ${what}: ok")
  set(step_output "${out}" PARENT_SCOPE)
endfunction()

# 1. Install the cuem build.
run_step("cmake --install" "${CMAKE_COMMAND}" --install "${CUEM_BINARY_DIR}" --prefix "${prefix}" --config "${config}")

# 2. Configure the consumer against the install.
set(configure_args
  -S "${CONSUMER_SOURCE_DIR}" -B "${build}"
  "-DCMAKE_PREFIX_PATH=${prefix}"
  "-DCUEM_EXPECTED_PREFIX=${prefix}"
  -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
  -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF
  "-DCMAKE_BUILD_TYPE=${config}")
if(NOT "${CUEM_CMAKE_GENERATOR}" STREQUAL "")
  list(APPEND configure_args -G "${CUEM_CMAKE_GENERATOR}")
endif()
if(NOT "${CUEM_CMAKE_GENERATOR_PLATFORM}" STREQUAL "")
  list(APPEND configure_args -A "${CUEM_CMAKE_GENERATOR_PLATFORM}")
endif()
if(NOT "${CUEM_CMAKE_GENERATOR_TOOLSET}" STREQUAL "")
  list(APPEND configure_args -T "${CUEM_CMAKE_GENERATOR_TOOLSET}")
endif()
if(NOT "${CUEM_CMAKE_MAKE_PROGRAM}" STREQUAL "")
  list(APPEND configure_args "-DCMAKE_MAKE_PROGRAM=${CUEM_CMAKE_MAKE_PROGRAM}")
endif()
if(NOT "${CUEM_CMAKE_CXX_COMPILER}" STREQUAL "")
  list(APPEND configure_args "-DCMAKE_CXX_COMPILER=${CUEM_CMAKE_CXX_COMPILER}")
endif()
set(cxx_flags "${CUEM_CMAKE_CXX_FLAGS}")
set(link_flags "${CUEM_CMAKE_EXE_LINKER_FLAGS}")
if(CUEM_CUEM_SANITIZE)
  string(APPEND cxx_flags " -fsanitize=address,undefined -fno-omit-frame-pointer")
  string(APPEND link_flags " -fsanitize=address,undefined")
endif()
string(STRIP "${cxx_flags}" cxx_flags)
string(STRIP "${link_flags}" link_flags)
list(APPEND configure_args "-DCMAKE_CXX_FLAGS=${cxx_flags}" "-DCMAKE_EXE_LINKER_FLAGS=${link_flags}")
if(CUEM_CUEM_WITH_CUDA)
  # Point FindCUDAToolkit at the toolkit the library was built with.
  set(cuda_root "${CUEM_CUDAToolkit_ROOT}")
  if(cuda_root STREQUAL "" AND NOT "${CUEM_CUDAToolkit_BIN_DIR}" STREQUAL "")
    get_filename_component(cuda_root "${CUEM_CUDAToolkit_BIN_DIR}" DIRECTORY)
  endif()
  if(cuda_root STREQUAL "" AND NOT "${CUEM_CMAKE_CUDA_COMPILER}" STREQUAL "")
    get_filename_component(cuda_bin "${CUEM_CMAKE_CUDA_COMPILER}" DIRECTORY)
    get_filename_component(cuda_root "${cuda_bin}" DIRECTORY)
  endif()
  if(NOT cuda_root STREQUAL "")
    list(APPEND configure_args "-DCUDAToolkit_ROOT=${cuda_root}")
  endif()
endif()
run_step("configure the consumer" "${CMAKE_COMMAND}" ${configure_args})

# 3. Build it.
run_step("build the consumer" "${CMAKE_COMMAND}" --build "${build}" --config "${config}")

# 4. Run it.
set(path_file "${build}/app_path_${config}.txt")
if(NOT EXISTS "${path_file}")
  message(FATAL_ERROR "install_consumer: ${path_file} was not generated")
endif()
file(READ "${path_file}" app)
run_step("run the consumer" "${app}")
message(STATUS "consumer output:\n${step_output}")
