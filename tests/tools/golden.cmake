# The golden-model check (scripts/golden.sh): a tool that fits a fixed matrix of cases and
# prints a SHA-256 of each fitted model's bits, built against the library (CPU cases) and
# against the emulated CUDA device (cuem_emu, device cases). Included from
# tests/CMakeLists.txt after cuem_emu is defined.
foreach(_golden golden_fit golden_fit_emulated)
  add_executable(${_golden} ${CMAKE_CURRENT_LIST_DIR}/golden_fit.cpp)
  target_include_directories(${_golden} PRIVATE ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/bench)
  target_compile_definitions(${_golden} PRIVATE CUEM_GOLDEN_DATA_DIR="${PROJECT_SOURCE_DIR}/data")
  target_compile_options(${_golden} PRIVATE ${CUEM_WARNINGS})
endforeach()
target_link_libraries(golden_fit PRIVATE cuem::cuem)
target_link_libraries(golden_fit_emulated PRIVATE cuem_emu)

# Compares with tests/golden/ (the quick set: the full-size benchmark configurations are
# left to "scripts/golden.sh check"); exit 77 (skipped) where the goldens were made on
# another CPU kernel level or compiler, whose bits may legitimately differ.
# Only in a plain Release build: the goldens are that build's bits (other optimisation levels
# and the sanitizers may contract or vectorise differently).
if(CMAKE_BUILD_TYPE STREQUAL "Release" AND NOT CUEM_SANITIZE)
add_test(NAME golden_models
         COMMAND bash ${PROJECT_SOURCE_DIR}/scripts/golden.sh check --quick
                 --cpu-tool $<TARGET_FILE:golden_fit> --emulated-tool $<TARGET_FILE:golden_fit_emulated>)
set_tests_properties(golden_models PROPERTIES LABELS unit TIMEOUT 300 SKIP_RETURN_CODE 77
                     ENVIRONMENT OMP_WAIT_POLICY=PASSIVE)
endif()
