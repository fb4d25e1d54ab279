// Missing data (issue 15): the errors and the edges of MissingPolicy, on the float64 CPU.
//   - NaN under the default policy is a DataError naming its row and column;
//   - Inf is a DataError under either policy (fit, describe_missing, impute);
//   - a column with no observed entry, data whose every row is empty, and K above the
//     rows with information are DataErrors that say so;
//   - a model evaluates NaN data only with EvaluateOptions::missing = marginalize;
//   - describe_missing counts a hand-made matrix exactly;
//   - data without NaN under marginalize give bitwise the error policy's model.
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <limits>
#include <string>
#include <vector>

#include "cuem/errors.hpp"
#include "cuem/fit.hpp"
#include "cuem/missing.hpp"
#include "missing_test_util.hpp"
#include "test_util.hpp"

namespace {

using cuem::CovarianceType;
using cuem::MissingPolicy;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

template <class E, class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
    return "";
  }
  ADD_FAILURE() << "no exception thrown";
  return "";
}

cuem::FitOptions options(int k, MissingPolicy policy, CovarianceType type = CovarianceType::full) {
  cuem::FitOptions opt;
  opt.n_components = k;
  opt.covariance_type = type;
  opt.missing = policy;
  return opt;
}

// Two separated blobs in D dimensions, N points.
cuem_test::Dataset blobs(std::size_t n, int d, std::uint64_t seed = 3) {
  const cuem_test::Mixture mix = cuem_test::make_mixture(CovarianceType::full, 2, d, 8.0, seed);
  return cuem_test::sample_mixture(mix, n, seed + 1);
}

// ---- NaN and Inf -----------------------------------------------------------------------

TEST(MissingErrors, NaNUnderDefaultPolicyNamesRowAndColumn) {
  cuem_test::Dataset ds = blobs(40, 3);
  ds.x[9 * 3 + 2] = kNaN;
  ds.x[30 * 3 + 1] = kNaN;  // a later one, not to be named
  const std::string msg = message_of<cuem::DataError>([&] { cuem::fit(ds.view(), options(2, MissingPolicy::error)); });
  EXPECT_TRUE(cuem_test::mentions_number(msg, "row ", 9)) << msg;
  EXPECT_TRUE(cuem_test::mentions_number(msg, "column ", 2)) << msg;
  EXPECT_FALSE(cuem_test::mentions_number(msg, "row ", 30)) << msg;
  // The same data fit under marginalize.
  const cuem::FitResult r = cuem::fit(ds.view(), options(2, MissingPolicy::marginalize));
  EXPECT_EQ(r.missing.missing_entries, 2u);
  EXPECT_TRUE(cuem_test::all_finite(r.model));
}

struct InfCase {
  double value;
  MissingPolicy policy;
  const char* name;
};

class InfIsAnError : public testing::TestWithParam<InfCase> {};

TEST_P(InfIsAnError, UnderEitherPolicyNamingRowAndColumn) {
  const InfCase& c = GetParam();
  cuem_test::Dataset ds = blobs(40, 3);
  ds.x[4 * 3 + 0] = kNaN;  // an earlier NaN: under marginalize it is no error, so Inf is named
  ds.x[12 * 3 + 1] = c.value;
  const std::string msg = message_of<cuem::DataError>([&] { cuem::fit(ds.view(), options(2, c.policy)); });
  if (c.policy == MissingPolicy::marginalize) {
    EXPECT_TRUE(cuem_test::mentions_number(msg, "row ", 12)) << msg;
    EXPECT_TRUE(cuem_test::mentions_number(msg, "column ", 1)) << msg;
  } else {  // the first non-finite value is the NaN
    EXPECT_TRUE(cuem_test::mentions_number(msg, "row ", 4)) << msg;
  }
  const std::string d_msg = message_of<cuem::DataError>([&] { cuem::describe_missing(ds.view()); });
  EXPECT_TRUE(cuem_test::mentions_number(d_msg, "row ", 12)) << d_msg;
  EXPECT_TRUE(cuem_test::mentions_number(d_msg, "column ", 1)) << d_msg;
}

