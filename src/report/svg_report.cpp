// The one-page SVG report of a fit, written by hand: the log-likelihood trace on the
// left; on the right the points coloured by component with 1- and 2-sigma ellipses
// (D >= 2) or a histogram with the fitted densities (D == 1).
//
// Projection to the plane: a 2 x D matrix P with orthonormal rows (two unit coordinate
// vectors for first_two, the data's top two principal axes for principal). A point x is
// drawn at P (x - c) (c = 0, or the data mean for principal axes), component k's mean
// at P (mu_k - c) and its ellipses are the level sets at Mahalanobis radius 1 and 2 of
// N(P mu_k, P Sigma_k P^T), where Sigma_k is the full, shared (tied), diagonal or
// spherical covariance. The 2 x 2 matrix is carried to pixel space (axis scales and the
// flipped y) before its eigen-decomposition, so the ellipses are right however the axes
// are scaled.
#include "report/svg_report.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "core/rng.hpp"
#include "core/validate.hpp"
#include "cuem/errors.hpp"
#include "report/svg_report_detail.hpp"

namespace cuem::report {
namespace detail {
namespace {

// Random streams of the report, apart from the library's (core/rng.hpp).
constexpr std::uint64_t kStreamScatterSample = 0x5245504f52540001ULL;
constexpr std::uint64_t kStreamDrawOrder = 0x5245504f52540002ULL;
constexpr std::uint64_t kStreamPcaSample = 0x5245504f52540003ULL;
constexpr std::uint64_t kStreamPowerStart = 0x5245504f52540004ULL;

std::size_t uniform_index(std::uint64_t seed, std::uint64_t stream, std::uint64_t counter, std::size_t n) {
  const double u = rng::uniform(seed, stream, counter);
  const auto i = static_cast<std::size_t>(u * static_cast<double>(n));
  return i < n ? i : n - 1;
}

const char* const kSuperscript[] = {"\u2070", "\u00b9", "\u00b2", "\u00b3", "\u2074",
                                    "\u2075", "\u2076", "\u2077", "\u2078", "\u2079"};

// Fixed-point text of v, locale-independent; "-0" never appears.
std::string fixed(double v, int decimals) {
  if (!std::isfinite(v)) v = 0.0;
  char buf[512];
  const auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed, decimals);
  if (r.ec != std::errc()) return "0";
  std::string s(buf, r.ptr);
  if (s[0] == '-' && s.find_first_not_of("-0.") == std::string::npos) s.erase(0, 1);
  return s;
}

// A display number: ASCII '-' replaced by U+2212.
std::string with_minus(std::string s) {
  if (!s.empty() && s[0] == '-') s.replace(0, 1, "\u2212");
  return s;
}

// "10¹²", "10⁻³".
std::string power_of_ten(int exponent) {
  std::string s = "10";
  if (exponent < 0) s += "\u207b";
  for (char c : std::to_string(std::abs(exponent))) s += kSuperscript[c - '0'];
  return s;
}

// x rounded to a multiple of 10^k, computed so that the result is the double nearest
// that multiple (10^|k| is exact for |k| <= 22), which keeps its shortest text clean.
double round_to_power(double x, int k) {
  return k >= 0 ? std::round(x / std::pow(10.0, k)) * std::pow(10.0, k)
                : std::round(x * std::pow(10.0, -k)) / std::pow(10.0, -k);
}

// A positive axis offset in the fewest digits that give it back exactly: "16.813",
// "10¹²", "1.23456789×10⁹".
std::string offset_text(double v) {
  char buf[64];
  if (v >= 1e-3 && v < 1e5) {
    const auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
    return r.ec == std::errc() ? std::string(buf, r.ptr) : "0";
  }
  const auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  if (r.ec != std::errc()) return "0";
  const std::string sci(buf, r.ptr);  // "1.23456789e+09"
  const std::size_t e = sci.find('e');
  const std::string mantissa = sci.substr(0, e);
  const std::string power = power_of_ten(std::stoi(sci.substr(e + 1)));
  return mantissa == "1" ? power : mantissa + "\u00d7" + power;
}

// An offset for ticks over [lo, hi] with spacing `step` that need one (see Ticks): the
// roundest multiple of a power of ten that keeps every label within five ranges of zero,
// so that the labels differ in their leading digits.
double tick_offset(double lo, double hi, double step) {
  const double span = hi - lo, mid = 0.5 * (lo + hi);
  const int k_min = static_cast<int>(std::floor(std::log10(step)));
  const int k_max = std::max(k_min, static_cast<int>(std::floor(std::log10(std::max(std::fabs(lo), std::fabs(hi))))));
  for (int k = k_max; k > k_min; --k) {
    const double off = round_to_power(mid, k);
    if (std::max(std::fabs(lo - off), std::fabs(hi - off)) <= 5.0 * span) return off;
  }
  return round_to_power(mid, k_min);  // within (step + span) / 2 <= span of both ends
}

}  // namespace

void widen_range(double& lo, double& hi, double pad) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) lo = hi = 0.0;
  if (lo > hi) std::swap(lo, hi);
  // Too narrow for its magnitude, or so narrow that tick arithmetic would underflow.
  const double mag = std::max(std::fabs(lo), std::fabs(hi));
  if (hi - lo <= 1e-12 * mag || hi - lo < 1e-290) {
    const double c = 0.5 * (lo + hi);
    const double half = std::fabs(c) >= 1e-290 ? std::max(0.05 * std::fabs(c), hi - lo) : 0.5;
    lo = c - half;
    hi = c + half;
  }
  const double span = hi - lo;
  lo -= pad * span;
  hi += pad * span;
}

std::string exponent_suffix(int exponent) {
  if (exponent == 0) return {};
  return " (\u00d7" + power_of_ten(exponent) + ")";
}

std::string axis_suffix(const Ticks& ticks) {
  std::string s;
  if (ticks.offset != 0.0) s = (ticks.offset > 0 ? " \u2212 " : " + ") + offset_text(std::fabs(ticks.offset));
  return s + exponent_suffix(ticks.exponent);
}

Ticks nice_ticks(double lo, double hi, int target, bool integer) {
  Ticks t;
  if (!(lo < hi) || !std::isfinite(lo) || !std::isfinite(hi)) widen_range(lo, hi, 0.0);
  t.lo = lo;
  t.hi = hi;
  target = std::max(target, 1);
  const double raw = (hi - lo) / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = 10.0 * mag;
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0}) {
    const double s = m * mag;
    if (integer && std::fabs(s - std::round(s)) > 1e-9) continue;
    if (s >= raw * (1 - 1e-12)) {
      step = s;
      break;
    }
  }
  if (integer) step = std::max(1.0, std::round(step));

  // A range under 1e-4 of its distance from zero would need labels whose first five or
  // more digits are the same on every tick (1e12 + [0, 8] reads "1" at the exponent's
  // precision): such ticks are labelled relative to an offset, as matplotlib's offset
  // notation does.
  const double maxabs = std::max(std::fabs(lo), std::fabs(hi));
  if (!integer && maxabs >= 1e4 * (hi - lo)) t.offset = tick_offset(lo, hi, step);
  if (!std::isfinite(t.offset)) t.offset = 0.0;
  const double relabs = std::max(std::fabs(lo - t.offset), std::fabs(hi - t.offset));
  if (relabs >= 1e5 || relabs < 1e-3)
    t.exponent = std::clamp(static_cast<int>(std::floor(std::log10(relabs))), -290, 290);
  const double scale = std::pow(10.0, -t.exponent);
  const double scaled_step = step * scale;
  // Decimals that make the step a whole number (so neighbouring labels differ).
  int decimals = 0;
  while (decimals < 15) {
    const double v = scaled_step * std::pow(10.0, decimals);
    if (std::round(v) >= 1.0 && std::fabs(v - std::round(v)) <= 1e-6 * v) break;
    ++decimals;
  }
  const double first = std::ceil(lo / step - 1e-9);
  const double last = std::floor(hi / step + 1e-9);
  for (double i = first; i <= last && t.values.size() < 100; i += 1.0) {
    double v = i * step;
    if (std::fabs(v) < 1e-9 * step) v = 0.0;
    double rel = v - t.offset;
    if (std::fabs(rel) < 1e-9 * step) rel = 0.0;
    t.values.push_back(v);
    t.labels.push_back(with_minus(fixed(rel * scale, decimals)));
  }
  return t;
}

