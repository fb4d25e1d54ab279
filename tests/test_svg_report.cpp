// The SVG report: a well-formed document with one point per sampled row and two ellipses
// per component, deterministic for a seed, the D == 1 histogram, principal axes whose
// variance shares match a hand computation, no NaN or Inf anywhere, and escaped text;
// and its numerical helpers (ticks, eigensolvers, sampling) on their own.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "cuem/errors.hpp"
#include "cuem/fit.hpp"
#include "report/svg_report.hpp"
#include "report/svg_report_detail.hpp"
#include "test_util.hpp"

namespace {

using cuem::CovarianceType;
using cuem::report::Axes;
using cuem::report::ReportOptions;
using cuem::report::render_svg;

// ---- a small XML well-formedness checker ------------------------------------------------

bool valid_utf8(const std::string& s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + len > s.size()) return false;
    for (std::size_t k = 1; k < len; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    i += len;
  }
  return true;
}

// The entity or character reference at s[i] == '&'; its length, or 0 when invalid.
std::size_t reference_length(const std::string& s, std::size_t i) {
  for (const char* e : {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"})
    if (s.compare(i, std::string(e).size(), e) == 0) return std::string(e).size();
  if (s.compare(i, 2, "&#") != 0) return 0;
  std::size_t j = i + 2;
  const bool hex = j < s.size() && s[j] == 'x';
  if (hex) ++j;
  const std::size_t start = j;
  while (j < s.size() && (hex ? std::isxdigit(static_cast<unsigned char>(s[j])) : std::isdigit(static_cast<unsigned char>(s[j]))))
    ++j;
  return j > start && j < s.size() && s[j] == ';' ? j + 1 - i : 0;
}

// Character data or an attribute value from [b, e): no '<', every '&' a reference, no
// control characters that XML 1.0 forbids.
std::string check_chars(const std::string& s, std::size_t b, std::size_t e) {
  for (std::size_t i = b; i < e; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '<') return "raw '<' at " + std::to_string(i);
    if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') return "control character at " + std::to_string(i);
    if (c == '&') {
      const std::size_t n = reference_length(s, i);
      if (n == 0) return "bad reference at " + std::to_string(i);
      i += n - 1;
    }
  }
  return {};
}

bool name_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':'; }
bool name_char(char c) {
  return name_start(c) || std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '.';
}

// Empty when `doc` is a well-formed XML document (one root, balanced tags, quoted and
// unique attributes, valid references, valid UTF-8); else the first problem.
std::string xml_problem(const std::string& doc) {
  if (!valid_utf8(doc)) return "not valid UTF-8";
  std::size_t i = 0;
  if (doc.compare(0, 5, "<?xml") == 0) {
    i = doc.find("?>");
    if (i == std::string::npos) return "unterminated XML declaration";
    i += 2;
  }
  std::vector<std::string> open;
  int roots = 0;
  while (i < doc.size()) {
    const std::size_t lt = doc.find('<', i);
    const std::size_t text_end = lt == std::string::npos ? doc.size() : lt;
    if (std::string p = check_chars(doc, i, text_end); !p.empty()) return p;
    if (open.empty())
      for (std::size_t k = i; k < text_end; ++k)
        if (!std::isspace(static_cast<unsigned char>(doc[k]))) return "text outside the root at " + std::to_string(k);
    if (lt == std::string::npos) break;
    if (doc.compare(lt, 4, "<!--") == 0) {
      const std::size_t end = doc.find("-->", lt + 4);
      if (end == std::string::npos) return "unterminated comment";
      i = end + 3;
      continue;
    }
    std::size_t j = lt + 1;
    const bool closing = j < doc.size() && doc[j] == '/';
    if (closing) ++j;
    const std::size_t name_begin = j;
    if (j >= doc.size() || !name_start(doc[j])) return "bad tag name at " + std::to_string(lt);
    while (j < doc.size() && name_char(doc[j])) ++j;
    const std::string name = doc.substr(name_begin, j - name_begin);
    if (closing) {
      while (j < doc.size() && std::isspace(static_cast<unsigned char>(doc[j]))) ++j;
      if (j >= doc.size() || doc[j] != '>') return "bad closing tag </" + name;
      if (open.empty() || open.back() != name)
        return "</" + name + "> closes " + (open.empty() ? std::string("nothing") : "<" + open.back() + ">");
      open.pop_back();
      i = j + 1;
      continue;
    }
    std::set<std::string> attributes;
    bool self_closing = false;
    for (;;) {
      const std::size_t before = j;
      while (j < doc.size() && std::isspace(static_cast<unsigned char>(doc[j]))) ++j;
      if (j >= doc.size()) return "unterminated <" + name;
      if (doc[j] == '>') break;
      if (doc.compare(j, 2, "/>") == 0) {
        self_closing = true;
        ++j;
        break;
      }
      if (j == before) return "no space before an attribute of <" + name + "> at " + std::to_string(j);
      const std::size_t an = j;
      if (!name_start(doc[j])) return "bad attribute name in <" + name + "> at " + std::to_string(j);
      while (j < doc.size() && name_char(doc[j])) ++j;
      const std::string attr = doc.substr(an, j - an);
      if (!attributes.insert(attr).second) return "duplicate attribute " + attr + " in <" + name + ">";
      if (j + 1 >= doc.size() || doc[j] != '=' || (doc[j + 1] != '"' && doc[j + 1] != '\''))
        return "unquoted attribute " + attr + " in <" + name + ">";
      const char quote = doc[j + 1];
      const std::size_t vb = j + 2, ve = doc.find(quote, vb);
      if (ve == std::string::npos) return "unterminated attribute " + attr;
      if (std::string p = check_chars(doc, vb, ve); !p.empty()) return p + " (attribute " + attr + ")";
      j = ve + 1;
    }
    if (open.empty() && ++roots > 1) return "a second root element <" + name + ">";
    if (!self_closing) open.push_back(name);
    i = j + 1;
  }
  if (!open.empty()) return "<" + open.back() + "> is never closed";
  if (roots != 1) return "no root element";
  return {};
}

std::size_t count(const std::string& s, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t i = s.find(what); i != std::string::npos; i = s.find(what, i + what.size())) ++n;
  return n;
}

// No "nan" or "inf" in any case, anywhere (the report's own words avoid both).
void expect_no_non_finite_text(const std::string& svg) {
  std::string lower(svg);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  EXPECT_EQ(lower.find("nan"), std::string::npos) << "at " << lower.find("nan");
  EXPECT_EQ(lower.find("inf"), std::string::npos) << "at " << lower.find("inf");
}

