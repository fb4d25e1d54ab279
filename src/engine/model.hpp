#pragma once
// What a model is to the engine (DESIGN.md, "The EM engine"). A model is a plain type,
// no base class: the drivers are templates over it, so an E-step costs no virtual call
// and a model's Params and Stats are its own types.
//
//   struct MyModel {
//     using Params = ...;  // what the M-step produces and the E-step reads
//     using Stats = ...;   // additive statistics, a monoid (below)
//     Params initialize(std::uint64_t seed, std::vector<std::string>* notices);
//     Stats e_step(const Params&);  // over all of the model's data, in a fixed order
//     Params m_step(const Stats&);  // the maximiser of the expected complete log-likelihood
//     double unit_roundoff() const; // of the E-step's log-density arithmetic
//   };
//
// Stats carries `double log_likelihood` (sum over points of w log p(x | params)) and
// `double weight` (sum of w, the number of points without weights); the batch driver's
// bound is their ratio. For the drivers that sum statistics over chunks, ranks or time
// (online, incremental, distributed: later issues), Stats is a monoid: a zero of the
// right shape, `add(const Stats&)` (SufficientStats::merge for the Gaussian models),
// and, where sums are kept about a shift, re-centring to another one
// (SufficientStats::recentred), so that parts taken about different shifts still add.
// A chunk of the data is the same model over placed data of fewer rows.
//
// What a model gets for nothing: restarts and best-of-n, the trace and its monotonicity
// check, the convergence test and the iteration callback (batch_driver.hpp); with the
// Gaussian primitives (primitives.hpp), both devices, sample weights and initialisation
// by k-means (src/init/).
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace cuem::engine {

/// Whether M has the members the batch driver calls (a readable error where it does not).
template <class M, class = void>
struct is_batch_model : std::false_type {};

template <class M>
struct is_batch_model<
    M, std::void_t<typename M::Params, typename M::Stats,
                   decltype(std::declval<M&>().initialize(std::uint64_t{}, std::declval<std::vector<std::string>*>())),
                   decltype(std::declval<M&>().e_step(std::declval<const typename M::Params&>())),
                   decltype(std::declval<M&>().m_step(std::declval<const typename M::Stats&>())),
                   decltype(std::declval<const M&>().unit_roundoff()),
                   decltype(double{std::declval<const typename M::Stats&>().log_likelihood}),
                   decltype(double{std::declval<const typename M::Stats&>().weight})>> : std::true_type {};

}  // namespace cuem::engine
