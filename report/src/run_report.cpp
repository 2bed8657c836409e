// The run report (run_report.h): reads the run's files, checks the recorded SHA-256s, and lays
// out one HTML page from the evaluator's HTML/SVG helpers (evaluator/html.h).
#include "conflux/report/run_report.h"

#include "conflux/core/atomic_file.h"
#include "conflux/core/error.h"
#include "conflux/dataplane/manifest.h"
#include "conflux/evaluator/html.h"
#include "conflux/evaluator/report.h"
#include "conflux/trainer/checkpoint_meta.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

namespace conflux::report {
namespace {

namespace fs = std::filesystem;
namespace html = conflux::evaluator::html;
using html::escape;
using html::num;
using nlohmann::json;

std::string none(const std::string& text) { return "<p class=\"none\">" + escape(text) + "</p>\n"; }

std::string status(bool ok, const std::string& ok_text = "matches",
                   const std::string& bad_text = "does not match") {
  return ok ? "<span class=\"ok\">" + escape(ok_text) + "</span>"
            : "<span class=\"bad\">" + escape(bad_text) + "</span>";
}

// A row count; "—" when the stage does not record it (ingest has no rows in).
std::string count(double n) { return std::isfinite(n) ? num(n, 0) : "—"; }

std::string code(const std::string& text) { return "<code>" + escape(text) + "</code>"; }

json read_json_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) CONFLUX_THROW(IoError, "cannot open '{}'", path);
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    CONFLUX_THROW(DataError, "'{}' is not JSON: {}", path, e.what());
  }
}

// The lines of a JSONL file as objects; DataError naming the file and line when one is not.
std::vector<json> read_jsonl(const std::string& path) {
  std::ifstream in(path);
  if (!in) CONFLUX_THROW(IoError, "cannot open '{}'", path);
  std::vector<json> out;
  std::string line;
  for (size_t n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    json j;
    try {
      j = json::parse(line);
    } catch (const json::exception& e) {
      CONFLUX_THROW(DataError, "'{}' line {}: not JSON: {}", path, n, e.what());
    }
    if (!j.is_object()) CONFLUX_THROW(DataError, "'{}' line {}: not a JSON object", path, n);
    j["__line"] = n;
    out.push_back(std::move(j));
  }
  return out;
}

// j[key] as a number; NaN when absent or null; DataError when another type.
double opt_number(const json& j, const char* key, const std::string& where) {
  if (!j.contains(key) || j.at(key).is_null()) return std::nan("");
  if (!j.at(key).is_number()) CONFLUX_THROW(DataError, "{}: field '{}' is not a number", where, key);
  return j.at(key).get<double>();
}

std::string opt_string(const json& j, const char* key, const std::string& where) {
  if (!j.contains(key) || j.at(key).is_null()) return "";
  if (!j.at(key).is_string()) CONFLUX_THROW(DataError, "{}: field '{}' is not a string", where, key);
  return j.at(key).get<std::string>();
}

bool is_file(const std::string& p) {
  std::error_code ec;
  return !p.empty() && fs::is_regular_file(p, ec);
}

std::string canonical_or_self(const std::string& p) {
  std::error_code ec;
  const auto c = fs::weakly_canonical(p, ec);
  return ec ? p : c.string();
}

// ---- the dataset: manifest, funnel ---------------------------------------------------------

struct Dataset {
  std::string dir, manifest_path, sha256;  // sha256 "" when there is no manifest
  json manifest;
};

Dataset load_dataset(const std::string& dir) {
  Dataset d;
  d.dir = dir;
  if (dir.empty()) return d;
  d.manifest_path = (fs::path(dir) / "manifest.json").string();
  if (!is_file(d.manifest_path)) return d;
  d.manifest = read_json_file(d.manifest_path);
  if (!d.manifest.is_object()) CONFLUX_THROW(DataError, "'{}': not a JSON object", d.manifest_path);
  if (d.manifest.contains("provenance") && !d.manifest.at("provenance").is_array())
    CONFLUX_THROW(DataError, "'{}': field 'provenance' is not an array", d.manifest_path);
  d.sha256 = conflux::dataplane::sha256_file(d.manifest_path);
  return d;
}

const json& provenance(const Dataset& d) {
  static const json empty = json::array();
  return d.manifest.is_object() && d.manifest.contains("provenance") ? d.manifest.at("provenance") : empty;
}

