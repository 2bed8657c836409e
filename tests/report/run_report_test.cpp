// The run report (report/run_report.h) on small hand-written run files in a scratch directory:
// the page holds the funnel's numbers, the last losses, epsilon, ECE, escaped generations, and
// the provenance checks (matches / does not match); absent inputs are said so; malformed files
// are DataErrors naming the file, line and field; the file is written whole.
#include "conflux/core/atomic_file.h"
#include "conflux/core/error.h"
#include "conflux/dataplane/manifest.h"
#include "conflux/report/run_report.h"
#include "conflux/trainer/checkpoint_meta.h"
#include "scratch_dir.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

namespace {

namespace fs = std::filesystem;
using conflux::report::RunReportInputs;
using nlohmann::json;

void write(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path) << text;
}

std::string read(const std::string& path) {
  std::stringstream s;
  s << std::ifstream(path).rdbuf();
  return s.str();
}

// The text of the element with id="ID" up to its closing </section>.
std::string section(const std::string& html, const std::string& id) {
  const auto a = html.find("<section id=\"" + id + "\"");
  if (a == std::string::npos) return "";
  return html.substr(a, html.find("</section>", a) - a);
}

struct RunFiles {
  std::string root, raw, data, train, ckpt_root, ckpt, eval;
  RunReportInputs inputs() const {
    RunReportInputs in;
    in.title = "test <run>";
    in.dataset_dir = data;
    in.train_output_dir = train;
    in.checkpoint_dir = ckpt_root;
    in.evaluation_dir = eval;
    return in;
  }
};

// A run whose files agree with each other (the checkpoint was trained on `data`, the evaluation
// used that checkpoint and dataset) unless told otherwise.
RunFiles make_run(bool dp = false, const std::string& lineage_sha = "") {
  RunFiles r;
  r.root = conflux::test::make_scratch_dir("conflux-run-report-");
  r.raw = r.root + "/data/raw";
  r.data = r.root + "/data/prep";
  r.train = r.root + "/runs/train";
  r.ckpt_root = r.root + "/ckpt";
  r.ckpt = r.ckpt_root + "/" + conflux::trainer::checkpoint_dir_name(20);
  r.eval = r.root + "/runs/eval";
  write(r.raw + "/manifest.json", R"({"rows": 120, "provenance": [{"stage": "ingest", "dropped": {"empty": 3}}]})");
  const std::string raw_sha = conflux::dataplane::sha256_file(r.raw + "/manifest.json");
  json prov = json::array({{{"stage", "ingest"}, {"dropped", {{"empty", 3}}}},
                           {{"stage", "prepare"}, {"rows_in", 120}, {"rows_out", 101}, {"parent", r.raw},
                            {"parent_sha256", raw_sha},
                            {"dropped", {{"exact_duplicate", 7}, {"near_duplicate", 12}, {"too_long", 0}}}}});
  write(r.data + "/manifest.json", json{{"rows", 101}, {"provenance", prov}}.dump(1));
  const std::string sha = conflux::dataplane::sha256_file(r.data + "/manifest.json");
  std::string metrics;
  for (int s = 1; s <= 20; ++s) {
    json j{{"step", s}, {"loss", 5.0 - 0.1 * s}, {"lr", 0.001}};
    if (s % 10 == 0) j["val_loss"] = 5.5 - 0.1 * s;
    if (dp) j["epsilon"] = 0.5 + 0.025 * s, j["delta"] = 1e-5;
    metrics += j.dump() + "\n";
  }
  write(r.train + "/metrics.jsonl", metrics);
  fs::create_directories(r.ckpt);
  conflux::trainer::Lineage lin;
  lin.config_json = "{}";
  lin.dataset_dir = r.data;
  lin.manifest_sha256 = lineage_sha.empty() ? sha : lineage_sha;
  write(r.ckpt + "/lineage.json", conflux::trainer::lineage_text(lin));
  conflux::trainer::TrainerState st;
  st.step = 20;
  write(r.ckpt + "/trainer_state.json", conflux::trainer::trainer_state_text(st, 20));
  json bins = json::array({{{"accuracy", 0.25}, {"confidence", 0.1}, {"count", 40}},
                           {{"accuracy", nullptr}, {"confidence", nullptr}, {"count", 0}},
                           {{"accuracy", 0.75}, {"confidence", 0.8}, {"count", 10}}});
  json report{{"format", "conflux.eval.report/1"},
              {"title", "eval"},
              {"meta", {{"checkpoint", r.ckpt}, {"dataset", r.data}, {"manifest_sha256", sha}, {"split", "validation"}, {"rows", 9}}},
              {"results", json::array({{{"metric", "perplexity"}, {"primary", "perplexity"}, {"value", 117.5},
                                        {"line", "perplexity = 117.5000"}, {"detail", json::object()}},
                                       {{"metric", "ece"}, {"primary", "ece"}, {"value", 0.1478},
                                        {"line", "ECE = 0.1478"}, {"detail", {{"bins", bins}}}},
                                       {{"metric", "distinct"}, {"primary", "distinct_1"}, {"value", nullptr},
                                        {"line", "distinct-1 = nan"}, {"detail", json::object()}}})}};
  write(r.eval + "/report.json", report.dump(2));
  write(r.eval + "/generations.jsonl",
        json{{"row", 3}, {"prompt", "<script>alert(1)</script>"}, {"hypothesis", "a & b"}, {"reference", "\"q\" 'x'"}}.dump() +
            "\n" + json{{"row", 4}, {"prompt", "p"}, {"hypothesis", "h"}, {"reference", "r"}}.dump() + "\n");
  return r;
}