void expect_well_formed(const std::string& svg) {
  ASSERT_GT(svg.size(), 1000u) << "vacuous output";
  EXPECT_EQ(xml_problem(svg), "");
  EXPECT_EQ(svg.compare(0, 5, "<?xml"), 0);
  EXPECT_NE(svg.find("<svg xmlns=\"http://www.w3.org/2000/svg\""), std::string::npos);
  expect_no_non_finite_text(svg);
}

TEST(XmlChecker, RejectsBrokenDocuments) {
  EXPECT_EQ(xml_problem("<a><b x=\"1\"/>t &amp; u</a>"), "");
  EXPECT_NE(xml_problem("<a><b></a>"), "");
  EXPECT_NE(xml_problem("<a>x & y</a>"), "");
  EXPECT_NE(xml_problem("<a x=1/>"), "");
  EXPECT_NE(xml_problem("<a x=\"1\" x=\"2\"/>"), "");
  EXPECT_NE(xml_problem("<a/><b/>"), "");
  EXPECT_NE(xml_problem("<a x=\"<\"/>"), "");
  EXPECT_NE(xml_problem("<a>\x01</a>"), "");
  EXPECT_NE(xml_problem("<a>\xff</a>"), "");
  EXPECT_NE(xml_problem("<a>"), "");
}

// ---- text, ticks and the plot rectangle, read back from a document ---------------------

// The content of every <text> element, in order, joined by spaces: wrapped caption lines
// read again as the sentences they were cut from.
std::string all_text(const std::string& svg) {
  static const std::regex re("<text[^>]*>([^<]*)</text>");
  std::string out;
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), re); it != std::sregex_iterator(); ++it)
    out += (*it)[1].str() + " ";
  return out;
}

struct AxisText {
  std::vector<std::string> x_labels, y_labels;
  std::string x_title, y_title;
};

// Tick labels and axis titles of the trace panel (right_panel false) or of the scatter.
AxisText axis_text(const std::string& svg, bool right_panel) {
  const std::size_t split = svg.find("class=\"trace\"");
  const std::string part = right_panel ? svg.substr(split, svg.find("cuem-scatter-clip") - split) : svg.substr(0, split);
  static const std::regex tick(
      "font-size=\"11\" text-anchor=\"(middle|end)\" fill=\"#555555\">([^<]*)</text>");
  static const std::regex title("font-size=\"13\" text-anchor=\"middle\"( transform=\"[^\"]*\")?>([^<]*)</text>");
  AxisText t;
  for (auto it = std::sregex_iterator(part.begin(), part.end(), tick); it != std::sregex_iterator(); ++it)
    ((*it)[1] == "middle" ? t.x_labels : t.y_labels).push_back((*it)[2]);
  for (auto it = std::sregex_iterator(part.begin(), part.end(), title); it != std::sregex_iterator(); ++it)
    ((*it)[1].matched ? t.y_title : t.x_title) = (*it)[2];
  return t;
}

double label_value(std::string label) {
  const std::string minus = "\u2212";
  if (label.compare(0, minus.size(), minus) == 0) label.replace(0, minus.size(), "-");
  return std::stod(label);
}

void expect_distinct(const std::vector<std::string>& labels, const std::string& what) {
  EXPECT_GE(labels.size(), 3u) << what;
  EXPECT_EQ(std::set<std::string>(labels.begin(), labels.end()).size(), labels.size())
      << what << ": every tick reads differently";
}

struct Rect {
  double x, y, w, h;
};

Rect scatter_rect(const std::string& svg) {
  static const std::regex re(
      "<clipPath id=\"cuem-scatter-clip\"><rect x=\"([-0-9.]+)\" y=\"([-0-9.]+)\" width=\"([-0-9.]+)\" "
      "height=\"([-0-9.]+)\"");
  std::smatch m;
  if (!std::regex_search(svg, m, re)) return {0, 0, 0, 0};
  return {std::stod(m[1]), std::stod(m[2]), std::stod(m[3]), std::stod(m[4])};
}

// ---- fits to render ---------------------------------------------------------------------

struct Fitted {
  cuem_test::Dataset data;
  cuem::FitResult result;
};

Fitted fit_mixture(CovarianceType type, int K, int D, std::size_t N, std::uint64_t seed, int n_init = 1) {
  const cuem_test::Mixture mix = cuem_test::make_mixture(type, K, D, 4.0, seed);
  Fitted f;
  f.data = cuem_test::sample_mixture(mix, N, seed + 1);
  cuem::FitOptions opt;
  opt.n_components = K;
  opt.covariance_type = type;
  opt.n_init = n_init;
  opt.seed = seed + 2;
  f.result = cuem::fit(f.data.view(), opt);
  return f;
}

cuem::FitResult fit_view(cuem::DataView X, int K, CovarianceType type = CovarianceType::full, int max_iter = 100) {
  cuem::FitOptions opt;
  opt.n_components = K;
  opt.covariance_type = type;
  opt.max_iter = max_iter;
  opt.seed = 5;
  return cuem::fit(X, opt);
}

class SvgReportTypes : public testing::TestWithParam<CovarianceType> {};

TEST_P(SvgReportTypes, TwoEllipsesPerComponentAndOnePointPerSampledRow) {
  SCOPED_TRACE("mixture seed 101, data seed 102, fit seed 103");
  constexpr int K = 3;
  const Fitted f = fit_mixture(GetParam(), K, 3, 400, 101, 2);
  for (Axes axes : {Axes::first_two, Axes::principal}) {
    ReportOptions o;
    o.axes = axes;
    o.max_points = 250;
    o.seed = 7;
    const std::string svg = render_svg(f.result, f.data.view(), o);
    expect_well_formed(svg);
    EXPECT_EQ(count(svg, "<ellipse "), 2u * K);
    EXPECT_EQ(count(svg, "class=\"sigma1\""), static_cast<std::size_t>(K));
    EXPECT_EQ(count(svg, "class=\"sigma2\""), static_cast<std::size_t>(K));
    EXPECT_EQ(count(svg, "<circle "), 250u);
    EXPECT_EQ(count(svg, "<polyline "), 2u) << "one trace line per restart";
    EXPECT_NE(svg.find("A random sample of 250 of 400"), std::string::npos);
    EXPECT_NE(svg.find(axes == Axes::principal ? "PC1 (" : "feature 1"), std::string::npos);
  }
}

INSTANTIATE_TEST_SUITE_P(AllTypes, SvgReportTypes, testing::ValuesIn(cuem_test::all_covariance_types()),
                         [](const testing::TestParamInfo<CovarianceType>& info) { return cuem::to_string(info.param); });

struct DrawnEllipse {
  int sigma;
  double cx, cy, rx, ry, angle_degrees;
};

