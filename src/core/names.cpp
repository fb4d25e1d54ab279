// String names of the option enums, for messages, files and the command line.
#include <cstdlib>
#include <string>

#include "cuem/covariance_type.hpp"
#include "cuem/errors.hpp"
#include "cuem/options.hpp"

namespace cuem {

const char* to_string(CovarianceType type) noexcept {
  switch (type) {
    case CovarianceType::full: return "full";
    case CovarianceType::tied: return "tied";
    case CovarianceType::diag: return "diag";
    case CovarianceType::spherical: return "spherical";
  }
  return "unknown";
}

CovarianceType parse_covariance_type(std::string_view name) {
  if (name == "full") return CovarianceType::full;
  if (name == "tied") return CovarianceType::tied;
  if (name == "diag") return CovarianceType::diag;
  if (name == "spherical") return CovarianceType::spherical;
  throw InvalidArgument("unknown covariance type '" + std::string(name) +
                        "': use full, tied, diag or spherical");
}

const char* to_string(InitMethod method) noexcept {
  switch (method) {
    case InitMethod::kmeans: return "kmeans";
    case InitMethod::kmeans_plusplus: return "k-means++";
    case InitMethod::random: return "random";
    case InitMethod::random_from_data: return "random_from_data";
  }
  return "unknown";
}

InitMethod parse_init_method(const std::string& name) {
  if (name == "kmeans") return InitMethod::kmeans;
  if (name == "k-means++" || name == "kmeans++") return InitMethod::kmeans_plusplus;
  if (name == "random") return InitMethod::random;
  if (name == "random_from_data") return InitMethod::random_from_data;
  throw InvalidArgument("unknown init method '" + name +
                        "': use kmeans, k-means++, random or random_from_data");
}

const char* to_string(Precision precision) noexcept {
  return precision == Precision::float64 ? "float64" : "float32";
}

Precision parse_precision(const std::string& name) {
  if (name == "float32") return Precision::float32;
  if (name == "float64") return Precision::float64;
  throw InvalidArgument("unknown precision '" + name + "': use float32 or float64");
}

const char* to_string(MissingPolicy policy) noexcept {
  return policy == MissingPolicy::marginalize ? "marginalize" : "error";
}

MissingPolicy parse_missing_policy(const std::string& name) {
  if (name == "error") return MissingPolicy::error;
  if (name == "marginalize") return MissingPolicy::marginalize;
  throw InvalidArgument("unknown missing-value policy '" + name + "': use error or marginalize");
}

const char* to_string(Acceleration acceleration) noexcept {
  return acceleration == Acceleration::squarem ? "squarem" : "none";
}

Acceleration parse_acceleration(const std::string& name) {
  if (name == "none") return Acceleration::none;
  if (name == "squarem") return Acceleration::squarem;
  throw InvalidArgument("unknown acceleration '" + name + "': use none or squarem");
}

const char* to_string(FirstPass first_pass) noexcept {
  return first_pass == FirstPass::incremental ? "incremental" : "full";
}

FirstPass parse_first_pass(const std::string& name) {
  if (name == "full") return FirstPass::full;
  if (name == "incremental") return FirstPass::incremental;
  throw InvalidArgument("unknown first pass '" + name + "': use full or incremental");
}

Device parse_device(const std::string& name) {
  if (name == "cpu") return {DeviceKind::cpu, 0};
  if (name == "auto") return {DeviceKind::automatic, 0};
  if (name == "cuda") return {DeviceKind::cuda, 0};
  if (name.rfind("cuda:", 0) == 0 && name.size() > 5) {
    const std::string digits = name.substr(5);
    if (digits.find_first_not_of("0123456789") == std::string::npos && digits.size() <= 4)
      return {DeviceKind::cuda, std::atoi(digits.c_str())};
  }
  throw InvalidArgument("unknown device '" + name + "': use cpu, cuda, cuda:N or auto");
}

}  // namespace cuem
