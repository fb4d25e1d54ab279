#pragma once
// Umbrella header: everything a user of the library needs.
#include "cuem/covariance_type.hpp"
#include "cuem/data_view.hpp"
#include "cuem/devices.hpp"
#include "cuem/errors.hpp"
#include "cuem/fit.hpp"
#include "cuem/missing.hpp"
#include "cuem/model.hpp"
#include "cuem/online.hpp"
#include "cuem/options.hpp"
#include "cuem/resources.hpp"
#include "cuem/version.hpp"