std::vector<DrawnEllipse> ellipses_of(const std::string& svg) {
  static const std::regex re(
      "<ellipse class=\"sigma([12])\" cx=\"([-0-9.]+)\" cy=\"([-0-9.]+)\" rx=\"([-0-9.]+)\" ry=\"([-0-9.]+)\" "
      "transform=\"rotate\\(([-0-9.]+) ");
  std::vector<DrawnEllipse> out;
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), re); it != std::sregex_iterator(); ++it) {
    const std::smatch& m = *it;
    out.push_back({std::stoi(m[1]), std::stod(m[2]), std::stod(m[3]), std::stod(m[4]), std::stod(m[5]),
                   std::stod(m[6])});
  }
  return out;
}

// The drawn ellipses are the projected covariances P Sigma_k P^T carried to pixels. The
// pixel scale is recovered from the ellipse centres (the projected means of two
// components); each ellipse's R diag(rx^2, ry^2) R^T must then equal S (P Sigma_k P^T) S
// with S = diag(sx, -sy), for r = 1 and, with 2^2 the factor, r = 2.
TEST(SvgReport, EllipsesAreTheProjectedCovariances) {
  for (CovarianceType type : cuem_test::all_covariance_types()) {
    for (Axes axes : {Axes::first_two, Axes::principal}) {
      SCOPED_TRACE(std::string(cuem::to_string(type)) + (axes == Axes::principal ? ", principal" : ", first two"));
      constexpr int K = 3, D = 3;
      const Fitted f = fit_mixture(type, K, D, 900, 241);
      ReportOptions o;
      o.axes = axes;
      const std::string svg = render_svg(f.result, f.data.view(), o);
      const std::vector<DrawnEllipse> drawn = ellipses_of(svg);
      ASSERT_EQ(drawn.size(), 2u * K);

      std::vector<double> P(2 * D, 0.0);  // the projection, rows as the report's
      if (axes == Axes::principal) {
        P = cuem::report::detail::principal_axes(f.data.view(), 0).axes;
      } else {
        P[0] = 1;
        P[D + 1] = 1;
      }
      const cuem::Model& m = f.result.model;
      std::vector<double> u(K), v(K);  // projected means
      std::vector<cuem_test::Matrix> C(K);
      for (int k = 0; k < K; ++k) {
        const cuem_test::Matrix S = cuem_test::full_covariance(m, k);
        u[k] = v[k] = 0;
        C[k].assign(4, 0.0);
        for (int i = 0; i < D; ++i) {
          u[k] += P[i] * m.means[k * D + i];
          v[k] += P[D + i] * m.means[k * D + i];
          for (int j = 0; j < D; ++j)
            for (int a = 0; a < 2; ++a)
              for (int b = 0; b < 2; ++b) C[k][a * 2 + b] += P[a * D + i] * S[i * D + j] * P[b * D + j];
        }
      }
      // Ellipses come in pairs per component: 2 sigma, then 1 sigma.
      const auto centre = [&](int k) { return drawn[2 * k + 1]; };
      int ka = 0, kb = 1;  // the pair of means farthest apart in u and in v
      for (int a = 0; a < K; ++a)
        for (int b = 0; b < K; ++b)
          if (std::fabs(u[a] - u[b]) > std::fabs(u[ka] - u[kb])) ka = a, kb = b;
      const double sx = (centre(kb).cx - centre(ka).cx) / (u[kb] - u[ka]);
      ka = 0, kb = 1;
      for (int a = 0; a < K; ++a)
        for (int b = 0; b < K; ++b)
          if (std::fabs(v[a] - v[b]) > std::fabs(v[ka] - v[kb])) ka = a, kb = b;
      const double sy = -(centre(kb).cy - centre(ka).cy) / (v[kb] - v[ka]);
      ASSERT_GT(sx, 0);
      ASSERT_GT(sy, 0);
      for (int k = 0; k < K; ++k) {
        for (int e = 0; e < 2; ++e) {
          const DrawnEllipse& d = drawn[2 * k + e];
          EXPECT_EQ(d.sigma, 2 - e);
          const double t = d.angle_degrees * cuem_test::kPi / 180, c = std::cos(t), s = std::sin(t);
          const double rx2 = d.rx * d.rx, ry2 = d.ry * d.ry, r2 = d.sigma * d.sigma;
          const double got[3] = {c * c * rx2 + s * s * ry2, c * s * (rx2 - ry2), s * s * rx2 + c * c * ry2};
          const double want[3] = {r2 * sx * sx * C[k][0], -r2 * sx * sy * C[k][1], r2 * sy * sy * C[k][3]};
          const double scale = std::max({std::fabs(want[0]), std::fabs(want[2]), 1.0});
          for (int i = 0; i < 3; ++i)
            EXPECT_NEAR(got[i], want[i], 0.02 * scale) << "component " << k << ", sigma " << d.sigma << ", entry " << i;
        }
      }
    }
  }
}

TEST(SvgReport, DrawsEveryPointWhenThereAreFewerThanMaxPoints) {
  const Fitted f = fit_mixture(CovarianceType::full, 2, 2, 150, 111);
  const std::string svg = render_svg(f.result, f.data.view(), ReportOptions{});
  expect_well_formed(svg);
  EXPECT_EQ(count(svg, "<circle "), 150u);
  EXPECT_EQ(count(svg, "<ellipse "), 4u);
  EXPECT_NE(svg.find("All 150 points"), std::string::npos);
}

TEST(SvgReport, DeterministicForASeed) {
  const Fitted f = fit_mixture(CovarianceType::diag, 3, 4, 600, 121, 3);
  ReportOptions o;
  o.max_points = 200;
  o.seed = 11;
  const std::string a = render_svg(f.result, f.data.view(), o);
  const std::string b = render_svg(f.result, f.data.view(), o);
  EXPECT_EQ(a, b);
  o.seed = 12;
  const std::string c = render_svg(f.result, f.data.view(), o);
  EXPECT_NE(a, c) << "another seed draws another sample";
  EXPECT_EQ(count(c, "<circle "), 200u);
  o.axes = Axes::principal;
  EXPECT_EQ(render_svg(f.result, f.data.view(), o), render_svg(f.result, f.data.view(), o));
}

TEST(SvgReport, OneFeatureShowsAHistogramWithTheFittedDensities) {
  constexpr int K = 2;
  const Fitted f = fit_mixture(CovarianceType::full, K, 1, 500, 131);
  ReportOptions o;
  o.feature_names = {"height"};
  const std::string svg = render_svg(f.result, f.data.view(), o);
  expect_well_formed(svg);
  EXPECT_NE(svg.find("class=\"histogram\""), std::string::npos);
  EXPECT_EQ(count(svg, "<ellipse "), 0u);
  EXPECT_EQ(count(svg, "<circle "), 0u);
  // The histogram's bars (Rice's rule: ceil(2 * 500^(1/3)) = 16), the mixture and one
  // dashed curve per component.
  const std::size_t bars_begin = svg.find("class=\"histogram\"");
  const std::size_t bars_end = svg.find("</g>", bars_begin);
  EXPECT_EQ(count(svg.substr(bars_begin, bars_end - bars_begin), "<rect "), 16u);
  EXPECT_NE(svg.find("(16 bins)"), std::string::npos);
  EXPECT_EQ(count(svg, "stroke-dasharray=\"6 3\""), static_cast<std::size_t>(K));
  EXPECT_NE(svg.find(">height</text>"), std::string::npos);
  for (CovarianceType type : cuem_test::all_covariance_types()) {
    const Fitted g = fit_mixture(type, 3, 1, 300, 132);
    expect_well_formed(render_svg(g.result, g.data.view(), o));
  }
}

