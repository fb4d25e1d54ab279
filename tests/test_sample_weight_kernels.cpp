// The sample-weight kernels (kernels/sample_weights.hpp) against plain float64 loops:
// scaled responsibility rows and log-likelihoods, weighted closest-distance block sums,
// and the weighted statistics and Lloyd sums that the statistics kernels form from
// scaled rows. Runs on the emulated device (tests/emu) everywhere and on a GPU where one
// is; without a device the checks skip with the reason.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "cuem/devices.hpp"
#include "device_memory.cuh"
#include "estep.hpp"
#include "kmeans.hpp"
#include "random_resp.hpp"
#include "sample_weights.hpp"
#include "test_util.hpp"

namespace {

using cuem::cuda::ClosestMode;
using cuem::cuda::DeviceBuffer;
using cuem::cuda::kClosestBlock;
using cuem::cuda::kSegmentPoints;

// A stream of the test's own (nothing uses the legacy default stream).
class TestStream {
 public:
  TestStream() { CUEM_CUDA_CHECK(cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking)); }
  ~TestStream() { CUEM_CUDA_CHECK_NOTHROW(cudaStreamDestroy(s_)); }
  TestStream(const TestStream&) = delete;
  TestStream& operator=(const TestStream&) = delete;
  cudaStream_t get() const { return s_; }
  void sync() const { CUEM_CUDA_CHECK(cudaStreamSynchronize(s_)); }

 private:
  cudaStream_t s_ = nullptr;
};

template <typename T>
DeviceBuffer<T> upload(const std::vector<T>& h, const TestStream& s) {
  DeviceBuffer<T> d(h.size());
  CUEM_CUDA_CHECK(cudaMemcpyAsync(d.data(), h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice, s.get()));
  s.sync();
  return d;
}

template <typename T>
std::vector<T> download(const DeviceBuffer<T>& d, const TestStream& s) {
  std::vector<T> h(d.size());
  CUEM_CUDA_CHECK(cudaMemcpyAsync(h.data(), d.data(), h.size() * sizeof(T), cudaMemcpyDeviceToHost, s.get()));
  s.sync();
  return h;
}

// Weights with every case a fit meets: zeros (dropped points), integers (repeats) and
// fractions; a run of zeros spans a whole closest block's share of a thread.
template <typename S>
std::vector<S> test_weights(std::size_t n, std::uint64_t seed) {
  cuem_test::Rng rng(seed);
  std::vector<S> w(n);
  for (std::size_t i = 0; i < n; ++i) {
    const double u = rng.uniform();
    w[i] = u < 0.2 ? S(0) : u < 0.5 ? static_cast<S>(1 + static_cast<int>(rng.uniform() * 4)) : static_cast<S>(rng.uniform(0.01, 3.0));
  }
  for (std::size_t i = 100; i < 400 && i < n; ++i) w[i] = S(0);
  return w;
}

template <typename S>
class SampleWeightKernels : public ::testing::Test {
 protected:
  // Relative accuracy of a float64 sum of S values against a float64 reference of the
  // same values: only the order of the sums differs.
  static constexpr double kSumTol = 1e-12;
  // A squared distance in S against float64 arithmetic on the same S inputs: a few
  // roundings per dimension.
  static constexpr double kDistTol = sizeof(S) == 4 ? 1e-5 : 1e-13;
};
using Types = ::testing::Types<float, double>;
TYPED_TEST_SUITE(SampleWeightKernels, Types);

