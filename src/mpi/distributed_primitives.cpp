#include "mpi/distributed_primitives.hpp"

#include <algorithm>
#include <cstdint>

#include "cuem/errors.hpp"
#include "mpi/wire.hpp"

namespace cuem::mpi {
namespace {

// k-means++'s distances of one rank: a PointValues per segment it holds, and the sum of
// w v over every segment of the data from the last reset or update (the same on every
// rank), which sample_point walks in segment order.
struct DistributedPointValues final : PointValues {
  std::vector<std::unique_ptr<PointValues>> parts;
  std::vector<double> segment_sums;
};

std::string encode_pieces(const std::vector<std::string>& pieces) {
  Writer w;
  w.put<std::uint64_t>(pieces.size());
  for (const std::string& p : pieces) w.put_string(p);
  return w.take();
}

std::vector<std::string> decode_pieces(const std::string& bytes) {
  Reader r(bytes);
  std::vector<std::string> out(static_cast<std::size_t>(r.get<std::uint64_t>()));
  for (std::string& p : out) p = r.get_string();
  return out;
}

// The additive parts of statistics, for MPI_Allreduce.
std::vector<double> additive_parts(const SufficientStats& s) {
  std::vector<double> v;
  v.reserve(s.nk.size() + s.s1.size() + s.s2.size() + 3);
  v.insert(v.end(), s.nk.begin(), s.nk.end());
  v.insert(v.end(), s.s1.begin(), s.s1.end());
  v.insert(v.end(), s.s2.begin(), s.s2.end());
  v.push_back(s.log_likelihood);
  v.push_back(static_cast<double>(s.n_points));
  v.push_back(s.weight);
  return v;
}

void set_additive_parts(SufficientStats& s, const std::vector<double>& v) {
  auto at = v.begin();
  std::copy_n(at, s.nk.size(), s.nk.begin());
  at += static_cast<std::ptrdiff_t>(s.nk.size());
  std::copy_n(at, s.s1.size(), s.s1.begin());
  at += static_cast<std::ptrdiff_t>(s.s1.size());
  std::copy_n(at, s.s2.size(), s.s2.begin());
  at += static_cast<std::ptrdiff_t>(s.s2.size());
  s.log_likelihood = at[0];
  s.n_points = static_cast<std::size_t>(at[1]);
  s.weight = at[2];
}

}  // namespace

Reduction parse_reduction(const std::string& name) {
  if (name == "ordered") return Reduction::ordered;
  if (name == "allreduce") return Reduction::allreduce;
  throw InvalidArgument("reduction must be 'ordered' or 'allreduce', got '" + name + "'");
}

const char* to_string(Reduction r) noexcept { return r == Reduction::ordered ? "ordered" : "allreduce"; }

DistributedPrimitives::DistributedPrimitives(const Communicator& comm, SegmentLayout layout, DataView rows,
                                             const PrimitivesRequest& request, Reduction reduction, Journal* journal,
                                             WeightView weights)
    : comm_(comm),
      layout_(layout),
      D_(rows.n_cols),
      first_(layout.first_segment(comm.rank())),
      reduction_(reduction),
      journal_(journal),
      weights_(weights),
      total_weight_(static_cast<double>(layout.n_rows)) {
  if (layout_.segments() < static_cast<std::size_t>(layout_.ranks))
    throw InvalidArgument(std::to_string(layout_.n_rows) + " rows make " + std::to_string(layout_.segments()) +
                          " segments of " + std::to_string(layout_.segment_rows) + " rows, fewer than the " +
                          std::to_string(layout_.ranks) + " ranks: run fewer ranks or give a smaller --segment-rows");
  std::shared_ptr<cuda::DeviceContext> context;
  const std::size_t base = layout_.rank_row_begin(comm.rank());
  if (!weights_.empty()) {
    if (weights_.n != layout_.n_rows)
      throw InvalidArgument("distributed weights: " + std::to_string(weights_.n) + " values for " +
                            std::to_string(layout_.n_rows) + " rows");
    // Per segment, then the segments in order: the same sum on every rank, for any R.
    total_weight_ = 0.0;
    for (std::size_t j = 0; j < layout_.segments(); ++j) {
      double segment = 0.0;
      for (std::size_t i = layout_.row_begin(j); i < layout_.row_end(j); ++i) segment += weights_.data[i];
      total_weight_ += segment;
    }
  }
  for (std::size_t j = first_; j < layout_.end_segment(comm.rank()); ++j) {
    const DataView v = row_range(rows, layout_.row_begin(j) - base, layout_.row_end(j) - base);
    const WeightView w = weights_.empty() ? WeightView{}
                                          : WeightView(weights_.data + layout_.row_begin(j), v.n_rows);
    segments_.push_back(make_primitives(v, w, request, notice_.empty() ? &notice_ : nullptr, &context));
  }
}

DistributedPrimitives::~DistributedPrimitives() = default;

std::vector<std::string> DistributedPrimitives::gathered(const std::function<std::string()>& local) const {
  if (journal_ && journal_->replaying()) return decode_pieces(journal_->replay());
  std::string mine;
  const LocalStatus status = run_local([&] { mine = local(); });
  std::vector<std::string> all = comm_.all_gather(status, mine);
  if (journal_) journal_->record(encode_pieces(all));
  return all;
}

SufficientStats DistributedPrimitives::reduced_stats(const std::function<SufficientStats(Primitives&)>& per_segment,
                                                     const std::vector<double>& shift) {
  if (journal_ && journal_->replaying()) return decode_stats(journal_->replay());
  // Every segment's statistics about the one shift every rank knows (re-centring, where a
  // backend reports another, is the segment's own work: its rounding does not depend on R).
  SufficientStats out;
  std::vector<std::vector<double>> parts;
  const LocalStatus status = run_local([&] {
    for (const auto& seg : segments_) {
      SufficientStats s = per_segment(*seg);
      if (out.nk.empty()) out = SufficientStats::zeros(s.type, s.K, s.D, shift);
      if (s.shift != shift) s = s.recentred(shift);
      if (reduction_ == Reduction::ordered) {
        parts.push_back(additive_parts(s));
      } else {  // this rank's segments in order, then a plain sum over ranks
        out.merge(s);
      }
    }
  });
  const std::size_t length = out.nk.size() + out.s1.size() + out.s2.size() + 3;
  set_additive_parts(out, reduction_ == Reduction::ordered ? comm_.ordered_sum(status, parts, length)
                                                           : comm_.all_sum(status, additive_parts(out)));
  if (journal_) journal_->record(encode(out));
  return out;
}

std::vector<double> DistributedPrimitives::reduced_sum(
    const std::function<std::vector<std::vector<double>>()>& local, std::size_t length) {
  if (journal_ && journal_->replaying()) {
    const std::string bytes = journal_->replay();
    return Reader(bytes).get_vector<double>();
  }
  std::vector<std::vector<double>> parts;
  std::vector<double> mine(length, 0.0);
  const LocalStatus status = run_local([&] {
    parts = local();
    if (parts.size() != segments_.size()) throw std::logic_error("reduced_sum: one vector per local segment");
    for (const std::vector<double>& p : parts)
      if (p.size() != length) throw std::logic_error("reduced_sum: a vector of another length");
    if (reduction_ == Reduction::allreduce)  // this rank's segments in order, then a plain sum over ranks
      for (const std::vector<double>& p : parts)
        for (std::size_t i = 0; i < length; ++i) mine[i] += p[i];
  });
  std::vector<double> out = reduction_ == Reduction::ordered ? comm_.ordered_sum(status, parts, length)
                                                             : comm_.all_sum(status, mine);
  if (journal_) journal_->record(Writer().put_vector(out).take());
  return out;
}

void DistributedPrimitives::for_rows(
    std::size_t begin, std::size_t end,
    const std::function<void(std::size_t local_segment, std::size_t lo, std::size_t hi)>& f) const {
  for (std::size_t i = 0; i < segments_.size(); ++i) {
    const std::size_t sb = layout_.row_begin(first_ + i), se = layout_.row_end(first_ + i);
    const std::size_t lo = std::max(begin, sb), hi = std::min(end, se);
    if (lo < hi) f(i, lo - sb, hi - sb);
  }
}

void DistributedPrimitives::copy_rows(std::size_t begin, std::size_t count, double* out) const {
  const std::vector<std::string> all = gathered([&] {
    std::string mine;
    for_rows(begin, begin + count, [&](std::size_t s, std::size_t lo, std::size_t hi) {
      std::vector<double> part((hi - lo) * D_);
      segments_[s]->copy_rows(lo, hi - lo, part.data());
      mine.append(reinterpret_cast<const char*>(part.data()), part.size() * sizeof(double));
    });
    return mine;
  });
  std::size_t at = 0;
  for (const std::string& p : all) {
    std::copy_n(p.data(), p.size(), reinterpret_cast<char*>(out) + at);
    at += p.size();
  }
  if (at != count * D_ * sizeof(double))
    throw InvalidArgument("copy_rows: rows " + std::to_string(begin) + "-" + std::to_string(begin + count) +
                          " are beyond the data's " + std::to_string(layout_.n_rows));
}

void DistributedPrimitives::reserve(CovarianceType type, int K) {
  for (const auto& seg : segments_) seg->reserve(type, K);
}

SufficientStats DistributedPrimitives::gaussian_estep(const PreparedParams& params) {
  return reduced_stats([&](Primitives& seg) { return seg.gaussian_estep(params); }, params.means);
}

void DistributedPrimitives::posteriors(const PreparedParams& params, std::size_t begin, std::size_t end,
                                       double* log_prob, double* resp) {
  const std::size_t K = static_cast<std::size_t>(params.K);
  const std::vector<std::string> all = gathered([&] {
    Writer w;
    for_rows(begin, end, [&](std::size_t s, std::size_t lo, std::size_t hi) {
      std::vector<double> lp(hi - lo), r((hi - lo) * K);
      segments_[s]->posteriors(params, lo, hi, lp.data(), r.data());
      w.put_vector(lp).put_vector(r);
    });
    return w.take();
  });
  std::size_t row = 0;
  for (const std::string& p : all) {
    Reader r(p);
    while (!r.done()) {
      const std::vector<double> lp = r.get_vector<double>();
      const std::vector<double> g = r.get_vector<double>();
      if (log_prob) std::copy(lp.begin(), lp.end(), log_prob + row);
      if (resp) std::copy(g.begin(), g.end(), resp + row * K);
      row += lp.size();
    }
  }
}

SufficientStats DistributedPrimitives::weighted_stats(const Responsibilities& g, CovarianceType type, int K,
                                                      const std::vector<double>& shift) {
  if (g.kind == Responsibilities::Kind::random)
    throw InvalidArgument("init 'random' draws each point's responsibilities by its row index within a device's "
                          "rows, which a distributed fit would change with the number of ranks: use init 'kmeans', "
                          "'k-means++' or 'random_from_data'");
  if (g.kind == Responsibilities::Kind::given)
    throw InvalidArgument("given responsibilities (an HMM's state posteriors) are not distributed: each rank would "
                          "need them for its own rows only; the HMM has no distributed fit yet");
  return reduced_stats([&](Primitives& seg) { return seg.weighted_stats(g, type, K, shift); }, shift);
}

std::vector<double> DistributedPrimitives::first_pass_shift(const Responsibilities& g, int K) const {
  // Segment 0's, which rank 0 holds: the one shift every segment's first pass then takes.
  const std::vector<std::string> all = gathered([&] {
    if (comm_.rank() != 0) return std::string();
    return Writer().put_vector(segments_[0]->first_pass_shift(g, K)).take();
  });
  Reader r(all[0]);
  return r.get_vector<double>();
}

CovarianceType DistributedPrimitives::first_pass_layout(CovarianceType type) const {
  return segments_[0]->first_pass_layout(type);
}

std::unique_ptr<PointValues> DistributedPrimitives::make_point_values() {
  auto v = std::make_unique<DistributedPointValues>();
  for (const auto& seg : segments_) v->parts.push_back(seg->make_point_values());
  return v;
}

double DistributedPrimitives::closest(PointValues& values, const double* c, ClosestMode mode) {
  auto& v = static_cast<DistributedPointValues&>(values);
  const std::vector<std::string> all = gathered([&] {
    std::vector<double> sums;
    for (std::size_t i = 0; i < segments_.size(); ++i) sums.push_back(segments_[i]->closest(*v.parts[i], c, mode));
    return Writer().put_vector(sums).take();
  });
  std::vector<double> sums;
  for (const std::string& p : all) {
    Reader r(p);
    const std::vector<double> part = r.get_vector<double>();
    sums.insert(sums.end(), part.begin(), part.end());
  }
  double total = 0.0;
  for (double s : sums) total += s;
  if (mode != ClosestMode::potential) v.segment_sums = std::move(sums);
  return total;
}

std::size_t DistributedPrimitives::sample_point(const PointValues& values, double r) {
  const auto& v = static_cast<const DistributedPointValues&>(values);
  // The segment where the running sum over segments first exceeds r (the last if none),
  // the same on every rank; its holder finds the point within it.
  std::size_t j = 0;
  double before = 0.0;
  while (j + 1 < v.segment_sums.size() && !(before + v.segment_sums[j] > r)) before += v.segment_sums[j++];
  const std::vector<std::string> all = gathered([&] {
    if (j < first_ || j >= first_ + segments_.size()) return std::string();
    const std::size_t i = j - first_;
    return Writer().put<std::uint64_t>(layout_.row_begin(j) + segments_[i]->sample_point(*v.parts[i], r - before)).take();
  });
  for (const std::string& p : all)
    if (!p.empty()) return static_cast<std::size_t>(Reader(p).get<std::uint64_t>());
  throw std::logic_error("sample_point: no rank holds segment " + std::to_string(j));
}

LloydStep DistributedPrimitives::lloyd_step(const std::vector<double>& centers, int K) {
  const std::vector<std::string> all = gathered([&] {
    Writer w;
    for (const auto& seg : segments_) {
      const LloydStep s = seg->lloyd_step(centers, K);
      w.put_vector(s.centers).put_vector(s.counts).put<double>(s.inertia);
    }
    return w.take();
  });
  if (layout_.segments() == 1) {  // the one segment's step as it is: the plain fit's, bitwise
    Reader r(all[0]);
    LloydStep out;
    out.centers = r.get_vector<double>();
    out.counts = r.get_vector<double>();
    out.inertia = r.get<double>();
    return out;
  }
  // Each segment's centre times its count is its sum of points; summed in segment order.
  const std::size_t uK = static_cast<std::size_t>(K);
  std::vector<double> sums(uK * D_, 0.0);
  LloydStep out;
  out.counts.assign(uK, 0.0);
  for (const std::string& p : all) {
    Reader r(p);
    while (!r.done()) {
      const std::vector<double> c = r.get_vector<double>();
      const std::vector<double> n = r.get_vector<double>();
      out.inertia += r.get<double>();
      for (std::size_t k = 0; k < uK; ++k) {
        out.counts[k] += n[k];
        for (std::size_t d = 0; d < D_; ++d) sums[k * D_ + d] += n[k] * c[k * D_ + d];
      }
    }
  }
  out.centers = centers;  // an empty centre stays put
  for (std::size_t k = 0; k < uK; ++k)
    if (out.counts[k] > 0.0)
      for (std::size_t d = 0; d < D_; ++d) out.centers[k * D_ + d] = sums[k * D_ + d] / out.counts[k];
  return out;
}

void DistributedPrimitives::nearest_labels(const std::vector<double>& centers, int K, std::size_t begin,
                                           std::size_t count, int* labels) {
  const std::vector<std::string> all = gathered([&] {
    std::vector<int> mine;
    for_rows(begin, begin + count, [&](std::size_t s, std::size_t lo, std::size_t hi) {
      std::vector<int> part(hi - lo);
      segments_[s]->nearest_labels(centers, K, lo, hi - lo, part.data());
      mine.insert(mine.end(), part.begin(), part.end());
    });
    return Writer().put_vector(mine).take();
  });
  std::size_t at = 0;
  for (const std::string& p : all) {
    Reader r(p);
    for (int l : r.get_vector<int>()) labels[at++] = l;
  }
}

double DistributedPrimitives::mean_feature_variance() {
  if (layout_.segments() == 1) {  // one segment (and so one rank): the backend's own, as the plain fit's
    const std::vector<std::string> all =
        gathered([&] { return Writer().put<double>(segments_[0]->mean_feature_variance()).take(); });
    return Reader(all[0]).get<double>();
  }
  // One component that takes every point: its diagonal scatter about the mean is each
  // feature's variance times N.
  const std::vector<double> origin(D_, 0.0);
  const SufficientStats s = two_pass_stats(*this, Responsibilities::nearest_centre(origin), CovarianceType::diag, 1);
  double sum = 0.0;
  for (std::size_t d = 0; d < D_; ++d) sum += s.s2[d] / s.nk[0];
  return sum / static_cast<double>(D_);
}

const char* DistributedPrimitives::name() const noexcept { return segments_[0]->name(); }

double DistributedPrimitives::unit_roundoff() const noexcept { return segments_[0]->unit_roundoff(); }

std::string DistributedPrimitives::description() const {
  const std::string units = layout_.bounds.empty()
                                ? " segments of " + std::to_string(layout_.segment_rows) + " rows, "
                                : " units of the sequences starting in each window of " +
                                      std::to_string(layout_.segment_rows) + " rows, ";
  return segments_[0]->description() + "; " + std::to_string(layout_.ranks) + " MPI rank(s), " +
         std::to_string(layout_.segments()) + units + to_string(reduction_) + " reduction";
}

}  // namespace cuem::mpi
