// report.json and report.html (inline SVG charts) for a list of metric results.
//
// Charts are drawn from each Result's detail JSON by metric name: "ece" and "calibration" ->
// reliability diagram (accuracy per confidence bin against the diagonal); "fairness" -> one bar
// per group; "drift" -> PSI per feature with the 0.1 / 0.25 thresholds; "robustness" -> clean vs
// perturbed. Every string placed in HTML is escaped.
#include "conflux/core/error.h"
#include "conflux/evaluator/report.h"

#include <sys/stat.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <sstream>

namespace conflux::evaluator {
namespace {

using nlohmann::json;

std::string esc(const std::string& s) {
  std::string o;
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

std::string num(double x, int digits = 4) {
  if (!std::isfinite(x)) return "n/a";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, x);
  return buf;
}

double get(const json& j, const char* key) {
  return j.contains(key) && j.at(key).is_number() ? j.at(key).get<double>() : std::nan("");
}

constexpr int kW = 420, kH = 260, kPad = 40;

// A reliability diagram: bars of accuracy per bin, the diagonal, mean confidence dots.
std::string reliability_svg(const json& bins, const std::string& caption) {
  std::ostringstream s;
  const double pw = kW - 2 * kPad, ph = kH - 2 * kPad;
  s << "<figure><svg width=\"" << kW << "\" height=\"" << kH << "\" role=\"img\" aria-label=\""
    << esc(caption) << "\">";
  s << "<rect x=\"" << kPad << "\" y=\"" << kPad << "\" width=\"" << pw << "\" height=\"" << ph
    << "\" fill=\"none\" stroke=\"#999\"/>";
  const double bw = pw / static_cast<double>(bins.size());
  for (size_t b = 0; b < bins.size(); ++b) {
    const double acc = get(bins[b], "accuracy");
    if (!std::isfinite(acc)) continue;
    const double h = acc * ph;
    s << "<rect x=\"" << kPad + b * bw + 1 << "\" y=\"" << kPad + ph - h << "\" width=\"" << bw - 2
      << "\" height=\"" << h << "\" fill=\"#4a7ab5\"><title>bin " << b << ": accuracy "
      << num(acc) << ", confidence " << num(get(bins[b], "confidence")) << ", n = "
      << bins[b].value("count", 0) << "</title></rect>";
    const double conf = get(bins[b], "confidence");
    s << "<circle cx=\"" << kPad + (b + 0.5) * bw << "\" cy=\"" << kPad + ph - conf * ph
      << "\" r=\"3\" fill=\"#d9534f\"/>";
  }
  s << "<line x1=\"" << kPad << "\" y1=\"" << kPad + ph << "\" x2=\"" << kPad + pw << "\" y2=\""
    << kPad << "\" stroke=\"#333\" stroke-dasharray=\"4 3\"/>";
  s << "<text x=\"" << kPad << "\" y=\"" << kH - 10 << "\" font-size=\"11\">confidence 0 → 1 "
    << "(bars: accuracy, dots: mean confidence)</text></svg><figcaption>" << esc(caption)
    << "</figcaption></figure>";
  return s.str();
}

// Horizontal bars, with optional vertical threshold lines.
std::string bars_svg(const std::vector<std::pair<std::string, double>>& bars,
                     const std::string& caption, const std::vector<double>& thresholds = {}) {
  double vmax = 0;
  for (const auto& [k, v] : bars)
    if (std::isfinite(v)) vmax = std::max(vmax, std::fabs(v));
  for (double t : thresholds) vmax = std::max(vmax, t * 1.2);
  if (vmax <= 0) vmax = 1;
  const int row = 22, label = 140;
  const int h = static_cast<int>(bars.size()) * row + 30;
  const double pw = kW + 120 - label - 70;
  std::ostringstream s;
  s << "<figure><svg width=\"" << kW + 120 << "\" height=\"" << h << "\" role=\"img\" aria-label=\""
    << esc(caption) << "\">";
  for (size_t i = 0; i < bars.size(); ++i) {
    const double v = bars[i].second;
    const double w = std::isfinite(v) ? std::fabs(v) / vmax * pw : 0;
    const double y = 10 + i * row;
    s << "<text x=\"" << label - 6 << "\" y=\"" << y + 14 << "\" font-size=\"12\" text-anchor=\"end\">"
      << esc(bars[i].first) << "</text>";
    s << "<rect x=\"" << label << "\" y=\"" << y + 3 << "\" width=\"" << w << "\" height=\"" << row - 6
      << "\" fill=\"" << (v < 0 ? "#d9534f" : "#4a7ab5") << "\"/>";
    s << "<text x=\"" << label + w + 4 << "\" y=\"" << y + 14 << "\" font-size=\"11\">" << num(v)
      << "</text>";
  }
  for (double t : thresholds) {
    const double x = label + t / vmax * pw;
    s << "<line x1=\"" << x << "\" y1=\"5\" x2=\"" << x << "\" y2=\"" << h - 15
      << "\" stroke=\"#e0a000\" stroke-dasharray=\"4 3\"/><text x=\"" << x + 2 << "\" y=\""
      << h - 4 << "\" font-size=\"10\">" << num(t, 2) << "</text>";
  }
  s << "</svg><figcaption>" << esc(caption) << "</figcaption></figure>";
  return s.str();
}

std::string charts_for(const Result& r) {
  const json& d = r.detail;
  if (r.metric == "ece" && d.contains("bins")) return reliability_svg(d.at("bins"), "Reliability diagram");
  if (r.metric == "calibration" && d.contains("bins_before"))
    return reliability_svg(d.at("bins_before"), "Reliability before temperature scaling") +
           reliability_svg(d.at("bins_after"), "Reliability after temperature scaling (T = " +
                                                   num(get(d, "temperature")) + ")");
  if (r.metric == "fairness" && d.contains("groups")) {
    std::vector<std::pair<std::string, double>> bars;
    for (const auto& [g, res] : d.at("groups").items()) bars.emplace_back(g, get(res, "value"));
    return bars_svg(bars, "Per-group " + d.value("inner_metric", std::string()) + " (gap " +
                              num(get(d, "gap")) + ")");
  }
  if (r.metric == "drift" && d.contains("features")) {
    std::vector<std::pair<std::string, double>> bars;
    for (const auto& f : d.at("features")) bars.emplace_back(f.value("feature", ""), get(f, "psi"));
    return bars_svg(bars, "PSI per feature (thresholds 0.1 moderate, 0.25 significant)", {0.1, 0.25});
  }
  if (r.metric == "robustness")
    return bars_svg({{"clean", get(d, "clean_value")}, {"perturbed", get(d, "perturbed_value")}},
                    "Robustness: " + d.value("perturbation", std::string()) + " at rate " +
                        num(get(d, "rate"), 3));
  return "";
}

}  // namespace

json Report::to_json() const {
  json j;
  j["format"] = "conflux.eval.report/1";  // bump when the layout changes
  j["title"] = title;
  j["meta"] = meta;
  json rs = json::array();
  for (const auto& r : results) rs.push_back(r.to_json());
  j["results"] = rs;
  return j;
}

std::string render_report_html(const Report& report) {
  std::ostringstream h;
  h << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>" << esc(report.title)
    << "</title><style>body{font-family:sans-serif;max-width:60em;margin:2em auto;color:#222}"
       "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
       "figure{display:inline-block;margin:1em}figcaption{font-size:0.9em;color:#555}"
       "code{font-size:0.9em}</style></head><body>\n";
  h << "<h1>" << esc(report.title) << "</h1>\n";
  if (!report.meta.empty()) {
    h << "<h2>Run</h2><table>";
    for (const auto& [k, v] : report.meta.items())
      h << "<tr><th>" << esc(k) << "</th><td>" << esc(v.is_string() ? v.get<std::string>() : v.dump())
        << "</td></tr>";
    h << "</table>\n";
  }
  h << "<h2>Summary</h2><table><tr><th>metric</th><th>value</th><th>details</th></tr>";
  for (const auto& r : report.results)
    h << "<tr><td>" << esc(r.metric) << "</td><td>" << esc(r.primary) << " = " << num(r.value)
      << "</td><td><code>" << esc(r.line) << "</code></td></tr>";
  h << "</table>\n";
  for (const auto& r : report.results) {
    const std::string charts = charts_for(r);
    if (charts.empty()) continue;
    h << "<h2>" << esc(r.metric) << "</h2>\n" << charts << "\n";
  }
  h << "</body></html>\n";
  return h.str();
}

std::vector<std::string> write_report(const Report& report, const std::string& dir) {
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
    CONFLUX_THROW(IoError, "cannot create report directory '{}': {}", dir, std::strerror(errno));
  const std::string json_path = dir + "/report.json";
  const std::string html_path = dir + "/report.html";
  conflux::write_file_atomic(json_path, report.to_json().dump(2) + "\n");
  conflux::write_file_atomic(html_path, render_report_html(report));
  return {json_path, html_path};
}

}  // namespace conflux::evaluator