INSTANTIATE_TEST_SUITE_P(Values, InfIsAnError,
                         testing::Values(InfCase{kInf, MissingPolicy::marginalize, "inf_marginalize"},
                                         InfCase{-kInf, MissingPolicy::marginalize, "neg_inf_marginalize"},
                                         InfCase{kInf, MissingPolicy::error, "inf_error"}),
                         [](const testing::TestParamInfo<InfCase>& info) { return std::string(info.param.name); });

TEST(MissingErrors, InfWithoutNaNUnderMarginalize) {
  cuem_test::Dataset ds = blobs(40, 3);
  ds.x[21 * 3 + 2] = -kInf;
  const std::string msg =
      message_of<cuem::DataError>([&] { cuem::fit(ds.view(), options(2, MissingPolicy::marginalize)); });
  EXPECT_TRUE(cuem_test::mentions_number(msg, "row ", 21)) << msg;
  EXPECT_TRUE(cuem_test::mentions_number(msg, "column ", 2)) << msg;
}

// ---- data that cannot be fitted --------------------------------------------------------

TEST(MissingErrors, ColumnWithNoObservedEntryIsNamed) {
  cuem_test::Dataset ds = blobs(50, 4);
  for (std::size_t i = 0; i < ds.n; ++i) ds.x[i * 4 + 2] = kNaN;
  const std::string msg =
      message_of<cuem::DataError>([&] { cuem::fit(ds.view(), options(2, MissingPolicy::marginalize)); });
  EXPECT_TRUE(cuem_test::mentions_number(msg, "column ", 2)) << msg;
  EXPECT_FALSE(cuem_test::mentions_number(msg, "column ", 0)) << msg;
}

TEST(MissingErrors, EveryRowEmpty) {
  std::vector<double> x(30 * 3, kNaN);
  EXPECT_THROW(cuem::fit(cuem::DataView(x.data(), 30, 3), options(1, MissingPolicy::marginalize)), cuem::DataError);
  const cuem::MissingSummary s = cuem::describe_missing(cuem::DataView(x.data(), 30, 3));
  EXPECT_EQ(s.empty_rows, 30u);
  EXPECT_EQ(s.incomplete_rows, 30u);
  EXPECT_EQ(s.missing_entries, 90u);
  EXPECT_EQ(s.n_patterns, 0u);  // patterns count only incomplete rows that are not empty
}

// 12 rows of which 9 are empty: 3 rows carry information, so K = 4 is too many (a
// DataError, as K > N is for complete data) while K = 2 fits, skipping the empty rows.
TEST(MissingErrors, MoreComponentsThanRowsWithInformation) {
  cuem_test::Dataset ds = blobs(12, 2);
  for (std::size_t i = 3; i < 12; ++i) ds.x[i * 2] = ds.x[i * 2 + 1] = kNaN;
  ds.x[1 * 2 + 1] = kNaN;  // row 1 keeps column 0
  const cuem::DataView X = ds.view();
  EXPECT_THROW(cuem::fit(X, options(4, MissingPolicy::marginalize)), cuem::DataError);
  cuem::FitOptions opt = options(2, MissingPolicy::marginalize, CovarianceType::spherical);
  opt.reg_covar = 1e-2;
  const cuem::FitResult r = cuem::fit(X, opt);
  EXPECT_EQ(r.missing.empty_rows, 9u);
  EXPECT_EQ(r.missing.incomplete_rows, 10u);
  EXPECT_TRUE(cuem_test::all_finite(r.model));
}

// ---- evaluations -----------------------------------------------------------------------