void jacobi_eigen(std::vector<double> A, int n, std::vector<double>& values, std::vector<double>& vectors) {
  const std::size_t N = static_cast<std::size_t>(n);
  std::vector<double> V(N * N, 0.0);
  for (std::size_t i = 0; i < N; ++i) V[i * N + i] = 1.0;
  double norm2 = 0.0;
  for (double a : A) norm2 += a * a;
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0.0;
    for (std::size_t p = 0; p < N; ++p)
      for (std::size_t q = p + 1; q < N; ++q) off += A[p * N + q] * A[p * N + q];
    if (off <= 1e-30 * norm2 || off == 0.0) break;
    for (std::size_t p = 0; p < N; ++p) {
      for (std::size_t q = p + 1; q < N; ++q) {
        const double apq = A[p * N + q];
        if (apq == 0.0) continue;
        // The rotation J (c on the diagonal, s at (p, q), -s at (q, p)) that zeroes
        // A(p, q) in J^T A J, with the smaller root t = tan(angle) for stability.
        const double theta = (A[q * N + q] - A[p * N + p]) / (2.0 * apq);
        const double t = (theta >= 0 ? 1.0 : -1.0) / (std::fabs(theta) + std::sqrt(theta * theta + 1.0));
        const double c = 1.0 / std::sqrt(t * t + 1.0);
        const double s = t * c;
        for (std::size_t k = 0; k < N; ++k) {
          const double akp = A[k * N + p], akq = A[k * N + q];
          A[k * N + p] = c * akp - s * akq;
          A[k * N + q] = s * akp + c * akq;
        }
        for (std::size_t k = 0; k < N; ++k) {
          const double apk = A[p * N + k], aqk = A[q * N + k];
          A[p * N + k] = c * apk - s * aqk;
          A[q * N + k] = s * apk + c * aqk;
        }
        for (std::size_t k = 0; k < N; ++k) {
          const double vkp = V[k * N + p], vkq = V[k * N + q];
          V[k * N + p] = c * vkp - s * vkq;
          V[k * N + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  std::vector<std::size_t> order(N);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return A[a * N + a] > A[b * N + b]; });
  values.assign(N, 0.0);
  vectors.assign(N * N, 0.0);
  for (std::size_t r = 0; r < N; ++r) {
    values[r] = A[order[r] * N + order[r]];
    for (std::size_t k = 0; k < N; ++k) vectors[r * N + k] = V[k * N + order[r]];
  }
}

void power_eigen(const std::vector<double>& A, int n, int count, std::vector<double>& values,
                 std::vector<double>& vectors) {
  const std::size_t N = static_cast<std::size_t>(n);
  values.assign(static_cast<std::size_t>(count), 0.0);
  vectors.assign(static_cast<std::size_t>(count) * N, 0.0);
  std::vector<double> w(N);
  for (int c = 0; c < count; ++c) {
    double* v = vectors.data() + static_cast<std::size_t>(c) * N;
    // Deflation by projection: v stays orthogonal to the vectors already found.
    const auto orthogonalise = [&](double* x) {
      for (int j = 0; j < c; ++j) {
        const double* u = vectors.data() + static_cast<std::size_t>(j) * N;
        double d = 0.0;
        for (std::size_t i = 0; i < N; ++i) d += u[i] * x[i];
        for (std::size_t i = 0; i < N; ++i) x[i] -= d * u[i];
      }
    };
    const auto normalise = [&](double* x) {
      double s = 0.0;
      for (std::size_t i = 0; i < N; ++i) s += x[i] * x[i];
      s = std::sqrt(s);
      if (s > 0)
        for (std::size_t i = 0; i < N; ++i) x[i] /= s;
      return s;
    };
    for (std::size_t i = 0; i < N; ++i) v[i] = rng::normal(0, kStreamPowerStart + static_cast<std::uint64_t>(c), i);
    orthogonalise(v);
    if (normalise(v) == 0.0) v[static_cast<std::size_t>(c) % N] = 1.0;
    double lambda = 0.0;
    for (int it = 0; it < 5000; ++it) {
      for (std::size_t i = 0; i < N; ++i) {
        double s = 0.0;
        for (std::size_t k = 0; k < N; ++k) s += A[i * N + k] * v[k];
        w[i] = s;
      }
      orthogonalise(w.data());
      double next = 0.0;
      for (std::size_t i = 0; i < N; ++i) next += v[i] * w[i];
      if (normalise(w.data()) == 0.0) {
        lambda = 0.0;
        break;
      }
      double change = 0.0;
      for (std::size_t i = 0; i < N; ++i) change = std::max(change, std::fabs(w[i] - v[i]));
      std::copy(w.begin(), w.end(), v);
      const bool settled = std::fabs(next - lambda) <= 1e-14 * std::fabs(next) && change < 1e-10;
      lambda = next;
      if (settled) break;
    }
    values[static_cast<std::size_t>(c)] = std::max(lambda, 0.0);
  }
}

PrincipalAxes principal_axes(DataView X, std::uint64_t seed) {
  const std::size_t N = X.n_rows, D = X.n_cols;
  PrincipalAxes r;
  r.axes.assign(2 * D, 0.0);
  r.mean.assign(D, 0.0);
  // About 5e9 multiply-adds at most for the scatter matrix; never fewer than 1e5 rows.
  const double pairs = 0.5 * static_cast<double>(D) * static_cast<double>(D + 1);
  const auto cap = static_cast<std::size_t>(std::max(1e5, 5e9 / pairs));
  std::vector<std::size_t> rows;
  if (N > cap) rows = sample_rows(N, cap, seed, kStreamPcaSample);
  const std::size_t M = rows.empty() ? N : rows.size();
  const auto row = [&](std::size_t i) { return X.row(rows.empty() ? i : rows[i]); };
  r.rows_used = M;

  for (std::size_t i = 0; i < M; ++i) {
    const double* x = row(i);
    for (std::size_t d = 0; d < D; ++d) r.mean[d] += x[d];
  }
  for (double& m : r.mean) m /= static_cast<double>(M);
  std::vector<double> C(D * D, 0.0), y(D);
  for (std::size_t i = 0; i < M; ++i) {
    const double* x = row(i);
    for (std::size_t d = 0; d < D; ++d) y[d] = x[d] - r.mean[d];
    for (std::size_t a = 0; a < D; ++a) {
      double* Ca = C.data() + a * D;
      const double ya = y[a];
      for (std::size_t b = a; b < D; ++b) Ca[b] += ya * y[b];
    }
  }
  double total = 0.0;
  for (std::size_t a = 0; a < D; ++a) {
    for (std::size_t b = a; b < D; ++b) {
      C[a * D + b] /= static_cast<double>(M);
      C[b * D + a] = C[a * D + b];
    }
    total += C[a * D + a];
  }

  std::vector<double> values, vectors;
  const int n = static_cast<int>(D);
  if (D <= 256)
    jacobi_eigen(C, n, values, vectors);
  else
    power_eigen(C, n, 2, values, vectors);
  for (std::size_t c = 0; c < 2 && c < D; ++c) {
    double* axis = r.axes.data() + c * D;
    std::copy(vectors.begin() + static_cast<std::ptrdiff_t>(c * D),
              vectors.begin() + static_cast<std::ptrdiff_t>((c + 1) * D), axis);
    std::size_t big = 0;
    for (std::size_t d = 1; d < D; ++d)
      if (std::fabs(axis[d]) > std::fabs(axis[big]) * (1 + 1e-12)) big = d;
    if (axis[big] < 0)
      for (std::size_t d = 0; d < D; ++d) axis[d] = -axis[d];
    r.fraction[c] = total > 0 ? std::clamp(values[c] / total, 0.0, 1.0) : 0.0;
  }
  if (!(total > 0)) {  // constant data: any orthonormal pair will do
    std::fill(r.axes.begin(), r.axes.end(), 0.0);
    r.axes[0] = 1.0;
    if (D > 1) r.axes[D + 1] = 1.0;
  }
  return r;
}

std::vector<std::size_t> sample_rows(std::size_t N, std::size_t m, std::uint64_t seed, std::uint64_t stream) {
  std::vector<std::size_t> chosen;
  if (m >= N) {
    chosen.resize(N);
    std::iota(chosen.begin(), chosen.end(), std::size_t{0});
    return chosen;
  }
  // Floyd: for j = N - m .. N - 1 pick t in [0, j]; take t, or j when t is taken.
  std::unordered_set<std::size_t> taken;
  taken.reserve(2 * m);
  chosen.reserve(m);
  for (std::size_t j = N - m; j < N; ++j) {
    const std::size_t t = uniform_index(seed, stream, j, j + 1);
    const std::size_t pick = taken.insert(t).second ? t : j;
    if (pick == j) taken.insert(j);
    chosen.push_back(pick);
  }
  std::sort(chosen.begin(), chosen.end());
  return chosen;
}

std::string xml_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 8);
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  for (std::size_t i = 0; i < n;) {
    const unsigned char c = s[i];
    if (c < 0x80) {
      switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&quot;"; break;
        case '\'': out += "&apos;"; break;
        default:
          if (c >= 0x20 || c == '\t' || c == '\n' || c == '\r') out += static_cast<char>(c);
      }
      ++i;
      continue;
    }
    // A well-formed UTF-8 sequence (no overlongs, surrogates or code points past
    // U+10FFFF, nor U+FFFE/U+FFFF which XML forbids) is copied; anything else is U+FFFD.
    std::size_t len = 0;
    std::uint32_t cp = 0;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      cp = c & 0x07;
    }
    bool ok = len > 0 && i + len <= n;
    for (std::size_t k = 1; ok && k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) ok = false;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if (ok) {
      const std::uint32_t min_cp = len == 2 ? 0x80 : len == 3 ? 0x800 : 0x10000;
      ok = cp >= min_cp && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF) && cp != 0xFFFE && cp != 0xFFFF;
    }
    if (ok) {
      out.append(text.data() + i, len);
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

}  // namespace detail