std::string funnel_section(const Dataset& d) {
  std::ostringstream h;
  h << "<section id=\"funnel\"><h2>Data funnel</h2>\n";
  if (d.dir.empty()) return h.str() + none("No dataset given.") + "</section>\n";
  if (d.sha256.empty())
    return h.str() + none("No dataset manifest at " + d.manifest_path + ".") + "</section>\n";
  h << "<p>Dataset " << code(d.dir) << ": " << count(html::number_or_nan(d.manifest, "rows"))
    << " rows.</p>\n<table><tr><th>stage</th><th>rows in</th><th>rows out</th><th>dropped (reason: rows)</th></tr>";
  std::string charts;
  size_t i = 0;
  for (const auto& st : provenance(d)) {
    const std::string where = fmt::format("'{}': provenance[{}]", d.manifest_path, i++);
    if (!st.is_object()) CONFLUX_THROW(DataError, "{}: not an object", where);
    const std::string stage = opt_string(st, "stage", where);
    const double in = opt_number(st, "rows_in", where);
    double out = opt_number(st, "rows_out", where);
    if (!std::isfinite(out)) out = opt_number(st, "rows_kept", where);
    std::vector<std::pair<std::string, double>> bars;
    if (std::isfinite(in)) bars.emplace_back("rows in", in);
    if (std::isfinite(out)) bars.emplace_back("rows kept", out);
    std::string dropped;
    double dropped_total = 0;
    if (st.contains("dropped")) {
      if (!st.at("dropped").is_object()) CONFLUX_THROW(DataError, "{}: field 'dropped' is not an object", where);
      for (const auto& [reason, n] : st.at("dropped").items()) {
        if (!n.is_number()) CONFLUX_THROW(DataError, "{}: field 'dropped.{}' is not a number", where, reason);
        const double v = n.get<double>();
        dropped_total += v;
        if (v == 0) continue;
        dropped += escape(reason) + ": " + num(v, 0) + "<br>";
        bars.emplace_back("dropped: " + reason, v);
      }
    }
    if (dropped.empty()) dropped = "none";
    h << "<tr><td>" << escape(stage) << "</td><td>" << count(in) << "</td><td>" << count(out)
      << "</td><td>" << dropped << "</td></tr>";
    if (bars.size() > 1)
      charts += html::bars_svg(bars, "Stage '" + stage + "': rows kept and dropped per reason (" +
                                         num(dropped_total, 0) + " dropped)");
  }
  h << "</table>\n" << charts;
  if (provenance(d).empty()) h << none("The manifest records no provenance stages.");
  return h.str() + "</section>\n";
}

// ---- training: loss, validation loss, epsilon ---------------------------------------------

struct Training {
  std::string metrics_path;
  bool present = false;
  evaluator::html::Series loss{"training loss", {}, "#4a7ab5"};
  evaluator::html::Series val{"validation loss", {}, "#d9534f", true};
  evaluator::html::Series eps{"epsilon", {}, "#7b4ab5"};
  double delta = std::nan("");
};

// A resumed run logs the steps after its last checkpoint again: keep each step's last entry, in
// step order.
void last_per_step(evaluator::html::Series& s) {
  std::map<double, double> by_step;
  for (const auto& [x, y] : s.points) by_step[x] = y;
  s.points.assign(by_step.begin(), by_step.end());
}

Training load_training(const std::string& dir) {
  Training t;
  if (dir.empty()) return t;
  t.metrics_path = (fs::path(dir) / "metrics.jsonl").string();
  if (!is_file(t.metrics_path)) return t;
  t.present = true;
  for (const auto& j : read_jsonl(t.metrics_path)) {
    const std::string where = fmt::format("'{}' line {}", t.metrics_path, j.at("__line").get<size_t>());
    const double step = opt_number(j, "step", where);
    if (!std::isfinite(step)) CONFLUX_THROW(DataError, "{}: field 'step' is missing", where);
    const double loss = opt_number(j, "loss", where), val = opt_number(j, "val_loss", where);
    const double eps = opt_number(j, "epsilon", where), delta = opt_number(j, "delta", where);
    if (std::isfinite(loss)) t.loss.points.emplace_back(step, loss);
    if (std::isfinite(val)) t.val.points.emplace_back(step, val);
    if (std::isfinite(eps)) t.eps.points.emplace_back(step, eps);
    if (std::isfinite(delta)) t.delta = delta;
  }
  for (auto* s : {&t.loss, &t.val, &t.eps}) last_per_step(*s);
  return t;
}

