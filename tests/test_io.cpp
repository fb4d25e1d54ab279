// File formats of the command line: CSV parsing, model JSON round trips, atomic writes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <dirent.h>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "cuem/errors.hpp"
#include "cuem/fit.hpp"
#include "io/atomic_file.hpp"
#include "io/csv.hpp"
#include "io/io_error.hpp"
#include "io/model_json.hpp"

namespace {

using cuem::io::CsvOptions;
using cuem::io::parse_csv;

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const cuem::DataError& e) {
    return e.what();
  }
  return "(no DataError)";
}

TEST(Csv, DetectsHeaderAndDelimiter) {
  const auto t = parse_csv("a;b;c\n1;2;3\n4;5;6\n", {}, "t.csv");
  EXPECT_EQ(t.rows, 2u);
  EXPECT_EQ(t.cols, 3u);
  EXPECT_EQ(t.column_names, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(t.values, (std::vector<double>{1, 2, 3, 4, 5, 6}));
}

TEST(Csv, NoHeaderTabsWhitespaceCommentsAndCrlf) {
  const auto t = parse_csv("# comment\r\n1\t2\r\n\r\n3\t4e-3\r\n", {}, "t.tsv");
  EXPECT_EQ(t.rows, 2u);
  EXPECT_EQ(t.column_names, (std::vector<std::string>{"x0", "x1"}));
  EXPECT_DOUBLE_EQ(t.values[3], 4e-3);
  const auto s = parse_csv("  1  2   3\n4 5 6\n", {}, "t.txt");
  EXPECT_EQ(s.cols, 3u);
  EXPECT_EQ(s.values[5], 6.0);
}

TEST(Csv, SelectsColumnsByNameOrIndex) {
  CsvOptions o;
  o.columns = {"c", "0"};
  const auto t = parse_csv("a,b,c\n1,2,3\n4,5,6\n", o, "t.csv");
  EXPECT_EQ(t.cols, 2u);
  EXPECT_EQ(t.column_names, (std::vector<std::string>{"c", "a"}));
  EXPECT_EQ(t.values, (std::vector<double>{3, 1, 6, 4}));
  // Only the selected columns must be numeric.
  o.columns = {"1"};
  const auto u = parse_csv("1,2,setosa\n3,4,virginica\n", o, "t.csv");
  EXPECT_EQ(u.values, (std::vector<double>{2, 4}));
  o.columns = {"zzz"};
  EXPECT_NE(message_of([&] { parse_csv("a,b\n1,2\n", o, "t.csv"); }).find("no column 'zzz'"), std::string::npos);
}

TEST(Csv, ForcedHeaderModes) {
  CsvOptions o;
  o.header = cuem::io::HeaderMode::present;
  EXPECT_EQ(parse_csv("1,2\n3,4\n", o, "t").rows, 1u);
  o.header = cuem::io::HeaderMode::absent;
  EXPECT_NE(message_of([&] { parse_csv("a,b\n3,4\n", o, "t"); }).find("not a number"), std::string::npos);
}

TEST(Csv, ErrorsNameTheLineAndField) {
  EXPECT_NE(message_of([] { parse_csv("1,2\n3,4,5\n", {}, "r.csv"); }).find("r.csv:2"), std::string::npos);
  const std::string m = message_of([] { parse_csv("1,2\n3,x\n", {}, "n.csv"); });
  EXPECT_NE(m.find("n.csv:2"), std::string::npos) << m;
  EXPECT_NE(m.find("field 2"), std::string::npos) << m;
  EXPECT_NE(message_of([] { parse_csv("", {}, "e.csv"); }).find("empty"), std::string::npos);
  EXPECT_NE(message_of([] { parse_csv("\xEF\xBB\xBF" "1,NA\n2,3\n", {}, "na.csv"); }).find("na.csv:1"), std::string::npos);
  EXPECT_EQ(parse_csv("\xEF\xBB\xBF" "a,b\n2,3\n", {}, "bom.csv").column_names[0], "a");
  EXPECT_NE(message_of([] { parse_csv("a,b\n", {}, "h.csv"); }).find("no data rows"), std::string::npos);
  EXPECT_NE(message_of([] { cuem::io::read_csv("/nonexistent/file.csv"); }).find("cannot open"), std::string::npos);
  EXPECT_NE(message_of([] { cuem::io::read_csv("/tmp"); }).find("folder"), std::string::npos);
}

cuem::Model fitted_model(cuem::CovarianceType type) {
  std::vector<double> X;
  for (int i = 0; i < 300; ++i) {
    const double t = i * 0.37;
    X.push_back((i % 3) * 5.0 + std::sin(t) / 3.0);
    X.push_back((i % 3) * -2.0 + std::cos(1.7 * t) / 7.0);
    X.push_back(std::sin(0.3 * t));
  }
  cuem::FitOptions o;
  o.n_components = 3;
  o.covariance_type = type;
  return cuem::fit(cuem::DataView(X.data(), 300, 3), o).model;
}

class ModelJson : public ::testing::TestWithParam<cuem::CovarianceType> {};

TEST_P(ModelJson, RoundTripsBitwise) {
  const cuem::Model m = fitted_model(GetParam());
  const std::string text = cuem::io::model_to_json(m, {true, true, 7, -1.25, 300, "data.csv"});
  cuem::io::FitMetadata meta;
  const cuem::Model back = cuem::io::model_from_json(text, "m.json", &meta);
  EXPECT_EQ(back.covariance_type, m.covariance_type);
  EXPECT_EQ(back.n_components, m.n_components);
  EXPECT_EQ(back.n_features, m.n_features);
  // Exact equality is the point: the text must carry every bit.
  EXPECT_EQ(0, std::memcmp(back.weights.data(), m.weights.data(), m.weights.size() * sizeof(double)));
  EXPECT_EQ(back.means, m.means);
  EXPECT_EQ(back.covariances, m.covariances);
  EXPECT_EQ(back.precisions_cholesky, m.precisions_cholesky);
  EXPECT_TRUE(meta.present);
  EXPECT_EQ(meta.n_iter, 7);
  EXPECT_EQ(meta.data_source, "data.csv");
  EXPECT_EQ(cuem::io::model_to_json(back, meta), text);
}

INSTANTIATE_TEST_SUITE_P(AllTypes, ModelJson,
                         ::testing::Values(cuem::CovarianceType::full, cuem::CovarianceType::tied,
                                           cuem::CovarianceType::diag, cuem::CovarianceType::spherical));

std::string replaced(std::string s, const std::string& from, const std::string& to) {
  const auto p = s.find(from);
  EXPECT_NE(p, std::string::npos) << from;
  if (p != std::string::npos) s.replace(p, from.size(), to);
  return s;
}

TEST(ModelJsonErrors, SayWhatIsWrong) {
  const std::string good = cuem::io::model_to_json(fitted_model(cuem::CovarianceType::diag));
  auto err = [](const std::string& text) { return message_of([&] { cuem::io::model_from_json(text, "m.json"); }); };
  EXPECT_NE(err(good.substr(0, good.size() / 2)).find("not valid JSON"), std::string::npos);
  EXPECT_NE(err(replaced(good, "\"version\": 1", "\"version\": 99")).find("upgrade cuem"), std::string::npos);
  EXPECT_NE(err(replaced(good, "cuem-gaussian-mixture", "something-else")).find("not a cuem model"), std::string::npos);
  EXPECT_NE(err(replaced(good, "\"weights\"", "\"weightz\"")).find("missing field \"weights\""), std::string::npos);
  EXPECT_NE(err(replaced(good, "\"n_components\": 3", "\"n_components\": 4")).find("shape"), std::string::npos);
  EXPECT_NE(err(replaced(good, "\"covariance_type\": \"diag\"", "\"covariance_type\": \"full\"")).find("shape"),
            std::string::npos);
  EXPECT_NE(err("[1, 2]").find("not an object"), std::string::npos);
  EXPECT_NE(err("").find("not valid JSON"), std::string::npos);
}

// Models whose arrays disagree with each other are refused at load, naming the problem:
// a lower-triangular factor (the E-step reads the upper triangle), a covariance that is
// not the inverse of the precision, a non-positive variance.
TEST(ModelJsonErrors, InconsistentModelsAreRefused) {
  auto err = [](const cuem::Model& m) {
    // model_to_json validates shapes only; build the text by hand through a valid model.
    return message_of([&] { cuem::io::model_from_json(cuem::io::model_to_json(m), "m.json"); });
  };
  cuem::Model full = fitted_model(cuem::CovarianceType::full);
  cuem::Model lower = full;
  for (int k = 0; k < 3; ++k) {  // transpose each factor: lower triangular
    double* P = lower.precisions_cholesky.data() + k * 9;
    std::swap(P[1], P[3]);
    std::swap(P[2], P[6]);
    std::swap(P[5], P[7]);
  }
  EXPECT_THROW(cuem::validate_model(lower), cuem::InvalidArgument);
  cuem::Model swapped = full;
  std::swap_ranges(swapped.covariances.begin(), swapped.covariances.begin() + 9, swapped.covariances.begin() + 9);
  EXPECT_NE(err(swapped).find("does not match its precisions_cholesky"), std::string::npos) << err(swapped);
  cuem::Model diag = fitted_model(cuem::CovarianceType::diag);
  diag.covariances[1] = -1.0;
  EXPECT_THROW(cuem::validate_model(diag), cuem::InvalidArgument);
  EXPECT_THROW(cuem::sample(swapped, 10, 0), cuem::InvalidArgument);
}

std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> out;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d))
      if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) out.emplace_back(e->d_name);
    closedir(d);
  }
  return out;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class AtomicFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cuem-atomic-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    for (const std::string& f : files_in(dir_)) ::unlink((dir_ + "/" + f).c_str());
    ::rmdir(dir_.c_str());
  }
  std::string dir_;
};

