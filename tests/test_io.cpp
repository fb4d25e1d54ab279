// File formats of the command line: CSV parsing, format detection and column selection,
// model JSON round trips, atomic writes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
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
#include "io/data_loader.hpp"
#include "io/io_error.hpp"
#include "io/model_json.hpp"
#include "io/npy.hpp"

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

// Column selection mistakes are usage errors (exit 2), not bad data.
std::string usage_message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const cuem::InvalidArgument& e) {
    return e.what();
  }
  return "(no InvalidArgument)";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

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
  EXPECT_NE(usage_message_of([&] { parse_csv("a,b\n1,2\n", o, "t.csv"); }).find("no column 'zzz'"), std::string::npos);
}

TEST(Csv, ColumnSelectionMistakesAreUsageErrors) {
  CsvOptions o;
  const auto err = [&](std::vector<std::string> columns, const char* text = "a,b,c\n1,2,3\n") {
    o.columns = std::move(columns);
    return usage_message_of([&] { parse_csv(text, o, "t.csv"); });
  };
  EXPECT_TRUE(contains(err({"0", "0", "1"}), "column 0 twice")) << err({"0", "0", "1"});
  EXPECT_TRUE(contains(err({"a", "0"}), "column 0 twice"));
  EXPECT_TRUE(contains(err({"0", "", "1"}), "empty entry"));
  EXPECT_TRUE(contains(err({" "}), "empty entry"));
  EXPECT_TRUE(contains(err({"3"}), "no column '3'"));
  EXPECT_TRUE(contains(err({"3"}), "0 to 2"));
  EXPECT_TRUE(contains(err({"99999999999999999999999"}), "no column"));
  EXPECT_TRUE(contains(err({"-1"}), "no column '-1'"));
  EXPECT_TRUE(contains(err({"x0"}, "1,2\n3,4\n"), "no header line"));
  EXPECT_TRUE(contains(err({"a"}, "a,a,b\n1,2,3\n"), "choose by 0-based number"));
  // Blanks around entries are ignored.
  o.columns = {" 2", "0 "};
  const auto t = parse_csv("a,b,c\n1,2,3\n", o, "t.csv");
  EXPECT_EQ(t.values, (std::vector<double>{3, 1}));
  EXPECT_EQ(t.column_names, (std::vector<std::string>{"c", "a"}));
  // A number is a position even where the header has numeric names.
  o.columns = {"1"};
  o.header = cuem::io::HeaderMode::present;
  EXPECT_EQ(parse_csv("1,2,3\n4,5,6\n", o, "t.csv").values, (std::vector<double>{5}));
}

TEST(Csv, QuotedFieldsFollowRfc4180) {
  const auto t = parse_csv("\"x,1\",\"say \"\"hi\"\"\", c \n\"1.5\", 2 , \"3\" \n4,5,6\n", {}, "q.csv");
  EXPECT_EQ(t.column_names, (std::vector<std::string>{"x,1", "say \"hi\"", "c"}));
  EXPECT_EQ(t.values, (std::vector<double>{1.5, 2, 3, 4, 5, 6}));
  // The delimiter is detected outside quotes.
  const auto s = parse_csv("\"a,b\";c\n1;2\n", {}, "q.csv");
  EXPECT_EQ(s.column_names, (std::vector<std::string>{"a,b", "c"}));
  // Whitespace-separated text takes quotes too.
  EXPECT_EQ(parse_csv("\"a b\" c\n1 2\n", {}, "q.txt").column_names, (std::vector<std::string>{"a b", "c"}));
  CsvOptions o;
  o.columns = {"x,1"};
  EXPECT_EQ(parse_csv("\"x,1\",b\n7,8\n", o, "q.csv").values, (std::vector<double>{7}));
  const std::string open = message_of([] { parse_csv("a,b\n1,\"2\n", {}, "q.csv"); });
  EXPECT_TRUE(contains(open, "q.csv:2:") && contains(open, "not closed")) << open;
  EXPECT_TRUE(contains(message_of([] { parse_csv("\"a\"b,c\n1,2\n", {}, "q.csv"); }), "closing quote"));
  EXPECT_TRUE(contains(message_of([] { parse_csv("a,b\n\"1,5\",2\n", {}, "q.csv"); }), "column 0 ('1,5')"));
}