namespace {

using detail::fixed;
using detail::Ticks;
using detail::with_minus;
using detail::xml_escape;

// Ten clearly distinct colours (the values of matplotlib's "tab10"); the means are marked
// in a darker shade of their component's colour. Past ten components the colours come
// round again: components 10 to 19 are drawn as rings (dotted curves for D == 1), and
// the caption says so.
constexpr const char* kPalette[] = {"#1F77B4", "#FF7F0E", "#2CA02C", "#D62728", "#9467BD",
                                    "#8C564B", "#E377C2", "#7F7F7F", "#BCBD22", "#17BECF"};
constexpr int kPaletteSize = 10;

constexpr double kWidth = 1140, kHeight = 540;  // the height grows with the captions
constexpr double kPlotTop = 100, kPlotBottom = 420;
constexpr double kLeftRegion[2] = {16, 540};
constexpr double kRightRegion[2] = {580, 1124};
constexpr double kLegendWidth = 124;
constexpr double kTickFont = 11, kAxisTitleFont = 13, kCaptionFont = 12.5;
constexpr const char* kInk = "#222222";
constexpr const char* kMuted = "#555555";
constexpr const char* kBestTrace = "#1F3A93";
constexpr const char* kOtherTrace = "#A9B4C2";

// Pixel coordinates: one decimal is a tenth of a pixel; clamped so that a wild value
// cannot print as an enormous number.
std::string px(double v) {
  v = std::clamp(std::isfinite(v) ? v : 0.0, -1e5, 1e5);
  std::string s = fixed(v, 1);
  if (s.size() > 2 && s.compare(s.size() - 2, 2, ".0") == 0) s.resize(s.size() - 2);
  return s;
}

// A number for people: about `sig` significant digits, plain or as a×10ⁿ.
std::string pretty(double v, int sig) {
  if (!std::isfinite(v)) return "not finite";
  if (v == 0.0) return "0";
  const double a = std::fabs(v);
  int e = static_cast<int>(std::floor(std::log10(a)));
  if (e >= -3 && e < 6) return with_minus(fixed(v, std::max(0, sig - 1 - e)));
  double m = v / std::pow(10.0, e);
  if (std::fabs(std::round(m * std::pow(10.0, sig - 1))) >= std::pow(10.0, sig)) {  // 9.9996 -> 1.000×10ⁿ⁺¹
    m /= 10;
    ++e;
  }
  std::string s = with_minus(fixed(m, sig - 1));
  const std::string suffix = detail::exponent_suffix(e);  // " (×10ⁿ)"
  return s + suffix.substr(2, suffix.size() - 3);
}

std::string thousands(std::size_t n) {
  std::string s = std::to_string(n), out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i > 0 && (s.size() - i) % 3 == 0) out += ',';
    out += s[i];
  }
  return out;
}

std::string colour(int k) { return kPalette[k % kPaletteSize]; }

// The second round of colours (components 10 to 19) is drawn hollow.
bool hollow(int k) { return k / kPaletteSize == 1; }

// What the caption says when colours repeat; empty for K <= 10.
std::string palette_note(int K, const char* hollow_marks) {
  if (K <= kPaletteSize) return {};
  const std::string head = "Colours repeat after " + std::to_string(kPaletteSize) + " components: components " +
                           std::to_string(kPaletteSize);
  if (K <= 2 * kPaletteSize) return head + " and up are drawn " + hollow_marks + ".";
  return head + "\u2013" + std::to_string(2 * kPaletteSize - 1) + " are drawn " + hollow_marks + ", and from " +
         std::to_string(2 * kPaletteSize) + " on both colours and marks repeat.";
}

// The palette colour mixed 35% towards black: ellipse strokes and mean markers drawn
// over points of their own colour.
std::string dark_colour(int k) {
  const char* hex = kPalette[k % kPaletteSize];
  std::string out = "#";
  for (int i = 0; i < 3; ++i) {
    const int v = std::stoi(std::string(hex + 1 + 2 * i, 2), nullptr, 16);
    const int d = static_cast<int>(std::lround(v * 0.65));
    const char* digits = "0123456789ABCDEF";
    out += digits[d / 16];
    out += digits[d % 16];
  }
  return out;
}

double code_points(std::string_view utf8) {
  std::size_t chars = 0;
  for (unsigned char c : utf8)
    if ((c & 0xC0) != 0x80) ++chars;
  return static_cast<double>(chars);
}

double text_width(std::string_view utf8, double font_size) { return 0.62 * font_size * code_points(utf8); }

// Text cut in the middle, at code points, to fit an estimated width: long paths keep
// both their start and their file name.
std::string fit_text(const std::string& text, double width, double font_size) {
  const double per_char = 0.55 * font_size;
  std::vector<std::size_t> starts;  // byte offset of each code point
  for (std::size_t i = 0; i < text.size(); ++i)
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) starts.push_back(i);
  const auto fits = static_cast<std::size_t>(std::max(width / per_char, 3.0));
  if (starts.size() <= fits) return text;
  const std::size_t head = (fits - 1) / 3, tail = fits - 1 - head;
  return text.substr(0, starts[head]) + "\u2026" + text.substr(starts[starts.size() - tail]);
}

class Svg {
 public:
  std::string out;
  double bottom = 0;  ///< the lowest text drawn so far, for the page height

