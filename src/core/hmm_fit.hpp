#pragma once
// The pieces of fit_hmm (hmm_api.cpp) that a fit of the same model elsewhere shares (the
// distributed fit, src/mpi/distributed_hmm.cpp): the option checks, the driver's options
// and the result.
#include <string>
#include <vector>

#include "cuem/data_view.hpp"
#include "cuem/gmm_hmm.hpp"
#include "cuem/hmm.hpp"
#include "engine/batch_driver.hpp"

namespace cuem {

/// Ranges of the options and shapes of the given start against X (its shape only);
/// InvalidArgument naming what is wrong.
void validate_hmm_options(const HmmOptions& o, DataView X);

/// The same for a GMMHMM (cuem/gmm_hmm.hpp).
void validate_gmm_hmm_options(const GmmHmmOptions& o, DataView X);

/// The batch driver's options from the HMM's.
engine::BatchOptions hmm_batch_options(const HmmOptions& o);

/// A driver's outcome as the fit's result: `notices` first, then the driver's, then one
/// naming the states that went without weight.
HmmFitResult hmm_fit_result(engine::BatchResult<HmmModel>& run, const std::string& device,
                            const std::vector<int>& empty_states, std::vector<std::string> notices);

/// The same for a GMMHMM fit's driver.
GmmHmmFitResult gmm_hmm_fit_result(engine::BatchResult<GmmHmmModel>& run, const std::string& device,
                                   std::vector<std::string> notices);

}  // namespace cuem