TEST(Csv, OnlyDecimalNumbers) {
  CsvOptions o;
  o.header = cuem::io::HeaderMode::absent;
  o.delimiter = ';';
  for (const char* good : {"1", "-2", "+1.5", ".5", "5.", "1e3", "1E-3", "-2.5e+07", "007"}) {
    const auto t = parse_csv(std::string(good) + "\n", o, "n.csv");
    EXPECT_EQ(t.values[0], std::strtod(good, nullptr)) << good;
  }
  for (const char* bad : {"0x10", "-0X1A", "0x1p3", "1e", "e3", ".", "-", "1_000", "nan(1)", "1d3", "infinit", "1.2.3",
                          "--1", "1e+", "NA", "TRUE", "1,5e"}) {
    const std::string m = message_of([&] { parse_csv(std::string("1;") + bad + "\n", o, "n.csv"); });
    EXPECT_TRUE(contains(m, "column 1 ('") && contains(m, "is not a number")) << bad << ": " << m;
  }
  EXPECT_TRUE(contains(message_of([&] { parse_csv("0x10\n", o, "n.csv"); }), "only decimal numbers"));
}

TEST(Csv, NonFiniteValuesNameTheLineAndColumn) {
  const std::string nan = message_of([] { parse_csv("a,b\n1,2\n# note\n3,4\n5,nan\n", {}, "f.csv"); });
  EXPECT_TRUE(contains(nan, "f.csv:5: NaN at row 2, column 1")) << nan;
  const std::string inf = message_of([] { parse_csv("1,2\n-Infinity,4\n", {}, "f.csv"); });
  EXPECT_TRUE(contains(inf, "f.csv:2: Inf at row 1, column 0")) << inf;
  const std::string big = message_of([] { parse_csv("1,2\n3,1e999\n", {}, "f.csv"); });
  EXPECT_TRUE(contains(big, "f.csv:2: Inf at row 1, column 1") && contains(big, "'1e999' is beyond")) << big;
  // Columns are those of the file, as --columns numbers them.
  CsvOptions o;
  o.columns = {"2"};
  EXPECT_TRUE(contains(message_of([&] { parse_csv("1,2,3\n4,5,inf\n", o, "f.csv"); }), "column 2"));
  // A first line of inf/nan words is data, not a header.
  EXPECT_TRUE(contains(message_of([] { parse_csv("nan,inf\n1,2\n", {}, "f.csv"); }), "f.csv:1: NaN at row 0"));
}

TEST(Csv, ForcedHeaderModes) {
  CsvOptions o;
  o.header = cuem::io::HeaderMode::present;
  EXPECT_EQ(parse_csv("1,2\n3,4\n", o, "t").rows, 1u);
  o.header = cuem::io::HeaderMode::absent;
  EXPECT_NE(message_of([&] { parse_csv("a,b\n3,4\n", o, "t"); }).find("not a number"), std::string::npos);
}

TEST(Csv, MissingValuesReadAsNaNWhenAllowed) {
  CsvOptions o;
  o.missing = true;
  // Empty fields, NA, N/A and NaN in any case or sign are missing; numbers stay numbers.
  const auto t = parse_csv("a,b,c\n1,,NA\nN/A,nan,-NaN\n\"\",2.5,na\n3,4,5\n", o, "m.csv");
  ASSERT_EQ(t.rows, 4u);
  ASSERT_EQ(t.cols, 3u);
  const std::vector<bool> missing = {false, true, true, true, true, true, true, false, true, false, false, false};
  for (std::size_t i = 0; i < missing.size(); ++i) EXPECT_EQ(std::isnan(t.values[i]), missing[i]) << "value " << i;
  EXPECT_EQ(t.values[0], 1.0);
  EXPECT_EQ(t.values[7], 2.5);
  EXPECT_EQ(t.values[11], 5.0);
  // A first line of nothing but missing values is data (an empty row), not a header...
  const auto u = parse_csv("NA,\n1,2\n", o, "m.csv");
  EXPECT_EQ(u.rows, 2u);
  EXPECT_FALSE(u.named_columns);
  EXPECT_TRUE(std::isnan(u.values[0]) && std::isnan(u.values[1]));
  // ... while one with a name is a header, as without missing values.
  EXPECT_TRUE(parse_csv(",a\n1,2\n", o, "m.csv").named_columns);
  // Inf and words that are not missing tokens are still errors.
  EXPECT_TRUE(contains(message_of([&] { parse_csv("1,2\n3,inf\n", o, "m.csv"); }), "m.csv:2: Inf at row 1, column 1"));
  EXPECT_TRUE(contains(message_of([&] { parse_csv("1,2\n3,none\n", o, "m.csv"); }), "column 1 ('none') is not a number"));
}

