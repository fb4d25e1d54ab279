#pragma once
// An input file that changed (grew, shrank or was rewritten in place) while a command read
// it through its mapping (mapped_file.hpp): the rows read later are no longer the data the
// fit started on. Bad input, of its own type so that the command line gives it its own
// exit code (6): unlike other bad data, the same command can succeed once the file is
// left alone.
#include "cuem/errors.hpp"

namespace cuem::io {

class InputChangedError : public DataError {
 public:
  using DataError::DataError;
};

}  // namespace cuem::io
