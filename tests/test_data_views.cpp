// Strided views: a column slice of a wider matrix, or every other row, fitted and
// evaluated in place gives bitwise what a packed copy of the same values gives, for each
// covariance type and both storage types; on the CPU, and (test_data_views_emulated) on
// the emulated device, resident and streamed.
#include <gtest/gtest.h>

#include <cstring>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include "cuem/errors.hpp"
#include "cuem/fit.hpp"
#include "test_util.hpp"
#ifdef CUEM_EMULATED_DEVICE
#include <cuda_runtime.h>  // the emulated runtime (tests/emu)

#include <algorithm>
#include <cmath>

#include "core/cuda_primitives.hpp"
#include "core/prepared_params.hpp"
#endif

namespace {

using cuem::CovarianceType;

constexpr int kK = 3;
constexpr int kD = 4;
constexpr std::size_t kWide = kD + 3;  // columns of the matrix the view is cut from

bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0);
}

// The values of a dataset twice over: packed (N x D), and inside a wider matrix of
// 2N rows whose odd rows and other columns hold junk that a reader ignoring the
// stride would pick up. The strided view takes columns [2, 2 + D) of the even rows.
template <typename T>
struct Layouts {
  std::vector<T> packed;
  std::vector<T> wide;
  std::size_t n = 0;
  explicit Layouts(const cuem_test::Dataset& ds) : n(ds.n) {
    packed.assign(ds.x.begin(), ds.x.end());
    wide.assign(2 * n * kWide, T(-7.5e3));
    for (std::size_t i = 0; i < n; ++i)
      for (int d = 0; d < kD; ++d) wide[2 * i * kWide + 2 + d] = packed[i * kD + d];
  }
  cuem::DataView contiguous() const { return cuem::DataView(packed.data(), n, kD); }
  cuem::DataView strided() const { return cuem::DataView(wide.data() + 2, n, kD, 2 * kWide); }
};

std::vector<cuem::Device> devices() {
  std::vector<cuem::Device> out{cuem::parse_device("cpu")};
#ifdef CUEM_EMULATED_DEVICE
  out.push_back(cuem::parse_device("cuda:0"));
#endif
  return out;
}

using Param = std::tuple<CovarianceType, bool>;  // (type, float32 storage)

class StridedView : public testing::TestWithParam<Param> {
 protected:
  template <typename T>
  void check() {
    const CovarianceType type = std::get<0>(GetParam());
    const cuem_test::Dataset ds = cuem_test::sample_mixture(cuem_test::make_mixture(type, kK, kD, 3.0, 41), 1500, 42);
    const Layouts<T> L(ds);
    for (const cuem::Device& device : devices()) {
      SCOPED_TRACE(device.kind == cuem::DeviceKind::cpu ? "cpu" : "cuda");
      cuem::FitOptions o;
      o.n_components = kK;
      o.covariance_type = type;
      o.seed = 7;
      o.device = device;
      const cuem::FitResult a = cuem::fit(L.contiguous(), o);
      const cuem::FitResult b = cuem::fit(L.strided(), o);
      EXPECT_EQ(a.n_iter, b.n_iter);
      EXPECT_EQ(a.lower_bound, b.lower_bound);
      EXPECT_TRUE(same_bits(a.model.weights, b.model.weights));
      EXPECT_TRUE(same_bits(a.model.means, b.model.means));
      EXPECT_TRUE(same_bits(a.model.covariances, b.model.covariances));
      cuem::EvaluateOptions where;
      where.device = device;
      EXPECT_EQ(cuem::predict(a.model, L.contiguous(), where), cuem::predict(a.model, L.strided(), where));
      EXPECT_TRUE(same_bits(cuem::score_samples(a.model, L.contiguous(), where),
                            cuem::score_samples(a.model, L.strided(), where)));
      EXPECT_EQ(cuem::score(a.model, L.contiguous(), where), cuem::score(a.model, L.strided(), where));
      // Random starts read the rows through other paths than k-means (the default).
      o.init = cuem::InitMethod::random;
      const cuem::FitResult c = cuem::fit(L.contiguous(), o);
      const cuem::FitResult d = cuem::fit(L.strided(), o);
      EXPECT_EQ(c.lower_bound, d.lower_bound);
      EXPECT_TRUE(same_bits(c.model.means, d.model.means));
    }
  }
};

