#include "mpi/checkpoint.hpp"

#include <cstdint>

#include "cuem/errors.hpp"
#include "mpi/wire.hpp"

namespace cuem::mpi {
namespace {
constexpr const char* kMagic = "cuem distributed checkpoint 1\n";
}

std::string Journal::serialize(const std::string& signature, long iterations) const {
  Writer w;
  w.put_string(kMagic).put_string(signature).put<std::int64_t>(iterations).put<std::uint64_t>(entries_.size());
  for (const std::string& e : entries_) w.put_string(e);
  return w.take();
}

Journal Journal::parse(const std::string& bytes, const std::string& signature, const std::string& path,
                       long* iterations) {
  Journal j;
  try {
    Reader r(bytes);
    if (r.get_string() != kMagic) throw DataError("");
    const std::string theirs = r.get_string();
    if (theirs != signature)
      throw InvalidArgument("checkpoint '" + path + "' belongs to another fit (" + theirs + "; this one: " + signature +
                            "): remove it, or give another --checkpoint path");
    *iterations = static_cast<long>(r.get<std::int64_t>());
    const auto n = r.get<std::uint64_t>();
    for (std::uint64_t i = 0; i < n; ++i) j.entries_.push_back(r.get_string());
    if (!r.done()) throw DataError("");
  } catch (const DataError&) {
    throw DataError("'" + path + "' is not a cuem checkpoint (or is truncated): remove it to start afresh");
  }
  return j;
}

}  // namespace cuem::mpi