// resp[k * stride + i] = w_i g_ik: a product of two S values, which S rounds correctly,
// so the result equals the float64 product rounded to S exactly. Columns past n (the
// row pitch's padding) are left alone; log p becomes w lp, and 0 where w = 0, even for
// lp = -inf.
TYPED_TEST(SampleWeightKernels, ScaleRowsWeightsResponsibilitiesAndLogLikelihoods) {
  using S = TypeParam;
  REQUIRE_DEVICE();
  const std::size_t n = 5003, stride = n + 61;
  const int K = 5;
  std::printf("seed 11\n");
  cuem_test::Rng rng(11);
  const std::vector<S> w = test_weights<S>(n, 11);
  const S pad = S(7.25);
  std::vector<S> resp(static_cast<std::size_t>(K) * stride, pad), lp(n + 7, pad);
  for (int k = 0; k < K; ++k)
    for (std::size_t i = 0; i < n; ++i) resp[k * stride + i] = static_cast<S>(rng.uniform());
  for (std::size_t i = 0; i < n; ++i) lp[i] = static_cast<S>(rng.uniform(-40.0, 5.0));
  const S inf = std::numeric_limits<S>::infinity();
  lp[100] = -inf;  // w = 0: dropped, 0
  std::size_t weighted_inf = 0;
  for (std::size_t i = 0; i < n; ++i)
    if (w[i] > S(0)) { weighted_inf = i; break; }
  lp[weighted_inf] = -inf;  // w > 0: stays -inf

  TestStream s;
  auto d_w = upload(w, s), d_resp = upload(resp, s), d_lp = upload(lp, s);
  cuem::cuda::launch_scale_rows(d_w.data(), n, K, d_resp.data(), stride, d_lp.data(), s.get());
  const std::vector<S> got_resp = download(d_resp, s), got_lp = download(d_lp, s);

  double norm = 0;
  for (int k = 0; k < K; ++k)
    for (std::size_t i = 0; i < stride; ++i) {
      const std::size_t j = k * stride + i;
      const S want = i < n ? static_cast<S>(static_cast<double>(w[i]) * static_cast<double>(resp[j])) : pad;
      ASSERT_EQ(got_resp[j], want) << "k " << k << " point " << i << " w " << w[i];
      norm += static_cast<double>(got_resp[j]);
    }
  EXPECT_GT(norm, 0.0);
  for (std::size_t i = 0; i < lp.size(); ++i) {
    S want = pad;
    if (i < n) want = w[i] == S(0) ? S(0) : static_cast<S>(static_cast<double>(w[i]) * static_cast<double>(lp[i]));
    ASSERT_EQ(got_lp[i], want) << "point " << i << " w " << w[i] << " lp " << lp[i];
  }
  EXPECT_EQ(got_lp[100], S(0));
  EXPECT_EQ(got_lp[weighted_inf], -inf);

  // Either buffer alone: the other is not touched.
  auto d_resp2 = upload(resp, s), d_lp2 = upload(lp, s);
  cuem::cuda::launch_scale_rows(d_w.data(), n, K, nullptr, stride, d_lp2.data(), s.get());
  cuem::cuda::launch_scale_rows(d_w.data(), n, K, d_resp2.data(), stride, nullptr, s.get());
  EXPECT_EQ(download(d_resp2, s), got_resp);
  EXPECT_EQ(download(d_lp2, s), got_lp);
}