// A model fitted on complete data: predict, predict_proba, score_samples, score and
// criteria refuse NaN rows unless EvaluateOptions::missing = marginalize; then a row with
// only column 0 observed scores log sum_k pi_k N(x_0 | mu_k0, Sigma_k00), computed here.
TEST(MissingEvaluations, NaNNeedsMarginalize) {
  const cuem_test::Dataset train = blobs(400, 3);
  const cuem::FitResult fitted = cuem::fit(train.view(), options(2, MissingPolicy::error));
  const cuem::Model& m = fitted.model;
  cuem_test::Dataset test = blobs(20, 3, 9);
  test.x[5 * 3 + 1] = kNaN;
  test.x[5 * 3 + 2] = kNaN;
  const cuem::DataView X = test.view();

  const cuem::EvaluateOptions strict;
  const std::string msg = message_of<cuem::DataError>([&] { cuem::score_samples(m, X, strict); });
  EXPECT_TRUE(cuem_test::mentions_number(msg, "row ", 5)) << msg;
  EXPECT_THROW(cuem::predict(m, X, strict), cuem::DataError);
  EXPECT_THROW(cuem::predict_proba(m, X, strict), cuem::DataError);
  EXPECT_THROW(cuem::score(m, X, strict), cuem::DataError);
  EXPECT_THROW(cuem::criteria(m, X, strict), cuem::DataError);

  cuem::EvaluateOptions lenient;
  lenient.missing = MissingPolicy::marginalize;
  const std::vector<double> lp = cuem::score_samples(m, X, lenient);
  const std::vector<double> proba = cuem::predict_proba(m, X, lenient);
  const std::vector<int> labels = cuem::predict(m, X, lenient);
  ASSERT_EQ(lp.size(), 20u);
  ASSERT_EQ(labels.size(), 20u);
  // Row 5 by hand: the one-dimensional marginal of column 0.
  std::vector<double> terms(m.n_components);
  for (int k = 0; k < m.n_components; ++k) {
    const double var = cuem_test::full_covariance(m, k)[0];
    const double dev = test.x[5 * 3] - m.means[k * 3];
    terms[k] = std::log(m.weights[k]) - 0.5 * (std::log(2 * cuem_test::kPi * var) + dev * dev / var);
  }
  const double want = cuem_test::logsumexp(terms.data(), terms.size());
  EXPECT_NEAR(lp[5], want, 1e-12 * std::abs(want));
  for (int k = 0; k < m.n_components; ++k)
    EXPECT_NEAR(proba[5 * m.n_components + k], std::exp(terms[k] - want), 1e-12);
  // The complete rows are as under the strict policy (to rounding: the rows may be
  // evaluated in another arrangement).
  cuem_test::Dataset complete_rows = test;
  for (int j = 0; j < 3; ++j) complete_rows.x[5 * 3 + j] = test.x[4 * 3 + j];  // row 5 replaced
  const std::vector<double> lp_strict = cuem::score_samples(m, complete_rows.view(), strict);
  for (std::size_t i = 0; i < 20; ++i) {
    if (i != 5) {
      EXPECT_NEAR(lp[i], lp_strict[i], 1e-12 * std::abs(lp_strict[i])) << "row " << i;
    }
  }
  for (std::size_t i = 0; i < 20; ++i) {
    int best = 0;
    for (int k = 1; k < m.n_components; ++k)
      if (proba[i * m.n_components + k] > proba[i * m.n_components + best]) best = k;
    EXPECT_EQ(labels[i], best) << "row " << i;
  }
}

TEST(MissingEvaluations, ImputeChecksItsArguments) {
  const cuem_test::Dataset train = blobs(200, 3);
  const cuem::Model m = cuem::fit(train.view(), options(2, MissingPolicy::error)).model;
  cuem_test::Dataset test = blobs(10, 3, 9);
  test.x[2 * 3 + 1] = kNaN;
  // A feature-count mismatch is a DataError (as predict's); an invalid model an InvalidArgument.
  const std::string mismatch =
      message_of<cuem::DataError>([&] { cuem::impute(m, cuem::DataView(test.x.data(), 15, 2)); });
  EXPECT_NE(mismatch.find('2'), std::string::npos) << mismatch;
  EXPECT_NE(mismatch.find('3'), std::string::npos) << mismatch;
  cuem::Model broken = m;
  broken.weights[0] += 0.5;  // no longer sums to 1
  EXPECT_THROW(cuem::impute(broken, test.view()), cuem::InvalidArgument);
  test.x[7 * 3 + 0] = kInf;
  const std::string msg = message_of<cuem::DataError>([&] { cuem::impute(m, test.view()); });
  EXPECT_TRUE(cuem_test::mentions_number(msg, "row ", 7)) << msg;
  EXPECT_TRUE(cuem_test::mentions_number(msg, "column ", 0)) << msg;
  // Without variances asked for, none are returned.
  test.x[7 * 3 + 0] = 0.5;
  const cuem::Imputation imp = cuem::impute(m, test.view());
  EXPECT_TRUE(imp.variance.empty());
  ASSERT_EQ(imp.X.size(), 30u);
  EXPECT_TRUE(std::isfinite(imp.X[2 * 3 + 1]));
}

