#pragma once
// cuem's exception types. Every error a user can cause is one of these, with a message
// that says what went wrong and what to do; the command line maps each type to its own
// exit code (see README).
#include <stdexcept>
#include <string>

namespace cuem {

/// Base of all cuem errors.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A parameter or option is out of range or inconsistent (a usage error).
class InvalidArgument : public Error {
 public:
  using Error::Error;
};

/// The data cannot be fitted as given: empty, D = 0, non-finite values, K > N, ...
class DataError : public Error {
 public:
  using Error::Error;
};

/// The numerics failed: a covariance that is not positive definite after reg_covar.
class NumericalError : public Error {
 public:
  using Error::Error;
};

/// A compute device was requested that is absent, unusable, or out of memory.
class DeviceError : public Error {
 public:
  using Error::Error;
};

/// The fit was stopped by FitOptions::interrupted (e.g. Ctrl-C in a binding).
class Interrupted : public Error {
 public:
  using Error::Error;
};

}  // namespace cuem
