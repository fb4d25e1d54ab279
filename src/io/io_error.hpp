#pragma once
// A failure to write an output file (unwritable path, full disk). The command line reports
// it as a usage error (exit 2): the remedy is a different output path.
#include "cuem/errors.hpp"

namespace cuem::io {

class OutputError : public Error {
 public:
  using Error::Error;
};

}  // namespace cuem::io
