// HTML and inline SVG helpers shared by the evaluation report and the run report (html.h).
#include "conflux/evaluator/html.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace conflux::evaluator::html {

using nlohmann::json;

std::string escape(const std::string& s) {
  std::string o;
  o.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      case '\'': o += "&#39;"; break;
      default: o += c;
    }
  }
  return o;
}

std::string num(double x, int digits) {
  if (!std::isfinite(x)) return "n/a";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, x);
  return buf;
}

double number_or_nan(const json& j, const char* key) {
  return j.is_object() && j.contains(key) && j.at(key).is_number() ? j.at(key).get<double>()
                                                                    : std::nan("");
}

std::string page_begin(const std::string& title) {
  return "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>" + escape(title) +
         "</title><style>body{font-family:sans-serif;max-width:60em;margin:2em auto;color:#222}"
         "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;"
         "vertical-align:top}figure{display:inline-block;margin:1em}"
         "figcaption{font-size:0.9em;color:#555}code,pre{font-size:0.9em}"
         "pre{white-space:pre-wrap;margin:0}.ok{color:#2a7d2a;font-weight:bold}"
         ".bad{color:#c0392b;font-weight:bold}.none{color:#777;font-style:italic}</style></head><body>\n"
         "<h1>" + escape(title) + "</h1>\n";
}

std::string page_end() { return "</body></html>\n"; }

