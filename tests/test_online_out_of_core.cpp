// Out of core (FitOptions::chunk_rows, io::row_releaser): a fit over a mapped .npy file
// read in chunks keeps the file's resident pages to about a chunk (measured from
// /proc/self/status), gives the same model as the same fit on the data in memory, reaches
// batch EM's optimum from the same start; a file that changes while read (grows, shrinks,
// is written to in place) stops the fit with an InputChangedError.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wfree-nonheap-object"  // as in test_squarem (make_mixture inlined)
#endif
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "cuem/errors.hpp"
#include "cuem/fit.hpp"
#include "io/data_loader.hpp"
#include "io/input_changed.hpp"
#include "io/npy.hpp"
#include "test_util.hpp"

namespace {

using cuem::CovarianceType;

// Resident file-backed memory of this process, in bytes (RssFile), or -1 where unknown.
long long rss_file_bytes() {
  std::ifstream status("/proc/self/status");
  std::string key;
  while (status >> key) {
    if (key == "RssFile:") {
      long long kb = 0;
      status >> kb;
      return kb * 1024;
    }
    status.ignore(1 << 16, '\n');
  }
  return -1;
}

struct TempFile {
  std::string path;
  explicit TempFile(const std::string& name)
      : path(testing::TempDir() + "/cuem_ooc_" + std::to_string(::getpid()) + "_" + name) {}
  ~TempFile() { std::remove(path.c_str()); }
};

cuem::FitOptions options(std::size_t chunk_rows) {
  cuem::FitOptions o;
  o.n_components = 3;
  o.covariance_type = CovarianceType::diag;
  o.device = cuem::parse_device("cpu");
  o.precision = cuem::Precision::float64;
  o.seed = 3;
  o.tol = 1e-6;
  o.max_iter = 20;
  o.chunk_rows = chunk_rows;
  return o;
}

const std::size_t kRows = 200000, kCols = 4, kChunk = 5000;

TEST(OutOfCore, MappedFitKeepsAboutOneChunkResident) {
  // RssFile (resident file-backed pages) is in /proc/self/status from Linux 4.5 on; an
  // older kernel cannot show what the release does, so the test waits for one.
  if (rss_file_bytes() < 0) GTEST_SKIP() << "no RssFile in /proc/self/status (Linux 4.5 or later has it)";
  const cuem_test::Mixture mix = cuem_test::make_mixture(CovarianceType::diag, 3, kCols, 3.0, 101);
  const cuem_test::Dataset ds = cuem_test::sample_mixture(mix, kRows, 102);
  TempFile file("fit.npy");
  cuem::io::write_npy(file.path, ds.x.data(), kRows, kCols);
  const std::size_t file_bytes = kRows * kCols * sizeof(double);

  // Fits the mapped file with the given release hook, tracking the peak of RssFile over
  // the baseline after every chunk.
  const auto run = [&](bool release, long long* peak_growth) {
    const cuem::io::Table t = cuem::io::load_data(file.path, {});
    EXPECT_FALSE(t.in_place.empty_pointer()) << "the .npy is read in place";
    const std::function<void(std::size_t)> releaser = cuem::io::row_releaser(t, file.path);
    EXPECT_TRUE(static_cast<bool>(releaser));
    const long long baseline = rss_file_bytes();
    *peak_growth = 0;
    cuem::FitOptions o = options(kChunk);
    o.release_rows = [&](std::size_t row) {
      if (release) releaser(row);
      *peak_growth = std::max(*peak_growth, rss_file_bytes() - baseline);
    };
    return cuem::fit(t.view(), o);
  };
  long long kept = 0, released = 0;
  const cuem::FitResult a = run(false, &kept);
  const cuem::FitResult b = run(true, &released);
  const long long chunk_bytes = static_cast<long long>(kChunk * kCols * sizeof(double));
  std::printf("file %zu bytes, chunk %lld bytes: resident growth %lld bytes kept, %lld released\n", file_bytes,
              chunk_bytes, kept, released);
  // Without releasing, the whole file ends up resident (the measurement sees it)...
  EXPECT_GT(kept, static_cast<long long>(file_bytes) * 9 / 10);
  // ...with it, a chunk and the kernel's read-ahead (at most 2 MiB).
  EXPECT_LT(released, 2 * chunk_bytes + (2 << 20));
  // Releasing pages changes no value.
  EXPECT_EQ(a.model.means, b.model.means);
  EXPECT_EQ(a.model.covariances, b.model.covariances);
  EXPECT_EQ(a.lower_bound, b.lower_bound);
}

TEST(OutOfCore, ConvergesToAnEmFixedPoint) {
  const cuem_test::Mixture mix = cuem_test::make_mixture(CovarianceType::full, 3, 3, 2.0, 111);
  const cuem_test::Dataset ds = cuem_test::sample_mixture(mix, 5003, 112);
  cuem::FitOptions o = options(700);
  o.covariance_type = CovarianceType::full;
  o.tol = 1e-12;
  o.max_iter = 5000;
  const cuem::FitResult chunked = cuem::fit(ds.view(), o);
  ASSERT_TRUE(chunked.converged);
  EXPECT_EQ(chunked.n_decreases, 0);
  const std::vector<double> resp = cuem_test::responsibilities(chunked.model, ds.view());
  // At the optimum an EM step moves nothing: the textbook M-step of the chunked fit's
  // own responsibilities gives it back.
  const cuem::Model again = cuem_test::m_step(ds.view(), resp, 3, CovarianceType::full, o.reg_covar);
  EXPECT_LT(cuem_test::max_rel_diff(again.means, chunked.model.means), 1e-5);  // tol 1e-12 on the bound: ~1e-6 on parameters
  EXPECT_LT(cuem_test::max_rel_diff(again.covariances, chunked.model.covariances), 1e-5);
  // And a batch fit (in memory) started there stays at the same log-likelihood.
  cuem::FitOptions first = o;
  first.chunk_rows = 0;
  first.max_iter = 50;
  first.weights_init = chunked.model.weights;
  first.means_init = chunked.model.means;
  first.precisions_init = cuem_test::precisions_of(chunked.model);
  const cuem::FitResult batch = cuem::fit(ds.view(), first);
  EXPECT_NEAR(batch.lower_bound, chunked.lower_bound, 1e-9);
}

// Sample weights: each chunk takes its slice; from the same start the chunked weighted fit
// ends where the in-memory weighted fit and the fit of the rows repeated by their
// (integer) weights end.
TEST(OutOfCore, WeightedFitIsTheWeightedBatchFit) {
  const cuem_test::Mixture mix = cuem_test::make_mixture(CovarianceType::full, 3, 2, 2.0, 141);
  const cuem_test::Dataset ds = cuem_test::sample_mixture(mix, 1501, 142);
  std::vector<double> w(ds.n), repeated;
  for (std::size_t i = 0; i < ds.n; ++i) {
    w[i] = static_cast<double>(i % 4);  // zeros included
    for (int r = 0; r < static_cast<int>(w[i]); ++r)
      repeated.insert(repeated.end(), ds.x.begin() + static_cast<std::ptrdiff_t>(i * 2),
                      ds.x.begin() + static_cast<std::ptrdiff_t>(i * 2 + 2));
  }
  cuem::FitOptions o = options(0);
  o.covariance_type = CovarianceType::full;
  o.tol = 1e-12;
  o.max_iter = 5000;
  const cuem::FitResult start = cuem::fit(ds.view(), o, {w.data(), w.size()});
  o.weights_init = start.model.weights;
  o.means_init = start.model.means;
  for (double& m : o.means_init) m += 0.3;
  o.precisions_init = cuem_test::precisions_of(start.model);
  const cuem::FitResult memory = cuem::fit(ds.view(), o, {w.data(), w.size()});
  const cuem::FitResult rows = cuem::fit(cuem::DataView(repeated.data(), repeated.size() / 2, 2), o);
  o.chunk_rows = 200;
  const cuem::FitResult chunked = cuem::fit(ds.view(), o, {w.data(), w.size()});
  ASSERT_TRUE(chunked.converged);
  EXPECT_NEAR(chunked.lower_bound, memory.lower_bound, 1e-10);
  EXPECT_NEAR(chunked.lower_bound, rows.lower_bound, 1e-10);
  EXPECT_LT(cuem_test::max_rel_diff(chunked.model.means, memory.model.means), 1e-6);
  EXPECT_LT(cuem_test::max_rel_diff(chunked.model.means, rows.model.means), 1e-6);
}

// The releaser checks the mapped file when it is made and after every chunk: a file that
// grows, shrinks or is written to in place (same size, a new modification time) stops the
// fit at the next chunk with an InputChangedError (a DataError) saying what changed.
enum class Change { grow, shrink, rewrite };

void change_file(const std::string& path, Change how) {
  if (how == Change::grow) {
    std::ofstream(path, std::ios::app) << "more bytes";
  } else if (how == Change::shrink) {
    ASSERT_EQ(::truncate(path.c_str(), 4096), 0);
  } else {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(1024);
    f.write("\x01\x02\x03\x04", 4);
    f.close();
    // A modification time of its own: two writes within a clock tick can share one.
    const struct timespec times[2] = {{0, UTIME_OMIT}, {1000000000, 123456789}};
    ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
  }
}

class FileChange : public testing::TestWithParam<Change> {};

TEST_P(FileChange, StopsTheFitAtTheNextChunk) {
  const cuem_test::Mixture mix = cuem_test::make_mixture(CovarianceType::diag, 2, 2, 3.0, 121);
  const cuem_test::Dataset ds = cuem_test::sample_mixture(mix, 20000, 122);
  TempFile file("change.npy");
  cuem::io::write_npy(file.path, ds.x.data(), ds.n, 2);
  const cuem::io::Table t = cuem::io::load_data(file.path, {});
  const std::function<void(std::size_t)> releaser = cuem::io::row_releaser(t, file.path);
  ASSERT_TRUE(static_cast<bool>(releaser));
  cuem::FitOptions o = options(1000);
  o.n_components = 2;
  int calls = 0;
  o.release_rows = [&](std::size_t row) {
    if (++calls == 30) change_file(file.path, GetParam());  // in the first E-step
    releaser(row);
  };
  const char* what[] = {"grew by 10 bytes", "shrank by", "was written to"};
  try {
    cuem::fit(t.view(), o);
    ADD_FAILURE() << "no error";
  } catch (const cuem::io::InputChangedError& e) {
    EXPECT_NE(std::string(e.what()).find("changed while it was read: it "), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(what[static_cast<int>(GetParam())]), std::string::npos) << e.what();
  }
  EXPECT_EQ(calls, 30);
}

INSTANTIATE_TEST_SUITE_P(Changes, FileChange, testing::Values(Change::grow, Change::shrink, Change::rewrite),
                         [](const auto& info) {
                           return std::string(info.param == Change::grow     ? "grow"
                                              : info.param == Change::shrink ? "shrink"
                                                                             : "rewrite");
                         });

// Between the parse and the releaser (the first check): a change there is caught before
// any chunk is read, and by check_unchanged (what an in-memory fit asks before writing);
// a file left alone, and one renamed over or deleted (the mapping keeps the bytes that
// were opened), are not changes.
TEST(OutOfCore, FileChangedBeforeTheFirstChunkOrReplacedByName) {
  const cuem_test::Mixture mix = cuem_test::make_mixture(CovarianceType::diag, 2, 2, 3.0, 123);
  const cuem_test::Dataset ds = cuem_test::sample_mixture(mix, 2000, 124);
  TempFile file("early.npy"), other("other.npy");
  cuem::io::write_npy(file.path, ds.x.data(), ds.n, 2);
  {
    const cuem::io::Table t = cuem::io::load_data(file.path, {});
    EXPECT_NO_THROW(cuem::io::check_unchanged(t, file.path));
    change_file(file.path, Change::grow);
    EXPECT_THROW(cuem::io::row_releaser(t, file.path), cuem::io::InputChangedError);
    EXPECT_THROW(cuem::io::check_unchanged(t, file.path), cuem::io::InputChangedError);
  }
  cuem::io::write_npy(file.path, ds.x.data(), ds.n, 2);
  cuem::io::write_npy(other.path, ds.x.data(), ds.n / 2, 2);
  const cuem::io::Table t = cuem::io::load_data(file.path, {});
  const std::function<void(std::size_t)> releaser = cuem::io::row_releaser(t, file.path);
  ASSERT_TRUE(static_cast<bool>(releaser));
  EXPECT_NO_THROW(releaser(100));
  ASSERT_EQ(std::rename(other.path.c_str(), file.path.c_str()), 0);
  EXPECT_NO_THROW(releaser(200));
  ASSERT_EQ(std::remove(file.path.c_str()), 0);
  EXPECT_NO_THROW(releaser(300));
  EXPECT_EQ(t.view().value(1999, 1), ds.x[1999 * 2 + 1]);  // the opened bytes, still readable
}

TEST(OutOfCore, OptionErrors) {
  const cuem_test::Mixture mix = cuem_test::make_mixture(CovarianceType::diag, 3, 2, 3.0, 131);
  const cuem_test::Dataset ds = cuem_test::sample_mixture(mix, 300, 132);
  cuem::FitOptions o = options(2);  // fewer rows than components
  EXPECT_THROW(cuem::fit(ds.view(), o), cuem::InvalidArgument);
  o = options(50);
  o.incremental_blocks = 3;
  EXPECT_THROW(cuem::fit(ds.view(), o), cuem::InvalidArgument);
  // A table not read in place from a file has nothing to release.
  EXPECT_FALSE(static_cast<bool>(cuem::io::row_releaser(cuem::io::Table{}, "x.npy")));
}

}  // namespace