TEST(RunReport, HoldsTheNumbersOfEverySection) {
  const RunFiles r = make_run();
  const std::string out = r.root + "/report.html";
  conflux::report::write_run_report(r.inputs(), out);
  const std::string h = read(out);
  EXPECT_EQ(h.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(h.find("<title>test &lt;run&gt;</title>"), std::string::npos);
  for (const char* id : {"inputs", "funnel", "loss", "epsilon", "metrics", "reliability", "generations", "provenance"})
    EXPECT_FALSE(section(h, id).empty()) << id;
  // Funnel: rows in / out and each non-zero reason; a zero reason is not listed.
  const std::string f = section(h, "funnel");
  EXPECT_NE(f.find("<td>prepare</td><td>120</td><td>101</td>"), std::string::npos) << f;
  EXPECT_NE(f.find("exact_duplicate: 7"), std::string::npos);
  EXPECT_NE(f.find("near_duplicate: 12"), std::string::npos);
  EXPECT_EQ(f.find("too_long"), std::string::npos);
  EXPECT_NE(f.find("<svg"), std::string::npos);
  // Loss: the last training and validation loss, one polyline per series with every point.
  const std::string l = section(h, "loss");
  EXPECT_NE(l.find("3.0000 at step 20"), std::string::npos) << l;  // 5.0 - 0.1 * 20
  EXPECT_NE(l.find("3.5000 at step 20"), std::string::npos);       // 5.5 - 0.1 * 20
  EXPECT_NE(l.find("data-series=\"training loss\" data-points=\"20\""), std::string::npos);
  EXPECT_NE(l.find("data-series=\"validation loss\" data-points=\"2\""), std::string::npos);
  // DP off: epsilon says so.
  EXPECT_NE(section(h, "epsilon").find("Differential privacy was off"), std::string::npos);
  // Metrics and the reliability diagram (two non-empty bins drawn).
  const std::string m = section(h, "metrics");
  EXPECT_NE(m.find("ece = 0.1478"), std::string::npos) << m;
  EXPECT_NE(m.find("perplexity = 117.5000"), std::string::npos);
  EXPECT_NE(m.find("distinct_1 = n/a"), std::string::npos);
  const std::string rel = section(h, "reliability");
  EXPECT_NE(rel.find("<svg"), std::string::npos);
  EXPECT_NE(rel.find("bin 0: accuracy 0.2500"), std::string::npos);
  EXPECT_NE(rel.find("bin 2: accuracy 0.7500"), std::string::npos);
  EXPECT_EQ(rel.find("bin 1:"), std::string::npos);
  // Generations are escaped text.
  const std::string g = section(h, "generations");
  EXPECT_EQ(h.find("<script>"), std::string::npos);
  EXPECT_NE(g.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
  EXPECT_NE(g.find("a &amp; b"), std::string::npos);
  EXPECT_NE(g.find("&quot;q&quot; &#39;x&#39;"), std::string::npos);
  // Provenance: the parent's manifest, the checkpoint (newest step of the root) and the
  // evaluation all match.
  const std::string p = section(h, "provenance");
  EXPECT_NE(p.find(conflux::dataplane::sha256_file(r.data + "/manifest.json")), std::string::npos);
  EXPECT_NE(p.find("parent manifest here <span class=\"ok\">matches</span>"), std::string::npos) << p;
  EXPECT_NE(p.find("(step 20)"), std::string::npos);
  EXPECT_NE(p.find("MATCHES the dataset above"), std::string::npos);
  EXPECT_NE(p.find("MATCHES the checkpoint above"), std::string::npos);
  EXPECT_EQ(p.find("does not match"), std::string::npos);
  // Nothing else is left in the directory (the atomic write's temp file is gone).
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(r.root)) files += e.is_regular_file();
  EXPECT_EQ(files, 1u);
}

TEST(RunReport, EpsilonCurveWhenDpIsOn) {
  const RunFiles r = make_run(/*dp=*/true);
  const std::string e = section(conflux::report::render_run_report(r.inputs()), "epsilon");
  EXPECT_NE(e.find("1.0000 at step 20"), std::string::npos) << e;  // 0.5 + 0.025 * 20
  EXPECT_NE(e.find("δ = 1e-05"), std::string::npos);
  EXPECT_NE(e.find("data-series=\"epsilon\" data-points=\"20\""), std::string::npos);
}

TEST(RunReport, ResumedRunKeepsEachStepsLastEntry) {
  const RunFiles r = make_run();
  std::ofstream m(r.train + "/metrics.jsonl", std::ios::app);  // resumed from step 10
  for (int s = 11; s <= 20; ++s) m << json{{"step", s}, {"loss", 2.0}}.dump() << "\n";
  m.close();
  const std::string l = section(conflux::report::render_run_report(r.inputs()), "loss");
  EXPECT_NE(l.find("data-series=\"training loss\" data-points=\"20\""), std::string::npos) << l;
  EXPECT_NE(l.find("2.0000 at step 20"), std::string::npos);
}

TEST(RunReport, MismatchesAreShown) {
  const RunFiles r = make_run(false, std::string(64, 'a'));
  // The parent dataset changed after prepare read it; the evaluation names another checkpoint.
  write(r.raw + "/manifest.json", R"({"rows": 121})");
  json rep = json::parse(read(r.eval + "/report.json"));
  rep["meta"]["checkpoint"] = r.root + "/elsewhere/step-00000010";
  rep["meta"]["manifest_sha256"] = std::string(64, 'b');
  write(r.eval + "/report.json", rep.dump());
  const std::string p = section(conflux::report::render_run_report(r.inputs()), "provenance");
  EXPECT_NE(p.find("parent manifest here <span class=\"bad\">does not match</span>"), std::string::npos) << p;
  EXPECT_NE(p.find("does not match the dataset above"), std::string::npos);
  EXPECT_NE(p.find("does not match the checkpoint above"), std::string::npos);
  EXPECT_EQ(p.find("MATCHES"), std::string::npos);
}

// A federated round's checkpoint names no dataset: the report links it to the dataset through the
// checkpoint the rounds started from (lineage "init"), checking that checkpoint's weights too.
TEST(RunReport, FederatedCheckpointLinksThroughItsInitCheckpoint) {
  RunFiles r = make_run();
  write(r.ckpt + "/model-tp00-of-01.safetensors", "trained weights");
  const std::string fl_root = r.root + "/fl-ckpt", fl = fl_root + "/" + conflux::trainer::checkpoint_dir_name(3);
  conflux::trainer::Lineage lin;
  lin.config_json = "{}";
  lin.dataset_dir = "federated";
  lin.init_checkpoint = r.ckpt;
  lin.init_digest = conflux::trainer::checkpoint_digest(r.ckpt);
  write(fl + "/lineage.json", conflux::trainer::lineage_text(lin));
  EXPECT_EQ(conflux::trainer::load_lineage(fl).init_digest, lin.init_digest);  // round trip
  conflux::trainer::TrainerState st;
  st.step = 3;
  write(fl + "/trainer_state.json", conflux::trainer::trainer_state_text(st, 0));
  json rep = json::parse(read(r.eval + "/report.json"));
  rep["meta"]["checkpoint"] = fl;
  write(r.eval + "/report.json", rep.dump());
  RunReportInputs in = r.inputs();
  in.checkpoint_dir = fl_root;
  std::string p = section(conflux::report::render_run_report(in), "provenance");
  EXPECT_NE(p.find("(round 3) trained in federated rounds"), std::string::npos) << p;
  EXPECT_NE(p.find("started from <code>" + r.ckpt + "</code>, digest <code>" + lin.init_digest.substr(0, 12)),
            std::string::npos) << p;
  EXPECT_NE(p.find("its weights here <span class=\"ok\">match</span>"), std::string::npos) << p;
  EXPECT_NE(p.find("it was trained on <code>" + r.data + "</code>"), std::string::npos) << p;
  EXPECT_NE(p.find("MATCHES the dataset above"), std::string::npos);
  EXPECT_NE(p.find("MATCHES the checkpoint above"), std::string::npos);
  EXPECT_EQ(p.find("does not match"), std::string::npos) << p;
  EXPECT_EQ(p.find("do not match"), std::string::npos) << p;
  // The initial checkpoint's weights changed after the rounds read them, and the dataset shown is
  // not the one it was trained on: both said.
  write(r.ckpt + "/model-tp00-of-01.safetensors", "other weights");
  write(r.data + "/manifest.json", R"({"rows": 7})");
  p = section(conflux::report::render_run_report(in), "provenance");
  EXPECT_NE(p.find("its weights here <span class=\"bad\">do not match</span>"), std::string::npos) << p;
  EXPECT_NE(p.find("does not match the dataset above"), std::string::npos) << p;
  // A checkpoint the rounds started from that is not here any more is said so, not failed.
  fs::remove_all(r.ckpt_root);
  p = section(conflux::report::render_run_report(in), "provenance");
  EXPECT_NE(p.find("not found here, not checked"), std::string::npos) << p;
}

TEST(RunReport, AbsentInputsAreSaidSo) {
  RunReportInputs in;
  const std::string h = conflux::report::render_run_report(in);
  EXPECT_NE(section(h, "funnel").find("No dataset given"), std::string::npos);
  EXPECT_NE(section(h, "loss").find("No training output given"), std::string::npos);
  EXPECT_NE(section(h, "metrics").find("not evaluated yet"), std::string::npos);
  EXPECT_NE(section(h, "generations").find("No evaluation given"), std::string::npos);
  // A directory without the files (evaluation not run yet) is not an error either.
  const std::string d = conflux::test::make_scratch_dir("conflux-run-report-empty-");
  in.dataset_dir = in.train_output_dir = in.checkpoint_dir = in.evaluation_dir = d;
  const std::string h2 = conflux::report::render_run_report(in);
  EXPECT_NE(section(h2, "loss").find("No metrics.jsonl at"), std::string::npos);
  EXPECT_NE(section(h2, "metrics").find("No report.json at"), std::string::npos);
  EXPECT_NE(section(h2, "provenance").find("no checkpoint (lineage.json) at"), std::string::npos);
}

// A malformed file is a DataError whose message names `file` and `detail`.
void expect_data_error(const RunReportInputs& in, const std::string& file, const std::string& detail) {
  try {
    conflux::report::render_run_report(in);
    ADD_FAILURE() << "no error for " << file;
  } catch (const conflux::DataError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(file), std::string::npos) << msg;
    EXPECT_NE(msg.find(detail), std::string::npos) << msg;
  }
}

