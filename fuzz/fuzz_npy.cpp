// libFuzzer target for the .npy reader (and the raw binary reader beside it). Bad input must
// end in a cuem::Error; anything else -- another exception, a sanitizer report, a broken
// invariant -- is a crash.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "cuem/errors.hpp"
#include "io/npy.hpp"
#include "io/raw.hpp"

namespace {

void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "invariant broken: %s\n", what);
    std::abort();
  }
}

void check_table(const cuem::io::Table& t) {
  require(t.values.size() == t.rows * t.cols, "values.size() == rows * cols");
  require(t.column_names.size() == t.cols, "column_names.size() == cols");
}

bool same_bits(const cuem::io::Table& a, const cuem::io::Table& b) {
  return a.rows == b.rows && a.cols == b.cols && a.values.size() == b.values.size() &&
         (a.values.empty() || std::memcmp(a.values.data(), b.values.data(), a.values.size() * sizeof(double)) == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string name = "fuzz.npy";
  cuem::io::Table t;
  bool parsed = false;
  try {
    t = cuem::io::parse_npy(data, size, name);
    parsed = true;
  } catch (const cuem::Error&) {
    // expected for bad input
  }
  if (parsed) {
    check_table(t);
    // What parsed must survive being written as float64 and read back, bit for bit.
    if (t.cols > 0) {
      const std::string bytes = cuem::io::npy_bytes_f64(t.values.data(), t.rows, t.cols);
      const cuem::io::Table back =
          cuem::io::parse_npy(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), name);
      check_table(back);
      require(same_bits(t, back), "npy_bytes_f64 round trip is bitwise identical");
      require(back.notices.empty(), "float64 needs no notice");
    }
  }

  // The same bytes as raw binary, with the features and value type from the first byte.
  if (size > 0) {
    const std::size_t dims = 1 + data[0] % 5;
    const auto type = (data[0] & 0x80) ? cuem::io::RawType::float32 : cuem::io::RawType::float64;
    try {
      const cuem::io::Table r = cuem::io::parse_raw(data, size, dims, type, "fuzz.bin");
      check_table(r);
      require(r.cols == dims && r.rows * dims * (type == cuem::io::RawType::float32 ? 4 : 8) == size,
              "raw rows x dims covers the input");
    } catch (const cuem::Error&) {
    }
  }
  return 0;
}