  void text(double x, double y, std::string_view content, double size, const char* anchor = "start",
            const char* fill = kInk, const char* extra = "") {
    out += "<text x=\"" + px(x) + "\" y=\"" + px(y) + "\" font-size=\"" + px(size) + "\"";
    if (std::string_view(anchor) != "start") out += std::string(" text-anchor=\"") + anchor + "\"";
    if (std::string_view(fill) != kInk) out += std::string(" fill=\"") + fill + "\"";
    if (*extra) out += std::string(" ") + extra;
    out += ">" + xml_escape(content) + "</text>\n";
  }
  void line(double x0, double y0, double x1, double y1, const std::string& stroke, double width,
            const char* extra = "") {
    out += "<line x1=\"" + px(x0) + "\" y1=\"" + px(y0) + "\" x2=\"" + px(x1) + "\" y2=\"" + px(y1) +
           "\" stroke=\"" + stroke + "\" stroke-width=\"" + px(width) + "\"";
    if (*extra) out += std::string(" ") + extra;
    out += "/>\n";
  }
  void rect(double x, double y, double w, double h, const std::string& attrs) {
    out += "<rect x=\"" + px(x) + "\" y=\"" + px(y) + "\" width=\"" + px(std::max(w, 0.0)) + "\" height=\"" +
           px(std::max(h, 0.0)) + "\" " + attrs + "/>\n";
  }
  // Polylines of finite points, broken where a point is not finite.
  void polyline(const std::vector<std::pair<double, double>>& pts, const std::string& attrs) {
    std::string run;
    std::size_t count = 0;
    const auto flush = [&] {
      if (count >= 2) out += "<polyline points=\"" + run + "\" fill=\"none\" " + attrs + "/>\n";
      run.clear();
      count = 0;
    };
    for (const auto& [x, y] : pts) {
      if (!std::isfinite(x) || !std::isfinite(y)) {
        flush();
        continue;
      }
      if (count) run += ' ';
      run += px(x) + "," + px(y);
      ++count;
    }
    flush();
  }
};

// A plot area with its data ranges and ticks.
struct Plot {
  double x0 = 0, y0 = kPlotTop, x1 = 0, y1 = kPlotBottom;
  Ticks xt, yt;
  double X(double v) const { return x0 + (v - xt.lo) / (xt.hi - xt.lo) * (x1 - x0); }
  double Y(double v) const { return y1 - (v - yt.lo) / (yt.hi - yt.lo) * (y1 - y0); }
};

double max_label_width(const Ticks& t) {
  double w = 0;
  for (const auto& l : t.labels) w = std::max(w, text_width(l, kTickFont));
  return w;
}

// Lays out a plot in [left, right] of the page: the y tick labels decide where the plot
// area begins; the x ticks thin out until their labels do not crowd each other.
Plot layout_plot(double left, double right, double xlo, double xhi, double ylo, double yhi, bool x_integer,
                 double pad) {
  Plot p;
  detail::widen_range(ylo, yhi, pad);
  p.yt = detail::nice_ticks(ylo, yhi, 6, false);
  p.x0 = left + 24 + max_label_width(p.yt) + 10;
  p.x1 = right;
  const double xpad = (x_integer && xhi - xlo < 0.5) ? 0.0 : pad;
  if (x_integer && xhi - xlo < 0.5) {
    xlo -= 0.5;
    xhi += 0.5;
  }
  detail::widen_range(xlo, xhi, xpad);
  for (int target = 8; target >= 2; --target) {
    p.xt = detail::nice_ticks(xlo, xhi, target, x_integer);
    const double need = (max_label_width(p.xt) + 14) * static_cast<double>(p.xt.values.size());
    if (need <= p.x1 - p.x0) break;
  }
  return p;
}

void draw_axes(Svg& svg, const Plot& p, const std::string& heading, const std::string& xtitle,
               const std::string& ytitle, double left) {
  svg.out += "<g class=\"axes\">\n";
  svg.rect(p.x0, p.y0, p.x1 - p.x0, p.y1 - p.y0, "fill=\"#FBFBFC\"");
  for (double v : p.xt.values) svg.line(p.X(v), p.y0, p.X(v), p.y1, "#E3E6EA", 1);
  for (double v : p.yt.values) svg.line(p.x0, p.Y(v), p.x1, p.Y(v), "#E3E6EA", 1);
  svg.rect(p.x0, p.y0, p.x1 - p.x0, p.y1 - p.y0, "fill=\"none\" stroke=\"#8A9099\" stroke-width=\"1\"");
  for (std::size_t i = 0; i < p.xt.values.size(); ++i) {
    const double x = p.X(p.xt.values[i]);
    svg.line(x, p.y1, x, p.y1 + 4, "#8A9099", 1);
    svg.text(x, p.y1 + 18, p.xt.labels[i], kTickFont, "middle", kMuted);
  }
  for (std::size_t i = 0; i < p.yt.values.size(); ++i) {
    const double y = p.Y(p.yt.values[i]);
    svg.line(p.x0 - 4, y, p.x0, y, "#8A9099", 1);
    svg.text(p.x0 - 7, y + 4, p.yt.labels[i], kTickFont, "end", kMuted);
  }
  // The titles are cut to fit with their offset and exponent, which are never cut. The
  // y title may run a little past the plot's ends: nothing else is drawn beside them.
  const auto title = [](const std::string& name, const std::string& suffix, double width) {
    return fit_text(name, std::max(width - 0.55 * kAxisTitleFont * code_points(suffix), 60.0), kAxisTitleFont) + suffix;
  };
  svg.text(0.5 * (p.x0 + p.x1), p.y1 + 40, title(xtitle, detail::axis_suffix(p.xt), p.x1 - p.x0 - 70),
           kAxisTitleFont, "middle");
  const double ty = 0.5 * (p.y0 + p.y1);
  const std::string rotate = "transform=\"rotate(-90 " + px(left + 12) + " " + px(ty) + ")\"";
  svg.text(left + 12, ty, title(ytitle, detail::axis_suffix(p.yt), p.y1 - p.y0 + 20), kAxisTitleFont, "middle", kInk,
           rotate.c_str());
  svg.text(p.x0, p.y0 - 14, heading, 15, "start", kInk, "font-weight=\"bold\"");
  svg.out += "</g>\n";
}

// Greedy word wrap to an estimated width (DejaVu Sans averages about 0.55 em a character).
std::vector<std::string> wrap(const std::string& text, double width, double font_size) {
  std::vector<std::string> lines;
  std::string line;
  std::size_t i = 0;
  while (i < text.size()) {
    const std::size_t end = std::min(text.find(' ', i), text.size());
    const std::string word = text.substr(i, end - i);
    const std::string joined = line.empty() ? word : line + " " + word;
    if (!line.empty() && text_width(joined, font_size) * (0.55 / 0.62) > width) {
      lines.push_back(line);
      line = word;
    } else {
      line = joined;
    }
    i = end + 1;
  }
  if (!line.empty()) lines.push_back(line);
  return lines;
}

// Paragraphs under a plot, wrapped to [x, right].
void draw_caption(Svg& svg, double x, double right, const std::vector<std::pair<std::string, const char*>>& paragraphs) {
  double y = kPlotBottom + 72;
  for (const auto& [text, fill] : paragraphs) {
    for (const std::string& line : wrap(text, right - x, kCaptionFont)) {
      svg.text(x, y, line, kCaptionFont, "start", fill);
      svg.bottom = std::max(svg.bottom, y + 5);
      y += 17;
    }
  }
}

// ---- left panel: the log-likelihood trace ----------------------------------------------

