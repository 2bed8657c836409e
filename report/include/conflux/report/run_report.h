// The run report: one self-contained HTML page (inline SVG, no external JS/CSS/fonts) over a
// whole run: the data funnel (rows in / kept / dropped per reason for each provenance stage of
// the dataset), the training and validation loss curves, epsilon over steps when DP-SGD was on,
// the evaluation's metrics with the reliability diagram, sample generations, and the provenance
// chain dataset manifest -> checkpoint lineage -> evaluation report, with each recorded SHA-256
// checked against the file it names ("matches" / "does not match").
//
// Inputs (all optional: an empty path, or a directory that does not exist or lacks the file, makes
// that section say what is missing):
//   dataset_dir       manifest.json ("provenance": stages with rows_in, rows_out, dropped{reason:n},
//                     parent, parent_sha256)
//   train_output_dir  metrics.jsonl (one object per step: step, loss, val_loss at evaluation
//                     steps, epsilon/delta when DP is on)
//   checkpoint_dir    a step directory (holding lineage.json) or a checkpoint root (its newest
//                     step-*)
//   evaluation_dir    report.json and generations.jsonl of `conflux evaluate`
// A file that exists but is malformed is a DataError naming the file, the line (JSONL) and the
// field. Every text placed in the page is HTML-escaped. The page is written with
// write_file_atomic. Torch-free (links core, dataplane, evaluator, trainer_meta); thread-safe.
//
// Each section has an element id: "inputs", "funnel", "loss", "epsilon", "metrics",
// "reliability", "generations", "provenance".
#pragma once

#include <string>

namespace conflux::report {

struct RunReportInputs {
  std::string title = "Conflux run report";
  std::string dataset_dir;
  std::string train_output_dir;
  std::string checkpoint_dir;
  std::string evaluation_dir;
  size_t max_generations = 20;  // sample generations shown (the first N)
};

std::string render_run_report(const RunReportInputs& in);
void write_run_report(const RunReportInputs& in, const std::string& html_path);

}  // namespace conflux::report
