#pragma once
// Loading a data set for the command line, by file extension: .npy, .csv/.tsv/.txt, and
// raw binary (.bin/.raw/.f32/.f64 or any file when --dims is given).
#include <cstddef>
#include <string>

#include "io/csv.hpp"
#include "io/raw.hpp"
#include "io/table.hpp"

namespace cuem::io {

struct LoadOptions {
  CsvOptions csv;
  std::size_t raw_dims = 0;  ///< > 0: read as raw binary with this many features
  RawType raw_type = RawType::float64;
};

Table load_data(const std::string& path, const LoadOptions& options);

}  // namespace cuem::io
