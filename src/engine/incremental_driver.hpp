#pragma once
// Incremental EM (Neal and Hinton 1998, "A view of the EM algorithm that justifies
// incremental, sparse, and other variants") for any model whose data split into blocks of
// rows: each block is the same model over fewer rows. The driver knows no model.
//
// Blocks: whatever the caller cuts. fit() cuts B contiguous blocks for the full first pass
// and interleaved tiles (interleaved_blocks.hpp) for the incremental one, whose M-steps
// need each block to sample the whole order of the rows.
//
// Schedule: each iteration re-estimates one block (in turn, 0..B-1) under the current
// parameters, replaces that block's kept statistics, and runs the M-step on their total. A
// pass is B such iterations: max_iter counts passes, and the convergence test compares the
// bound at the end of one pass with the previous pass's. The first pass is either
//  - full: one iteration, every block under the initial parameters, then one M-step; or
//  - incremental (Neal and Hinton's scheme from the start): block b's E-step under the
//    parameters of the M-step on blocks 0..b-1 (the start for block 0), i.e. the total
//    holds only the blocks seen so far. Their statistics are those of a subsample, so the
//    M-step on them is a consistent estimate of the full M-step when the blocks are alike
//    (fit()'s interleaved blocks); it is stepwise EM with step 1/b. The start is not
//    blended into the statistics; instead the M-steps begin once the seen blocks hold a
//    fifth of the blocks (first_pass_start_blocks): the blocks before are estimated under
//    the start. A small block can hold fewer points a component than a covariance has
//    parameters, and an M-step on it collapses components that later blocks cannot
//    revive: 1/100 of config B's rows (12 points a 16-d component), and a tenth of iris
//    (5 points a 4-d component: a worse optimum, -1.301 against -1.201, with interleaved
//    blocks; from a fifth on, batch EM's). Blocks that are not alike (contiguous blocks
//    of sorted rows) mislead the first M-steps towards a worse optimum as well.
//    The bound of a first-pass step is F over the seen blocks per unit of their weight:
//    not comparable between steps, so the monotonicity watch starts at the pass's last
//    step, the first with every block's statistics.
//
// Totals: sums of the kept block statistics through a fixed tree of partial sums
// (block_sum_tree.hpp), not updated by difference (total - old_b + new_b). The difference
// loses the bits of the largest partial sums at every step and the loss accumulates over
// steps (N_k of an emptying component can even go negative), and the order of the sums
// would depend on the history; the tree keeps every total a fixed-order function of the
// kept statistics at O(log B) merges a step (re-summing all B blocks at every step made
// a pass O(B^2) merges, most of the time of a pass at B = 100).
//
// The bound is the free energy F(q, theta) = E_q log p(x, z | theta) + H(q) per unit
// weight, q the responsibilities each block last had, at the parameters before the
// M-step. F never decreases (the M-step and the block's E-step each maximise it), F is at
// most the log-likelihood of theta, and equal to it just after a full E-step: with one
// block every iteration is one, and the driver is batch EM bitwise. Per block b the
// entropy H_b = LL_b(theta_b) - Q_b(theta_b) is kept from its E-step (theta_b the
// parameters it used), so that
//   F = Q(S_others, theta) + sum_{b' != b} H_b' + LL_b(theta),
// with the block just re-estimated contributing its exact log-likelihood. This needs of
// the model, beyond batch EM's members, only
//   double complete_log_likelihood(const Stats&, const Params&) const;  // Q(s, theta)
// and of Stats `merge(const Stats&)`. A model whose M-step is a MAP estimate adds
//   double log_prior(const Params&) const;  // log p(theta), up to a constant
// and the bound is then (F + log p(theta)) per unit weight, which MAP EM never decreases.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/rng.hpp"
#include "cuem/errors.hpp"
#include "cuem/options.hpp"
#include "engine/batch_driver.hpp"
#include "engine/block_sum_tree.hpp"
#include "engine/model.hpp"