TEST_P(StridedView, EqualsAPackedCopyBitwise) {
  if (std::get<1>(GetParam()))
    check<float>();
  else
    check<double>();
}

INSTANTIATE_TEST_SUITE_P(AllTypes, StridedView,
                         testing::Combine(testing::Values(CovarianceType::full, CovarianceType::tied,
                                                          CovarianceType::diag, CovarianceType::spherical),
                                          testing::Bool()),
                         [](const testing::TestParamInfo<Param>& info) {
                           return std::string(cuem::to_string(std::get<0>(info.param))) +
                                  (std::get<1>(info.param) ? "_float32" : "_float64");
                         });

TEST(StridedView, ANonFiniteValueIsFoundAtItsRowAndColumn) {
  const cuem_test::Dataset ds =
      cuem_test::sample_mixture(cuem_test::make_mixture(CovarianceType::diag, kK, kD, 3.0, 41), 300, 42);
  Layouts<double> L(ds);
  // Junk outside the view is never read: a NaN there is no error.
  L.wide[1] = std::numeric_limits<double>::quiet_NaN();
  L.wide[kWide * 3] = std::numeric_limits<double>::quiet_NaN();
  cuem::FitOptions o;
  o.n_components = kK;
  const cuem::FitResult junk_outside = cuem::fit(L.strided(), o);
  EXPECT_EQ(junk_outside.model.means, cuem::fit(L.contiguous(), o).model.means);
  L.wide[2 * 17 * kWide + 2 + 3] = std::numeric_limits<double>::infinity();
  try {
    cuem::fit(L.strided(), o);
    FAIL() << "Inf inside the view must be refused";
  } catch (const cuem::DataError& e) {
    EXPECT_NE(std::string(e.what()).find("row 17, column 3"), std::string::npos) << e.what();
  }
}

TEST(StridedView, AStrideBelowTheColumnsIsRefused) {
  std::vector<double> X(40, 1.0);
  cuem::FitOptions o;
  o.n_components = 1;
  EXPECT_THROW(cuem::fit(cuem::DataView(X.data(), 10, 4, 3), o), cuem::InvalidArgument);
}

#ifdef CUEM_EMULATED_DEVICE
// The streamed path converts each chunk from the strided rows into a staging buffer.
TEST(StridedView, StreamedChunksEqualAPackedCopyBitwise) {
  for (const cuem::Precision p : {cuem::Precision::float32, cuem::Precision::float64}) {
    const cuem_test::Mixture mix = cuem_test::make_mixture(CovarianceType::full, kK, kD, 3.0, 43);
    const cuem_test::Dataset ds = cuem_test::sample_mixture(mix, 30011, 44);
    const Layouts<double> L(ds);
    const std::size_t limit = p == cuem::Precision::float32 ? (std::size_t{7} << 20) / 4 : (std::size_t{5} << 20) / 2;
    const auto a = cuem::cuda::make_primitives(L.contiguous(), {}, {0, p, limit});
    const auto b = cuem::cuda::make_primitives(L.strided(), {}, {0, p, limit});
    const cuem::PreparedParams params = cuem::prepare(cuem_test::model_from_mixture(mix, CovarianceType::full));
    const cuem::SufficientStats ea = a->gaussian_estep(params);
    const cuem::SufficientStats eb = b->gaussian_estep(params);
    ASSERT_NE(b->description().find("streamed"), std::string::npos) << b->description();
    EXPECT_TRUE(same_bits(ea.nk, eb.nk));
    EXPECT_TRUE(same_bits(ea.s1, eb.s1));
    EXPECT_TRUE(same_bits(ea.s2, eb.s2));
    EXPECT_EQ(ea.log_likelihood, eb.log_likelihood);
  }
}

