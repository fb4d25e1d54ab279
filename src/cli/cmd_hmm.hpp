#pragma once
// The Gaussian HMM's command-line work (include/cuem/hmm.hpp): cuem fit --model hmm, cuem
// decode, and cuem score / cuem sample on an HMM model file (those commands hand over here
// when the file's kind is "gaussian_hmm", io/hmm_json.hpp).
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "cli/common.hpp"
#include "cuem/gmm_hmm.hpp"
#include "cuem/hmm.hpp"

namespace cuem::cli {

/// --lengths FILE: one positive integer per sequence, in the order of the rows, separated
/// by whitespace or commas; they must sum to n_rows. Empty path: one sequence. DataError
/// naming the file otherwise (exit 3).
std::vector<std::size_t> load_lengths(const std::string& path, std::size_t n_rows);

/// cuem fit DATA --model hmm -k K [--covariance T] [--lengths FILE] [--n-mix M] [-o model.json] [--trace t.csv]:
/// Baum-Welch from a k-means start; --max-iter, --tol (on the mean log-likelihood per
/// frame), --seed, --n-init, --threads and the device options as for a mixture. n_mix > 0
/// fits a GMMHMM (cuem/gmm_hmm.hpp; model kind "gmm_hmm"). incremental_blocks > 1: incremental
/// EM over blocks of whole sequences (Gaussian HMMs only), max_block_steps > 0 its budget of
/// block steps (--max-block-steps).
/// `trace_text` writes the --trace CSV (cuem fit's own format).
int run_hmm_fit(const DataArgs& data, const std::string& lengths, const FitArgs& fit, const std::string& output,
                const std::string& trace, const std::function<std::string(const std::vector<TracePoint>&)>& trace_text,
                const GlobalFlags& flags, int n_mix = 0, int incremental_blocks = 1, int max_block_steps = 0);

/// The HmmOptions of cuem fit's arguments (to_fit_options' checks): states, covariance type,
/// iterations, tolerance, restarts, seed, device, threads, acceleration, missing policy.
HmmOptions hmm_options(const FitArgs& fit, const DataArgs& data);

/// A GMMHMM's options from the Gaussian HMM's (their shared fields; on_iteration too), n_mix
/// components a state; UsageError for SQUAREM, which the GMMHMM does not take.
GmmHmmOptions gmm_hmm_options(const HmmOptions& o, int n_mix);
/// The fields of a GMMHMM fit that report_hmm_fit reads, as a Gaussian HMM's result.
HmmFitResult as_hmm_report(GmmHmmFitResult&& g);

/// What cuem fit --model hmm says after a fit: the notes and warnings, the model (-o) and
/// trace files written together, and the summary as text or JSON (`extra`'s keys added
/// to the JSON). n_mix > 0 for a GMMHMM.
int report_hmm_fit(const HmmFitResult& r, const HmmOptions& o, int n_mix, const std::string& model_json,
                   std::size_t n_frames, std::size_t n_sequences, const std::string& output, const std::string& trace,
                   const std::function<std::string(const std::vector<TracePoint>&)>& trace_text,
                   const GlobalFlags& flags, const nlohmann::json& extra = nlohmann::json::object());

/// cuem score on an HMM file (either kind): the total and per-frame log-likelihood, BIC and AIC.
int run_hmm_score(const std::string& model, const DataArgs& data, const std::string& lengths, const DeviceArgs& where,
                  const GlobalFlags& flags);

/// cuem sample on an HMM file: one sequence of n frames; `labels` receives its states.
int run_hmm_sample(const std::string& model, std::size_t n, std::uint64_t seed, const std::string& output,
                   const std::string& labels, const GlobalFlags& flags);

/// cuem decode MODEL DATA [--lengths FILE] [--algorithm viterbi|map] [-o states] [--proba FILE].
void add_decode_command(CLI::App& app, const GlobalFlags& flags, int& exit_code);

}  // namespace cuem::cli