// Six points at +-a e1, +-b e2, +-c e3 in a rotated frame: the covariance has
// eigenvalues a^2/3, b^2/3, c^2/3; with a^2 : b^2 : c^2 = 6 : 3 : 1 the first two
// principal axes carry 60% and 30% of the variance, along R e1 and R e2.
TEST(SvgReport, PrincipalAxesVarianceMatchesAHandComputation) {
  const double a = std::sqrt(6.0), b = std::sqrt(3.0), c = 1.0;
  // R: rotation by 30 degrees about z, then by 45 degrees about x.
  const double c1 = std::cos(cuem_test::kPi / 6), s1 = std::sin(cuem_test::kPi / 6);
  const double c2 = std::cos(cuem_test::kPi / 4), s2 = std::sin(cuem_test::kPi / 4);
  const cuem_test::Matrix Rz = {c1, -s1, 0, s1, c1, 0, 0, 0, 1};
  const cuem_test::Matrix Rx = {1, 0, 0, 0, c2, -s2, 0, s2, c2};
  const cuem_test::Matrix R = cuem_test::matmul(Rx, Rz, 3);
  const double offset[3] = {10.0, -4.0, 2.5};  // the mean is removed before projecting
  std::vector<double> X;
  for (int axis = 0; axis < 3; ++axis)
    for (double sign : {1.0, -1.0}) {
      const double len = axis == 0 ? a : axis == 1 ? b : c;
      for (int i = 0; i < 3; ++i) X.push_back(offset[i] + sign * len * R[i * 3 + axis]);
    }
  const cuem::DataView view(X.data(), 6, 3);

  const auto pa = cuem::report::detail::principal_axes(view, 0);
  EXPECT_NEAR(pa.fraction[0], 0.6, 1e-12);
  EXPECT_NEAR(pa.fraction[1], 0.3, 1e-12);
  for (int k = 0; k < 2; ++k) {
    double dot = 0;
    for (int i = 0; i < 3; ++i) dot += pa.axes[k * 3 + i] * R[i * 3 + k];
    EXPECT_NEAR(std::fabs(dot), 1.0, 1e-12) << "axis " << k;
  }
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(pa.mean[i], offset[i], 1e-12);

  ReportOptions o;
  o.axes = Axes::principal;
  const std::string svg = render_svg(fit_view(view, 1), view, o);
  expect_well_formed(svg);
  EXPECT_NE(svg.find("PC1 (60.0% of variance)"), std::string::npos);
  EXPECT_NE(svg.find("PC2 (30.0% of variance)"), std::string::npos);
  EXPECT_EQ(count(svg, "<circle "), 6u);
}

