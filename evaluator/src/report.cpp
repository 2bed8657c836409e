// report.json and report.html (inline SVG charts) for a list of metric results.
//
// Charts are drawn from each Result's detail JSON by metric name: "ece" and "calibration" ->
// reliability diagram (accuracy per confidence bin against the diagonal); "fairness" -> one bar
// per group; "drift" -> PSI per feature with the 0.1 / 0.25 thresholds; "robustness" -> clean vs
// perturbed. Every string placed in HTML is escaped.
#include "conflux/core/error.h"
#include "conflux/evaluator/html.h"
#include "conflux/evaluator/report.h"

#include <sys/stat.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

namespace conflux::evaluator {
namespace {

using nlohmann::json;
using html::bars_svg;
using html::escape;
using html::num;
using html::reliability_svg;

double get(const json& j, const char* key) { return html::number_or_nan(j, key); }

}  // namespace

std::string render_result_charts(const Result& r) {
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

std::string render_results_table(const std::vector<Result>& results) {
  std::ostringstream h;
  h << "<table><tr><th>metric</th><th>value</th><th>details</th></tr>";
  for (const auto& r : results)
    h << "<tr><td>" << escape(r.metric) << "</td><td>" << escape(r.primary) << " = " << num(r.value)
      << "</td><td><code>" << escape(r.line) << "</code></td></tr>";
  h << "</table>\n";
  return h.str();
}

std::string render_report_html(const Report& report) {
  std::ostringstream h;
  h << html::page_begin(report.title);
  if (!report.meta.empty()) {
    h << "<h2>Run</h2><table>";
    for (const auto& [k, v] : report.meta.items())
      h << "<tr><th>" << escape(k) << "</th><td>" << escape(v.is_string() ? v.get<std::string>() : v.dump())
        << "</td></tr>";
    h << "</table>\n";
  }
  h << "<h2>Summary</h2>" << render_results_table(report.results);
  for (const auto& r : report.results) {
    const std::string charts = render_result_charts(r);
    if (charts.empty()) continue;
    h << "<h2>" << escape(r.metric) << "</h2>\n" << charts << "\n";
  }
  h << html::page_end();
  return h.str();
}

Report read_report_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) CONFLUX_THROW(IoError, "cannot open evaluation report '{}'", path);
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {
    CONFLUX_THROW(DataError, "evaluation report '{}' is not JSON: {}", path, e.what());
  }
  if (!j.is_object()) CONFLUX_THROW(DataError, "evaluation report '{}': not a JSON object", path);
  Report r;
  if (j.contains("title")) {
    if (!j.at("title").is_string()) CONFLUX_THROW(DataError, "evaluation report '{}': 'title' is not a string", path);
    r.title = j.at("title").get<std::string>();
  }
  if (j.contains("meta")) {
    if (!j.at("meta").is_object()) CONFLUX_THROW(DataError, "evaluation report '{}': 'meta' is not an object", path);
    r.meta = j.at("meta");
  }
  if (!j.contains("results") || !j.at("results").is_array())
    CONFLUX_THROW(DataError, "evaluation report '{}': 'results' is missing or not an array", path);
  size_t i = 0;
  for (const auto& e : j.at("results")) {
    const auto field = [&](const char* key) -> std::string {
      if (!e.is_object() || !e.contains(key) || !e.at(key).is_string())
        CONFLUX_THROW(DataError, "evaluation report '{}': results[{}].{} is missing or not a string", path, i, key);
      return e.at(key).get<std::string>();
    };
    Result res;
    res.metric = field("metric");
    res.primary = field("primary");
    res.line = field("line");
    // NaN (e.g. distinct-n of empty generations) is written as null.
    const json& v = e.contains("value") ? e.at("value") : json();
    if (!v.is_null() && !v.is_number())
      CONFLUX_THROW(DataError, "evaluation report '{}': results[{}].value is not a number", path, i);
    res.value = v.is_number() ? v.get<double>() : std::nan("");
    res.detail = e.value("detail", json::object());
    r.results.push_back(std::move(res));
    ++i;
  }
  return r;
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