// Data in (emulated) device memory, strided as above, fitted and evaluated in place: no
// host-to-device copy of the data, and the results of the host view's fit up to the
// working precision. (Not bitwise: the device view's origin, the column means, is summed
// in per-block partials on the device, the host view's in one pass on the host, so the
// centred values may differ in their last float32 bits.)
template <typename T>
struct DeviceCopy {
  T* ptr = nullptr;
  explicit DeviceCopy(const std::vector<T>& host) {
    EXPECT_EQ(cudaMalloc(reinterpret_cast<void**>(&ptr), host.size() * sizeof(T)), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(ptr, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
  }
  ~DeviceCopy() { cudaFree(ptr); }
  DeviceCopy(const DeviceCopy&) = delete;
  DeviceCopy& operator=(const DeviceCopy&) = delete;
};

double max_rel(const std::vector<double>& a, const std::vector<double>& b) {
  double m = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]) / std::max(1.0, std::abs(b[i])));
  return m;
}

class DeviceView : public testing::TestWithParam<Param> {
 protected:
  template <typename T>
  void check() {
    const CovarianceType type = std::get<0>(GetParam());
    const cuem_test::Dataset ds = cuem_test::sample_mixture(cuem_test::make_mixture(type, kK, kD, 4.0, 51), 8000, 52);
    const Layouts<T> L(ds);
    const DeviceCopy<T> dev(L.wide);
    const cuem::DataView host = L.strided();
    const cuem::DataView on_device =
        cuem::device_view(cuem::DataView(dev.ptr + 2, ds.n, kD, 2 * kWide), 0);
    const std::size_t data_bytes = ds.n * kD * sizeof(float);
    for (const cuem::Precision p : {cuem::Precision::float32, cuem::Precision::float64}) {
      for (const cuem::InitMethod init : {cuem::InitMethod::kmeans, cuem::InitMethod::random_from_data}) {
        SCOPED_TRACE(std::string(cuem::to_string(p)) + " " + cuem::to_string(init));
        cuem::FitOptions o;
        o.n_components = kK;
        o.covariance_type = type;
        o.seed = 3;
        o.init = init;
        o.device = cuem::parse_device("cuda:0");
        o.precision = p;
        std::size_t mark = cuem::emu::host_to_device_bytes();
        const cuem::FitResult a = cuem::fit(host, o);
        EXPECT_GE(cuem::emu::host_to_device_bytes() - mark, data_bytes);  // the counter sees uploads
        mark = cuem::emu::host_to_device_bytes();
        const cuem::FitResult b = cuem::fit(on_device, o);
        EXPECT_LT(cuem::emu::host_to_device_bytes() - mark, data_bytes / 4) << "the data were uploaded";
        const double tol = p == cuem::Precision::float32 ? 1e-4 : 1e-10;
        EXPECT_LT(std::abs(a.lower_bound - b.lower_bound), tol * std::max(1.0, std::abs(a.lower_bound)));
        EXPECT_LT(max_rel(b.model.means, a.model.means), tol);
        EXPECT_LT(max_rel(b.model.covariances, a.model.covariances), tol);
        cuem::EvaluateOptions where;
        where.device = o.device;
        where.precision = p;
        mark = cuem::emu::host_to_device_bytes();
        const std::vector<int> labels = cuem::predict(a.model, on_device, where);
        const std::vector<double> lp = cuem::score_samples(a.model, on_device, where);
        EXPECT_LT(cuem::emu::host_to_device_bytes() - mark, data_bytes / 4);
        EXPECT_EQ(labels, cuem::predict(a.model, host, where));
        EXPECT_LT(max_rel(lp, cuem::score_samples(a.model, host, where)), tol);
      }
    }
    // The CPU backend cannot read device memory: a clear error, before any work.
    cuem::FitOptions o;
    o.n_components = kK;
    try {
      cuem::fit(on_device, o);
      FAIL() << "the CPU backend must refuse a device view";
    } catch (const cuem::InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find("cuda:0"), std::string::npos) << e.what();
    }
  }
};