TEST(Csv, MissingLookingFieldsAreErrorsWithoutTheOption) {
  EXPECT_TRUE(contains(message_of([] { parse_csv("1,2\n3,\n", {}, "m.csv"); }), "m.csv:2: column 1 ('') is not a number"));
  EXPECT_TRUE(contains(message_of([] { parse_csv("1,2\n3,NA\n", {}, "m.csv"); }), "column 1 ('NA') is not a number"));
  // The data of fit, predict, score and select suggest --missing marginalize; weights do not.
  CsvOptions o;
  o.suggest_missing = true;
  EXPECT_TRUE(contains(message_of([&] { parse_csv("1,2\n3,NA\n", o, "m.csv"); }), "--missing marginalize"));
  EXPECT_TRUE(contains(message_of([&] { parse_csv("1,2\n3,nan\n", o, "m.csv"); }), "--missing marginalize"));
  EXPECT_FALSE(contains(message_of([] { parse_csv("1,2\n3,nan\n", {}, "m.csv"); }), "--missing"));
  EXPECT_FALSE(contains(message_of([&] { parse_csv("1,2\n3,x\n", o, "m.csv"); }), "--missing"));
}

TEST(Csv, ErrorsNameTheLineAndField) {
  EXPECT_NE(message_of([] { parse_csv("1,2\n3,4,5\n", {}, "r.csv"); }).find("r.csv:2"), std::string::npos);
  const std::string m = message_of([] { parse_csv("1,2\n3,x\n", {}, "n.csv"); });
  EXPECT_NE(m.find("n.csv:2"), std::string::npos) << m;
  EXPECT_NE(m.find("column 1 ('x') is not a number"), std::string::npos) << m;
  EXPECT_NE(m.find("--columns, 0-based"), std::string::npos) << m;
  EXPECT_NE(message_of([] { parse_csv("", {}, "e.csv"); }).find("empty"), std::string::npos);
  EXPECT_NE(message_of([] { parse_csv("\xEF\xBB\xBF" "1,NA\n2,3\n", {}, "na.csv"); }).find("na.csv:1"), std::string::npos);
  EXPECT_EQ(parse_csv("\xEF\xBB\xBF" "a,b\n2,3\n", {}, "bom.csv").column_names[0], "a");
  EXPECT_NE(message_of([] { parse_csv("a,b\n", {}, "h.csv"); }).find("no data rows"), std::string::npos);
  EXPECT_NE(message_of([] { cuem::io::read_csv("/nonexistent/file.csv"); }).find("cannot open"), std::string::npos);
  EXPECT_NE(message_of([] { cuem::io::read_csv("/tmp"); }).find("folder"), std::string::npos);
}

// A large text is read with its values reserved from the bytes read so far (not by
// doubling), and the parser says now and then, in order, which bytes it is done with.
TEST(Csv, LargeTextGrowsByProjectionAndReportsProgress) {
  // 6 x 699051 values: just past 2^22, where a doubling vector would hold 2x.
  constexpr int kRows = 699051, kCols = 6;
  std::string text = "a,b,c,d,e,f\n";
  std::vector<double> want;
  char field[32];
  for (int i = 0; i < kRows; ++i)
    for (int j = 0; j < kCols; ++j) {
      const double v = 1000.0 + (i % 1000) * 0.5 + j;
      std::snprintf(field, sizeof field, "%.6f%c", v, j + 1 < kCols ? ',' : '\n');
      text += field;
      want.push_back(v);
    }
  std::vector<std::size_t> offsets;
  const auto t = parse_csv(text, {}, "big.csv", [&](std::size_t o) { offsets.push_back(o); });
  EXPECT_EQ(t.rows, static_cast<std::size_t>(kRows));
  EXPECT_EQ(t.values, want);
  EXPECT_LE(t.values.capacity(), t.values.size() + t.values.size() / 10);
  ASSERT_GE(offsets.size(), 1u);  // the text is over 32 MiB
  for (std::size_t i = 0; i < offsets.size(); ++i) {
    EXPECT_LT(offsets[i], text.size());
    EXPECT_EQ(text[offsets[i] - 1], '\n');  // a line start: nothing before it is read again
    if (i > 0) {
      EXPECT_GT(offsets[i], offsets[i - 1]);
    }
  }
  EXPECT_EQ(parse_csv(text, {}, "big.csv").values, want);  // the same without the callback
}

