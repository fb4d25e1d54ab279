#pragma once
// Stepwise (online) EM's update of the statistics (Cappe and Moulines 2009):
//   s <- (1 - rho) s + rho s_batch / w_batch,
// s the running statistics per unit weight, s_batch a batch's statistics under the
// current parameters and w_batch its total weight (src/engine/stepwise_driver.hpp).
#include "core/sufficient_stats.hpp"

namespace cuem {

/// The statistics divided by their weight: per unit weight, weight 1 (n_points kept).
SufficientStats per_unit_weight(const SufficientStats& s);

/// s <- (1 - rho) s + rho per_unit_weight(batch), about batch's shift (the current means,
/// so that the sums stay centred as the means move); n_points adds up. rho in (0, 1]; with
/// rho = 1, s is replaced (it may then be empty, SufficientStats{}).
void stepwise_update(SufficientStats& s, double rho, const SufficientStats& batch);

}  // namespace cuem