TEST_F(AtomicFileTest, CommitReplacesAndAbandonLeavesNothing) {
  const std::string path = dir_ + "/out.txt";
  cuem::io::write_file_atomically(path, "good\n");
  EXPECT_EQ(slurp(path), "good\n");
  {
    cuem::io::AtomicFile f(path);
    f.write("partial");
    // destroyed without commit, as when an exception unwinds
  }
  EXPECT_EQ(slurp(path), "good\n");
  EXPECT_EQ(files_in(dir_), std::vector<std::string>{"out.txt"});
  cuem::io::write_file_atomically(path, "better\n");
  EXPECT_EQ(slurp(path), "better\n");
  EXPECT_EQ(files_in(dir_).size(), 1u);
}

TEST_F(AtomicFileTest, BatchIsAllOrNothingAndRefusesDuplicatePaths) {
  cuem::io::OutputBatch batch;
  batch.add(dir_ + "/a.txt", "a");
  EXPECT_THROW(batch.add(dir_ + "/a.txt", "again"), cuem::io::OutputError);
  batch.add(dir_ + "/missing/b.txt", "b");
  EXPECT_THROW(batch.commit(), cuem::io::OutputError);
  EXPECT_TRUE(files_in(dir_).empty()) << "a failing batch must write nothing";
}

TEST_F(AtomicFileTest, UnwritableFolderIsAnOutputError) {
  EXPECT_THROW(cuem::io::write_file_atomically(dir_ + "/missing/out.txt", "x"), cuem::io::OutputError);
  EXPECT_THROW(cuem::io::write_file_atomically("", "x"), cuem::io::OutputError);
  EXPECT_TRUE(files_in(dir_).empty());
}

}  // namespace
