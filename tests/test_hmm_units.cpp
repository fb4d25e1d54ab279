// The distributed HMM fit's arithmetic without MPI (src/mpi/distributed_model.hpp): the
// statistics as one vector of additive values and back, and the E-step run per unit of
// whole sequences (mpi::sequence_units), each unit on its own backend over its own rows,
// its vectors summed in unit order, against the plain log-space reference loop
// (hmm_reference.hpp) and the one-backend E-step; the GMMHMM's statistics likewise; the
// public statistics API (hmm_statistics, hmm_model_from_statistics) against fit_hmm.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "cpu/cpu_primitives.hpp"
#include "cuem/gmm_hmm.hpp"
#include "engine/gmm_hmm_model.hpp"
#include "engine/hmm_chain.hpp"
#include "engine/hmm_model.hpp"
#include "engine/placed_data.hpp"
#include "hmm_reference.hpp"
#include "mpi/segments.hpp"
#include "test_util.hpp"

namespace {

using cuem::CovarianceType;
using namespace hmm_test;
using cuem::engine::GaussianHmmEM;
using cuem::engine::HmmStats;

class HmmUnits : public ::testing::TestWithParam<CovarianceType> {};

// The offsets of the sequences of rows [lo, hi) (whole sequences), from lo.
std::vector<std::size_t> unit_offsets(const std::vector<std::size_t>& offsets, std::size_t lo, std::size_t hi) {
  std::vector<std::size_t> local{0};
  for (std::size_t q = 1; q < offsets.size(); ++q)
    if (offsets[q] > lo && offsets[q] <= hi) local.push_back(offsets[q] - lo);
  return local;
}

// One E-step of the model over all of X on one backend.
HmmStats whole_estep(const std::vector<double>& X, std::size_t D, const std::vector<std::size_t>& offsets,
                     const cuem::HmmOptions& o, const cuem::HmmModel& m) {
  const cuem::DataView view(X.data(), X.size() / D, D);
  cuem::CpuPrimitives prims(view, cuem::WeightView{});
  cuem::KMeansShared shared;
  GaussianHmmEM model(prims, view, offsets, o, shared);
  return model.e_step(m);
}

TEST_P(HmmUnits, AdditivePartsRoundTripBitwise) {
  const Chain c = make_chain(GetParam(), 3, 2, 21);
  const std::vector<std::size_t> lengths{300, 1, 57, 140};
  const std::vector<double> X = draw(c, lengths, 4);
  const cuem::HmmOptions o = options_from(c, 1);
  const cuem::HmmModel m = to_hmm(c);
  const HmmStats s = whole_estep(X, 2, cuem::engine::sequence_offsets(lengths, X.size() / 2), o, m);
  const cuem::DataView none(static_cast<const double*>(nullptr), X.size() / 2, 2);
  cuem::CpuPrimitives unused(cuem::DataView(X.data(), 1, 2), cuem::WeightView{});
  cuem::KMeansShared shared;
  const std::vector<std::size_t> offsets{0, 1};
  const GaussianHmmEM shape(unused, none, offsets, o, shared);
  HmmStats back = shape.zero_stats(m);
  for (double v : cuem::engine::additive_parts(back)) ASSERT_EQ(v, 0.0);
  cuem::engine::set_additive_parts(back, cuem::engine::additive_parts(s));
  EXPECT_EQ(back.emission.nk, s.emission.nk);
  EXPECT_EQ(back.emission.s1, s.emission.s1);
  EXPECT_EQ(back.emission.s2, s.emission.s2);
  EXPECT_EQ(back.emission.shift, s.emission.shift);
  EXPECT_EQ(back.emission.log_likelihood, s.emission.log_likelihood);
  EXPECT_EQ(back.emission.n_points, s.emission.n_points);
  EXPECT_EQ(back.emission.weight, s.emission.weight);
  EXPECT_EQ(back.start, s.start);
  EXPECT_EQ(back.trans, s.trans);
  EXPECT_EQ(back.log_likelihood, s.log_likelihood);
  EXPECT_EQ(back.weight, s.weight);
  EXPECT_EQ(back.at.emissions.means, m.emissions.means);
  // Emission sums kept about another shift are re-centred to the model's means first.
  HmmStats moved = s;
  std::vector<double> other = s.emission.shift;
  for (double& v : other) v += 1.5;
  moved.emission = s.emission.recentred(other);
  const std::vector<double> a = cuem::engine::additive_parts(s), b = cuem::engine::additive_parts(moved);
  ASSERT_EQ(a.size(), b.size());
  EXPECT_LT(cuem_test::max_rel_diff(b, a, 1e-3), 1e-12);
  EXPECT_THROW(cuem::engine::set_additive_parts(back, std::vector<double>(a.size() + 1)), cuem::Error);
}

// Units of the sequences starting in windows of S rows: each unit's E-step on a backend
// of its rows alone, the vectors summed in unit order, is the reference loop's E-step
// (and the one-backend E-step's to rounding), whatever S; and a unit's vector does not
// depend on the thread count (ranks may run different numbers of threads).
TEST_P(HmmUnits, UnitsSummedInOrderAreTheWholeEStep) {
  const CovarianceType type = GetParam();
  const Chain c = make_chain(type, 3, 3, 31);
  const std::vector<std::size_t> lengths{1, 700, 2, 90, 33, 400, 5, 61, 1, 250};
  const std::vector<double> X = draw(c, lengths, 6);
  const std::size_t D = 3, N = X.size() / D, K = 3;
  const std::vector<std::size_t> offsets = cuem::engine::sequence_offsets(lengths, N);
  const cuem::HmmOptions o = options_from(c, 1);
  const cuem::HmmModel m = to_hmm(c);
  const Reference ref = reference_estep(c, X, lengths);
  const HmmStats whole = whole_estep(X, D, offsets, o, m);
  for (std::size_t S : {std::size_t{100}, std::size_t{256}, std::size_t{5000}}) {
    const cuem::mpi::SegmentLayout units = cuem::mpi::sequence_units(offsets, S, 1);
    std::vector<double> sum;
    for (std::size_t j = 0; j < units.segments(); ++j) {
      const std::size_t lo = units.row_begin(j), hi = units.row_end(j);
      const std::vector<std::size_t> local = unit_offsets(offsets, lo, hi);
      // The unit's own rows, copied: nothing of the other units is in reach.
      const std::vector<double> rows(X.begin() + static_cast<std::ptrdiff_t>(lo * D),
                                     X.begin() + static_cast<std::ptrdiff_t>(hi * D));
      std::vector<double> part;
      for (int threads : {1, 2}) {
        const cuem::engine::ThreadCountScope scope(threads);
        const std::vector<double> v = cuem::engine::additive_parts(whole_estep(rows, D, local, o, m));
        if (part.empty())
          part = v;
        else
          ASSERT_EQ(v, part) << "unit " << j << ": 1 and 2 threads differ";
      }
      if (sum.empty()) sum.assign(part.size(), 0.0);
      for (std::size_t i = 0; i < part.size(); ++i) sum[i] += part[i];
    }
    HmmStats folded = whole;
    cuem::engine::set_additive_parts(folded, sum);
    EXPECT_NEAR(folded.log_likelihood, ref.log_likelihood, 1e-10 * std::abs(ref.log_likelihood)) << "S " << S;
    EXPECT_LT(cuem_test::max_rel_diff(folded.start, ref.start, 1e-3), 1e-10) << "S " << S;
    EXPECT_LT(cuem_test::max_rel_diff(folded.trans, ref.trans, 1e-3), 1e-10) << "S " << S;
    std::vector<double> nk(K, 0.0);
    for (std::size_t t = 0; t < N; ++t)
      for (std::size_t k = 0; k < K; ++k) nk[k] += ref.gamma[t * K + k];
    EXPECT_LT(cuem_test::max_rel_diff(folded.emission.nk, nk, 1e-3), 1e-10) << "S " << S;
    EXPECT_EQ(folded.weight, static_cast<double>(N));
    EXPECT_EQ(folded.emission.n_points, N);
    EXPECT_LT(cuem_test::max_rel_diff(folded.emission.s1, whole.emission.s1, 1e-3), 1e-12) << "S " << S;
    EXPECT_LT(cuem_test::max_rel_diff(folded.emission.s2, whole.emission.s2, 1e-3), 1e-12) << "S " << S;
    if (units.segments() == 1) {  // one unit: the one-backend E-step itself
      EXPECT_EQ(folded.log_likelihood, whole.log_likelihood);
      EXPECT_EQ(folded.trans, whole.trans);
      EXPECT_EQ(folded.emission.s2, whole.emission.s2);
    }
  }
}

// The GMMHMM's statistics the same way: round trip bitwise, and units summed in order
// against the one-backend E-step.
TEST_P(HmmUnits, GmmHmmPartsRoundTripAndUnitsSumToTheWhole) {
  const Chain c = make_chain(GetParam(), 2, 2, 41);
  const std::vector<std::size_t> lengths{260, 1, 90, 3, 150};
  const std::vector<double> X = draw(c, lengths, 8);
  const std::size_t D = 2, N = X.size() / D;
  const std::vector<std::size_t> offsets = cuem::engine::sequence_offsets(lengths, N);
  cuem::GmmHmmOptions o;
  o.n_components = 2;
  o.n_mix = 2;
  o.covariance_type = GetParam();
  o.n_iter = 1;
  o.device = cuem::parse_device("cpu");
  const cuem::GmmHmmModel m = cuem::fit_gmm_hmm(cuem::DataView(X.data(), N, D), lengths, o).model;
  const auto estep = [&](const double* data, std::size_t rows, const std::vector<std::size_t>& offs) {
    const cuem::DataView view(data, rows, D);
    cuem::CpuPrimitives prims(view, cuem::WeightView{});
    cuem::KMeansShared shared;
    cuem::engine::GmmHmmEM model(prims, view, offs, o, shared);
    return model.e_step(m);
  };
  const cuem::engine::GmmHmmStats whole = estep(X.data(), N, offsets);
  cuem::engine::GmmHmmStats back = whole;
  for (double* v : {&back.log_likelihood, &back.weight}) *v = -1.0;
  cuem::engine::set_additive_parts(back, cuem::engine::additive_parts(whole));
  EXPECT_EQ(cuem::engine::additive_parts(back), cuem::engine::additive_parts(whole));
  EXPECT_EQ(back.log_likelihood, whole.log_likelihood);
  EXPECT_EQ(back.emission.s2, whole.emission.s2);
  const cuem::mpi::SegmentLayout units = cuem::mpi::sequence_units(offsets, 200, 1);
  ASSERT_GT(units.segments(), 1u);
  std::vector<double> sum;
  for (std::size_t j = 0; j < units.segments(); ++j) {
    const std::size_t lo = units.row_begin(j), hi = units.row_end(j);
    const std::vector<double> part =
        cuem::engine::additive_parts(estep(X.data() + lo * D, hi - lo, unit_offsets(offsets, lo, hi)));
    if (sum.empty()) sum.assign(part.size(), 0.0);
    for (std::size_t i = 0; i < part.size(); ++i) sum[i] += part[i];
  }
  const std::vector<double> want = cuem::engine::additive_parts(whole);
  EXPECT_LT(cuem_test::max_rel_diff(sum, want, 1e-3), 1e-12);
  // The public API: one step from m is fit_gmm_hmm's first iteration from m, bitwise.
  cuem::GmmHmmOptions from_m = o;
  from_m.init = m;
  from_m.init_params = "";
  from_m.priors.means_weight = {0.5};
  const cuem::GmmHmmModel fitted = cuem::fit_gmm_hmm(cuem::DataView(X.data(), N, D), lengths, from_m).model;
  const cuem::GmmHmmModel step = cuem::gmm_hmm_model_from_statistics(
      m, cuem::gmm_hmm_statistics(m, cuem::DataView(X.data(), N, D), lengths), from_m);
  EXPECT_EQ(step.startprob, fitted.startprob);
  EXPECT_EQ(step.transmat, fitted.transmat);
  EXPECT_EQ(step.weights, fitted.weights);
  EXPECT_EQ(step.means, fitted.means);
  EXPECT_EQ(step.covars, fitted.covars);
  EXPECT_THROW(cuem::gmm_hmm_model_from_statistics(m, std::vector<double>(want.size(), 0.0), from_m),
               cuem::InvalidArgument);
}

// The public statistics API (cuem/hmm.hpp): one Baum-Welch step by hmm_statistics and
// hmm_model_from_statistics is fit_hmm's first iteration, bitwise; two halves of the
// sequences summed give it to rounding; a vector of another length is refused.
TEST_P(HmmUnits, PublicStatisticsAreOneBaumWelchStep) {
  const Chain c = make_chain(GetParam(), 3, 2, 51);
  const std::vector<std::size_t> lengths{120, 1, 75, 300, 9};
  const std::vector<double> X = draw(c, lengths, 10);
  const std::size_t D = 2, N = X.size() / D;
  cuem::HmmOptions o = options_from(c, 1);
  o.priors.means_weight = {0.5};
  o.priors.transmat_prior = {1.5};
  const cuem::HmmModel start = to_hmm(c);
  const cuem::HmmFitResult fit = cuem::fit_hmm(cuem::DataView(X.data(), N, D), lengths, o);
  const std::vector<double> all = cuem::hmm_statistics(start, cuem::DataView(X.data(), N, D), lengths);
  const cuem::HmmModel step = cuem::hmm_model_from_statistics(start, all, o);
  EXPECT_EQ(step.startprob, fit.model.startprob);
  EXPECT_EQ(step.transmat, fit.model.transmat);
  EXPECT_EQ(step.emissions.means, fit.model.emissions.means);
  EXPECT_EQ(step.emissions.covariances, fit.model.emissions.covariances);
  // Sequences 0-1 and 2-4 apart, summed.
  const std::size_t split = 121;
  std::vector<double> sum = cuem::hmm_statistics(start, cuem::DataView(X.data(), split, D), {120, 1});
  const std::vector<double> rest =
      cuem::hmm_statistics(start, cuem::DataView(X.data() + split * D, N - split, D), {75, 300, 9});
  ASSERT_EQ(sum.size(), all.size());
  for (std::size_t i = 0; i < sum.size(); ++i) sum[i] += rest[i];
  EXPECT_LT(cuem_test::max_rel_diff(sum, all, 1e-3), 1e-12);
  const cuem::HmmModel halves = cuem::hmm_model_from_statistics(start, sum, o);
  EXPECT_LT(cuem_test::max_rel_diff(halves.emissions.means, step.emissions.means), 1e-12);
  EXPECT_LT(cuem_test::max_rel_diff(halves.transmat, step.transmat), 1e-12);
  // A start prior below 1 that takes every start count to 0 keeps the start (a distribution).
  std::vector<double> spread = all;
  const std::size_t K = 3, at_start = all.size() - 2 - K * K - K;
  for (std::size_t k = 0; k < K; ++k) spread[at_start + k] = 1.0 / 3.0;
  cuem::HmmOptions weak = o;
  weak.priors.startprob_prior = {0.5};
  EXPECT_EQ(cuem::hmm_model_from_statistics(start, spread, weak).startprob, start.startprob);
  weak.priors.startprob_prior = {0.9};  // counts above 0 remain: renormalised as hmmlearn does
  const std::vector<double> renormalised = cuem::hmm_model_from_statistics(start, spread, weak).startprob;
  for (double v : renormalised) EXPECT_NEAR(v, 1.0 / 3.0, 1e-15);
  EXPECT_THROW(cuem::hmm_model_from_statistics(start, std::vector<double>(sum.size(), 0.0), o),
               cuem::InvalidArgument);  // no frames
  std::vector<double> negative = sum;
  negative[0] = -1.0;  // a state's count
  EXPECT_THROW(cuem::hmm_model_from_statistics(start, negative, o), cuem::InvalidArgument);
  sum.pop_back();
  EXPECT_THROW(cuem::hmm_model_from_statistics(start, sum, o), cuem::InvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(Types, HmmUnits,
                         ::testing::Values(CovarianceType::full, CovarianceType::tied, CovarianceType::diag,
                                           CovarianceType::spherical),
                         [](const auto& info) { return std::string(cuem::to_string(info.param)); });

}  // namespace
