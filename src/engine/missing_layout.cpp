#include "engine/missing_layout.hpp"

#include <cmath>
#include <cstdint>
#include <string>
#include <unordered_map>

#include "core/data_access.hpp"
#include "cuem/errors.hpp"

namespace cuem::engine {
namespace {

constexpr int kComplete = -1;
constexpr int kEmpty = -2;
constexpr std::size_t kEmptyRowsNamed = 5;

// Each row's pattern: kComplete, kEmpty, or the index of its set of missing entries in
// order of first appearance. Throws DataError at an infinite value.
struct Scan {
  std::vector<int> pattern_of;          ///< per row of X
  std::vector<std::vector<int>> sets;   ///< the missing columns of each pattern
  MissingSummary summary;
};

Scan scan(DataView X) {
  if (X.on_device())
    throw InvalidArgument("data with missing values must be in host memory: the rows are regrouped by "
                          "missingness pattern on the host");
  const std::size_t N = X.n_rows, D = X.n_cols;
  Scan s;
  s.pattern_of.resize(N);
  std::unordered_map<std::string, int> ids;
  std::string key((D + 7) / 8, '\0');
  std::vector<int> missing;
  visit_rows(X, [&](const auto* data) {
    for (std::size_t i = 0; i < N; ++i) {
      const auto* row = data + i * X.row_stride;
      missing.clear();
      for (std::size_t d = 0; d < D; ++d) {
        const double v = static_cast<double>(row[d]);
        if (std::isnan(v)) {
          missing.push_back(static_cast<int>(d));
        } else if (!std::isfinite(v)) {
          throw DataError("the data holds Inf at row " + std::to_string(i) + ", column " + std::to_string(d) +
                          " (0-based); only NaN marks a missing entry");
        }
      }
      s.summary.missing_entries += missing.size();
      if (missing.empty()) {
        s.pattern_of[i] = kComplete;
        continue;
      }
      ++s.summary.incomplete_rows;
      if (missing.size() == D) {
        s.pattern_of[i] = kEmpty;
        if (s.summary.first_empty_rows.size() < kEmptyRowsNamed) s.summary.first_empty_rows.push_back(i);
        ++s.summary.empty_rows;
        continue;
      }
      std::fill(key.begin(), key.end(), '\0');
      for (int d : missing) key[static_cast<std::size_t>(d) / 8] |= static_cast<char>(1u << (d % 8));
      const auto [it, inserted] = ids.emplace(key, static_cast<int>(s.sets.size()));
      if (inserted) s.sets.push_back(missing);
      s.pattern_of[i] = it->second;
    }
  });
  s.summary.n_patterns = s.sets.size();
  return s;
}

}  // namespace

DataView MissingLayout::view() const noexcept { return DataView(values.data(), n_rows, n_cols); }

DataView MissingLayout::complete_view() const noexcept {
  DataView v = view();
  v.n_rows = n_complete;
  return v;
}

WeightView MissingLayout::weight_view() const noexcept {
  return weights.empty() ? WeightView{} : WeightView(weights.data(), n_rows);
}

WeightView MissingLayout::complete_weight_view() const noexcept {
  return weights.empty() ? WeightView{} : WeightView(weights.data(), n_complete);
}

MissingLayout make_missing_layout(DataView X, WeightView w, bool require_columns) {
  Scan s = scan(X);
  const std::size_t N = X.n_rows, D = X.n_cols;
  const std::size_t P = s.sets.size();
  MissingLayout L;
  L.summary = s.summary;
  L.n_cols = D;
  L.n_rows = N - s.summary.empty_rows;

  // Rows per pattern (slot 0: complete rows), then each row's place: a stable counting sort.
  std::vector<std::size_t> start(P + 2, 0);
  for (int p : s.pattern_of)
    if (p != kEmpty) ++start[static_cast<std::size_t>(p + 2)];
  for (std::size_t p = 1; p < start.size(); ++p) start[p] += start[p - 1];
  L.n_complete = start[1];
  L.order.resize(L.n_rows);
  {
    std::vector<std::size_t> next(start.begin(), start.end() - 1);
    for (std::size_t i = 0; i < N; ++i)
      if (s.pattern_of[i] != kEmpty) L.order[next[static_cast<std::size_t>(s.pattern_of[i] + 1)]++] = i;
  }
  L.patterns.resize(P);
  for (std::size_t p = 0; p < P; ++p) {
    MissingPattern& mp = L.patterns[p];
    mp.begin = start[p + 1];
    mp.end = start[p + 2];
    mp.missing = std::move(s.sets[p]);
    std::size_t m = 0;
    for (int d = 0; d < static_cast<int>(D); ++d) {
      if (m < mp.missing.size() && mp.missing[m] == d) {
        ++m;
      } else {
        mp.observed.push_back(d);
      }
    }
  }

  // Each column's observed mean (weighted where the rows are), to fill the copy with.
  std::vector<double> sum(D, 0.0), mass(D, 0.0), count(D, 0.0);
  for (std::size_t i = 0; i < N; ++i) {
    if (s.pattern_of[i] == kEmpty) continue;
    const double wi = w.at(i);
    for (std::size_t d = 0; d < D; ++d) {
      const double v = X.value(i, d);
      if (std::isnan(v)) continue;
      sum[d] += wi * v;
      mass[d] += wi;
      count[d] += 1.0;
    }
  }
  L.fill.assign(D, 0.0);
  for (std::size_t d = 0; d < D; ++d) {
    if (count[d] == 0.0 && require_columns)
      throw DataError("column " + std::to_string(d) + " (0-based) has no observed value: nothing can be learnt "
                      "about it; drop the column");
    if (mass[d] > 0.0) L.fill[d] = sum[d] / mass[d];
  }

  // float64 whatever X's type: the fill values stay unrounded, so float32 data fit
  // exactly as their float64 conversion, as complete data do.
  L.values.resize(L.n_rows * D);
  for (std::size_t r = 0; r < L.n_rows; ++r) {
    const std::size_t i = L.order[r];
    for (std::size_t d = 0; d < D; ++d) {
      const double v = X.value(i, d);
      L.values[r * D + d] = std::isnan(v) ? L.fill[d] : v;
    }
  }
  if (!w.empty()) {
    L.weights.resize(L.n_rows);
    for (std::size_t r = 0; r < L.n_rows; ++r) L.weights[r] = w.data[L.order[r]];
  }
  return L;
}

}  // namespace cuem::engine

namespace cuem {

MissingSummary describe_missing(DataView X) {
  if (X.empty_pointer() && X.n_rows * X.n_cols > 0) throw DataError("the data pointer is null");
  return engine::scan(X).summary;
}

}  // namespace cuem