// Weighted block sums in each mode, over a chunk that starts at a later global block
// and ends part way through one: v as the unweighted kernel leaves it (bitwise), the
// block sums sum w v (float64 loop), zero-weight points add nothing even where their
// distance overflows S, and unit weights give the unweighted sums bitwise.
TYPED_TEST(SampleWeightKernels, WeightedClosestSumsWeightTheDistances) {
  using S = TypeParam;
  REQUIRE_DEVICE();
  const std::size_t n = 2 * kClosestBlock + 1234, first_block = 3;
  const std::size_t blocks = (n + kClosestBlock - 1) / kClosestBlock;
  const int D = 3;
  std::printf("seed 12\n");
  cuem_test::Rng rng(12);
  std::vector<S> X(n * D);
  for (S& x : X) x = static_cast<S>(rng.normal());
  std::vector<S> w = test_weights<S>(n, 12);
  // A zero-weight point so far away that its squared distance is inf in S.
  const std::size_t far = kClosestBlock + 5;
  w[far] = S(0);
  for (int d = 0; d < D; ++d) X[far * D + d] = std::numeric_limits<S>::max() / S(4);
  const std::vector<S> ones(n, S(1));
  // Centres in two parts (hi, lo) as the backend uploads them.
  const auto centre = [&](double a, double b, double c) {
    const double v[3] = {a, b, c};
    std::vector<S> parts(2 * D);
    for (int d = 0; d < D; ++d) {
      parts[d] = static_cast<S>(v[d]);
      parts[D + d] = static_cast<S>(v[d] - static_cast<double>(parts[d]));
    }
    return parts;
  };
  const std::vector<std::vector<S>> centres = {centre(0.1, -0.2, 0.3), centre(1.5, 0.7, -1.1),
                                               centre(-1.0, -1.0, 2.0)};
  const ClosestMode modes[] = {ClosestMode::reset, ClosestMode::potential, ClosestMode::update};

  TestStream s;
  auto d_X = upload(X, s), d_w = upload(w, s), d_ones = upload(ones, s);
  DeviceBuffer<S> d_v(n), d_v_plain(n), d_v_ones(n);
  const std::vector<double> sentinel(first_block + blocks, -1.0);
  auto d_sums = upload(sentinel, s), d_sums_plain = upload(sentinel, s), d_sums_ones = upload(sentinel, s);
  std::vector<double> ref_v(n, std::numeric_limits<double>::infinity());  // float64 min distances
  for (int step = 0; step < 3; ++step) {
    const ClosestMode mode = modes[step];
    SCOPED_TRACE("step " + std::to_string(step));
    auto d_c = upload(centres[step], s);
    const S* hi = d_c.data();
    const S* lo = d_c.data() + D;
    const std::vector<S> before = download(d_v, s);
    cuem::cuda::launch_weighted_closest(d_X.data(), d_w.data(), n, D, hi, lo, d_v.data(), mode, d_sums.data(),
                                        first_block, s.get());
    cuem::cuda::launch_closest(d_X.data(), n, D, hi, lo, d_v_plain.data(), mode, d_sums_plain.data(), first_block,
                               s.get());
    cuem::cuda::launch_weighted_closest(d_X.data(), d_ones.data(), n, D, hi, lo, d_v_ones.data(), mode,
                                        d_sums_ones.data(), first_block, s.get());
    const std::vector<S> v = download(d_v, s), v_plain = download(d_v_plain, s);
    const std::vector<double> sums = download(d_sums, s), sums_plain = download(d_sums_plain, s),
                              sums_ones = download(d_sums_ones, s);
    if (mode == ClosestMode::potential) {
      EXPECT_EQ(v, before) << "potential must leave the values";
    }
    EXPECT_EQ(v, v_plain) << "the values are the unweighted kernel's";
    EXPECT_EQ(sums_ones, sums_plain) << "unit weights must give the unweighted sums bitwise";

    // The float64 reference: distances of the S points to hi + lo, the mode's minimum.
    std::vector<double> want_v(n);
    for (std::size_t i = 0; i < n; ++i) {
      double d2 = 0;
      for (int d = 0; d < D; ++d) {
        const double t = static_cast<double>(X[i * D + d]) - static_cast<double>(centres[step][d]) -
                         static_cast<double>(centres[step][D + d]);
        d2 += t * t;
      }
      want_v[i] = mode == ClosestMode::reset ? d2 : std::min(ref_v[i], d2);
    }
    // potential sums min(v, d) but leaves v as the reset left it.
    const std::vector<double> left_v = mode == ClosestMode::potential ? ref_v : want_v;
    ref_v = left_v;
    for (std::size_t i = 0; i < n; ++i) {
      if (i == far) {
        EXPECT_TRUE(std::isinf(v[i])) << "the far point's distance should overflow S";
        continue;
      }
      ASSERT_NEAR(static_cast<double>(v[i]), left_v[i], TestFixture::kDistTol * (1.0 + left_v[i])) << "point " << i;
    }
    for (std::size_t b = 0; b < first_block; ++b) EXPECT_EQ(sums[b], -1.0) << "block " << b << " is not the chunk's";
    double total = 0;
    for (std::size_t b = 0; b < blocks; ++b) {
      // Of the kernel's own values (reset, update: only the order differs); of the
      // float64 distances.
      double want = 0, want_exact = 0;
      for (std::size_t i = b * kClosestBlock; i < std::min(n, (b + 1) * kClosestBlock); ++i) {
        if (w[i] == S(0)) continue;
        want += static_cast<double>(w[i]) * static_cast<double>(v[i]);
        want_exact += static_cast<double>(w[i]) * want_v[i];
      }
      const double got = sums[first_block + b];
      ASSERT_TRUE(std::isfinite(got)) << "block " << b;
      if (mode != ClosestMode::potential) {
        EXPECT_NEAR(got, want, TestFixture::kSumTol * want) << "block " << b;
      }
      EXPECT_NEAR(got, want_exact, TestFixture::kDistTol * want_exact) << "block " << b;
      EXPECT_NE(got, sums_plain[first_block + b]) << "block " << b << ": the weights changed nothing";
      total += got;
    }
    EXPECT_GT(total, 0.0);
  }
}

