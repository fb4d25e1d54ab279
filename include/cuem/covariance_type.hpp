#pragma once
// The four covariance structures of scikit-learn's GaussianMixture.
#include <string>
#include <string_view>

namespace cuem {

enum class CovarianceType {
  full,       ///< each component has its own D x D covariance
  tied,       ///< all components share one D x D covariance
  diag,       ///< each component has its own diagonal covariance
  spherical,  ///< each component has its own single variance
};

/// "full", "tied", "diag" or "spherical".
const char* to_string(CovarianceType type) noexcept;

/// Parses the names above; throws InvalidArgument on anything else.
CovarianceType parse_covariance_type(std::string_view name);

}  // namespace cuem