void draw_trace(Svg& svg, const FitResult& result) {
  const double left = kLeftRegion[0], right = kLeftRegion[1];
  // Traces by restart, in the order they appear.
  std::vector<int> inits;
  std::vector<std::vector<std::pair<double, double>>> series;
  double xmax = 1, ylo = std::numeric_limits<double>::infinity(), yhi = -ylo;
  for (const TracePoint& t : result.trace) {
    auto it = std::find(inits.begin(), inits.end(), t.init);
    std::size_t s = static_cast<std::size_t>(it - inits.begin());
    if (it == inits.end()) {
      inits.push_back(t.init);
      series.emplace_back();
    }
    series[s].emplace_back(t.iteration, t.mean_log_likelihood);
    if (std::isfinite(t.mean_log_likelihood)) {
      ylo = std::min(ylo, t.mean_log_likelihood);
      yhi = std::max(yhi, t.mean_log_likelihood);
    }
    xmax = std::max(xmax, static_cast<double>(t.iteration));
  }
  if (!(ylo <= yhi)) ylo = yhi = std::isfinite(result.lower_bound) ? result.lower_bound : 0.0;

  // The first iterations from a poor start can lie so far below the rest that the climb
  // that matters is a flat line; up to three of them are then left below the plot when
  // each one stretches the range more than eightfold. The range compared is the axis the
  // plot would get (widened as layout_plot widens it): when the later iterations are all
  // equal it is not zero but a band around them, which may well hold the earlier ones.
  constexpr double kPad = 0.04;
  const auto low_from = [&](int first) {
    double lo = std::numeric_limits<double>::infinity();
    for (const TracePoint& t : result.trace)
      if (t.iteration >= first && std::isfinite(t.mean_log_likelihood)) lo = std::min(lo, t.mean_log_likelihood);
    return lo;
  };
  int skipped = 0;
  while (skipped < 3) {
    const double next = low_from(skipped + 2);
    if (!std::isfinite(next)) break;
    double axis_lo = next, axis_hi = yhi;
    detail::widen_range(axis_lo, axis_hi, kPad);
    if (!(axis_hi - low_from(skipped + 1) > 8.0 * (axis_hi - axis_lo))) break;
    ++skipped;
    ylo = next;
  }

  const Plot p = layout_plot(left, right, 1, xmax, ylo, yhi, true, kPad);
  draw_axes(svg, p, "Log-likelihood per iteration", "iteration", "mean log-likelihood per point", left);
  svg.out += "<clipPath id=\"cuem-trace-clip\">";
  svg.rect(p.x0 - 6, p.y0 - 6, p.x1 - p.x0 + 12, p.y1 - p.y0 + 6, "");
  svg.out += "</clipPath>\n";

  const auto to_px = [&](const std::vector<std::pair<double, double>>& pts) {
    std::vector<std::pair<double, double>> out;
    out.reserve(pts.size());
    for (const auto& [x, y] : pts) out.emplace_back(p.X(x), std::isfinite(y) ? p.Y(y) : y);
    return out;
  };
  const auto markers = [&](const std::vector<std::pair<double, double>>& pts, double r) {
    std::string d;
    for (const auto& [x, y] : pts) {
      if (!std::isfinite(y)) continue;
      d += "M" + px(x - r) + " " + px(y) + "l" + px(r) + " " + px(-r) + " " + px(r) + " " + px(r) + " " +
           px(-r) + " " + px(r) + "z";
    }
    return d;
  };

  svg.out += "<g class=\"trace\" clip-path=\"url(#cuem-trace-clip)\">\n";
  std::size_t best = series.size();
  for (std::size_t s = 0; s < series.size(); ++s) {
    if (inits[s] == result.best_init) {
      best = s;
      continue;
    }
    const auto pts = to_px(series[s]);
    svg.polyline(pts, std::string("stroke=\"") + kOtherTrace + "\" stroke-width=\"1.3\" stroke-linejoin=\"round\"");
    if (pts.size() == 1) svg.out += "<path d=\"" + markers(pts, 3) + "\" fill=\"" + kOtherTrace + "\"/>\n";
  }
  if (best < series.size()) {
    const auto pts = to_px(series[best]);
    svg.polyline(pts, std::string("stroke=\"") + kBestTrace +
                          "\" stroke-width=\"2.4\" stroke-linejoin=\"round\" stroke-linecap=\"round\"");
    // Every iteration marked while they are few; the last one always.
    std::vector<std::pair<double, double>> marked;
    if (pts.size() <= 40) marked = pts;
    const std::string small = markers(marked, 2.6);
    if (!small.empty()) svg.out += "<path d=\"" + small + "\" fill=\"" + kBestTrace + "\"/>\n";
    if (!pts.empty())
      svg.out += "<path d=\"" + markers({pts.back()}, 5) + "\" fill=\"" + kBestTrace +
                 "\" stroke=\"white\" stroke-width=\"1.2\"/>\n";
  }
  svg.out += "</g>\n";

  if (result.trace.empty()) svg.text(0.5 * (p.x0 + p.x1), 0.5 * (p.y0 + p.y1), "no trace recorded", 13, "middle", kMuted);

  // A legend in the lower right, where rising traces leave room, when there are several.
  if (series.size() > 1) {
    const std::string best_label = "best (restart " + std::to_string(result.best_init) + ")";
    const std::string other_label = "other restarts (" + std::to_string(series.size() - 1) + ")";
    const double w = 40 + std::max(text_width(best_label, 11.5), text_width(other_label, 11.5));
    const double x = p.x1 - w - 10, y = p.y1 - 52;
    svg.rect(x, y, w, 42, "fill=\"white\" fill-opacity=\"0.9\" stroke=\"#C9CED6\" rx=\"3\"");
    svg.line(x + 8, y + 14, x + 30, y + 14, kBestTrace, 2.4);
    svg.text(x + 36, y + 18, best_label, 11.5);
    svg.line(x + 8, y + 31, x + 30, y + 31, kOtherTrace, 1.3);
    svg.text(x + 36, y + 35, other_label, 11.5);
  }

  std::vector<std::pair<std::string, const char*>> caption;
  const std::string iterations = std::to_string(result.n_iter) + (result.n_iter == 1 ? " iteration." : " iterations.");
  if (result.converged)
    caption.emplace_back("Converged after " + iterations, kInk);
  else
    caption.emplace_back("Not converged: stopped after " + iterations, "#B3261E");
  if (series.size() > 1) {
    std::string restarts = "Best of " + std::to_string(series.size()) + " restarts";
    // Restarts that end where the best one does hide under it; say so.
    std::size_t same = 0;
    if (best < series.size() && !series[best].empty()) {
      const double end = series[best].back().second;
      for (const auto& s : series)
        if (!s.empty() && std::fabs(s.back().second - end) <= 1e-9 * std::max(1.0, std::fabs(end))) ++same;
    }
    caption.emplace_back(restarts + (same == series.size() ? ", all ending at the same value." : "."), kInk);
  }
  caption.emplace_back("Final lower bound (mean log-likelihood per point): " + pretty(result.lower_bound, 6) + ".",
                       kInk);
  if (skipped > 0 && low_from(1) < p.yt.lo)
    caption.emplace_back((skipped == 1 ? std::string("Iteration 1 (at ")
                                       : "Iterations 1\u2013" + std::to_string(skipped) + " (from ") +
                             pretty(low_from(1), 3) + (skipped == 1 ? ") lies" : ") lie") + " below the plot.",
                         kMuted);
  if (result.n_decreases > 0)
    caption.emplace_back("Warning: the log-likelihood fell " + std::to_string(result.n_decreases) +
                             (result.n_decreases == 1 ? " time" : " times") + " (largest fall " +
                             pretty(result.max_decrease, 3) + ").",
                         "#B3261E");
  draw_caption(svg, p.x0, right, caption);
}

// ---- right panel, D >= 2: points and ellipses ------------------------------------------

// Entry (i, j) of component k's covariance, whatever its structure.
double covariance_entry(const Model& m, int k, std::size_t i, std::size_t j) {
  const std::size_t D = static_cast<std::size_t>(m.n_features), K = static_cast<std::size_t>(k);
  switch (m.covariance_type) {
    case CovarianceType::full: return m.covariances[K * D * D + i * D + j];
    case CovarianceType::tied: return m.covariances[i * D + j];
    case CovarianceType::diag: return i == j ? m.covariances[K * D + i] : 0.0;
    case CovarianceType::spherical: return i == j ? m.covariances[K] : 0.0;
  }
  return 0.0;
}

// P Sigma_k P^T (2 x 2: a, b, c for [[a, b], [b, c]]) for a 2 x D projection P.
void projected_covariance(const Model& m, int k, const std::vector<double>& P, double out[3]) {
  const std::size_t D = static_cast<std::size_t>(m.n_features);
  const double* p0 = P.data();
  const double* p1 = P.data() + D;
  double s00 = 0, s01 = 0, s11 = 0;
  if (m.covariance_type == CovarianceType::full || m.covariance_type == CovarianceType::tied) {
    for (std::size_t i = 0; i < D; ++i) {
      if (p0[i] == 0.0 && p1[i] == 0.0) continue;
      double r0 = 0, r1 = 0;  // (Sigma p0)_i, (Sigma p1)_i by symmetry
      for (std::size_t j = 0; j < D; ++j) {
        const double s = covariance_entry(m, k, i, j);
        r0 += s * p0[j];
        r1 += s * p1[j];
      }
      s00 += p0[i] * r0;
      s01 += p1[i] * r0;
      s11 += p1[i] * r1;
    }
  } else {
    for (std::size_t i = 0; i < D; ++i) {
      const double s = covariance_entry(m, k, i, i);
      s00 += p0[i] * p0[i] * s;
      s01 += p0[i] * p1[i] * s;
      s11 += p1[i] * p1[i] * s;
    }
  }
  out[0] = s00;
  out[1] = s01;
  out[2] = s11;
}

