// Distributed evaluation: plan, dispatch (workers or MPI ranks), exact merge, outputs. See
// evaluate_job.h.
#include <conflux/tasks/evaluate_job.h>

#include "server_setup.h"

#include <conflux/core/atomic_file.h>
#include <conflux/core/error.h>
#include <conflux/core/log.h>
#include <conflux/core/metrics_registry.h>
#include <conflux/core/process_grid.h>
#include <conflux/dataplane/dataset.h>
#include <conflux/dataplane/manifest.h>
#include <conflux/evaluator/distributed.h>
#include <conflux/evaluator/metric_set.h>
#include <conflux/protocol/dispatcher.h>
#include <conflux/protocol/endpoint.h>
#include <conflux/protocol/server.h>
#include <conflux/trainer/checkpoint_meta.h>
#include <conflux/trainer/data.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>

namespace conflux::tasks {
namespace {

namespace ev = conflux::evaluator;
namespace cw = conflux::tasks;
namespace proto = conflux::protocol;
using std::chrono::milliseconds;

struct Plan {
  std::string checkpoint;  // resolved step directory
  int64_t step = 0;
  int64_t rows = 0;        // rows of the dataset
  int64_t row_begin = 0, row_end = 0;  // the rows of the split evaluated
  std::string split;
  std::string split_checkpoint;  // whose lineage chose the rows (validation/train splits)
  std::string manifest_sha256;
  std::vector<cw::EvaluateParams> tasks;
  bool generates = false;  // some metric reads text: tasks carry generation params
};

bool reads_text(const ev::MetricSet& set) {
  for (const auto& n : set.names())
    if (set.metric(n).inputs() == ev::InputKind::Text) return true;
  return false;
}

// The rows of the split `c.split` (see EvaluateConfig): with "validation" or "train", the
// checkpoint's lineage must name this very dataset (same manifest SHA-256), and the windows the
// training run held out (data.val_fraction of its windows of model.context tokens, the last ones
// of the token stream; trainer::split_windows) decide the boundary: validation = the rows that
// start at or after the first held-out window (no token of them was trained on), train = the
// rows before (a row straddling the boundary counts as train: part of it was seen). With
// evaluate.split_checkpoint set, that checkpoint's lineage decides instead, so that another model
// (say the one it was fine-tuned from) is scored on exactly the same rows.
void choose_rows(const EvaluateConfig& c, Plan* p) {
  p->split = c.split;
  if (c.split == "all") {
    p->row_begin = 0;
    p->row_end = p->rows;
    return;
  }
  const std::string split_from =
      c.split_checkpoint.empty() ? p->checkpoint : cw::resolve_checkpoint(c.split_checkpoint);
  p->split_checkpoint = split_from;
  const trainer::Lineage lineage = trainer::load_lineage(split_from);
  if (lineage.manifest_sha256 != p->manifest_sha256) {
    CONFLUX_THROW(ConfigError,
                  "evaluate.split = \"{}\" needs the dataset checkpoint {} was trained on ({}, manifest "
                  "SHA-256 {}), but {} has manifest SHA-256 {}; set evaluate.split = \"all\" to "
                  "evaluate every row of another dataset{}",
                  c.split, split_from, lineage.dataset_dir, lineage.manifest_sha256, c.dataset,
                  p->manifest_sha256,
                  c.split_checkpoint.empty() ? ", or evaluate.split_checkpoint to take the rows "
                                               "another checkpoint held out" : "");
  }
  nlohmann::json cfg = nlohmann::json::parse(lineage.config_json.empty() ? "{}" : lineage.config_json,
                                             nullptr, false);
  const auto* val = cfg.is_object() && cfg.contains("data") ? &cfg["data"] : nullptr;
  const auto* model = cfg.is_object() && cfg.contains("model") ? &cfg["model"] : nullptr;
  if (!val || !model || !(*val).value("val_fraction", nlohmann::json()).is_number() ||
      !(*model).value("context", nlohmann::json()).is_number_integer()) {
    CONFLUX_THROW(DataError, "{}/lineage.json: config lacks data.val_fraction or model.context, "
                  "so the held-out rows are unknown; set evaluate.split = \"all\"", split_from);
  }
  const double val_fraction = (*val)["val_fraction"].get<double>();
  const int64_t context = (*model)["context"].get<int64_t>();
  if (val_fraction <= 0 && c.split == "validation") {
    CONFLUX_THROW(ConfigError, "checkpoint {} was trained with data.val_fraction = 0: no rows were "
                  "held out; evaluate data it never saw with evaluate.split = \"all\"", split_from);
  }
  const dataplane::Dataset ds = dataplane::Dataset::open(c.dataset);
  const std::vector<int64_t> offsets = ds.token_offsets(0, p->rows);  // rows + 1 stream positions
  const trainer::WindowSplit w = trainer::split_windows(offsets.back(), context, val_fraction);
  const int64_t boundary = w.val_start_token(context);
  const auto first = std::lower_bound(offsets.begin(), offsets.end() - 1, boundary);
  const int64_t r0 = static_cast<int64_t>(first - offsets.begin());
  if (c.split == "validation") {
    p->row_begin = r0;
    p->row_end = p->rows;
  } else {
    p->row_begin = 0;
    p->row_end = r0;
  }
  if (p->row_begin == p->row_end) {
    CONFLUX_THROW(DataError, "dataset {}: no row lies in the {} split (held-out windows start at "
                  "token {} of {}); set evaluate.split = \"all\"", c.dataset, c.split, boundary,
                  offsets.back());
  }
}

Plan make_plan(const EvaluateConfig& c, const ev::MetricSet& set) {
  Plan p;
  p.checkpoint = cw::resolve_checkpoint(c.checkpoint);
  p.step = conflux::trainer::load_trainer_state(p.checkpoint).step;
  p.rows = conflux::dataplane::Manifest::load(c.dataset).num_rows();
  p.manifest_sha256 = conflux::dataplane::sha256_file(c.dataset + "/manifest.json");
  p.generates = reads_text(set);
  choose_rows(c, &p);
  log::info("evaluate: split '{}': rows [{}, {}) of {}", p.split, p.row_begin, p.row_end, p.rows);
  for (int64_t b = p.row_begin; b < p.row_end; b += c.rows_per_task) {
    cw::EvaluateParams t;
    t.checkpoint = p.checkpoint;
    t.row_begin = b;
    t.row_end = std::min(p.row_end, b + c.rows_per_task);
    t.metrics = c.metrics;
    t.context = c.context;
    t.batch_size = c.batch_size;
    t.threads = c.threads;
    t.manifest_sha256 = p.manifest_sha256;
    t.checkpoint_step = p.step;
    if (p.generates) t.generation = c.generation;
    p.tasks.push_back(std::move(t));
  }
  return p;
}

std::vector<uint8_t> tensor_bytes(const proto::Tensor& t) {
  return std::vector<uint8_t>(t.data(), t.data() + t.byte_length());
}

// Dispatches every task to workers; returns the merged Stats (task order) and run facts, and
// appends the tasks' generations (JSON lines, task order) to `generations`.
ev::SetStats run_with_workers(const EvaluateConfig& c, const Plan& plan, const ev::MetricSet& set,
                              nlohmann::json* run, std::vector<uint8_t>* generations,
                              metrics::Registry* metrics) {
  proto::ServerOptions so = make_server_options(c.endpoint, c.insecure, c.key, c.allow, c.heartbeat_ms,
                                                c.dead_after_ms, "evaluate");
  if (metrics) so.link.metrics = proto::register_link_metrics(*metrics, "conflux_coordinator");
  proto::Server server(so);
  conflux::log::info("evaluate: listening on {}, waiting for {} worker(s)", server.endpoint(), c.workers);
  proto::DispatcherOptions dopt;
  dopt.max_attempts = static_cast<uint32_t>(c.max_attempts);
  dopt.default_deadline = milliseconds(static_cast<int64_t>(c.task_deadline_s * 1000));
  dopt.metrics = metrics;
  proto::TaskDispatcher dispatcher(server, dopt);
  if (!dispatcher.wait_for_workers(static_cast<size_t>(c.workers),
                                   milliseconds(static_cast<int64_t>(c.wait_s * 1000))))
    CONFLUX_THROW(CommError, "only {} of {} worker(s) connected to {} within {} s",
                  dispatcher.live_workers(), c.workers, server.endpoint(), c.wait_s);
  const auto started = std::chrono::steady_clock::now();
  proto::BatchSpec batch;
  for (const auto& t : plan.tasks) {
    proto::TaskSpec spec;
    spec.kind = "evaluate";
    spec.params = t.to_json();
    spec.validate = [&plan, begin = t.row_begin,
                     end = t.row_end](const proto::Message& m) -> std::string {
      const size_t want = plan.generates ? 2 : 1;
      if (m.tensors.size() != want || m.tensors[0].name() != "stats" ||
          m.tensors[0].dtype() != conflux::DType::U8)
        return plan.generates ? "expected uint8 tensors 'stats' and 'generations'"
                              : "expected one uint8 tensor 'stats'";
      if (plan.generates &&
          (m.tensors[1].name() != "generations" || m.tensors[1].dtype() != conflux::DType::U8))
        return "expected a uint8 tensor 'generations' after 'stats'";
      try {
        const auto s = nlohmann::json::parse(m.header.result().summary());
        if (s.value("manifest_sha256", "") != plan.manifest_sha256)
          return "worker dataset differs (manifest SHA-256)";
        if (s.value("checkpoint_step", int64_t{-1}) != plan.step) return "worker checkpoint step differs";
        const auto* d = m.tensors[0].data();
        ev::MetricSet::from_bytes(std::vector<uint8_t>(d, d + m.tensors[0].byte_length()));
        if (plan.generates) {
          int64_t last = begin - 1;  // examples: rows of this task, ascending
          const auto& g = m.tensors[1];
          for (const auto& ex : cw::examples_from_jsonl(g.data(), g.byte_length())) {
            if (ex.row <= last || ex.row >= end)
              return "generation for row " + std::to_string(ex.row) + " is not in this task's rows";
            last = ex.row;
          }
        }
      } catch (const std::exception& e) {
        return std::string("undecodable result: ") + e.what();
      }
      return "";
    };
    batch.tasks.push_back(std::move(spec));
  }
  // Results are folded into the merged stats as they arrive (merging is exact, so the order
  // does not change a bit) and dropped; only the generations, which are output, are kept, per
  // task so that generations.jsonl stays in row order.
  ev::SetStats all = set.empty();
  std::vector<std::vector<uint8_t>> gen_by_task(plan.tasks.size());
  nlohmann::json per_task = nlohmann::json::array();
  std::vector<nlohmann::json> task_facts(plan.tasks.size());
  const proto::BatchReport report = dispatcher.run_batch(
      std::move(batch),
      [&](proto::TaskResult&& r) {
        ev::MetricSet::merge_into(all, ev::MetricSet::from_bytes(tensor_bytes(r.outputs.at(0))));
        if (plan.generates) gen_by_task[r.index] = tensor_bytes(r.outputs.at(1));
        task_facts[r.index] = {{"task", r.task_id}, {"worker", r.worker}, {"attempts", r.attempts}};
      },
      milliseconds(static_cast<int64_t>(c.timeout_s * 1000)));
  if (!report.quorum_met) CONFLUX_THROW(CommError, "evaluation incomplete: {}", report.describe());
  for (auto& g : gen_by_task) generations->insert(generations->end(), g.begin(), g.end());
  for (auto& f : task_facts) per_task.push_back(std::move(f));
  (*run)["mode"] = "workers";
  // Wall time from the first dispatch to the last result (workers load the model in it).
  (*run)["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  (*run)["tasks"] = per_task;
  return all;
}

}  // namespace

void EvaluateConfig::bind(ConfigBinder& b) {
    b.field("evaluate.checkpoint", checkpoint, "checkpoint root (newest step) or step directory").required();
    b.field("evaluate.dataset", dataset, "tokens dataset directory (the coordinator reads its manifest; "
            "workers use their own --data copy, checked by manifest SHA-256)").required();
    b.field("evaluate.metrics", metrics, "token metrics (perplexity, ece, calibration) and text "
            "metrics of generations (bleu, rouge_l, distinct)");
    b.field("evaluate.split", split, "rows to evaluate: validation (held out by the checkpoint's "
          "training run), train, or all (any dataset)").one_of({"validation", "train", "all"});
    b.field("evaluate.split_checkpoint", split_checkpoint, "checkpoint whose training run decides the "
            "validation/train rows (\"\": evaluate.checkpoint); compares two models on the same rows");
  b.field("evaluate.rows_per_task", rows_per_task, "dataset rows per task").min(1);
    b.field("evaluate.context", context, "window length (0 = the model's context)").min(0);
    b.field("evaluate.batch_size", batch_size, "windows per forward pass").min(1);
    b.field("evaluate.threads", threads, "torch threads per worker/rank (same everywhere)").min(1);
    b.field("server.bind", endpoint, "ZeroMQ endpoint the coordinator binds");
    b.field("server.key", key, "coordinator secret key file (conflux keygen)");
    b.field("server.allow", allow, "allow-list file of worker public keys");
    b.field("server.insecure", insecure, "plaintext, unauthenticated (local tests only)");
    b.field("server.workers", workers, "workers to wait for before dispatching").min(1);
    b.field("server.wait_s", wait_s, "seconds to wait for those workers").min(0);
    b.field("server.timeout_s", timeout_s, "seconds for all tasks to finish").min(1);
    b.field("server.task_deadline_s", task_deadline_s, "per-attempt deadline (0 = none)").min(0);
    b.field("server.max_attempts", max_attempts, "dispatches per task before failing").min(1);
    b.field("server.heartbeat_ms", heartbeat_ms, "heartbeat interval").min(10);
    b.field("server.dead_after_ms", dead_after_ms, "silence before a worker is declared dead").min(50);
    generation.bind(b, "generation");
    b.field("output.dir", output_dir, "directory for report.json, report.html, config.toml");
    grid.bind_comm(b);
    metrics_endpoint.bind(b);
}

EvaluateOutput run_evaluation(const EvaluateConfig& cfg, const std::string& toml,
                              const std::string& effective_json, ProcessGrid* grid,
                              metrics::Registry* metrics) {
  // A bad endpoint is a config error before anything is loaded, not when the server binds.
  if (!grid) proto::check_endpoint(cfg.endpoint, proto::EndpointUse::Bind, "server.bind");
  const ev::MetricSet set(metric_specs(cfg.metrics));
  const Plan plan = make_plan(cfg, set);
  if (metrics) {
    metrics->gauge("conflux_evaluate_tasks", "tasks in the evaluation plan").set(static_cast<double>(plan.tasks.size()));
    metrics->gauge("conflux_evaluate_rows", "dataset rows evaluated (the split)")
        .set(static_cast<double>(plan.row_end - plan.row_begin));
  }
  std::vector<uint8_t> generations;  // JSON lines, task (= row) order
  nlohmann::json run = nlohmann::json::object();
  ev::SetStats all;
  int rank = 0;
  if (grid) {
    rank = grid->world_rank();
    const int size = grid->world_size();
    cw::EvaluateTask task;
    ev::SetStats local = set.empty();
    // Contiguous shares of the task list, so rank order equals task order.
    const auto n = static_cast<int64_t>(plan.tasks.size());
    std::vector<uint8_t> local_gen;
    const auto started = std::chrono::steady_clock::now();
    for (int64_t i = n * rank / size; i < n * (rank + 1) / size; ++i) {
      cw::EvaluateResult r = task.run(plan.tasks[static_cast<size_t>(i)], cfg.dataset);
      ev::MetricSet::merge_into(local, r.stats);
      const auto g = cw::examples_to_jsonl(r.generations);
      local_gen.insert(local_gen.end(), g.begin(), g.end());
    }
    all = set.empty();
    for (const auto& name : set.names()) all[name] = ev::merge_across(local.at(name), grid->world());
    // Generations to rank 0, concatenated in rank (= task) order.
    std::vector<std::vector<uint8_t>> to(static_cast<size_t>(size));
    to[0] = std::move(local_gen);
    std::vector<size_t> counts;
    generations = grid->world().alltoallv_bytes(to, &counts);
    run["mode"] = "mpi";
    run["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    run["ranks"] = size;
  } else {
    all = run_with_workers(cfg, plan, set, &run, &generations, metrics);
  }
  EvaluateOutput out;
  if (rank != 0) return out;
  nlohmann::json meta = {{"checkpoint", plan.checkpoint},
                         {"checkpoint_step", plan.step},
                         {"checkpoint_sha256", conflux::trainer::checkpoint_digest(plan.checkpoint)},
                         {"dataset", std::filesystem::absolute(cfg.dataset).string()},
                         {"manifest_sha256", plan.manifest_sha256},
                         {"split", plan.split},
                         {"split_checkpoint", plan.split_checkpoint},
                         {"split_rows", {plan.row_begin, plan.row_end}},
                         {"rows", plan.row_end - plan.row_begin},
                         {"dataset_rows", plan.rows},
                         {"tasks", plan.tasks.size()},
                         {"generations", plan.generates ? nlohmann::json(std::count(
                                                              generations.begin(), generations.end(), '\n'))
                                                        : nlohmann::json(nullptr)},
                         {"config", nlohmann::json::parse(effective_json)}};
  const ev::Report report = set.report(all, meta);
  std::filesystem::create_directories(cfg.output_dir);
  conflux::write_file_atomic(cfg.output_dir + "/config.toml", toml);
  conflux::write_file_atomic(cfg.output_dir + "/run.json", run.dump(2) + "\n");
  if (plan.generates)
    conflux::write_file_atomic(cfg.output_dir + "/generations.jsonl",
                          std::string(generations.begin(), generations.end()));
  const auto paths = ev::write_report(report, cfg.output_dir);
  if (metrics) {
    metrics->gauge("conflux_evaluate_seconds", "wall time of the evaluation run (set when it ends)")
        .set(run.value("seconds", 0.0));
    metrics->gauge("conflux_evaluate_done", "1 once the report is written").set(1);
  }
  out.written = true;
  out.paths = paths;
  out.report = report;
  return out;
}

}  // namespace conflux::tasks