// The E-step's and the initialisations' weighted statistics: responsibilities (drawn as
// init 'random' draws them), scaled, through the unchanged statistics kernel, give
// N_k = sum w g, S1_k = sum w g y, S2_k = sum w g y^2 (diag layout) and the
// log-likelihood slot sum w lp; over more than one segment, pitch past the chunk.
TYPED_TEST(SampleWeightKernels, ScaledRowsGiveWeightedStatistics) {
  using S = TypeParam;
  REQUIRE_DEVICE();
  const std::size_t n = kSegmentPoints + 777, stride = 2 * kSegmentPoints;
  const int K = 3, D = 2;
  std::printf("seed 13\n");
  cuem_test::Rng rng(13);
  std::vector<S> X(n * D), lp(stride, S(0)), shift(static_cast<std::size_t>(K) * D);
  for (S& x : X) x = static_cast<S>(rng.normal() * 2.0);
  for (std::size_t i = 0; i < n; ++i) lp[i] = static_cast<S>(rng.uniform(-9.0, -1.0));
  for (S& c : shift) c = static_cast<S>(rng.uniform(-1.0, 1.0));
  const std::vector<S> w = test_weights<S>(n, 13);
  const std::vector<unsigned> entries = cuem::cuda::stats_entries(cuem::CovarianceType::diag, D);
  const int M = static_cast<int>(entries.size());
  const std::size_t L = static_cast<std::size_t>(K) * M + 1;
  const std::size_t segments = (n + kSegmentPoints - 1) / kSegmentPoints;

  TestStream s;
  auto d_X = upload(X, s), d_w = upload(w, s), d_lp = upload(lp, s), d_shift = upload(shift, s),
       d_entries = upload(entries, s);
  DeviceBuffer<S> d_resp(static_cast<std::size_t>(K) * stride);
  DeviceBuffer<double> d_partials(segments * L), d_total(L);
  CUEM_CUDA_CHECK(cudaMemsetAsync(d_total.data(), 0, d_total.bytes(), s.get()));
  cuem::cuda::launch_random_resp(42, K, 0, n, d_resp.data(), stride, s.get());
  const std::vector<S> g = download(d_resp, s);
  cuem::cuda::launch_scale_rows(d_w.data(), n, K, d_resp.data(), stride, d_lp.data(), s.get());
  cuem::cuda::launch_segment_stats(K, D, d_X.data(), n, d_shift.data(), d_resp.data(), stride, d_lp.data(),
                                   d_entries.data(), M, d_partials.data(), L, cuem::CudaTuning{}, s.get());
  cuem::cuda::launch_accumulate_segments(d_partials.data(), segments, L, d_total.data(), s.get());
  const std::vector<double> got = download(d_total, s);

  std::vector<double> want(L, 0.0), scale(L, 0.0);
  for (std::size_t i = 0; i < n; ++i) {
    const double wi = static_cast<double>(w[i]);
    for (int k = 0; k < K; ++k) {
      const double gw = wi * static_cast<double>(g[k * stride + i]);
      double* e = want.data() + static_cast<std::size_t>(k) * M;
      double* a = scale.data() + static_cast<std::size_t>(k) * M;
      e[0] += gw;
      a[0] += std::abs(gw);
      for (int d = 0; d < D; ++d) {
        const double y = static_cast<double>(X[i * D + d]) - static_cast<double>(shift[k * D + d]);
        e[1 + d] += gw * y;
        e[1 + D + d] += gw * y * y;
        a[1 + d] += std::abs(gw * y);
        a[1 + D + d] += gw * y * y;
      }
    }
    if (wi != 0) {
      want[L - 1] += wi * static_cast<double>(lp[i]);
      scale[L - 1] += std::abs(wi * static_cast<double>(lp[i]));
    }
  }
  // The kernels sum products in S a tile at a time, then in float64.
  const double tol = sizeof(S) == 4 ? 1e-5 : 1e-13;
  for (std::size_t j = 0; j < L; ++j) EXPECT_NEAR(got[j], want[j], tol * scale[j]) << "entry " << j;
  EXPECT_GT(std::abs(got[0]), 0.0);
}

