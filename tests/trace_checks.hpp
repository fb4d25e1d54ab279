#pragma once
// A check the driver tests share: every entry of a fit's trace at least the one before it
// in the same restart, up to `slack` (an EM step may lose rounding; an accepted SQUAREM
// extrapolation never does).
#include <gtest/gtest.h>

#include <cstddef>
#include <vector>

#include "cuem/fit.hpp"

namespace cuem_test {

inline void expect_trace_never_decreases(const std::vector<cuem::TracePoint>& trace, double slack) {
  ASSERT_FALSE(trace.empty());
  for (std::size_t i = 1; i < trace.size(); ++i) {
    if (trace[i].init != trace[i - 1].init) continue;
    EXPECT_GE(trace[i].mean_log_likelihood, trace[i - 1].mean_log_likelihood - slack)
        << "entry " << i << " of restart " << trace[i].init;
  }
}

}  // namespace cuem_test