// Text streamed in (standard input) in chunks of any size gives what the whole text gives:
// the same table, or the same error with the same line.
TEST(Csv, StreamedTextMatchesTheWholeText) {
  const std::vector<std::string> texts = {
      "a;b;c\n1;2;3\n4;5;6\n",
      "# comment\r\n1\t2\r\n\r\n3\t4e-3\r\n",
      "\xEF\xBB\xBF" "x,y\n1,2\n3,4",  // no final line break
      "  1  2   3\n4 5 6\n",
      "\"p,q\",r\n\"1\",2\n",
      "a,b\n1,2\n3,4,5\n",     // ragged: line 3
      "a,b\n1,2\n\n# c\n3,x\n",  // not a number: line 5
      "a,b\n",                 // only a header
      "# only\n# comments\n",
      " \n\t\n",                // empty
      "a;b\n5,1;3\n",            // a decimal comma
  };
  for (const std::string& text : texts)
    for (std::size_t head : {std::size_t{0}, std::size_t{1}, std::size_t{3}, text.size()})
      for (std::size_t chunk : {std::size_t{1}, std::size_t{2}, std::size_t{5}, std::size_t{1} << 20}) {
        const std::size_t h = std::min(head, text.size());
        std::FILE* f = std::tmpfile();
        ASSERT_NE(f, nullptr);
        std::fwrite(text.data() + h, 1, text.size() - h, f);
        std::rewind(f);
        std::string want, got;
        cuem::io::Table a, b;
        try {
          a = parse_csv(text, {}, "s.csv");
        } catch (const std::exception& e) {
          want = e.what();
        }
        try {
          b = cuem::io::parse_csv_stream(f, text.substr(0, h), {}, "s.csv", chunk);
        } catch (const std::exception& e) {
          got = e.what();
        }
        std::fclose(f);
        const std::string where = "text " + std::to_string(&text - texts.data()) + ", head " + std::to_string(h) +
                                  ", chunk " + std::to_string(chunk);
        EXPECT_EQ(got, want) << where;
        EXPECT_EQ(b.values, a.values) << where;
        EXPECT_EQ(b.column_names, a.column_names) << where;
        EXPECT_EQ(b.rows, a.rows) << where;
      }
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
  std::vector<std::string> names;
  for (int d = 0; d < m.n_features; ++d) names.push_back("f" + std::to_string(d));
  const std::string text = cuem::io::model_to_json(m, {true, true, 7, -1.25, 300, "data.csv", names});
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
  EXPECT_EQ(meta.feature_names, names);
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

// load_data: the content decides the format where it can, and every option either
// applies to the format or is refused.
class LoadData : public AtomicFileTest {
 protected:
  std::string put(const std::string& file, const std::string& bytes) {
    const std::string path = dir_ + "/" + file;
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }
  static std::string npy_3x3() {
    const double v[9] = {0, 1, 2, 10, 11, 12, 20, 21, 22};
    return cuem::io::npy_bytes_f64(v, 3, 3);
  }
  static std::string raw_3x3() {
    // Values near 1, as real data are: never printable in every byte.
    const double v[9] = {0.5, 1.25, 2.75, -1.5, 1.0 / 3, 3.5, 1e-3, 7.25, -0.875};
    return std::string(reinterpret_cast<const char*>(v), sizeof v);
  }
};

TEST_F(LoadData, NpySignatureWinsOverTheName) {
  for (const char* name : {"x.tsv", "x.txt", "x.csv", "x.CSV", "x.bin", "x.dat", "x.f32", "x"}) {
    const auto t = cuem::io::load_data(put(name, npy_3x3()), {});
    EXPECT_EQ(t.rows, 3u) << name;
    EXPECT_EQ(t.cols, 3u) << name;
    EXPECT_EQ(t.view().value(1, 2), 12.0) << name;
  }
  // --dims on a .npy file keeps its own message.
  cuem::io::LoadOptions o;
  o.raw_dims = 3;
  EXPECT_TRUE(contains(message_of([&] { cuem::io::load_data(put("y.bin", npy_3x3()), o); }), "this is a .npy file"));
}

TEST_F(LoadData, ColumnsSelectForEveryFormat) {
  cuem::io::LoadOptions o;
  o.columns = {"2", " 0"};
  const auto n = cuem::io::load_data(put("x.npy", npy_3x3()), o);
  EXPECT_EQ(n.cols, 2u);
  EXPECT_EQ(n.values, (std::vector<double>{2, 0, 12, 10, 22, 20}));
  EXPECT_EQ(n.column_names, (std::vector<std::string>{"x2", "x0"}));
  o.raw_dims = 3;
  const auto r = cuem::io::load_data(put("x.bin", raw_3x3()), o);
  EXPECT_EQ(r.cols, 2u);
  EXPECT_EQ(r.values, (std::vector<double>{2.75, 0.5, 3.5, -1.5, -0.875, 1e-3}));
  o.raw_dims = 0;
  EXPECT_EQ(cuem::io::load_data(put("x.csv", "a,b,c\n1,2,3\n"), o).values, (std::vector<double>{3, 1}));
  // Names need a header; numbers must be in range, once each.
  o.columns = {"x0"};
  EXPECT_TRUE(contains(usage_message_of([&] { cuem::io::load_data(put("x.npy", npy_3x3()), o); }),
                       ".npy data have no column names"));
  o.columns = {"3"};
  EXPECT_TRUE(contains(usage_message_of([&] { cuem::io::load_data(put("x.npy", npy_3x3()), o); }), "no column '3'"));
  o.columns = {"1", "1"};
  o.raw_dims = 3;
  EXPECT_TRUE(contains(usage_message_of([&] { cuem::io::load_data(put("x.bin", raw_3x3()), o); }), "twice"));
}

TEST_F(LoadData, TextOptionsAreRefusedForBinaryInput) {
  cuem::io::LoadOptions o;
  o.csv.delimiter = ',';
  EXPECT_TRUE(contains(usage_message_of([&] { cuem::io::load_data(put("x.npy", npy_3x3()), o); }),
                       "--delimiter applies to CSV/text input"));
  EXPECT_TRUE(contains(usage_message_of([&] { cuem::io::load_data(put("x.tsv", npy_3x3()), o); }), "read as .npy"));
  o.csv.delimiter = 0;
  o.csv.header = cuem::io::HeaderMode::absent;
  o.raw_dims = 3;
  EXPECT_TRUE(contains(usage_message_of([&] { cuem::io::load_data(put("x.bin", raw_3x3()), o); }),
                       "--header applies to CSV/text input"));
}

TEST_F(LoadData, DimsIsRefusedForText) {
  cuem::io::LoadOptions o;
  o.raw_dims = 1;
  std::string rows;
  for (int i = 0; i < 8; ++i) rows += "1.0,2.0,3.0\n";  // 96 bytes: a whole number of float64 rows
  for (const char* name : {"m.csv", "m.TSV", "m.txt"})
    EXPECT_TRUE(contains(usage_message_of([&] { cuem::io::load_data(put(name, rows), o); }), "text file by its name"))
        << name;
  for (const char* name : {"m.dat", "m.bin", "m"})
    EXPECT_TRUE(contains(usage_message_of([&] { cuem::io::load_data(put(name, rows), o); }), "holds text")) << name;
  // Without --dims, a raw-binary name holding text is read as text.
  o.raw_dims = 0;
  EXPECT_EQ(cuem::io::load_data(put("t.bin", rows), o).rows, 8u);
  EXPECT_TRUE(contains(message_of([&] { cuem::io::load_data(put("r.bin", raw_3x3()), o); }), "--dims"));
}

// float64 and float32 rows in a .npy (C order, or one column) or raw file are used where
// they lie in the mapped file, not copied; other layouts and dtypes, misaligned data and
// column selection give float64 copies; the values are the same either way.
TEST_F(LoadData, FloatRowsAreReadInPlace) {
  const auto in_place = [](const cuem::io::Table& t) { return t.values.empty() && !t.in_place.empty_pointer(); };
  const auto t = cuem::io::load_data(put("x.npy", npy_3x3()), {});
  EXPECT_TRUE(in_place(t));
  EXPECT_FALSE(t.view().is_float32());
  EXPECT_EQ(t.view().value(2, 1), 21.0);
  EXPECT_EQ(t.column_names.size(), 3u);

  // float32, by hand: version 1.0 header padded so that the data start at byte 128.
  const auto npy = [](const std::string& descr, bool fortran, const std::string& shape, const std::string& data) {
    std::string header = "{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False") +
                         ", 'shape': " + shape + ", }";
    header.resize(128 - 10 - 1, ' ');
    header += '\n';
    std::string out = std::string("\x93NUMPY\x01\x00", 8) + static_cast<char>(header.size()) + '\0' + header;
    return out + data;
  };
  const float f[6] = {1.5f, 2.5f, 3.5f, 4.5f, 5.5f, 6.5f};
  const std::string f_bytes(reinterpret_cast<const char*>(f), sizeof f);
  const auto t32 = cuem::io::load_data(put("f.npy", npy("<f4", false, "(3, 2)", f_bytes)), {});
  EXPECT_TRUE(in_place(t32));
  EXPECT_TRUE(t32.view().is_float32());
  EXPECT_EQ(t32.view().value(2, 1), 6.5);
  // Fortran order with two columns: a transposed copy.
  const auto tf = cuem::io::load_data(put("g.npy", npy("<f4", true, "(3, 2)", f_bytes)), {});
  EXPECT_FALSE(in_place(tf));
  EXPECT_EQ(tf.view().value(0, 1), 4.5);
  // One column in Fortran order is one column in C order: in place.
  EXPECT_TRUE(in_place(cuem::io::load_data(put("h.npy", npy("<f4", true, "(6,)", f_bytes)), {})));
  // Another dtype: converted, with its notice.
  const std::int32_t i4[2] = {3, -4};
  const auto ti = cuem::io::load_data(
      put("i.npy", npy("<i4", false, "(2,)", std::string(reinterpret_cast<const char*>(i4), sizeof i4))), {});
  EXPECT_FALSE(in_place(ti));
  EXPECT_EQ(ti.values, (std::vector<double>{3, -4}));
  // Misaligned data (a header 4 bytes longer than a float64 boundary allows): a copy.
  std::string odd = npy_3x3();
  const std::size_t data_start = odd.size() - 9 * sizeof(double);
  odd.insert(data_start - 1, 4, ' ');
  odd[8] = static_cast<char>(static_cast<unsigned char>(odd[8]) + 4);
  const auto tm = cuem::io::load_data(put("m.npy", odd), {});
  EXPECT_FALSE(in_place(tm));
  EXPECT_EQ(tm.view().value(1, 2), 12.0);
  // Raw binary: in place too.
  cuem::io::LoadOptions raw;
  raw.raw_dims = 3;
  const auto tr = cuem::io::load_data(put("r.bin", raw_3x3()), raw);
  EXPECT_TRUE(in_place(tr));
  EXPECT_EQ(tr.view().value(1, 1), 1.0 / 3);
  // Column selection copies what it keeps.
  cuem::io::LoadOptions cols;
  cols.columns = {"2", "0"};
  const auto tc = cuem::io::load_data(put("c.npy", npy_3x3()), cols);
  EXPECT_FALSE(in_place(tc));
  EXPECT_EQ(tc.values, (std::vector<double>{2, 0, 12, 10, 22, 20}));
  // The mapping outlives the loader: the table keeps it.
  cuem::io::Table kept = cuem::io::load_data(put("k.npy", npy_3x3()), {});
  ::unlink((dir_ + "/k.npy").c_str());
  EXPECT_EQ(kept.view().value(2, 2), 22.0);
}