TEST(RunReport, MalformedFilesNameTheFileLineAndField) {
  {
    const RunFiles r = make_run();
    std::ofstream(r.train + "/metrics.jsonl", std::ios::app) << "{\"step\": 21, \"loss\": \n";
    expect_data_error(r.inputs(), r.train + "/metrics.jsonl", "line 21: not JSON");
  }
  {
    const RunFiles r = make_run();
    std::ofstream(r.train + "/metrics.jsonl", std::ios::app) << "{\"step\": 21, \"loss\": \"high\"}\n";
    expect_data_error(r.inputs(), r.train + "/metrics.jsonl", "line 21: field 'loss' is not a number");
  }
  {
    const RunFiles r = make_run();
    std::ofstream(r.train + "/metrics.jsonl", std::ios::app) << "{\"loss\": 1.0}\n";
    expect_data_error(r.inputs(), r.train + "/metrics.jsonl", "line 21: field 'step' is missing");
  }
  {
    const RunFiles r = make_run();
    write(r.data + "/manifest.json", R"({"rows": 1, "provenance": [{"stage": "prepare", "dropped": {"x": "many"}}]})");
    expect_data_error(r.inputs(), r.data + "/manifest.json", "field 'dropped.x' is not a number");
  }
  {
    const RunFiles r = make_run();
    write(r.eval + "/report.json", R"({"results": [{"metric": "ece", "primary": "ece", "value": "x", "line": ""}]})");
    expect_data_error(r.inputs(), r.eval + "/report.json", "results[0].value");
  }
  {
    const RunFiles r = make_run();
    write(r.eval + "/generations.jsonl", "{\"prompt\": \"p\", \"hypothesis\": 3, \"reference\": \"r\"}\n");
    expect_data_error(r.inputs(), r.eval + "/generations.jsonl", "line 1: field 'hypothesis'");
  }
  {
    const RunFiles r = make_run();
    write(r.ckpt + "/lineage.json", "{\"config\": 3}");
    expect_data_error(r.inputs(), r.ckpt + "/lineage.json", "config");
  }
}

}  // namespace