// Lloyd: hard_assign's one-hot rows and distances, scaled, give the weighted counts,
// sums and inertia (the distances in the log-likelihood slot).
TYPED_TEST(SampleWeightKernels, ScaledOneHotRowsGiveWeightedLloydSums) {
  using S = TypeParam;
  REQUIRE_DEVICE();
  const std::size_t n = 3001, stride = kSegmentPoints;
  const int K = 4, D = 2;
  std::printf("seed 14\n");
  cuem_test::Rng rng(14);
  std::vector<S> X(n * D), c(2 * static_cast<std::size_t>(K) * D, S(0));
  for (S& x : X) x = static_cast<S>(rng.normal() * 3.0);
  for (std::size_t j = 0; j < static_cast<std::size_t>(K) * D; ++j) c[j] = static_cast<S>(rng.uniform(-3.0, 3.0));
  const std::vector<S> w = test_weights<S>(n, 14);
  const std::vector<unsigned> entries = cuem::cuda::stats_entries(cuem::CovarianceType::diag, D);
  const int M = static_cast<int>(entries.size());
  const std::size_t L = static_cast<std::size_t>(K) * M + 1;

  TestStream s;
  auto d_X = upload(X, s), d_w = upload(w, s), d_c = upload(c, s), d_entries = upload(entries, s);
  DeviceBuffer<S> d_resp(static_cast<std::size_t>(K) * stride), d_dist(stride);
  DeviceBuffer<int> d_labels(n);
  DeviceBuffer<double> d_partials(L), d_total(L);
  CUEM_CUDA_CHECK(cudaMemsetAsync(d_total.data(), 0, d_total.bytes(), s.get()));
  const S* hi = d_c.data();
  const S* lo = d_c.data() + static_cast<std::size_t>(K) * D;
  cuem::cuda::launch_hard_assign(d_X.data(), n, D, K, hi, lo, d_labels.data(), d_dist.data(), d_resp.data(), stride,
                                 cuem::CudaTuning{}, s.get());
  const std::vector<int> labels = download(d_labels, s);
  const std::vector<S> dist = download(d_dist, s);
  cuem::cuda::launch_scale_rows(d_w.data(), n, K, d_resp.data(), stride, d_dist.data(), s.get());
  cuem::cuda::launch_segment_stats(K, D, d_X.data(), n, hi, d_resp.data(), stride, d_dist.data(), d_entries.data(), M,
                                   d_partials.data(), L, cuem::CudaTuning{}, s.get());
  cuem::cuda::launch_accumulate_segments(d_partials.data(), 1, L, d_total.data(), s.get());
  const std::vector<double> got = download(d_total, s);

  std::vector<double> count(K, 0.0), sum(static_cast<std::size_t>(K) * D, 0.0);
  double inertia = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double wi = static_cast<double>(w[i]);
    const int k = labels[i];
    ASSERT_GE(k, 0);
    ASSERT_LT(k, K);
    count[k] += wi;
    for (int d = 0; d < D; ++d) sum[k * D + d] += wi * (static_cast<double>(X[i * D + d]) - static_cast<double>(c[k * D + d]));
    inertia += wi * static_cast<double>(dist[i]);
  }
  const double tol = sizeof(S) == 4 ? 2e-6 : 1e-13;
  for (int k = 0; k < K; ++k) {
    const double* e = got.data() + static_cast<std::size_t>(k) * M;
    EXPECT_NEAR(e[0], count[k], tol * count[k]) << "count of " << k;
    EXPECT_GT(e[0], 0.0) << "centre " << k << " has no points: a vacuous check";
    for (int d = 0; d < D; ++d)
      EXPECT_NEAR(e[1 + d], sum[k * D + d], tol * 10 * count[k]) << "sum of " << k << ", " << d;
  }
  EXPECT_NEAR(got[L - 1], inertia, tol * inertia);
}

}  // namespace
