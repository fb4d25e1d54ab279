// libFuzzer target for the CSV reader. The first three bytes choose the options (delimiter,
// header mode, column selection); the rest is the text. Bad input must end in a
// cuem::Error; anything else is a crash.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "cuem/errors.hpp"
#include "io/csv.hpp"

namespace {

void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "invariant broken: %s\n", what);
    std::abort();
  }
}

cuem::io::CsvOptions options_from(const std::uint8_t* data, std::string_view text) {
  cuem::io::CsvOptions o;
  const char delimiters[] = {0, ',', ';', '\t', ' ', static_cast<char>(data[1])};
  o.delimiter = delimiters[data[0] % 6];
  const cuem::io::HeaderMode headers[] = {cuem::io::HeaderMode::detect, cuem::io::HeaderMode::present,
                                          cuem::io::HeaderMode::absent};
  o.header = headers[data[1] % 3];
  const unsigned pick = data[2];
  switch (pick % 8) {
    case 5:
      o.columns = {std::to_string((pick >> 3) % 4)};
      break;
    case 6:
      o.columns = {std::to_string((pick >> 3) % 4), std::to_string((pick >> 5) % 8 + (pick >> 7) * 90)};
      break;
    case 7: {
      // A name: the text's first field, so that it often matches a header.
      const std::size_t end = text.find_first_of(",;\t \r\n");
      o.columns = {std::string(text.substr(0, end == std::string_view::npos ? 16 : end).substr(0, 16))};
      break;
    }
    default:
      break;  // all columns
  }
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 3) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 3, size - 3);
  const cuem::io::CsvOptions options = options_from(data, text);
  cuem::io::Table t;
  try {
    t = cuem::io::parse_csv(text, options, "fuzz.csv");
  } catch (const cuem::Error&) {
    return 0;  // expected for bad input
  }
  require(t.values.size() == t.rows * t.cols, "values.size() == rows * cols");
  require(t.column_names.size() == t.cols, "column_names.size() == cols");
  require(t.rows > 0, "a parsed table has rows");
  require(options.columns.empty() || t.cols == options.columns.size(), "one column per selected column");
  return 0;
}
