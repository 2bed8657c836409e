// `conflux report`: the run report (report.html: data funnel, loss and epsilon curves, evaluation
// metrics, reliability diagram, generations, provenance chain) from a run's directories. This
// file only parses the arguments; the page is report::write_run_report (report/run_report.h).
#include "conflux/cli/cli.h"
#include "conflux/report/run_report.h"

#include <nlohmann/json.hpp>

namespace {

namespace po = conflux::cli::po;

int report(const conflux::cli::Args& args) {
  conflux::report::RunReportInputs in;
  std::string out;
  bool json = false;
  po::options_description o("options");
  o.add_options()("dataset", po::value(&in.dataset_dir), "the prepared dataset (its manifest.json)")(
      "train-output", po::value(&in.train_output_dir), "the training output.dir (metrics.jsonl)")(
      "checkpoint", po::value(&in.checkpoint_dir), "a checkpoint step directory or the checkpoint.dir root (newest step)")(
      "evaluation", po::value(&in.evaluation_dir), "the evaluation output.dir (report.json, generations.jsonl)")(
      "title", po::value(&in.title)->default_value(in.title), "page title")(
      "max-generations", conflux::cli::number(&in.max_generations, 0, 100000)->default_value(in.max_generations),
      "sample generations shown")("output,o", po::value(&out)->required(), "the HTML file to write")(
      "json", po::bool_switch(&json), "print a JSON summary");
  po::variables_map vm;
  if (!conflux::cli::parse(args, o, nullptr, vm,
                           {"report", "[--dataset D] [--train-output T] [--checkpoint C] [--evaluation E] [--title X] -o report.html",
                            "Writes the run report: one self-contained HTML page (inline SVG) with the data "
                            "funnel (rows kept and dropped per reason for each provenance stage), the training "
                            "and validation loss curves, epsilon over steps when DP was on, the evaluation "
                            "metrics with the reliability diagram, sample generations, and the provenance "
                            "chain dataset manifest -> checkpoint lineage -> evaluation report with each "
                            "recorded SHA-256 checked. Every input is optional; a missing one is reported in "
                            "its section, a malformed file is an error naming the file and field.",
                            "conflux report --dataset data/fortunes --train-output runs/fortunes "
                            "--checkpoint checkpoints/fortunes --evaluation runs/fortunes-eval -o report.html"}))
    return 0;
  conflux::report::write_run_report(in, out);
  conflux::cli::emit(json, nlohmann::json{{"report", out}}.dump(), "report: " + out);
  return 0;
}

CONFLUX_VERB("report", "write the run report (report.html) from a run's dataset, training, checkpoint and evaluation",
             report);

}  // namespace