std::string last_y(const evaluator::html::Series& s) {
  return s.points.empty() ? "n/a" : num(s.points.back().second) + " at step " + num(s.points.back().first, 0);
}

std::string loss_section(const std::string& dir, const Training& t) {
  std::ostringstream h;
  h << "<section id=\"loss\"><h2>Training and validation loss</h2>\n";
  if (dir.empty()) return h.str() + none("No training output given.") + "</section>\n";
  if (!t.present) return h.str() + none("No metrics.jsonl at " + t.metrics_path + ".") + "</section>\n";
  h << "<table><tr><th>last training loss</th><td>" << last_y(t.loss)
    << "</td></tr><tr><th>last validation loss</th><td>" << last_y(t.val) << "</td></tr></table>\n";
  std::vector<evaluator::html::Series> s{t.loss};
  if (!t.val.points.empty()) s.push_back(t.val);
  h << html::line_chart_svg(s, "Loss per optimizer step (" + t.metrics_path + ")", "step", "loss");
  if (t.val.points.empty()) h << none("No validation loss recorded (train.eval_every = 0).");
  return h.str() + "</section>\n";
}

std::string epsilon_section(const Training& t) {
  std::ostringstream h;
  h << "<section id=\"epsilon\"><h2>Privacy budget (ε)</h2>\n";
  if (!t.present) return h.str() + none("No training metrics.") + "</section>\n";
  if (t.eps.points.empty())
    return h.str() + none("Differential privacy was off: metrics.jsonl records no epsilon.") + "</section>\n";
  h << "<p>ε spent after the last step: " << last_y(t.eps) << " (δ = " << escape(fmt::format("{:g}", t.delta))
    << ", RDP accountant).</p>\n";
  h << html::line_chart_svg({t.eps}, "ε over optimizer steps", "step", "epsilon");
  return h.str() + "</section>\n";
}

// ---- checkpoint lineage -------------------------------------------------------------------

struct Checkpoint {
  std::string given, dir;  // dir: the step directory ("" when none found)
  int64_t step = -1;
  std::optional<trainer::Lineage> lineage;
};

Checkpoint load_checkpoint(const std::string& given) {
  Checkpoint c;
  c.given = given;
  if (given.empty() || !fs::is_directory(given)) return c;
  if (fs::exists(fs::path(given) / "lineage.json")) {
    c.dir = given;
  } else if (auto latest = trainer::latest_checkpoint(given)) {
    c.dir = *latest;
  } else {
    return c;
  }
  c.lineage = trainer::load_lineage(c.dir);
  c.step = trainer::load_trainer_state(c.dir).step;
  return c;
}

// ---- evaluation ---------------------------------------------------------------------------

struct Evaluation {
  std::string dir, report_path, generations_path;
  std::optional<evaluator::Report> report;
  std::vector<json> generations;
};

Evaluation load_evaluation(const std::string& dir) {
  Evaluation e;
  e.dir = dir;
  if (dir.empty()) return e;
  e.report_path = (fs::path(dir) / "report.json").string();
  e.generations_path = (fs::path(dir) / "generations.jsonl").string();
  if (is_file(e.report_path)) e.report = evaluator::read_report_json(e.report_path);
  if (is_file(e.generations_path)) {
    e.generations = read_jsonl(e.generations_path);
    for (const auto& g : e.generations) {
      const std::string where = fmt::format("'{}' line {}", e.generations_path, g.at("__line").get<size_t>());
      for (const char* key : {"prompt", "hypothesis", "reference"})
        if (!g.contains(key) || !g.at(key).is_string())
          CONFLUX_THROW(DataError, "{}: field '{}' is missing or not a string", where, key);
    }
  }
  return e;
}

std::string metrics_section(const Evaluation& e) {
  std::ostringstream h;
  h << "<section id=\"metrics\"><h2>Evaluation metrics</h2>\n";
  if (e.dir.empty()) return h.str() + none("No evaluation given (not evaluated yet).") + "</section>\n";
  if (!e.report) return h.str() + none("No report.json at " + e.report_path + ".") + "</section>\n";
  const json& m = e.report->meta;
  if (m.contains("split") && m.at("split").is_string())
    h << "<p>Split " << code(m.at("split").get<std::string>()) << ", " << num(html::number_or_nan(m, "rows"), 0)
      << " rows.</p>\n";
  h << evaluator::render_results_table(e.report->results);
  std::string other;
  for (const auto& r : e.report->results)
    if (r.metric != "ece" && r.metric != "calibration") other += evaluator::render_result_charts(r);
  return h.str() + other + "</section>\n";
}

