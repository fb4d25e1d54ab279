#pragma once
// Precondition checks at the API boundary: once, with messages that say what to do.
#include "cuem/data_view.hpp"
#include "cuem/model.hpp"
#include "cuem/options.hpp"

namespace cuem {

/// N > 0, D > 0, a data pointer, and every value finite (or NaN, a missing entry, under
/// MissingPolicy::marginalize); DataError names the first bad row and column (0-based)
/// otherwise. Returns whether X holds a NaN (always false under MissingPolicy::error).
bool validate_data(DataView X, MissingPolicy missing = MissingPolicy::error);

/// Ranges of the options and shapes of the initial parameters against X; InvalidArgument
/// (or DataError for K > N).
void validate_options(const FitOptions& options, DataView X);

/// Incremental EM's budget of block steps (FitOptions and HmmOptions::max_block_steps): at
/// least 0, and positive only with incremental_blocks > 1; InvalidArgument otherwise.
void validate_block_budget(int max_block_steps, int incremental_blocks);

/// Per-point weights for X (sample_weight): one per row, finite, non-negative and not all
/// zero; InvalidArgument naming the first bad one otherwise. With weights, n_components
/// may not exceed the number of rows of positive weight (DataError, as K > N).
void validate_weights(WeightView w, DataView X, int n_components = 1);

/// validate_model plus the covariances agreeing with the precision factors (O(K D^3):
/// for models read from files and before sampling, not for every predict).
void check_model_consistency(const Model& model);

/// validate_model plus data of n_features features (for data validated before).
void validate_model_for(const Model& model, std::size_t n_features);

/// validate_model plus X having the model's number of features; returns whether X holds
/// a NaN (allowed under MissingPolicy::marginalize only).
bool validate_model_and_data(const Model& model, DataView X, MissingPolicy missing = MissingPolicy::error);

}  // namespace cuem