TEST(LooksLikeText, PrintableAsciiWithADigit) {
  EXPECT_TRUE(cuem::io::looks_like_text("1.0,2.0\n"));
  EXPECT_TRUE(cuem::io::looks_like_text("\xEF\xBB\xBF" "a\tb\r\n1\t2\r\n"));
  EXPECT_FALSE(cuem::io::looks_like_text(""));
  EXPECT_FALSE(cuem::io::looks_like_text("abc def\n"));  // no digit
  EXPECT_FALSE(cuem::io::looks_like_text(std::string("1,2\0", 4)));
  // Only the first KiB is looked at.
  EXPECT_TRUE(cuem::io::looks_like_text(std::string(1024, '1') + "\x01"));
  // Random float64 and float32 data (seed 7): never text.
  std::uint64_t state = 7;
  for (int trial = 0; trial < 1000; ++trial) {
    std::vector<double> v(4);
    for (double& x : v) {
      state = state * 6364136223846793005ULL + 1442695040888963407ULL;
      x = static_cast<double>(state >> 11) / 9007199254740992.0 * 200.0 - 100.0;
    }
    const std::string f64(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(double));
    std::vector<float> w(v.begin(), v.end());
    const std::string f32(reinterpret_cast<const char*>(w.data()), w.size() * sizeof(float));
    EXPECT_FALSE(cuem::io::looks_like_text(f64)) << trial;
    EXPECT_FALSE(cuem::io::looks_like_text(f32)) << trial;
  }
}

}  // namespace
