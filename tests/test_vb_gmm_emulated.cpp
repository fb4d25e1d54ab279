// The variational mixture on the CUDA backend, run on the emulated device (tests/emu):
// its E-step is the backend's Gaussian E-step and its default priors the backend's
// statistics, so from the same responsibilities the fit agrees with the float64 CPU's,
// to rounding in float64 and to 1e-5 in float32 (what a GPU will also meet).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "cuem/bayesian.hpp"

namespace {

constexpr int kN = 300, kD = 4, kK = 3;

struct Data {
  std::vector<double> X, resp;
};

const Data& data() {
  static const Data d = [] {
    Data out;
    std::mt19937_64 rng(19);
    std::normal_distribution<double> normal(0.0, 1.0);
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    for (int i = 0; i < kN; ++i) {
      const int c = i % 3;
      for (int j = 0; j < kD; ++j) out.X.push_back(100.0 + 4.0 * c * (j == c ? 1 : 0) + normal(rng));
      double total = 0.0;
      for (int k = 0; k < kK; ++k) {
        out.resp.push_back(uniform(rng) + (k == c ? 2.0 : 0.0));
        total += out.resp.back();
      }
      for (int k = 0; k < kK; ++k) out.resp[i * kK + k] /= total;
    }
    return out;
  }();
  return d;
}

cuem::BayesianFitResult fit_on(const char* device, cuem::Precision precision, cuem::CovarianceType type,
                               cuem::WeightPrior prior) {
  cuem::BayesianOptions o;
  o.em.n_components = kK;
  o.em.covariance_type = type;
  o.em.max_iter = 5;
  o.em.tol = 0.0;
  o.em.device = cuem::parse_device(device);
  o.em.precision = precision;
  o.weight_concentration_prior_type = prior;
  o.resp_init = data().resp;
  return cuem::fit_bayesian(cuem::DataView(data().X.data(), kN, kD), o);
}

void expect_close(const std::vector<double>& got, const std::vector<double>& want, double rel, const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double scale = 0.0;
  for (double w : want) scale = std::max(scale, std::abs(w));
  ASSERT_GT(scale, 0.0) << what;
  for (std::size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], rel * std::max(std::abs(want[i]), 1e-3 * scale)) << what << "[" << i << "]";
}

TEST(VbGmmEmulated, AgreesWithTheCpu) {
  for (cuem::CovarianceType type : {cuem::CovarianceType::full, cuem::CovarianceType::tied,
                                    cuem::CovarianceType::diag, cuem::CovarianceType::spherical})
    for (cuem::WeightPrior prior : {cuem::WeightPrior::dirichlet_process, cuem::WeightPrior::dirichlet_distribution}) {
      SCOPED_TRACE(std::string(cuem::to_string(type)) + " " + cuem::to_string(prior));
      const cuem::BayesianFitResult cpu = fit_on("cpu", cuem::Precision::float64, type, prior);
      for (cuem::Precision precision : {cuem::Precision::float64, cuem::Precision::float32}) {
        SCOPED_TRACE(cuem::to_string(precision));
        const double rel = precision == cuem::Precision::float64 ? 1e-10 : 1e-5;
        const cuem::BayesianFitResult gpu = fit_on("cuda", precision, type, prior);
        ASSERT_NE(gpu.device.find("cuda"), std::string::npos) << gpu.device;
        ASSERT_EQ(gpu.trace.size(), cpu.trace.size());
        for (std::size_t i = 0; i < cpu.trace.size(); ++i)
          EXPECT_NEAR(gpu.trace[i].mean_log_likelihood, cpu.trace[i].mean_log_likelihood,
                      rel * std::abs(cpu.trace[i].mean_log_likelihood))
              << "iteration " << i + 1;
        expect_close(gpu.posterior.means, cpu.posterior.means, rel, "means");
        expect_close(gpu.posterior.covariances, cpu.posterior.covariances, rel, "covariances");
        expect_close(gpu.posterior.weight_concentration, cpu.posterior.weight_concentration, rel, "concentration");
        expect_close(gpu.posterior.prior.covariance, cpu.posterior.prior.covariance, rel, "covariance prior");
        expect_close(gpu.posterior.prior.mean, cpu.posterior.prior.mean, rel, "mean prior");
        EXPECT_EQ(gpu.n_decreases, 0);
      }
    }
}

}  // namespace