// ---- describe_missing ------------------------------------------------------------------

// A hand-made 7 x 3 matrix: rows 1 and 4 miss column 1 (one pattern), row 2 misses
// columns 0 and 2 (another), rows 3 and 6 miss everything, rows 0 and 5 are complete.
TEST(DescribeMissing, CountsAHandMadeMatrix) {
  const double n = kNaN;
  const std::vector<double> x = {1, 2, 3,   //
                                 4, n, 6,   //
                                 n, 8, n,   //
                                 n, n, n,   //
                                 7, n, 1,   //
                                 0, 0, 0,   //
                                 n, n, n};
  const cuem::MissingSummary s = cuem::describe_missing(cuem::DataView(x.data(), 7, 3));
  EXPECT_EQ(s.missing_entries, 10u);
  EXPECT_EQ(s.incomplete_rows, 5u);
  EXPECT_EQ(s.empty_rows, 2u);
  EXPECT_EQ(s.n_patterns, 2u);
  ASSERT_EQ(s.first_empty_rows.size(), 2u);
  EXPECT_EQ(s.first_empty_rows[0], 3u);
  EXPECT_EQ(s.first_empty_rows[1], 6u);

  // The same values as float32, and a strided view of them inside a wider matrix.
  const std::vector<float> xf(x.begin(), x.end());
  const cuem::MissingSummary sf = cuem::describe_missing(cuem::DataView(xf.data(), 7, 3));
  EXPECT_EQ(sf.missing_entries, 10u);
  EXPECT_EQ(sf.n_patterns, 2u);
  std::vector<double> wide(7 * 5, kNaN);  // junk NaN in columns 3, 4: outside the view
  for (std::size_t i = 0; i < 7; ++i)
    for (std::size_t j = 0; j < 3; ++j) wide[i * 5 + j] = x[i * 3 + j];
  const cuem::MissingSummary sw = cuem::describe_missing(cuem::DataView(wide.data(), 7, 3, 5));
  EXPECT_EQ(sw.missing_entries, 10u);
  EXPECT_EQ(sw.incomplete_rows, 5u);
  EXPECT_EQ(sw.empty_rows, 2u);
  EXPECT_EQ(sw.n_patterns, 2u);

  const std::vector<double> none = {1, 2, 3, 4};
  const cuem::MissingSummary s0 = cuem::describe_missing(cuem::DataView(none.data(), 2, 2));
  EXPECT_EQ(s0.missing_entries, 0u);
  EXPECT_EQ(s0.incomplete_rows, 0u);
  EXPECT_EQ(s0.empty_rows, 0u);
  EXPECT_EQ(s0.n_patterns, 0u);
  EXPECT_TRUE(s0.first_empty_rows.empty());
}

// ---- views ------------------------------------------------------------------------------

