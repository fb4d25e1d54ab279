#pragma once
// Values as bytes for the distributed fit's messages and its checkpoint journal: plain
// native-endian copies (every rank of a job, and a resumed job, run the same binary on the
// same kind of machine), read back bitwise.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "core/sufficient_stats.hpp"
#include "cuem/errors.hpp"

namespace cuem::mpi {

class Writer {
 public:
  template <class T>
  Writer& put(const T& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    bytes_.append(reinterpret_cast<const char*>(&v), sizeof v);
    return *this;
  }
  template <class T>
  Writer& put_vector(const std::vector<T>& v) {
    put<std::uint64_t>(v.size());
    bytes_.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
    return *this;
  }
  Writer& put_string(const std::string& s) {
    put<std::uint64_t>(s.size());
    bytes_ += s;
    return *this;
  }
  std::string take() { return std::move(bytes_); }

 private:
  std::string bytes_;
};

class Reader {
 public:
  explicit Reader(const std::string& bytes) : bytes_(bytes) {}
  template <class T>
  T get() {
    T v;
    need(sizeof v);
    std::memcpy(&v, bytes_.data() + at_, sizeof v);
    at_ += sizeof v;
    return v;
  }
  template <class T>
  std::vector<T> get_vector() {
    const auto n = static_cast<std::size_t>(get<std::uint64_t>());
    if (n > (bytes_.size() - at_) / sizeof(T)) throw DataError("a distributed message or checkpoint is truncated");
    std::vector<T> v(n);
    if (n) std::memcpy(v.data(), bytes_.data() + at_, n * sizeof(T));
    at_ += n * sizeof(T);
    return v;
  }
  std::string get_string() {
    const auto n = static_cast<std::size_t>(get<std::uint64_t>());
    need(n);
    std::string s = bytes_.substr(at_, n);
    at_ += n;
    return s;
  }
  bool done() const noexcept { return at_ == bytes_.size(); }

 private:
  void need(std::size_t n) const {
    if (n > bytes_.size() - at_) throw DataError("a distributed message or checkpoint is truncated");
  }
  const std::string& bytes_;
  std::size_t at_ = 0;
};

inline std::string encode(const SufficientStats& s) {
  Writer w;
  w.put<int>(static_cast<int>(s.type)).put<int>(s.K).put<int>(s.D);
  w.put_vector(s.shift).put_vector(s.nk).put_vector(s.s1).put_vector(s.s2);
  w.put<double>(s.log_likelihood).put<std::uint64_t>(s.n_points).put<double>(s.weight);
  return w.take();
}

inline SufficientStats decode_stats(const std::string& bytes) {
  Reader r(bytes);
  SufficientStats s;
  s.type = static_cast<CovarianceType>(r.get<int>());
  s.K = r.get<int>();
  s.D = r.get<int>();
  s.shift = r.get_vector<double>();
  s.nk = r.get_vector<double>();
  s.s1 = r.get_vector<double>();
  s.s2 = r.get_vector<double>();
  s.log_likelihood = r.get<double>();
  s.n_points = static_cast<std::size_t>(r.get<std::uint64_t>());
  s.weight = r.get<double>();
  return s;
}

}  // namespace cuem::mpi