std::string axis_name(const ReportOptions& o, std::size_t d) {
  if (d < o.feature_names.size() && !o.feature_names[d].empty()) return o.feature_names[d];
  return "feature " + std::to_string(d + 1);
}

void draw_legend_components(Svg& svg, double x, double y0, double y_max, const Model& model, bool lines) {
  const int K = model.n_components;
  svg.text(x, y0, "Component", 12.5, "start", kInk, "font-weight=\"bold\"");
  double y = y0 + 20;
  // Rows close up to 14 px so that a few more components (the ring-marked ones past the
  // tenth among them) find room.
  const double row = std::clamp((y_max - y) / std::max(K, 1), 14.0, 18.0);
  const int fits = std::max(1, static_cast<int>((y_max - y) / row));
  const int shown = K <= fits ? K : fits - 1;
  for (int k = 0; k < shown; ++k, y += row) {
    if (lines)
      svg.line(x, y - 4, x + 14, y - 4, colour(k), 2.2,
               hollow(k) ? "stroke-dasharray=\"1.5 2\"" : "stroke-dasharray=\"4 2\"");
    else if (hollow(k))
      svg.rect(x + 1, y - 9, 10, 10, "fill=\"none\" stroke=\"" + colour(k) + "\" stroke-width=\"2\" rx=\"5\"");
    else
      svg.rect(x, y - 10, 12, 12, "fill=\"" + colour(k) + "\" rx=\"2\"");
    svg.text(x + 20, y, std::to_string(k) + "  weight " + fixed(model.weights[static_cast<std::size_t>(k)], 2), 11.5);
  }
  if (shown < K) svg.text(x, y, "\u2026 and " + std::to_string(K - shown) + " more", 11.5, "start", kMuted);
}