TEST(SvgReport, FeatureNamesLabelTheAxesAndTextIsEscaped) {
  const Fitted f = fit_mixture(CovarianceType::tied, 2, 3, 200, 141);
  ReportOptions o;
  o.title = "runs/a<b & \"c\" 'd'>.csv";
  o.feature_names = {"x<y", "p&q\x01\x1f", "bad \xff\xfe utf-8 \xc3\xa9"};
  const std::string svg = render_svg(f.result, f.data.view(), o);
  expect_well_formed(svg);
  EXPECT_NE(svg.find("runs/a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;.csv"), std::string::npos);
  EXPECT_EQ(svg.find("a<b"), std::string::npos);
  EXPECT_NE(svg.find(">x&lt;y</text>"), std::string::npos);
  EXPECT_NE(svg.find(">p&amp;q</text>"), std::string::npos);
  EXPECT_EQ(cuem::report::detail::xml_escape("bad \xff\xfe utf-8 \xc3\xa9"),
            "bad \xEF\xBF\xBD\xEF\xBF\xBD utf-8 \xc3\xa9");
  EXPECT_EQ(cuem::report::detail::xml_escape("\xed\xa0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD")
      << "a UTF-16 surrogate is not a character";
}

TEST(SvgReport, DegenerateInputsStayFiniteAndWellFormed) {
  // A trace of one iteration.
  {
    const Fitted f = fit_mixture(CovarianceType::full, 2, 2, 120, 151);
    cuem::FitOptions opt;
    opt.n_components = 2;
    opt.max_iter = 1;
    const cuem::FitResult r = cuem::fit(f.data.view(), opt);
    ASSERT_EQ(r.trace.size(), 1u);
    const std::string svg = render_svg(r, f.data.view(), ReportOptions{});
    expect_well_formed(svg);
    EXPECT_NE(svg.find("Not converged"), std::string::npos);
    EXPECT_NE(svg.find("class=\"trace\""), std::string::npos);
  }
  // Identical points, in 2-D and 1-D, on both projections.
  for (std::size_t D : {1u, 2u, 5u}) {
    std::vector<double> X(40 * D, 3.25);
    const cuem::DataView view(X.data(), 40, D);
    const cuem::FitResult r = fit_view(view, 1);
    for (Axes axes : {Axes::first_two, Axes::principal}) {
      ReportOptions o;
      o.axes = axes;
      const std::string svg = render_svg(r, view, o);
      SCOPED_TRACE("identical points, D = " + std::to_string(D));
      expect_well_formed(svg);
      if (D >= 2 && axes == Axes::principal) {
        EXPECT_NE(svg.find("(the data has no variance)"), std::string::npos);
      }
    }
  }
  // A constant feature, and features on huge and tiny scales.
  for (double scale : {1.0, 1e9, 1e-9, 1e-300 * 1e-8}) {
    const Fitted f = fit_mixture(CovarianceType::diag, 2, 3, 300, 152);
    std::vector<double> X = f.data.x;
    for (std::size_t i = 0; i < f.data.n; ++i) {
      X[i * 3 + 1] = 7.0;  // constant
      X[i * 3 + 0] *= scale;
      X[i * 3 + 2] *= scale;
    }
    const cuem::DataView view(X.data(), f.data.n, 3);
    cuem::FitResult r;
    try {
      r = fit_view(view, 2, CovarianceType::diag);
    } catch (const cuem::NumericalError&) {
      continue;  // a scale the fit itself cannot take is not the report's concern
    }
    for (Axes axes : {Axes::first_two, Axes::principal}) {
      ReportOptions o;
      o.axes = axes;
      o.feature_names = {"scaled", "constant", "also scaled"};
      const std::string svg = render_svg(r, view, o);
      SCOPED_TRACE("scale " + std::to_string(scale));
      expect_well_formed(svg);
      if (scale == 1e9 && axes == Axes::first_two) {
        EXPECT_NE(svg.find("scaled (\u00d710\u2079)"), std::string::npos) << "a power of ten in the axis title";
      }
    }
  }
  // A result without a trace.
  {
    const Fitted f = fit_mixture(CovarianceType::spherical, 2, 2, 100, 153);
    cuem::FitResult r = f.result;
    r.trace.clear();
    const std::string svg = render_svg(r, f.data.view(), ReportOptions{});
    expect_well_formed(svg);
    EXPECT_NE(svg.find("no trace recorded"), std::string::npos);
  }
}

TEST(SvgReport, ManyComponentsCycleThePaletteAndTheLegendStaysInside) {
  constexpr int K = 22;
  const Fitted f = fit_mixture(CovarianceType::spherical, K, 2, 2200, 161);
  ReportOptions o;
  o.max_points = 1000;
  const std::string svg = render_svg(f.result, f.data.view(), o);
  expect_well_formed(svg);
  EXPECT_EQ(count(svg, "<ellipse "), 2u * K);
  EXPECT_EQ(count(svg, "<circle "), 1000u);
  EXPECT_EQ(svg.find("class=\"c10\""), std::string::npos) << "colour classes cycle through 10";
  EXPECT_NE(svg.find("more</text>"), std::string::npos) << "the legend ends with '... and N more'";
  const std::string text = all_text(svg);
  EXPECT_NE(text.find("Colours repeat after 10 components: components 10\u201319 are drawn as rings, and from 20 on "
                      "both colours and marks repeat."),
            std::string::npos)
      << text;
}

// The first ten components get ten clearly different colours (no two closer than 50 in
// RGB, 0-255 a channel); components 10 to 19 reuse them as rings, and the caption says so.
TEST(SvgReport, TenDistinctColoursThenRings) {
  const Fitted f = fit_mixture(CovarianceType::spherical, 10, 2, 1000, 163);
  const std::string svg = render_svg(f.result, f.data.view(), ReportOptions{});
  expect_well_formed(svg);
  std::vector<int> rgb;
  for (int k = 0; k < 10; ++k) {
    const std::string key = ".c" + std::to_string(k) + "{fill:#";
    const std::size_t at = svg.find(key);
    ASSERT_NE(at, std::string::npos) << "colour class " << k;
    const std::string hex = svg.substr(at + key.size(), 6);
    for (int i = 0; i < 3; ++i) rgb.push_back(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
  }
  for (int a = 0; a < 10; ++a)
    for (int b = a + 1; b < 10; ++b) {
      double d2 = 0;
      for (int i = 0; i < 3; ++i) d2 += std::pow(rgb[3 * a + i] - rgb[3 * b + i], 2);
      EXPECT_GT(std::sqrt(d2), 50.0) << "colours " << a << " and " << b;
    }
  for (int k = 0; k < 10; ++k)
    EXPECT_NE(svg.find("class=\"c" + std::to_string(k) + "\""), std::string::npos) << "a point of component " << k;
  EXPECT_EQ(svg.find(".r0{"), std::string::npos) << "no rings for K <= 10";
  EXPECT_EQ(svg.find("Colours repeat"), std::string::npos);

  const Fitted g = fit_mixture(CovarianceType::spherical, 13, 2, 1300, 164);
  const std::string many = render_svg(g.result, g.data.view(), ReportOptions{});
  expect_well_formed(many);
  EXPECT_NE(many.find(".r0{fill:none;stroke:#"), std::string::npos);
  const std::vector<int> labels = cuem::predict(g.result.model, g.data.view());
  for (int k : labels)
    if (k >= 10) {
      EXPECT_NE(many.find("class=\"r" + std::to_string(k - 10) + "\""), std::string::npos) << "component " << k;
    }
  EXPECT_NE(all_text(many).find("Colours repeat after 10 components: components 10 and up are drawn as rings."),
            std::string::npos);
  EXPECT_NE(many.find(">12  weight"), std::string::npos) << "the legend closes up to list all 13";
  // D == 1: the eleventh component's curve is dotted, not dashed like the first's.
  const Fitted h = fit_mixture(CovarianceType::full, 11, 1, 1100, 165);
  const std::string hist = render_svg(h.result, h.data.view(), ReportOptions{});
  expect_well_formed(hist);
  EXPECT_EQ(count(hist, "stroke-dasharray=\"6 3\""), 10u);
  EXPECT_EQ(count(hist, "stroke-dasharray=\"1.5 2.5\""), 1u);
  EXPECT_NE(all_text(hist).find("components 10 and up are drawn dotted."), std::string::npos);
}

// ---- bug cases: offsets, flat traces, mixed scales ------------------------------------

// Two unit clusters shifted far from zero: each axis's ticks read differently, relative to
// an offset named in the axis title, and the principal axes (centred) need none.
TEST(SvgReport, OffsetDataGetsDistinctTickLabels) {
  for (double shift : {1e8, 1e12}) {
    SCOPED_TRACE("shift " + std::to_string(shift) + ", data seed 271");
    cuem_test::Rng rng(271);
    cuem_test::Dataset d;
    d.n = 300;
    d.d = 2;
    for (std::size_t i = 0; i < d.n; ++i)
      for (int j = 0; j < 2; ++j) d.x.push_back(shift + rng.normal() + 5.0 * static_cast<double>(i % 2));
    const cuem::FitResult r = fit_view(d.view(), 2);
    const std::string power = shift == 1e8 ? "10\u2078" : "10\u00b9\u00b2";

    const std::string svg = render_svg(r, d.view(), ReportOptions{});
    expect_well_formed(svg);
    const AxisText t = axis_text(svg, true);
    expect_distinct(t.x_labels, "x ticks");
    expect_distinct(t.y_labels, "y ticks");
    EXPECT_EQ(t.x_title, "feature 1 \u2212 " + power);
    EXPECT_EQ(t.y_title, "feature 2 \u2212 " + power);
    for (const auto* labels : {&t.x_labels, &t.y_labels})
      for (const std::string& l : *labels) {
        EXPECT_GT(label_value(l), -10.0) << l;
        EXPECT_LT(label_value(l), 20.0) << l;
      }

    ReportOptions o;
    o.axes = Axes::principal;
    const AxisText pc = axis_text(render_svg(r, d.view(), o), true);
    expect_distinct(pc.x_labels, "PC1 ticks");
    expect_distinct(pc.y_labels, "PC2 ticks");
    EXPECT_EQ(pc.x_title.find("\u2212"), std::string::npos) << pc.x_title;
  }
}

// The note that early iterations lie below the plot is made only when they do: a trace
// whose later iterations are all equal gets an axis band around them that may hold the
// first one (the tester's case: -16.81349 then -16.8133).
TEST(SvgReport, TraceNoteOnlyForIterationsOutsideTheAxis) {
  const Fitted f = fit_mixture(CovarianceType::full, 2, 2, 200, 281);
  const auto with_trace = [&](const std::vector<double>& values) {
    cuem::FitResult r = f.result;
    r.trace.clear();
    for (std::size_t i = 0; i < values.size(); ++i) r.trace.push_back({0, static_cast<int>(i + 1), values[i], 0.0});
    r.n_iter = static_cast<int>(values.size());
    r.lower_bound = values.back();
    r.best_init = 0;
    return render_svg(r, f.data.view(), ReportOptions{});
  };
  for (const std::vector<double>& inside : {std::vector<double>{-16.81349, -16.8133},
                                            std::vector<double>{-16.9, -16.8133, -16.8133},
                                            std::vector<double>{-3.0, -2.0, -1.9, -1.85}}) {
    SCOPED_TRACE("first iteration " + std::to_string(inside.front()));
    const std::string svg = with_trace(inside);
    expect_well_formed(svg);
    EXPECT_EQ(all_text(svg).find("below the plot"), std::string::npos);
    expect_distinct(axis_text(svg, false).y_labels, "trace y ticks");
  }
  // Far below a climb that matters: left out, and said to be.
  const std::string svg = with_trace({-50.0, -2.0, -1.9, -1.85});
  EXPECT_NE(all_text(svg).find("Iteration 1 (at \u221250.0) lies below the plot."), std::string::npos);
  const AxisText t = axis_text(svg, false);
  ASSERT_FALSE(t.y_labels.empty());
  EXPECT_EQ(t.y_title, "mean log-likelihood per point");
  for (const std::string& l : t.y_labels) EXPECT_GT(label_value(l), -2.2) << "the axis is the climb's";
}

// x0 in units of 1e9, x1 in units of 1e-9, two clusters.
cuem_test::Dataset mixed_scale_data() {
  cuem_test::Rng rng(291);
  cuem_test::Dataset d;
  d.n = 300;
  d.d = 2;
  for (std::size_t i = 0; i < d.n; ++i) {
    const double c = 5.0 * static_cast<double>(i % 2);
    d.x.push_back((rng.normal() + c) * 1e9);
    d.x.push_back((rng.normal() + 0.5 * c) * 1e-9);
  }
  return d;
}

// Covariances of 1e18 and 1e-18 on one plot: the ellipses are drawn in pixels, so they
// come out as the round ellipses they are there, inside the plot rectangle.
TEST(SvgReport, MixedScalesGiveProperEllipsesInsideThePlot) {
  const cuem_test::Dataset d = mixed_scale_data();
  cuem::FitOptions opt;
  opt.n_components = 2;
  opt.seed = 5;
  opt.reg_covar = 0.0;  // the covariances are the data's own
  const cuem::FitResult r = cuem::fit(d.view(), opt);
  for (Axes axes : {Axes::first_two, Axes::principal}) {
    SCOPED_TRACE(axes == Axes::principal ? "principal" : "first two");
    ReportOptions o;
    o.axes = axes;
    const std::string svg = render_svg(r, d.view(), o);
    expect_well_formed(svg);
    const Rect plot = scatter_rect(svg);
    ASSERT_GT(plot.w, 100);
    ASSERT_GT(plot.h, 100);
    const std::vector<DrawnEllipse> drawn = ellipses_of(svg);
    ASSERT_EQ(drawn.size(), 4u);
    for (const DrawnEllipse& e : drawn) {
      const double t = e.angle_degrees * cuem_test::kPi / 180, c = std::cos(t), s = std::sin(t);
      const double hx = std::sqrt(e.rx * e.rx * c * c + e.ry * e.ry * s * s);
      const double hy = std::sqrt(e.rx * e.rx * s * s + e.ry * e.ry * c * c);
      EXPECT_GT(std::min(e.rx, e.ry), 5.0) << "a visible ellipse, not a line";
      EXPECT_LT(std::max(e.rx, e.ry), 4.0 * std::min(e.rx, e.ry)) << "round clusters, roundish ellipses";
      EXPECT_GE(e.cx - hx, plot.x - 1);
      EXPECT_LE(e.cx + hx, plot.x + plot.w + 1);
      EXPECT_GE(e.cy - hy, plot.y - 1);
      EXPECT_LE(e.cy + hy, plot.y + plot.h + 1);
    }
    EXPECT_EQ(all_text(svg).find("only their sides show"), std::string::npos);
  }
}

// With the default reg_covar of 1e-6, x1's variance (1e-18) is swamped and each 1-sigma
// contour is some 10^5 plot heights tall: only its sides cross the plot. They are drawn
// under the plot's clip path, and the caption says what is seen and why.
TEST(SvgReport, EllipsesFarTallerThanThePlotAreClippedAndExplained) {
  const cuem_test::Dataset d = mixed_scale_data();
  const cuem::FitResult r = fit_view(d.view(), 2);
  const std::string svg = render_svg(r, d.view(), ReportOptions{});
  expect_well_formed(svg);
  const std::size_t clip = svg.find("<g clip-path=\"url(#cuem-scatter-clip)\">");
  ASSERT_NE(clip, std::string::npos);
  EXPECT_LT(clip, svg.find("<ellipse "));
  EXPECT_LT(svg.rfind("<ellipse "), svg.find("class=\"means\""));
  const std::string text = all_text(svg);
  EXPECT_NE(text.find("The ellipses of components 0 and 1 are far taller than the plot (1\u03c3 along feature 2 up "
                      "to 0.00100"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("reg_covar"), std::string::npos);
  EXPECT_EQ(text.find("below the plot"), std::string::npos) << "a two-iteration flat trace";
}

TEST(SvgReport, NoPointsWhenMaxPointsIsZero) {
  const Fitted f = fit_mixture(CovarianceType::full, 2, 2, 100, 171);
  ReportOptions o;
  o.max_points = 0;
  const std::string svg = render_svg(f.result, f.data.view(), o);
  expect_well_formed(svg);
  EXPECT_EQ(count(svg, "<circle "), 0u);
  EXPECT_EQ(count(svg, "<ellipse "), 4u);
}

TEST(SvgReport, RestartsAndWarningsAreDescribed) {
  const Fitted f = fit_mixture(CovarianceType::full, 3, 2, 300, 181, 4);
  cuem::FitResult r = f.result;
  r.n_decreases = 2;
  r.max_decrease = 3.5e-7;
  const std::string svg = render_svg(r, f.data.view(), ReportOptions{});
  expect_well_formed(svg);
  EXPECT_EQ(count(svg, "<polyline "), 4u);
  EXPECT_NE(svg.find("Best of 4 restarts"), std::string::npos);
  EXPECT_NE(svg.find("best (restart " + std::to_string(r.best_init) + ")"), std::string::npos);
  // Captions wrap, so the phrases are looked for one by one.
  EXPECT_NE(svg.find("fell 2 times"), std::string::npos);
  EXPECT_NE(svg.find("3.50\u00d710\u207b\u2077)."), std::string::npos);
}

TEST(SvgReport, RejectsDataThatDoesNotMatchTheModel) {
  const Fitted f = fit_mixture(CovarianceType::full, 2, 3, 100, 191);
  const cuem::DataView wrong(f.data.x.data(), 150, 2);
  EXPECT_THROW(render_svg(f.result, wrong, ReportOptions{}), cuem::DataError);
  std::vector<double> X = f.data.x;
  X[5] = std::nan("");
  EXPECT_THROW(render_svg(f.result, cuem::DataView(X.data(), 100, 3), ReportOptions{}), cuem::DataError);
}

// Where xmllint is installed, a real parser agrees.
TEST(SvgReport, XmllintAcceptsTheDocument) {
  if (std::system("xmllint --version > /dev/null 2>&1") != 0) GTEST_SKIP() << "xmllint is not installed";
  const Fitted f = fit_mixture(CovarianceType::full, 3, 3, 300, 201);
  ReportOptions o;
  o.axes = Axes::principal;
  o.title = "a & b <c>";
  const std::string path = testing::TempDir() + "cuem_test_report.svg";
  std::ofstream(path) << render_svg(f.result, f.data.view(), o);
  EXPECT_EQ(std::system(("xmllint --noout " + path).c_str()), 0);
  std::remove(path.c_str());
}

// ---- helpers ----------------------------------------------------------------------------

using cuem::report::detail::nice_ticks;

TEST(SvgReportTicks, NiceStepsAndLabels) {
  auto t = nice_ticks(0.0, 1.0, 5, false);
  EXPECT_EQ(t.labels, (std::vector<std::string>{"0.0", "0.2", "0.4", "0.6", "0.8", "1.0"}));
  EXPECT_EQ(t.exponent, 0);
  t = nice_ticks(-1.34, -1.19, 6, false);
  EXPECT_EQ(t.labels.front(), "\u22121.325");  // a true minus sign; step 0.025
  EXPECT_EQ(t.labels.back(), "\u22121.200");
  t = nice_ticks(0.5, 1.5, 8, true);
  EXPECT_EQ(t.labels, (std::vector<std::string>{"1"}));
  t = nice_ticks(0.0, 100.0, 8, true);
  EXPECT_EQ(t.labels, (std::vector<std::string>{"0", "20", "40", "60", "80", "100"}));
  t = nice_ticks(0.0, 3.0, 8, true);
  EXPECT_EQ(t.labels, (std::vector<std::string>{"0", "1", "2", "3"})) << "no fractional iterations";
  t = nice_ticks(1.2e9, 1.9e9, 6, false);
  EXPECT_EQ(t.exponent, 9);
  EXPECT_EQ(t.labels.front(), "1.2");
  EXPECT_EQ(cuem::report::detail::exponent_suffix(t.exponent), " (\u00d710\u2079)");
  t = nice_ticks(1e-9, 5e-9, 4, false);
  EXPECT_EQ(t.exponent, -9);
  EXPECT_EQ(t.labels.front(), "1");
  EXPECT_EQ(cuem::report::detail::exponent_suffix(-12), " (\u00d710\u207b\u00b9\u00b2)");
  t = nice_ticks(-0.3, 0.3, 6, false);
  EXPECT_NE(std::find(t.labels.begin(), t.labels.end(), "0.0"), t.labels.end()) << "zero is never '-0.0'";
  EXPECT_EQ(t.offset, 0.0);
}

// A narrow range far from zero is labelled relative to a round offset that the axis
// title names (matplotlib's offset notation).
TEST(SvgReportTicks, NarrowRangesFarFromZeroUseAnOffset) {
  using cuem::report::detail::axis_suffix;
  auto t = nice_ticks(1e12 - 3, 1e12 + 8, 6, false);
  EXPECT_EQ(t.offset, 1e12);
  EXPECT_EQ(t.exponent, 0);
  EXPECT_EQ(t.labels, (std::vector<std::string>{"\u22122", "0", "2", "4", "6", "8"}));
  EXPECT_EQ(axis_suffix(t), " \u2212 10\u00b9\u00b2");
  t = nice_ticks(-16.81350, -16.81329, 6, false);  // a flat log-likelihood trace
  EXPECT_EQ(t.offset, -16.813);
  EXPECT_EQ(t.exponent, -4);
  EXPECT_EQ(axis_suffix(t), " + 16.813 (\u00d710\u207b\u2074)");
  t = nice_ticks(1234567890.0 - 0.004, 1234567890.0 + 0.006, 5, false);
  EXPECT_EQ(axis_suffix(t), " \u2212 1.23456789\u00d710\u2079");
  EXPECT_EQ(t.labels.front(), "\u22120.004");
  t = nice_ticks(1000.0, 1010.0, 5, false);
  EXPECT_EQ(t.offset, 0.0) << "four-digit labels need no offset";
  EXPECT_EQ(axis_suffix(t), "");
  EXPECT_EQ(nice_ticks(0.0, 10.0, 5, true).offset, 0.0) << "iteration counts never get one";
}

// Over ranges of every magnitude and every width down to 1e-11 of it, the labels are
// short (at most ten characters), all different, and read back (label x 10^exponent + offset) as the tick values.
TEST(SvgReportTicks, LabelsReadBackAsTheValuesAtEveryScale) {
  for (int p = -12; p <= 15; p += 3) {
    for (int q = 1; q <= 11; ++q) {
      for (double sign : {1.0, -1.0}) {
        const double centre = sign * 3.7 * std::pow(10.0, p), span = 2.3 * std::pow(10.0, p - q);
        const auto t = nice_ticks(centre - 0.4 * span, centre + 0.6 * span, 6, false);
        SCOPED_TRACE("centre " + std::to_string(centre) + ", span 1e" + std::to_string(p - q));
        ASSERT_GE(t.values.size(), 3u);
        EXPECT_EQ(std::set<std::string>(t.labels.begin(), t.labels.end()).size(), t.labels.size());
        const double step = t.values[1] - t.values[0];
        for (std::size_t i = 0; i < t.values.size(); ++i) {
          std::size_t points = 0;
          for (unsigned char c : t.labels[i]) points += (c & 0xC0) != 0x80;
          EXPECT_LE(points, 10u) << t.labels[i];
          const double back = label_value(t.labels[i]) * std::pow(10.0, t.exponent) + t.offset;
          EXPECT_NEAR(back, t.values[i], 1e-3 * step + 1e-15 * std::fabs(centre)) << t.labels[i];
        }
      }
    }
  }
}

TEST(SvgReportTicks, WidenRangeGivesEveryRangeAPositiveWidth) {
  double lo = 3, hi = 3;
  cuem::report::detail::widen_range(lo, hi, 0.0);
  EXPECT_DOUBLE_EQ(lo, 2.85);
  EXPECT_DOUBLE_EQ(hi, 3.15);
  lo = hi = 0;
  cuem::report::detail::widen_range(lo, hi, 0.1);
  EXPECT_DOUBLE_EQ(lo, -0.6);
  EXPECT_DOUBLE_EQ(hi, 0.6);
  lo = 1e15;
  hi = 1e15 + 0.125;  // below the resolution that matters at this magnitude
  cuem::report::detail::widen_range(lo, hi, 0.0);
  EXPECT_GT(hi - lo, 1e12);
  lo = 2, hi = 4;
  cuem::report::detail::widen_range(lo, hi, 0.25);
  EXPECT_DOUBLE_EQ(lo, 1.5);
  EXPECT_DOUBLE_EQ(hi, 4.5);
}

TEST(SvgReportEigen, JacobiRecoversAKnownDecomposition) {
  cuem_test::Rng rng(211);
  const int n = 6;
  // Q from Gram-Schmidt on random vectors, A = Q^T diag(values) Q.
  cuem_test::Matrix Q(n * n);
  for (double& q : Q) q = rng.normal();
  for (int r = 0; r < n; ++r) {
    for (int p = 0; p < r; ++p) {
      double d = 0;
      for (int i = 0; i < n; ++i) d += Q[r * n + i] * Q[p * n + i];
      for (int i = 0; i < n; ++i) Q[r * n + i] -= d * Q[p * n + i];
    }
    double s = 0;
    for (int i = 0; i < n; ++i) s += Q[r * n + i] * Q[r * n + i];
    for (int i = 0; i < n; ++i) Q[r * n + i] /= std::sqrt(s);
  }
  const std::vector<double> values = {9, 5, 2.5, 1, 0.25, 0};
  std::vector<double> A(n * n, 0.0);
  for (int r = 0; r < n; ++r)
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j) A[i * n + j] += values[r] * Q[r * n + i] * Q[r * n + j];
  std::vector<double> got, vectors;
  cuem::report::detail::jacobi_eigen(A, n, got, vectors);
  for (int r = 0; r < n; ++r) {
    EXPECT_NEAR(got[r], values[r], 1e-12) << "eigenvalue " << r;
    double dot = 0;
    for (int i = 0; i < n; ++i) dot += vectors[r * n + i] * Q[r * n + i];
    EXPECT_NEAR(std::fabs(dot), 1.0, 1e-10) << "eigenvector " << r;
  }
}

TEST(SvgReportEigen, PowerIterationAgreesWithJacobi) {
  cuem_test::Rng rng(221);
  const int n = 40;
  const cuem_test::Matrix A = cuem_test::random_spd(rng, n, 0.1, 10.0);
  std::vector<double> jv, jvec, pv, pvec;
  cuem::report::detail::jacobi_eigen(A, n, jv, jvec);
  cuem::report::detail::power_eigen(A, n, 2, pv, pvec);
  ASSERT_GT(jv[0] - jv[1], 1e-3 * jv[0]) << "the test needs an eigengap";
  ASSERT_GT(jv[1] - jv[2], 1e-3 * jv[0]) << "the test needs an eigengap";
  for (int k = 0; k < 2; ++k) {
    EXPECT_NEAR(pv[k], jv[k], 1e-9 * jv[0]);
    double dot = 0;
    for (int i = 0; i < n; ++i) dot += jvec[k * n + i] * pvec[k * n + i];
    EXPECT_NEAR(std::fabs(dot), 1.0, 1e-7);
  }
}

// Past 256 features the principal axes come from power iteration; the shares still match
// Jacobi on the covariance computed here.
TEST(SvgReportEigen, PrincipalAxesOfWideData) {
  const std::size_t N = 600, D = 300;
  cuem_test::Rng rng(231);
  std::vector<double> X(N * D);
  for (std::size_t i = 0; i < N; ++i)
    for (std::size_t d = 0; d < D; ++d) X[i * D + d] = rng.normal() * (d == 7 ? 6.0 : d == 100 ? 4.0 : 1.0) + 1.0;
  const auto pa = cuem::report::detail::principal_axes(cuem::DataView(X.data(), N, D), 0);
  const cuem_test::Matrix C = cuem_test::biased_covariance(X.data(), N, static_cast<int>(D));
  std::vector<double> values, vectors;
  cuem::report::detail::jacobi_eigen(C, static_cast<int>(D), values, vectors);
  double total = 0;
  for (std::size_t d = 0; d < D; ++d) total += C[d * D + d];
  EXPECT_NEAR(pa.fraction[0], values[0] / total, 1e-9);
  EXPECT_NEAR(pa.fraction[1], values[1] / total, 1e-9);
  EXPECT_GT(std::fabs(pa.axes[7]), 0.9);
  EXPECT_GT(std::fabs(pa.axes[D + 100]), 0.9);
  EXPECT_EQ(pa.rows_used, N);
}

TEST(SvgReportSample, DistinctSortedInRangeAndDeterministic) {
  using cuem::report::detail::sample_rows;
  for (std::size_t N : {1u, 10u, 1000u, 100000u}) {
    for (std::size_t m : {0u, 1u, 7u, 500u, 2000u}) {
      const auto rows = sample_rows(N, m, 42, 1);
      ASSERT_EQ(rows.size(), std::min(N, m));
      EXPECT_TRUE(std::is_sorted(rows.begin(), rows.end()));
      EXPECT_EQ(std::adjacent_find(rows.begin(), rows.end()), rows.end()) << "without replacement";
      if (!rows.empty()) {
        EXPECT_LT(rows.back(), N);
      }
      EXPECT_EQ(rows, sample_rows(N, m, 42, 1));
    }
  }
  EXPECT_NE(sample_rows(100000, 50, 1, 1), sample_rows(100000, 50, 2, 1));
  // Roughly uniform: the mean index of a large sample is near the middle.
  const auto rows = sample_rows(1000000, 20000, 3, 1);
  double mean = 0;
  for (std::size_t r : rows) mean += static_cast<double>(r);
  EXPECT_NEAR(mean / rows.size(), 500000.0, 10000.0);
}

}  // namespace
