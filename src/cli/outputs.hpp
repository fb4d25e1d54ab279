#pragma once
// A command's output files: checked before any work is done, so that a mistake in an
// output path costs nothing, and written in the format their names ask for.
#include <cstddef>
#include <string>
#include <vector>

namespace cuem::cli {

/// Throws UsageError unless every output can be written: its folder exists and is
/// writable; an existing output is a writable file (not a folder); no output is the same
/// file as an input or as another output, however the paths are spelled (./x and x,
/// symbolic and hard links). Empty paths are skipped (options not given).
void check_outputs(const std::vector<std::string>& outputs, const std::vector<std::string>& inputs);

/// Throws UsageError unless `path` names a data format: .npy, or text as .csv (commas),
/// .tsv (tabs) or .txt (spaces), in any case. An existing device or pipe (/dev/null) is
/// accepted and gets .npy bytes.
void check_data_output_name(const std::string& path, const std::string& option);

/// Refuses a model output named as a data file (.npy, .csv, .tsv): models are JSON, and
/// such a name is almost surely a mix-up with predict's outputs.
void check_model_output_name(const std::string& path, const std::string& option);

/// A rows x cols float64 matrix (row-major) as the bytes of the format `path` names; text
/// formats start with `header` (column names) when it is given.
std::string matrix_file_bytes(const std::string& path, const double* values, std::size_t rows, std::size_t cols,
                              const std::vector<std::string>& header = {});

/// The same bytes in parts, for an output written as it is produced (cuem generate): the
/// start of a file of `rows` x `cols` values (a .npy header, a text header line), then
/// the bytes of some rows appended; with `float32` a .npy holds float32 and text shows
/// each value rounded to float32 (%.9g).
std::string matrix_file_start(const std::string& path, std::size_t rows, std::size_t cols,
                              const std::vector<std::string>& header, bool float32);
void append_matrix_rows(std::string& out, const std::string& path, const double* values, std::size_t rows,
                        std::size_t cols, bool float32);

/// Integer labels as the bytes of the format `path` names (.npy: int64, one dimension).
std::string labels_file_bytes(const std::string& path, const std::vector<int>& labels);
/// The same in parts: the start of a file of `n` labels, then some labels appended.
std::string labels_file_start(const std::string& path, std::size_t n);
void append_label_rows(std::string& out, const std::string& path, const int* labels, std::size_t n);

}  // namespace cuem::cli