void draw_scatter(Svg& svg, const FitResult& result, DataView X, const ReportOptions& o) {
  const Model& model = result.model;
  const std::size_t D = X.n_cols, N = X.n_rows;
  const int K = model.n_components;

  // The projection.
  std::vector<double> P(2 * D, 0.0), centre(D, 0.0);
  std::string xtitle, ytitle, xname, yname, plane, pca_note;
  if (o.axes == Axes::principal) {
    const detail::PrincipalAxes pa = detail::principal_axes(X, o.seed);
    P = pa.axes;
    centre = pa.mean;
    const auto share = [&](int c) {
      return pa.fraction[0] + pa.fraction[1] > 0
                 ? "PC" + std::to_string(c + 1) + " (" + fixed(100.0 * pa.fraction[c], 1) + "% of variance)"
                 : "PC" + std::to_string(c + 1) + " (the data has no variance)";
    };
    xtitle = share(0);
    ytitle = share(1);
    xname = "PC1";
    yname = "PC2";
    plane = "the data's top two principal axes";
    if (pa.rows_used < N) pca_note = "(Axes and variances from a sample of " + thousands(pa.rows_used) + " points.)";
  } else {
    P[0] = 1.0;
    P[D + 1] = 1.0;
    xtitle = xname = axis_name(o, 0);
    ytitle = yname = axis_name(o, 1);
    plane = "the first two features";
  }
  const auto project = [&](const double* x, double& u, double& v) {
    if (o.axes == Axes::first_two) {
      u = x[0];
      v = x[1];
      return;
    }
    u = v = 0;
    for (std::size_t d = 0; d < D; ++d) {
      const double y = x[d] - centre[d];
      u += P[d] * y;
      v += P[D + d] * y;
    }
  };

  // The sample, its labels, and its projection.
  const std::vector<std::size_t> rows =
      detail::sample_rows(N, std::min<std::size_t>(o.max_points, N), o.seed, detail::kStreamScatterSample);
  const std::size_t M = rows.size();
  std::vector<int> labels;
  std::vector<double> uv(2 * M);
  if (M > 0) {
    std::vector<double> sub(M * D);
    for (std::size_t i = 0; i < M; ++i) std::copy(X.row(rows[i]), X.row(rows[i]) + D, sub.data() + i * D);
    labels = predict(model, DataView(sub.data(), M, D));
    for (std::size_t i = 0; i < M; ++i) project(sub.data() + i * D, uv[2 * i], uv[2 * i + 1]);
  }
  std::vector<double> mu(2 * static_cast<std::size_t>(K)), cov(3 * static_cast<std::size_t>(K));
  for (int k = 0; k < K; ++k) {
    project(model.means.data() + static_cast<std::size_t>(k) * D, mu[2 * k], mu[2 * k + 1]);
    projected_covariance(model, k, P, cov.data() + 3 * k);
  }

  // Ranges: the points and the means, and the 2-sigma boxes as far as they stay near them.
  double ulo = std::numeric_limits<double>::infinity(), uhi = -ulo, vlo = ulo, vhi = -ulo;
  const auto extend = [](double& lo, double& hi, double x) {
    lo = std::min(lo, x);
    hi = std::max(hi, x);
  };
  for (std::size_t i = 0; i < M; ++i) {
    extend(ulo, uhi, uv[2 * i]);
    extend(vlo, vhi, uv[2 * i + 1]);
  }
  for (int k = 0; k < K; ++k) {
    extend(ulo, uhi, mu[2 * k]);
    extend(vlo, vhi, mu[2 * k + 1]);
  }
  {
    const double du = 0.3 * (uhi - ulo), dv = 0.3 * (vhi - vlo);
    double eulo = ulo, euhi = uhi, evlo = vlo, evhi = vhi;
    for (int k = 0; k < K; ++k) {
      const double ru = 2 * std::sqrt(std::max(cov[3 * k], 0.0)), rv = 2 * std::sqrt(std::max(cov[3 * k + 2], 0.0));
      extend(eulo, euhi, std::max(mu[2 * k] - ru, ulo - du));
      extend(eulo, euhi, std::min(mu[2 * k] + ru, uhi + du));
      extend(evlo, evhi, std::max(mu[2 * k + 1] - rv, vlo - dv));
      extend(evlo, evhi, std::min(mu[2 * k + 1] + rv, vhi + dv));
    }
    ulo = eulo, uhi = euhi, vlo = evlo, vhi = evhi;
  }

  const double left = kRightRegion[0], right = kRightRegion[1] - kLegendWidth;
  Plot p = layout_plot(left, right, ulo, uhi, vlo, vhi, false, 0.04);
  const std::string heading = o.axes == Axes::principal ? "Components on the principal axes"
                                                        : "Components on the first two features";
  draw_axes(svg, p, heading, xtitle, ytitle, left);

  svg.out += "<clipPath id=\"cuem-scatter-clip\">";
  svg.rect(p.x0, p.y0, p.x1 - p.x0, p.y1 - p.y0, "");
  svg.out += "</clipPath>\n<g clip-path=\"url(#cuem-scatter-clip)\">\n";

  // Points in a seeded random order, so that no component is always drawn on top.
  std::vector<std::size_t> order(M);
  std::iota(order.begin(), order.end(), std::size_t{0});
  for (std::size_t i = M; i > 1; --i)
    std::swap(order[i - 1], order[detail::uniform_index(o.seed, detail::kStreamDrawOrder, i, i)]);
  const double r = M <= 500 ? 2.8 : M <= 2000 ? 2.2 : M <= 10000 ? 1.7 : 1.2;
  const double alpha = M <= 500 ? 0.7 : M <= 2000 ? 0.6 : M <= 10000 ? 0.45 : 0.3;
  svg.out += "<g class=\"points\" fill-opacity=\"" + fixed(alpha, 2) + "\"" +
             (K > kPaletteSize ? " stroke-opacity=\"" + fixed(std::min(1.0, alpha + 0.2), 2) + "\"" : std::string()) +
             ">\n";
  const std::string radius = px(r);
  for (std::size_t i : order) {
    svg.out += std::string("<circle class=\"") + (hollow(labels[i]) ? "r" : "c") +
               std::to_string(labels[i] % kPaletteSize) + "\" cx=\"" + px(p.X(uv[2 * i])) + "\" cy=\"" +
               px(p.Y(uv[2 * i + 1])) + "\" r=\"" + radius + "\"/>\n";
  }
  svg.out += "</g>\n";

  // Ellipses: [[a, b], [b, c]] in data units becomes S C S with S = diag(sx, -sy) in
  // pixels; its eigenvectors give the rotation and its eigenvalues the squared radii.
  const double sx = (p.x1 - p.x0) / (p.xt.hi - p.xt.lo), sy = (p.y1 - p.y0) / (p.yt.hi - p.yt.lo);
  svg.out += "<g class=\"ellipses\" fill=\"none\">\n";
  int enclosing = 0;
  // Components whose 1-sigma contour reaches far past the plot along one axis: only the
  // sides of their ellipses show, as near-straight lines; the caption says why.
  std::vector<int> tall, wide;
  double tall_sd = 0, wide_sd = 0;
  for (int k = 0; k < K; ++k) {
    const double a = sx * sx * cov[3 * k], b = -sx * sy * cov[3 * k + 1], c = sy * sy * cov[3 * k + 2];
    const double mid = 0.5 * (a + c), rad = std::hypot(0.5 * (a - c), b);
    const double l1 = std::max(mid + rad, 0.0), l2 = std::max(mid - rad, 0.0);
    const double angle = 0.5 * std::atan2(2 * b, a - c) * 180.0 / 3.14159265358979323846;
    const std::string cx = px(p.X(mu[2 * k])), cy = px(p.Y(mu[2 * k + 1]));
    // An ellipse whose 1-sigma contour holds all four corners of the plot is not seen.
    const double det = a * c - b * b;
    if (det > 0) {
      bool holds_plot = true;
      for (double x : {p.x0, p.x1})
        for (double y : {p.y0, p.y1}) {
          const double vx = x - p.X(mu[2 * k]), vy = y - p.Y(mu[2 * k + 1]);
          holds_plot = holds_plot && (c * vx * vx - 2 * b * vx * vy + a * vy * vy) / det < 1.0;
        }
      if (holds_plot) ++enclosing;
      if (!holds_plot && std::sqrt(c) > 10 * (p.y1 - p.y0)) {
        tall.push_back(k);
        tall_sd = std::max(tall_sd, std::sqrt(cov[3 * k + 2]));
      }
      if (!holds_plot && std::sqrt(a) > 10 * (p.x1 - p.x0)) {
        wide.push_back(k);
        wide_sd = std::max(wide_sd, std::sqrt(cov[3 * k]));
      }
    }
    for (int sigma = 2; sigma >= 1; --sigma) {
      const double rx = std::min(sigma * std::sqrt(l1), 1e5), ry = std::min(sigma * std::sqrt(l2), 1e5);
      svg.out += "<ellipse class=\"sigma" + std::to_string(sigma) + "\" cx=\"" + cx + "\" cy=\"" + cy + "\" rx=\"" +
                 px(rx) + "\" ry=\"" + px(ry) + "\" transform=\"rotate(" + fixed(angle, 2) + " " + cx + " " + cy +
                 ")\" stroke=\"" + dark_colour(k) + "\"" +
                 (sigma == 1 ? " stroke-width=\"2.2\"" : " stroke-width=\"1.6\" stroke-dasharray=\"6 4\"") + "/>\n";
    }
  }
  svg.out += "</g>\n<g class=\"means\" stroke=\"white\" stroke-width=\"1.5\">\n";
  for (int k = 0; k < K; ++k) {
    const double x = p.X(mu[2 * k]), y = p.Y(mu[2 * k + 1]), s = 6.5;
    svg.out += "<path d=\"M" + px(x - s) + " " + px(y) + "L" + px(x) + " " + px(y - s) + "L" + px(x + s) + " " +
               px(y) + "L" + px(x) + " " + px(y + s) + "Z\" fill=\"" + dark_colour(k) + "\"/>\n";
  }
  svg.out += "</g>\n</g>\n";

  // Legend: components, then the key to the marks.
  const double lx = p.x1 + 16;
  draw_legend_components(svg, lx, p.y0 + 10, p.y1 - 80, model, false);
  double ky = p.y1 - 52;
  svg.line(lx, ky - 4, lx + 22, ky - 4, "#444444", 2.2);
  svg.text(lx + 28, ky, "1\u03c3", 11.5);
  ky += 18;
  svg.line(lx, ky - 4, lx + 22, ky - 4, "#444444", 1.6, "stroke-dasharray=\"6 4\"");
  svg.text(lx + 28, ky, "2\u03c3", 11.5);
  ky += 18;
  svg.out += "<path d=\"M" + px(lx + 5) + " " + px(ky - 4) + "l6 -6 6 6 -6 6z\" fill=\"#444444\"/>\n";
  svg.text(lx + 28, ky, "mean", 11.5);

  std::vector<std::pair<std::string, const char*>> caption;
  caption.emplace_back((M == N ? "All " + thousands(N) + " points"
                               : "A random sample of " + thousands(M) + " of " + thousands(N) + " points") +
                           ", coloured by most probable component; ellipses: each component's 1\u03c3 and 2\u03c3 "
                           "contours, projected onto " +
                           plane + ".",
                       kInk);
  if (enclosing > 0)
    caption.emplace_back(std::to_string(enclosing) + (enclosing == 1 ? " component's ellipses enclose" : " components' ellipses enclose") +
                             " the whole plot and cannot be seen.",
                         kMuted);
  const auto cut_off = [&](const std::vector<int>& ks, double sd, const char* shape, const std::string& axis,
                           const Ticks& t) {
    if (ks.empty()) return;
    std::string which;
    if (ks.size() > 4) {
      which = "of " + std::to_string(ks.size()) + " components";
    } else {
      which = ks.size() == 1 ? "of component " : "of components ";
      for (std::size_t i = 0; i < ks.size(); ++i)
        which += (i == 0 ? "" : i + 1 == ks.size() ? " and " : ", ") + std::to_string(ks[i]);
    }
    caption.emplace_back("The ellipses " + which + " are far " + shape + " than the plot (1\u03c3 along " + axis +
                             (ks.size() > 1 ? " up to " : ": ") + pretty(sd, 3) + ", against a plotted range of " +
                             pretty(t.hi - t.lo, 3) + "), so only their sides show.",
                         kMuted);
  };
  cut_off(tall, tall_sd, "taller", yname, p.yt);
  cut_off(wide, wide_sd, "wider", xname, p.xt);
  if (!tall.empty() || !wide.empty())
    caption.back().first +=
        " A variance so far beyond the points' spread usually comes from reg_covar, the constant added to each "
        "covariance's diagonal, on a feature of tiny scale.";
  if (const std::string note = palette_note(K, "as rings"); !note.empty()) caption.emplace_back(note, kMuted);
  if (!pca_note.empty()) caption.emplace_back(pca_note, kMuted);
  draw_caption(svg, p.x0, kRightRegion[1], caption);
}

// ---- right panel, D == 1: histogram and densities --------------------------------------