std::string reliability_section(const Evaluation& e) {
  std::ostringstream h;
  h << "<section id=\"reliability\"><h2>Reliability diagram</h2>\n";
  std::string charts;
  if (e.report)
    for (const auto& r : e.report->results)
      if (r.metric == "ece" || r.metric == "calibration") charts += evaluator::render_result_charts(r);
  if (charts.empty()) return h.str() + none("No ECE or calibration result in the evaluation.") + "</section>\n";
  return h.str() + charts + "</section>\n";
}

std::string generations_section(const Evaluation& e, size_t max_shown) {
  std::ostringstream h;
  h << "<section id=\"generations\"><h2>Sample generations</h2>\n";
  if (e.dir.empty() || e.generations.empty())
    return h.str() + none(e.dir.empty() ? "No evaluation given." : "No generations.jsonl at " + e.generations_path + ".") +
           "</section>\n";
  const size_t n = std::min(max_shown, e.generations.size());
  h << "<p>The first " << n << " of " << e.generations.size()
    << " greedy continuations of validation prompts.</p>\n<table><tr><th>row</th><th>prompt</th>"
       "<th>generated</th><th>reference</th></tr>";
  for (size_t i = 0; i < n; ++i) {
    const json& g = e.generations[i];
    h << "<tr><td>" << (g.contains("row") ? escape(g.at("row").dump()) : "") << "</td><td><pre>"
      << escape(g.at("prompt").get<std::string>()) << "</pre></td><td><pre>"
      << escape(g.at("hypothesis").get<std::string>()) << "</pre></td><td><pre>"
      << escape(g.at("reference").get<std::string>()) << "</pre></td></tr>";
  }
  return h.str() + "</table>\n</section>\n";
}

// ---- the provenance chain -----------------------------------------------------------------

// A federated round's lineage (tasks/federate_job.cpp) names no dataset.
bool is_federated(const trainer::Lineage& l) { return l.dataset_dir == "federated" && l.manifest_sha256.empty(); }

// "; started from CHECKPOINT digest D — weights on disk match[; trained on DATASET — MATCHES the
// dataset above]" for a run that recorded the checkpoint it started from (lineage "init"); the
// dataset comparison only for a federated checkpoint, whose own lineage names none.
std::string init_link(const trainer::Lineage& lin, const Dataset& d) {
  if (lin.init_checkpoint.empty()) return "";
  std::ostringstream h;
  h << "; started from " << code(lin.init_checkpoint) << ", digest " << code(lin.init_digest.substr(0, 12)) << " — ";
  if (!fs::exists(fs::path(lin.init_checkpoint) / "lineage.json")) {
    h << "<span class=\"none\">not found here, not checked</span>";
    return h.str();
  }
  std::string on_disk;
  try {
    on_disk = trainer::checkpoint_digest(lin.init_checkpoint);
  } catch (const Error&) {  // no model file: shown as not matching
  }
  h << "its weights here " << status(on_disk == lin.init_digest, "match", "do not match");
  if (!is_federated(lin)) return h.str();
  const trainer::Lineage parent = trainer::load_lineage(lin.init_checkpoint);
  if (is_federated(parent)) return h.str();
  h << "; it was trained on " << code(parent.dataset_dir) << ", manifest_sha256 " << code(parent.manifest_sha256)
    << " — ";
  if (d.sha256.empty())
    h << "<span class=\"none\">no dataset shown to compare with</span>";
  else
    h << status(parent.manifest_sha256 == d.sha256, "MATCHES the dataset above", "does not match the dataset above");
  return h.str();
}