TEST_P(DeviceView, FitsInPlaceAsTheHostViewDoes) {
  if (std::get<1>(GetParam()))
    check<float>();
  else
    check<double>();
}

INSTANTIATE_TEST_SUITE_P(AllTypes, DeviceView,
                         testing::Combine(testing::Values(CovarianceType::full, CovarianceType::tied,
                                                          CovarianceType::diag, CovarianceType::spherical),
                                          testing::Bool()),
                         [](const testing::TestParamInfo<Param>& info) {
                           return std::string(cuem::to_string(std::get<0>(info.param))) +
                                  (std::get<1>(info.param) ? "_float32" : "_float64");
                         });

// Streamed (a device memory limit below the converted data): each chunk is converted
// from the view into its slot on the device.
TEST(DeviceView, ANonFiniteValueIsFoundByColumn) {
  const cuem_test::Dataset ds =
      cuem_test::sample_mixture(cuem_test::make_mixture(CovarianceType::diag, kK, kD, 3.0, 41), 300, 42);
  Layouts<float> L(ds);
  L.wide[1] = std::numeric_limits<float>::quiet_NaN();  // outside the view: never read
  L.wide[2 * 17 * kWide + 2 + 3] = std::numeric_limits<float>::infinity();
  const DeviceCopy<float> dev(L.wide);
  const cuem::DataView v = cuem::device_view(cuem::DataView(dev.ptr + 2, ds.n, kD, 2 * kWide), 0);
  cuem::FitOptions o;
  o.n_components = kK;
  o.device = cuem::parse_device("cuda:0");
  try {
    cuem::fit(v, o);
    FAIL() << "Inf inside the device view must be refused";
  } catch (const cuem::DataError& e) {
    EXPECT_NE(std::string(e.what()).find("column 3"), std::string::npos) << e.what();
  }
}

TEST(DeviceView, StreamedChunksEqualResidentOnes) {
  const cuem_test::Mixture mix = cuem_test::make_mixture(CovarianceType::full, kK, kD, 3.0, 43);
  const cuem_test::Dataset ds = cuem_test::sample_mixture(mix, 30011, 44);
  const Layouts<double> L(ds);
  const DeviceCopy<double> dev(L.wide);
  const cuem::DataView v = cuem::device_view(cuem::DataView(dev.ptr + 2, ds.n, kD, 2 * kWide), 0);
  const std::size_t limit = (std::size_t{7} << 20) / 4;
  const auto whole = cuem::cuda::make_primitives(v, {}, {0, cuem::Precision::float32, 0});
  const auto streamed = cuem::cuda::make_primitives(v, {}, {0, cuem::Precision::float32, limit});
  const cuem::PreparedParams params = cuem::prepare(cuem_test::model_from_mixture(mix, CovarianceType::full));
  const std::size_t mark = cuem::emu::host_to_device_bytes();
  const cuem::SufficientStats ea = whole->gaussian_estep(params);
  const cuem::SufficientStats eb = streamed->gaussian_estep(params);
  EXPECT_LT(cuem::emu::host_to_device_bytes() - mark, ds.n * kD * sizeof(float) / 4);
  ASSERT_NE(streamed->description().find("streamed"), std::string::npos) << streamed->description();
  EXPECT_TRUE(same_bits(ea.nk, eb.nk));
  EXPECT_TRUE(same_bits(ea.s1, eb.s1));
  EXPECT_TRUE(same_bits(ea.s2, eb.s2));
  EXPECT_EQ(ea.log_likelihood, eb.log_likelihood);
}
#endif

}  // namespace