void draw_histogram(Svg& svg, const FitResult& result, DataView X, const ReportOptions& o) {
  const Model& model = result.model;
  const std::size_t N = X.n_rows;
  const int K = model.n_components;
  double lo = X.data[0], hi = X.data[0];
  for (std::size_t i = 1; i < N; ++i) {
    lo = std::min(lo, X.data[i]);
    hi = std::max(hi, X.data[i]);
  }
  double blo = lo, bhi = hi;
  detail::widen_range(blo, bhi, 0.0);
  // Rice's rule for the number of bins, kept to a range that reads well.
  const int bins = std::clamp(static_cast<int>(std::ceil(2.0 * std::cbrt(static_cast<double>(N)))), 5, 60);
  const double width = (bhi - blo) / bins;
  std::vector<double> density(static_cast<std::size_t>(bins), 0.0);
  for (std::size_t i = 0; i < N; ++i) {
    const int b = std::clamp(static_cast<int>((X.data[i] - blo) / width), 0, bins - 1);
    density[static_cast<std::size_t>(b)] += 1.0;
  }
  double hist_max = 0;
  for (double& d : density) {
    d /= static_cast<double>(N) * width;
    hist_max = std::max(hist_max, d);
  }

  double xlo = blo, xhi = bhi;
  detail::widen_range(xlo, xhi, 0.04);
  // The densities on a fine grid plus every mean, so no narrow peak falls between samples.
  std::vector<double> grid;
  const int G = 400;
  for (int g = 0; g <= G; ++g) grid.push_back(xlo + (xhi - xlo) * g / G);
  for (int k = 0; k < K; ++k) {
    const double m = model.means[static_cast<std::size_t>(k)];
    if (m > xlo && m < xhi) grid.push_back(m);
  }
  std::sort(grid.begin(), grid.end());
  const auto var = [&](int k) {
    return model.covariance_type == CovarianceType::tied ? model.covariances[0]
                                                         : model.covariances[static_cast<std::size_t>(k)];
  };
  std::vector<std::vector<double>> comp(static_cast<std::size_t>(K), std::vector<double>(grid.size()));
  std::vector<double> mix(grid.size(), 0.0);
  double curve_max = 0;
  for (int k = 0; k < K; ++k) {
    const double s2 = std::max(var(k), std::numeric_limits<double>::min());
    const double w = model.weights[static_cast<std::size_t>(k)], m = model.means[static_cast<std::size_t>(k)];
    for (std::size_t g = 0; g < grid.size(); ++g) {
      const double z = grid[g] - m;
      const double f = w * std::exp(-0.5 * z * z / s2) / std::sqrt(2 * 3.14159265358979323846 * s2);
      comp[static_cast<std::size_t>(k)][g] = f;
      mix[g] += f;
    }
  }
  for (double f : mix) curve_max = std::max(curve_max, f);
  // A spike far above the histogram (a component with a tiny variance) is clipped rather
  // than allowed to flatten everything else.
  const double ytop = std::max(hist_max, std::min(curve_max, 2.5 * hist_max));

  const double left = kRightRegion[0], right = kRightRegion[1] - kLegendWidth;
  Plot p = layout_plot(left, right, xlo, xhi, 0.0, ytop, false, 0.0);
  {
    double ylo = 0.0, yhi = ytop * 1.06;  // the density axis starts at zero
    p.yt = detail::nice_ticks(ylo, yhi, 6, false);
  }
  p.xt = detail::nice_ticks(xlo, xhi, 7, false);
  for (int target = 7; target >= 2; --target) {
    p.xt = detail::nice_ticks(xlo, xhi, target, false);
    if ((max_label_width(p.xt) + 14) * static_cast<double>(p.xt.values.size()) <= p.x1 - p.x0) break;
  }
  draw_axes(svg, p, "Data and fitted density", axis_name(o, 0), "density", left);

  svg.out += "<clipPath id=\"cuem-density-clip\">";
  svg.rect(p.x0, p.y0, p.x1 - p.x0, p.y1 - p.y0, "");
  svg.out += "</clipPath>\n<g clip-path=\"url(#cuem-density-clip)\">\n<g class=\"histogram\" fill=\"#C8D1DC\" "
             "stroke=\"white\" stroke-width=\"0.8\">\n";
  for (int b = 0; b < bins; ++b) {
    const double x0 = p.X(blo + b * width), x1 = p.X(blo + (b + 1) * width);
    const double y = p.Y(density[static_cast<std::size_t>(b)]);
    svg.rect(x0, y, x1 - x0, p.y1 - y, "");
  }
  svg.out += "</g>\n";
  // A component's curve stops where it is flat on the axis, which would only add noise
  // along the baseline; the mixture goes first so the dashed components stay visible.
  const auto curve = [&](const std::vector<double>& f, double floor) {
    std::vector<std::pair<double, double>> pts(grid.size());
    const double nan = std::numeric_limits<double>::quiet_NaN();
    for (std::size_t g = 0; g < grid.size(); ++g)
      pts[g] = {p.X(grid[g]), f[g] >= floor ? p.Y(f[g]) : nan};
    return pts;
  };
  svg.polyline(curve(mix, 0.0), std::string("stroke=\"") + kInk + "\" stroke-width=\"2.6\" stroke-linejoin=\"round\"");
  for (int k = 0; k < K; ++k)
    svg.polyline(curve(comp[static_cast<std::size_t>(k)], 2e-3 * (p.yt.hi - p.yt.lo)),
                 "stroke=\"" + colour(k) + "\" stroke-width=\"2\" stroke-dasharray=\"" +
                     (hollow(k) ? "1.5 2.5" : "6 3") + "\" stroke-linejoin=\"round\"");
  svg.out += "</g>\n";

  const double lx = p.x1 + 16;
  draw_legend_components(svg, lx, p.y0 + 10, p.y1 - 40, model, true);
  svg.line(lx, p.y1 - 14, lx + 14, p.y1 - 14, kInk, 2.4);
  svg.text(lx + 20, p.y1 - 10, "mixture", 11.5);

  std::vector<std::pair<std::string, const char*>> caption;
  caption.emplace_back("Histogram of all " + thousands(N) + " points (" + std::to_string(bins) +
                           " bins); solid: the fitted mixture density; dashed: each component's weighted density "
                           "w\u2096 N(x; \u03bc\u2096, \u03c3\u2096\u00b2).",
                       kInk);
  if (const std::string note = palette_note(K, "dotted"); !note.empty()) caption.emplace_back(note, kMuted);
  draw_caption(svg, p.x0, kRightRegion[1], caption);
}

}  // namespace

std::string render_svg(const FitResult& result, DataView X, const ReportOptions& options) {
  if (X.on_device()) throw InvalidArgument("the report draws data in host memory; copy the data to the host first");
  if (X.is_float32() || !X.contiguous()) {  // the report is no hot path: draw from a packed float64 copy
    std::vector<double> copy(X.n_rows * X.n_cols);
    for (std::size_t i = 0; i < copy.size(); ++i) copy[i] = X.value(i / X.n_cols, i % X.n_cols);
    return render_svg(result, DataView(copy.data(), X.n_rows, X.n_cols), options);
  }
  const Model& model = result.model;
  validate_model_and_data(model, X);
  validate_data(X);

  Svg svg;
  svg.out.reserve(4096 + 64 * std::min<std::size_t>(options.max_points, X.n_rows));
  const std::string title = options.title.empty() ? "Gaussian mixture fit" : options.title;
  svg.text(kLeftRegion[0] + 8, 34, fit_text(title, (kWidth - 48) * 0.85, 20), 20, "start", kInk, "font-weight=\"bold\"");
  const std::size_t N = X.n_rows, D = X.n_cols;
  const int K = model.n_components;
  svg.text(kLeftRegion[0] + 8, 57,
           std::to_string(K) + (K == 1 ? " component, " : " components, ") + to_string(model.covariance_type) +
               " covariance \u00b7 " + thousands(N) + (N == 1 ? " point, " : " points, ") + std::to_string(D) +
               (D == 1 ? " feature" : " features") + " \u00b7 fitted by cuem",
           13, "start", kMuted);
  draw_trace(svg, result);
  if (D >= 2)
    draw_scatter(svg, result, X, options);
  else
    draw_histogram(svg, result, X, options);

  // The page grows when the captions need more lines.
  const double height = std::max(kHeight, std::ceil(svg.bottom + 14));
  std::string doc;
  doc.reserve(svg.out.size() + 1024);
  doc += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  doc += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + px(kWidth) + "\" height=\"" + px(height) +
         "\" viewBox=\"0 0 " + px(kWidth) + " " + px(height) +
         "\" font-family=\"'DejaVu Sans', 'Helvetica Neue', Arial, sans-serif\">\n";
  doc += "<title>" + xml_escape("cuem report: " + title) + "</title>\n<style>";
  for (int k = 0; k < kPaletteSize; ++k) doc += ".c" + std::to_string(k) + "{fill:" + kPalette[k] + "}";
  if (D >= 2 && K > kPaletteSize)
    for (int k = 0; k < kPaletteSize; ++k)
      doc += ".r" + std::to_string(k) + "{fill:none;stroke:" + kPalette[k] + ";stroke-width:1.3}";
  doc += "</style>\n<rect x=\"0\" y=\"0\" width=\"" + px(kWidth) + "\" height=\"" + px(height) + "\" fill=\"white\"/>\n";
  doc += svg.out;
  doc += "</svg>\n";
  return doc;
}

}  // namespace cuem::report