// NaN data read through a strided view (NaN junk in the columns outside the view) fit as
// the packed copy does, bit for bit; float32 storage of the same values (widened exactly)
// fits as float64 from the same given start, to rounding, 1e-10.
TEST(MissingViews, StridedAndFloat32) {
  const std::size_t n = 800;
  const int d = 4, stride = 6;
  cuem_test::Dataset ds = blobs(n, d);
  for (double& v : ds.x) v = static_cast<double>(static_cast<float>(v));  // float32-exact values
  cuem_test::mask_mcar(ds.x, 0.2, 21);
  std::vector<double> wide(n * stride, kNaN);
  for (std::size_t i = 0; i < n; ++i)
    for (int j = 0; j < d; ++j) wide[i * stride + j] = ds.x[i * d + j];
  const std::vector<float> xf(ds.x.begin(), ds.x.end());
  // A given start (no k-means: its fill values round differently in float32), so the two
  // storage types differ only by the rounding of the sums.
  const cuem_test::Mixture truth = cuem_test::make_mixture(CovarianceType::full, 2, d, 8.0, 3);
  cuem::FitOptions opt = options(2, MissingPolicy::marginalize);
  opt.weights_init = {0.5, 0.5};
  opt.means_init = truth.means;
  for (double& v : opt.means_init) v += 0.5;
  opt.precisions_init.assign(2 * d * d, 0.0);
  for (int k = 0; k < 2; ++k)
    for (int j = 0; j < d; ++j) opt.precisions_init[(k * d + j) * d + j] = 0.5;
  const cuem::FitResult packed = cuem::fit(ds.view(), opt);
  const cuem::FitResult strided = cuem::fit(cuem::DataView(wide.data(), n, d, stride), opt);
  const cuem::FitResult single = cuem::fit(cuem::DataView(xf.data(), n, d), opt);
  ASSERT_GT(packed.missing.incomplete_rows, n / 4);
  EXPECT_TRUE(packed.model.means == strided.model.means);
  EXPECT_TRUE(packed.model.covariances == strided.model.covariances);
  EXPECT_TRUE(packed.model.weights == strided.model.weights);
  EXPECT_EQ(strided.missing.missing_entries, packed.missing.missing_entries);
  EXPECT_EQ(single.missing.missing_entries, packed.missing.missing_entries);
  EXPECT_EQ(single.n_iter, packed.n_iter);
  EXPECT_LT(cuem_test::max_rel_diff(single.model.means, packed.model.means), 1e-10);
  EXPECT_LT(cuem_test::max_rel_diff(single.model.covariances, packed.model.covariances,
                                    cuem_test::max_abs(packed.model.covariances)),
            1e-10);
}

// ---- no NaN: the error policy's model, bit for bit -------------------------------------

class NoNaNBitwise : public testing::TestWithParam<CovarianceType> {};

TEST_P(NoNaNBitwise, MarginalizeEqualsErrorPolicy) {
  const cuem_test::Dataset ds = blobs(3000, 4);
  std::vector<double> w(ds.n);
  cuem_test::Rng rng(8);
  for (double& v : w) v = rng.uniform(0.1, 3.0);
  for (bool weighted : {false, true}) {
    SCOPED_TRACE(weighted ? "weighted" : "unweighted");
    const cuem::WeightView wv = weighted ? cuem::WeightView(w.data(), ds.n) : cuem::WeightView();
    cuem::FitOptions opt = options(3, MissingPolicy::error, GetParam());
    opt.n_init = 2;
    opt.seed = 4;
    const cuem::FitResult a = cuem::fit(ds.view(), opt, wv);
    opt.missing = MissingPolicy::marginalize;
    const cuem::FitResult b = cuem::fit(ds.view(), opt, wv);
    ASSERT_GT(a.n_iter, 1);
    EXPECT_TRUE(a.model.weights == b.model.weights);
    EXPECT_TRUE(a.model.means == b.model.means);
    EXPECT_TRUE(a.model.covariances == b.model.covariances);
    EXPECT_TRUE(a.model.precisions_cholesky == b.model.precisions_cholesky);
    EXPECT_EQ(a.lower_bound, b.lower_bound);
    EXPECT_EQ(a.n_iter, b.n_iter);
    ASSERT_EQ(a.trace.size(), b.trace.size());
    for (std::size_t i = 0; i < a.trace.size(); ++i)
      EXPECT_EQ(a.trace[i].mean_log_likelihood, b.trace[i].mean_log_likelihood) << "trace " << i;
    EXPECT_EQ(b.missing.missing_entries, 0u);
    EXPECT_EQ(b.missing.incomplete_rows, 0u);
    // And the evaluations: marginalize changes nothing on complete rows.
    cuem::EvaluateOptions lenient;
    lenient.missing = MissingPolicy::marginalize;
    EXPECT_TRUE(cuem::score_samples(a.model, ds.view()) == cuem::score_samples(a.model, ds.view(), lenient));
    EXPECT_TRUE(cuem::predict_proba(a.model, ds.view()) == cuem::predict_proba(a.model, ds.view(), lenient));
  }
}

INSTANTIATE_TEST_SUITE_P(AllTypes, NoNaNBitwise, testing::ValuesIn(cuem_test::all_covariance_types()),
                         [](const testing::TestParamInfo<CovarianceType>& info) {
                           return std::string(cuem::to_string(info.param));
                         });

}  // namespace
