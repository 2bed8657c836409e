// Building blocks for Conflux's self-contained HTML pages (the evaluation's report.html and the
// run report): HTML escaping, number formatting, the page frame with its inline stylesheet, and
// inline SVG charts (reliability diagram, horizontal bars, line chart with axes and legend).
//
// Contract: every string argument is text, not markup, and is escaped before it is placed in the
// page (captions, labels, series names); the returned strings are markup. No external JS, CSS or
// fonts. Non-finite numbers are drawn as gaps and printed as "n/a". Pure functions; thread-safe.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <utility>
#include <vector>

namespace conflux::evaluator::html {

// & < > " ' -> entities; everything else (UTF-8 included) passes through.
std::string escape(const std::string& text);
// Fixed-point with `digits` decimals; "n/a" when not finite.
std::string num(double x, int digits = 4);
// j[key] when it is a number, NaN otherwise (absent, null, another type).
double number_or_nan(const nlohmann::json& j, const char* key);

// "<!DOCTYPE html>...<body><h1>title</h1>" and "</body></html>".
std::string page_begin(const std::string& title);
std::string page_end();

// Accuracy per confidence bin (bars) against the diagonal, mean confidence (dots). `bins` is an
// array of {"accuracy", "confidence", "count", ...}; empty bins (null) are left out.
std::string reliability_svg(const nlohmann::json& bins, const std::string& caption);

// One horizontal bar per (label, value), optional vertical threshold lines.
std::string bars_svg(const std::vector<std::pair<std::string, double>>& bars, const std::string& caption,
                     const std::vector<double>& thresholds = {});

struct Series {
  std::string name;                               // legend text
  std::vector<std::pair<double, double>> points;  // (x, y), x ascending
  std::string color = "#4a7ab5";
  bool markers = false;                           // a dot at every point (for sparse series)
};
// A line chart: axes with ticks and labels, one <polyline> per series, a legend.
std::string line_chart_svg(const std::vector<Series>& series, const std::string& caption,
                           const std::string& x_label, const std::string& y_label);

}  // namespace conflux::evaluator::html