namespace cuem::engine {

template <class M, class = void>
struct has_log_prior : std::false_type {};
template <class M>
struct has_log_prior<M, std::void_t<decltype(double{std::declval<const M&>().log_prior(
                            std::declval<const typename M::Params&>())})>> : std::true_type {};

/// log p(theta) of a MAP model, 0 for a maximum-likelihood one.
template <class M>
double log_prior_of(const M& model, const typename M::Params& params) {
  if constexpr (has_log_prior<M>::value) return model.log_prior(params);
  else return 0.0;
}

/// An incremental first pass runs its first M-step after this many blocks: a fifth of them.
inline std::size_t first_pass_start_blocks(std::size_t B) { return (B + 4) / 5; }

/// Runs incremental EM with `blocks[b]` the model over block b's rows (blocks partition
/// the data of `model`, which initialises and runs the M-step; a block needs only
/// `Stats e_step(const Params&)`, so it may be a ChunkedModel over interleaved tiles,
/// interleaved_blocks.hpp); restarts, the best of them, the trace and its monotonicity
/// watch as run_batch_em. The trace has one entry
/// per iteration (a full first pass is one, an incremental one B, then one a block);
/// n_iter and n_estep_passes count passes over the data (a pass cut short by
/// o.max_steps counts as one). `first_pass`: see the schedule above.
template <class Model, class Block = Model>
BatchResult<typename Model::Params> run_incremental_em(Model& model, const std::vector<Block*>& blocks,
                                                       const BatchOptions& o, FirstPass first_pass = FirstPass::full) {
  static_assert(is_batch_model<Model>::value, "not an engine model: see src/engine/model.hpp for the members");
  using Clock = std::chrono::steady_clock;
  using Stats = typename Model::Stats;
  const std::size_t B = blocks.size();
  if (B == 0) throw InvalidArgument("incremental EM needs at least one block");
  BatchResult<typename Model::Params> result;
  bool stopped = false;
  for (int init = 0; init < o.n_init && !stopped; ++init) {
    typename Model::Params params = start_restart(model, o, init, result);
    std::vector<Stats> kept(B);
    BlockSumTree<Stats> sums(kept);
    std::vector<double> entropy(B, 0.0);  // H_b, kept only where B > 1
    const auto estimate = [&](std::size_t b) {
      kept[b] = blocks[b]->e_step(params);
      if (B > 1) entropy[b] = kept[b].log_likelihood - model.complete_log_likelihood(kept[b], params);
    };
    EmRateEstimate rate(model.unit_roundoff());
    double bound = -std::numeric_limits<double>::infinity(), pass_bound = bound;
    bool converged = false;
    int n_pass = 0, step = 0;
    // One block: both first passes are the same full E-step (batch EM bitwise).
    const bool full_first = first_pass == FirstPass::full || B == 1;
    const int first_complete = full_first ? 1 : static_cast<int>(B);  // the first step whose F covers every block
    Stats seen;  // incremental first pass: blocks 0..i-1, summed in order
    bool at_step_limit = false;
    for (int pass = 1; pass <= o.max_iter && !stopped && !at_step_limit; ++pass) {
      const auto pass_start = Clock::now();
      const std::size_t steps = pass == 1 && full_first ? 1 : B;
      for (std::size_t i = 0; i < steps; ++i) {
        const auto t0 = Clock::now();
        const double previous = bound;
        double free_energy = 0.0;
        const Stats* seen_total = nullptr;
        if (pass == 1 && full_first) {
          for (std::size_t b = 0; b < B; ++b) estimate(b);
          for (std::size_t b = 0; b < B; ++b) free_energy += kept[b].log_likelihood;
          sums.build();
        } else if (pass == 1) {
          estimate(i);
          free_energy = kept[i].log_likelihood;
          if (i > 0) {
            free_energy += model.complete_log_likelihood(seen, params);
            for (std::size_t b = 0; b < i; ++b) free_energy += entropy[b];
          }
          if (i + 1 == B) {
            sums.build();  // from here on the tree's fixed order, as in every later pass
          } else {
            if (i == 0) seen = kept[0];
            else seen.merge(kept[i]);
            seen_total = &seen;
          }
        } else {
          estimate(i);
          sums.update(i);
          free_energy = kept[i].log_likelihood;
          if (B > 1) {
            free_energy += model.complete_log_likelihood(sums.total_without(i), params);
            for (std::size_t b = 0; b < B; ++b)
              if (b != i) free_energy += entropy[b];
          }
        }
        free_energy += log_prior_of(model, params);
        // The tree's root (unchanged until the next update), or the seen blocks' sum.
        const Stats& total = seen_total ? *seen_total : sums.total();
        bound = free_energy / total.weight;
        // An incremental first pass keeps the start until a fifth of the blocks are in.
        if (!(pass == 1 && !full_first && i + 1 < first_pass_start_blocks(B))) params = model.m_step(total);
        ++step;
        const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
        // F's B + 1 parts are each rounded to about their own size: B times the slack.
        if (step > first_complete) watch_decrease(result, previous, bound - previous, static_cast<double>(B) * model.unit_roundoff());
        if (i + 1 == steps && pass > 1) rate.add(pass_bound, bound - pass_bound, pass > 2);  // per pass
        result.trace.push_back({init, step, bound, seconds, rate.rate()});
        if (o.max_steps > 0 && step >= o.max_steps) {
          at_step_limit = true;
          break;
        }
      }
      ++result.n_estep_passes;
      n_pass = pass;
      if (at_step_limit) break;
      const double change = bound - pass_bound;
      pass_bound = bound;
      const double seconds = std::chrono::duration<double>(Clock::now() - pass_start).count();
      if (o.on_iteration && !o.on_iteration({init, pass, bound, change, seconds})) {
        stopped = true;
        break;
      }
      if (pass > 1 && std::abs(change) < o.tol) {
        converged = true;
        break;
      }
    }
    keep_best_restart(result, std::move(params), init, converged, n_pass, bound, rate.rate());
  }
  return result;
}

}  // namespace cuem::engine
