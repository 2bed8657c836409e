// Evaluation reports: report.json (machine-readable) and report.html (readable, self-contained,
// inline SVG charts: reliability diagrams for ece/calibration, per-group bars for fairness, PSI
// per feature for drift, clean vs perturbed bars for robustness).
//
// Every file is written with conflux::write_file_atomic (core/atomic_file.h: temp file in the
// same directory, fsync, rename, fsync of the directory), so a reader never sees a half-written
// report and a crash leaves no partial file under the report's name. Pure functions otherwise;
// thread-safe.
#pragma once

#include "conflux/core/atomic_file.h"
#include "conflux/evaluator/metric.h"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace conflux::evaluator {

struct Report {
  std::string title = "Conflux evaluation report";
  nlohmann::json meta = nlohmann::json::object();  // checkpoint, dataset, workers, seed, ...
  std::vector<Result> results;
  nlohmann::json to_json() const;
};

std::string render_report_html(const Report& report);
// Pieces of the page, for other pages that show an evaluation (the run report): the summary
// table (metric, value, line) and a result's charts ("" when its metric has none).
std::string render_results_table(const std::vector<Result>& results);
std::string render_result_charts(const Result& result);
// Reads a report.json written by write_report. DataError naming the file and the field when it
// is not JSON or a field is missing or of the wrong type; a null value reads as NaN.
Report read_report_json(const std::string& path);
// Writes <dir>/report.json and <dir>/report.html (creating dir); returns the two paths.
std::vector<std::string> write_report(const Report& report, const std::string& dir);

}  // namespace conflux::evaluator