std::string provenance_section(const Dataset& d, const Checkpoint& c, const Evaluation& e) {
  std::ostringstream h;
  h << "<section id=\"provenance\"><h2>Provenance chain</h2>\n<ol>\n";
  // 1. the dataset and its stages
  h << "<li><b>Dataset</b> ";
  if (d.sha256.empty()) {
    h << (d.dir.empty() ? "not given" : "no manifest at " + code(d.manifest_path));
  } else {
    h << code(d.dir) << ", manifest.json sha256 " << code(d.sha256) << "<ul>";
    for (const auto& st : provenance(d)) {
      h << "<li>stage " << escape(st.value("stage", std::string("?")));
      const std::string parent = st.contains("parent") && st.at("parent").is_string() ? st.at("parent").get<std::string>() : "";
      const std::string psha = st.contains("parent_sha256") && st.at("parent_sha256").is_string()
                                   ? st.at("parent_sha256").get<std::string>() : "";
      if (parent.empty()) {
        h << ": the source (no parent dataset)";
      } else {
        h << ": parent " << code(parent) << ", parent_sha256 " << code(psha) << " — ";
        const std::string pm = (fs::path(parent) / "manifest.json").string();
        if (is_file(pm))
          h << "parent manifest here " << status(conflux::dataplane::sha256_file(pm) == psha);
        else
          h << "<span class=\"none\">parent not found here, not checked</span>";
      }
      h << "</li>";
    }
    h << "</ul>";
  }
  h << "</li>\n";
  // 2. the checkpoint's lineage
  h << "<li><b>Checkpoint</b> ";
  if (!c.lineage) {
    h << (c.given.empty() ? "not given" : "no checkpoint (lineage.json) at " + code(c.given));
  } else if (is_federated(*c.lineage)) {
    // The coordinator never sees the participants' data: the link to the dataset above goes
    // through the checkpoint the rounds started from.
    h << code(c.dir) << " (round " << c.step << ") trained in federated rounds on the participants' own data "
      << "(not seen by the coordinator)";
    if (c.lineage->init_checkpoint.empty()) h << ", starting from model.init_seed";
    h << init_link(*c.lineage, d);
  } else {
    h << code(c.dir) << " (step " << c.step << ") trained on " << code(c.lineage->dataset_dir)
      << ", manifest_sha256 " << code(c.lineage->manifest_sha256) << " — ";
    if (d.sha256.empty())
      h << "<span class=\"none\">no dataset shown to compare with</span>";
    else
      h << status(c.lineage->manifest_sha256 == d.sha256, "MATCHES the dataset above",
                  "does not match the dataset above");
    h << init_link(*c.lineage, d);
  }
  h << "</li>\n";
  // 3. the evaluation report
  h << "<li><b>Evaluation</b> ";
  if (!e.report) {
    h << (e.dir.empty() ? "not given" : "no report.json at " + code(e.report_path));
  } else {
    const json& m = e.report->meta;
    const std::string where = "'" + e.report_path + "': meta";
    const std::string ck = opt_string(m, "checkpoint", where), sha = opt_string(m, "manifest_sha256", where);
    h << code(e.report_path) << " evaluated checkpoint " << code(ck) << " on " << code(opt_string(m, "dataset", where))
      << ", manifest_sha256 " << code(sha) << " — checkpoint: ";
    if (c.dir.empty())
      h << "<span class=\"none\">no checkpoint shown to compare with</span>";
    else
      h << status(canonical_or_self(ck) == canonical_or_self(c.dir), "MATCHES the checkpoint above",
                  "does not match the checkpoint above");
    h << "; dataset: ";
    if (d.sha256.empty())
      h << "<span class=\"none\">no dataset shown to compare with</span>";
    else
      h << status(sha == d.sha256, "MATCHES the dataset above", "does not match the dataset above");
  }
  h << "</li>\n</ol>\n</section>\n";
  return h.str();
}

std::string inputs_section(const RunReportInputs& in) {
  std::ostringstream h;
  h << "<section id=\"inputs\"><table>";
  const std::pair<const char*, const std::string*> rows[] = {{"dataset", &in.dataset_dir},
                                                             {"training output", &in.train_output_dir},
                                                             {"checkpoint", &in.checkpoint_dir},
                                                             {"evaluation", &in.evaluation_dir}};
  for (const auto& [name, path] : rows)
    h << "<tr><th>" << name << "</th><td>" << (path->empty() ? "<span class=\"none\">not given</span>" : code(*path))
      << "</td></tr>";
  return h.str() + "</table></section>\n";
}

}  // namespace

std::string render_run_report(const RunReportInputs& in) {
  const Dataset d = load_dataset(in.dataset_dir);
  const Training t = load_training(in.train_output_dir);
  const Checkpoint c = load_checkpoint(in.checkpoint_dir);
  const Evaluation e = load_evaluation(in.evaluation_dir);
  return html::page_begin(in.title) + inputs_section(in) + funnel_section(d) +
         loss_section(in.train_output_dir, t) + epsilon_section(t) + metrics_section(e) +
         reliability_section(e) + generations_section(e, in.max_generations) +
         provenance_section(d, c, e) + html::page_end();
}

void write_run_report(const RunReportInputs& in, const std::string& html_path) {
  conflux::write_file_atomic(html_path, render_run_report(in));
}

}  // namespace conflux::report