namespace {

constexpr int kW = 420, kH = 260, kPad = 40;

// Tick values for [lo, hi]: a 1/2/5 x 10^k step giving at most 6 intervals.
std::vector<double> ticks(double lo, double hi) {
  const double range = hi - lo;
  if (!(range > 0)) return {lo};
  double step = std::pow(10.0, std::floor(std::log10(range / 5)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (range / (step * m) <= 6) {
      step *= m;
      break;
    }
  std::vector<double> t;
  for (double v = std::ceil(lo / step) * step; v <= hi + step * 1e-9 && t.size() < 12; v += step)
    t.push_back(std::fabs(v) < step * 1e-9 ? 0.0 : v);
  return t;
}

std::string tick_label(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

}  // namespace

std::string reliability_svg(const json& bins, const std::string& caption) {
  std::ostringstream s;
  const double pw = kW - 2 * kPad, ph = kH - 2 * kPad;
  s << "<figure><svg width=\"" << kW << "\" height=\"" << kH << "\" role=\"img\" aria-label=\""
    << escape(caption) << "\">";
  s << "<rect x=\"" << kPad << "\" y=\"" << kPad << "\" width=\"" << pw << "\" height=\"" << ph
    << "\" fill=\"none\" stroke=\"#999\"/>";
  const double bw = bins.empty() ? pw : pw / static_cast<double>(bins.size());
  for (size_t b = 0; b < bins.size(); ++b) {
    const double acc = number_or_nan(bins[b], "accuracy");
    if (!std::isfinite(acc)) continue;
    const double h = acc * ph;
    const double conf = number_or_nan(bins[b], "confidence");
    s << "<rect x=\"" << kPad + b * bw + 1 << "\" y=\"" << kPad + ph - h << "\" width=\"" << bw - 2
      << "\" height=\"" << h << "\" fill=\"#4a7ab5\"><title>bin " << b << ": accuracy " << num(acc)
      << ", confidence " << num(conf) << ", n = " << bins[b].value("count", 0) << "</title></rect>";
    if (std::isfinite(conf))
      s << "<circle cx=\"" << kPad + (b + 0.5) * bw << "\" cy=\"" << kPad + ph - conf * ph
        << "\" r=\"3\" fill=\"#d9534f\"/>";
  }
  s << "<line x1=\"" << kPad << "\" y1=\"" << kPad + ph << "\" x2=\"" << kPad + pw << "\" y2=\""
    << kPad << "\" stroke=\"#333\" stroke-dasharray=\"4 3\"/>";
  for (double v : {0.0, 0.5, 1.0})
    s << "<text x=\"" << kPad - 4 << "\" y=\"" << kPad + ph - v * ph + 4
      << "\" font-size=\"10\" text-anchor=\"end\">" << tick_label(v) << "</text><text x=\""
      << kPad + v * pw << "\" y=\"" << kPad + ph + 12 << "\" font-size=\"10\" text-anchor=\"middle\">"
      << tick_label(v) << "</text>";
  s << "<text x=\"" << kPad << "\" y=\"" << kH - 10 << "\" font-size=\"11\">confidence 0 → 1 "
    << "(bars: accuracy, dots: mean confidence)</text></svg><figcaption>" << escape(caption)
    << "</figcaption></figure>";
  return s.str();
}

std::string bars_svg(const std::vector<std::pair<std::string, double>>& bars, const std::string& caption,
                     const std::vector<double>& thresholds) {
  double vmax = 0;
  for (const auto& [k, v] : bars)
    if (std::isfinite(v)) vmax = std::max(vmax, std::fabs(v));
  for (double t : thresholds) vmax = std::max(vmax, t * 1.2);
  if (vmax <= 0) vmax = 1;
  const int row = 22, label = 180;
  const int h = static_cast<int>(bars.size()) * row + 30;
  const double pw = kW + 160 - label - 90;
  std::ostringstream s;
  s << "<figure><svg width=\"" << kW + 160 << "\" height=\"" << h << "\" role=\"img\" aria-label=\""
    << escape(caption) << "\">";
  for (size_t i = 0; i < bars.size(); ++i) {
    const double v = bars[i].second;
    const double w = std::isfinite(v) ? std::fabs(v) / vmax * pw : 0;
    const double y = 10 + i * row;
    s << "<text x=\"" << label - 6 << "\" y=\"" << y + 14 << "\" font-size=\"12\" text-anchor=\"end\">"
      << escape(bars[i].first) << "</text>";
    s << "<rect x=\"" << label << "\" y=\"" << y + 3 << "\" width=\"" << w << "\" height=\"" << row - 6
      << "\" fill=\"" << (v < 0 ? "#d9534f" : "#4a7ab5") << "\"/>";
    s << "<text x=\"" << label + w + 4 << "\" y=\"" << y + 14 << "\" font-size=\"11\">"
      << (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 1e15 ? num(v, 0) : num(v))
      << "</text>";
  }
  for (double t : thresholds) {
    const double x = label + t / vmax * pw;
    s << "<line x1=\"" << x << "\" y1=\"5\" x2=\"" << x << "\" y2=\"" << h - 15
      << "\" stroke=\"#e0a000\" stroke-dasharray=\"4 3\"/><text x=\"" << x + 2 << "\" y=\"" << h - 4
      << "\" font-size=\"10\">" << num(t, 2) << "</text>";
  }
  s << "</svg><figcaption>" << escape(caption) << "</figcaption></figure>";
  return s.str();
}

std::string line_chart_svg(const std::vector<Series>& series, const std::string& caption,
                           const std::string& x_label, const std::string& y_label) {
  constexpr int W = 600, H = 320, left = 64, right = 20, top = 34, bottom = 48;
  const double pw = W - left - right, ph = H - top - bottom;
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (const auto& sr : series)
    for (const auto& [x, y] : sr.points)
      if (std::isfinite(x) && std::isfinite(y)) {
        x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
      }
  if (!std::isfinite(x0)) x0 = 0, x1 = 1, y0 = 0, y1 = 1;
  if (x1 <= x0) x1 = x0 + 1;
  if (y1 <= y0) y0 -= 0.5, y1 += 0.5;
  const double ypad = (y1 - y0) * 0.05;
  y0 -= ypad, y1 += ypad;
  auto px = [&](double x) { return left + (x - x0) / (x1 - x0) * pw; };
  auto py = [&](double y) { return top + ph - (y - y0) / (y1 - y0) * ph; };
  std::ostringstream s;
  s << "<figure><svg width=\"" << W << "\" height=\"" << H << "\" role=\"img\" aria-label=\""
    << escape(caption) << "\">";
  s << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << pw << "\" height=\"" << ph
    << "\" fill=\"none\" stroke=\"#999\"/>";
  for (double t : ticks(x0, x1))
    s << "<line x1=\"" << px(t) << "\" y1=\"" << top + ph << "\" x2=\"" << px(t) << "\" y2=\""
      << top + ph + 4 << "\" stroke=\"#333\"/><text x=\"" << px(t) << "\" y=\"" << top + ph + 16
      << "\" font-size=\"10\" text-anchor=\"middle\">" << tick_label(t) << "</text>";
  for (double t : ticks(y0, y1))
    s << "<line x1=\"" << left - 4 << "\" y1=\"" << py(t) << "\" x2=\"" << left + pw << "\" y2=\""
      << py(t) << "\" stroke=\"#eee\"/><text x=\"" << left - 6 << "\" y=\"" << py(t) + 3
      << "\" font-size=\"10\" text-anchor=\"end\">" << tick_label(t) << "</text>";
  s << "<text x=\"" << left + pw / 2 << "\" y=\"" << H - 8 << "\" font-size=\"12\" text-anchor=\"middle\">"
    << escape(x_label) << "</text><text x=\"14\" y=\"" << top + ph / 2
    << "\" font-size=\"12\" text-anchor=\"middle\" transform=\"rotate(-90 14 " << top + ph / 2 << ")\">"
    << escape(y_label) << "</text>";
  double lx = left;
  for (const auto& sr : series) {
    std::ostringstream pts;
    size_t n = 0;
    for (const auto& [x, y] : sr.points)
      if (std::isfinite(x) && std::isfinite(y)) pts << (n++ ? " " : "") << px(x) << "," << py(y);
    s << "<polyline class=\"series\" data-series=\"" << escape(sr.name) << "\" data-points=\"" << n
      << "\" points=\"" << pts.str() << "\" fill=\"none\" stroke=\"" << escape(sr.color)
      << "\" stroke-width=\"1.5\"/>";
    if (sr.markers)
      for (const auto& [x, y] : sr.points)
        if (std::isfinite(x) && std::isfinite(y))
          s << "<circle cx=\"" << px(x) << "\" cy=\"" << py(y) << "\" r=\"3\" fill=\"" << escape(sr.color)
            << "\"><title>" << tick_label(x) << ": " << num(y) << "</title></circle>";
    s << "<rect x=\"" << lx << "\" y=\"10\" width=\"14\" height=\"4\" fill=\"" << escape(sr.color)
      << "\"/><text x=\"" << lx + 18 << "\" y=\"16\" font-size=\"11\">" << escape(sr.name) << "</text>";
    lx += 30 + 7.0 * static_cast<double>(sr.name.size());
  }
  s << "</svg><figcaption>" << escape(caption) << "</figcaption></figure>";
  return s.str();
}

}  // namespace conflux::evaluator::html
