// Federated rounds on the job layer (federate_job.h): sampling, one targeted batch per round,
// fold-in-task-order aggregation, DP-FedAvg with accounting, atomic round checkpoints, resume.
#include <conflux/tasks/federate_job.h>

#include "server_setup.h"

#include <conflux/core/atomic_file.h>
#include <conflux/core/error.h>
#include <conflux/core/log.h>
#include <conflux/core/privacy.h>
#include <conflux/core/progress.h>
#include <conflux/core/rng.h>
#include <conflux/federated/dp_fedavg.h>
#include <conflux/federated/safetensors_io.h>
#include <conflux/federated/strategy.h>
#include <conflux/protocol/dispatcher.h>
#include <conflux/protocol/endpoint.h>
#include <conflux/protocol/server.h>
#include <conflux/tasks/evaluate_task.h>
#include <conflux/trainer/checkpoint.h>
#include <conflux/trainer/checkpoint_meta.h>
#include <conflux/trainer/gpt.h>
#include <conflux/trainer/metrics.h>
#include <conflux/trainer/train_config.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>

namespace conflux::tasks {

void FederateConfig::bind(ConfigBinder& b) {
  trainer::bind_gpt_config(b, model, init_seed);
  b.field("model.init_from", init_from, "start from this checkpoint's weights (root or step directory) "
          "instead of the model.init_seed initialisation");
  b.field("federate.rounds", rounds, "rounds to run (a resumed run counts the rounds already done)").min(1);
  b.field("federate.clients_per_round", clients_per_round,
          "participants sampled per round (0: every available one; with privacy: the expected cohort qN)")
      .min(0);
  b.field("federate.min_clients", min_clients, "accepted results needed to complete a round").min(1);
  b.field("federate.min_available", min_available, "connected participants needed to start a round").min(1);
  b.field("federate.round_timeout_s", round_timeout_s, "seconds a round waits for results").min(0.1);
  b.field("federate.round_retries", round_retries, "retries of a round that misses min_clients").min(0);
  b.field("federate.seed", seed, "seed of sampling and of the participants' local training").min(0);
  b.field("federate.max_update_norm", max_update_norm,
          "> 0: reject an update whose L2 distance to the global model exceeds this").min(0);
  b.field("federate.strategy", strategy, "aggregation strategy").one_of(federated::strategy_names());
  if (b.mode() == ConfigBinder::Mode::Load || !strategy_params)
    strategy_params = std::shared_ptr<federated::StrategyParams>(federated::strategy_params(strategy));
  strategy_params->bind(b);
  local.bind(b, "local");
  b.field("privacy.enabled", dp_enabled, "DP-FedAvg: clipped updates, Gaussian noise, user-level epsilon");
  b.field("privacy.clip", dp_clip, "L2 bound S of each participant's update").min(1e-12);
  b.field("privacy.noise_multiplier", dp_noise_multiplier, "z: noise std z*S on the sum of updates (adaptive_clip: the "
          "round's z, update and count together)").min(0);
  b.field("privacy.target_epsilon", dp_target_epsilon, "stop before a round would exceed this (0: no limit)").min(0);
  b.field("privacy.delta", dp_delta, "delta of the reported (epsilon, delta)").range(1e-300, 0.5);
  b.field("privacy.population", dp_population, "N: participants in the population (q = clients_per_round / N)")
      .min(0);
  b.field("privacy.adaptive_clip", dp_adaptive_clip, "adaptive clipping (Andrew et al. 2021): privacy.clip is the "
          "initial bound, moved each round toward privacy.target_quantile of the update norms");
  b.field("privacy.target_quantile", dp_target_quantile, "gamma: the quantile of update norms the bound tracks, in (0, 1)")
      .range(0, 1);
  b.field("privacy.clip_lr", dp_clip_lr, "eta_C: S <- S * exp(-eta_C * (b_bar - gamma)) each round").min(0);
  b.field("privacy.clip_count_stddev", dp_clip_count_stddev,
          "sigma_b: noise std of the clipped-bit count (-1: clients_per_round / 20, as the paper recommends)")
      .min(-1);
  b.field("privacy.noise_seed", dp_noise_seed, "-1: SecureRandom; >= 0: seeded, reproducible, NOT private").min(-1);
  secagg.bind(b);
  b.field("evaluate.every", evaluate_every, "rounds between federated evaluations (0: never)").min(0);
  b.field("server.bind", endpoint, "ZeroMQ endpoint the coordinator binds");
  b.field("server.key", key, "coordinator secret key file (conflux keygen)");
  b.field("server.allow", allow, "allow-list file of participant public keys");
  b.field("server.insecure", insecure, "plaintext, unauthenticated (local tests only)");
  b.field("server.wait_s", wait_s, "seconds to wait for min_available participants").min(0);
  b.field("server.max_attempts", max_attempts, "dispatches of a fit task to its participant").min(1);
  b.field("server.heartbeat_ms", heartbeat_ms, "heartbeat interval").min(10);
  b.field("server.dead_after_ms", dead_after_ms, "silence before a participant is declared dead").min(50);
  b.field("checkpoint.dir", checkpoint_dir, "round checkpoints (trainer format, one per round)");
  b.field("checkpoint.keep_last", keep_last, "round checkpoints kept (0: all)").min(0);
  b.field("output.dir", output_dir, "rounds.jsonl, TensorBoard events, config.toml");
  b.field("output.save_updates", save_updates, "write each round's accepted updates under output.dir/updates");
  b.field("output.progress", progress, "progress bar on a terminal");
  metrics_endpoint.bind(b);
}

namespace {

namespace fs = std::filesystem;
namespace fd = conflux::federated;
namespace proto = conflux::protocol;
namespace tr = conflux::trainer;
using json = nlohmann::json;
using std::chrono::milliseconds;

constexpr const char* kStateFile = "federated_state.json";
constexpr const char* kStrategyFile = "strategy_state.safetensors";

// ---- weights <-> wire tensors ----

std::vector<proto::Tensor> to_tensors(const fd::Weights& w) {
  std::vector<proto::Tensor> out;
  out.reserve(w.size());
  for (const auto& t : w)
    out.push_back(proto::Tensor::copy(t.name, DType::F32, t.shape, t.values.data(), t.values.size() * sizeof(float)));
  return out;
}

// DataError naming the participant when a tensor is not float32 or its size disagrees.
fd::Weights from_tensors(const std::vector<proto::Tensor>& ts, const std::string& source) {
  fd::Weights w;
  w.reserve(ts.size());
  for (const auto& t : ts) {
    if (t.dtype() != DType::F32)
      CONFLUX_THROW(DataError, "{}: tensor '{}' is {}, expected float32", source, t.name(), dtype_name(t.dtype()));
    fd::NamedTensor n{t.name(), t.shape(), {}};
    const size_t count = fd::numel(t.shape(), source + ": tensor '" + t.name() + "'");
    if (count * sizeof(float) != t.byte_length())
      CONFLUX_THROW(DataError, "{}: tensor '{}' has {} bytes for shape {}", source, t.name(), t.byte_length(),
                    fd::shape_string(t.shape()));
    n.values.assign(t.as<float>(), t.as<float>() + count);
    w.push_back(std::move(n));
  }
  return w;
}

// The initial global model: a checkpoint's weights, or the GPT initialisation for init_seed.
fd::Weights initial_weights(const FederateConfig& c) {
  tr::GptConfig mc = c.model;
  mc.init_seed = static_cast<uint64_t>(c.init_seed);
  tr::Gpt model(mc);
  if (!c.init_from.empty()) tr::load_model(resolve_checkpoint(c.init_from), *model);
  fd::Weights w;
  for (const auto& info : model->param_infos()) {
    torch::Tensor t = info.tensor.detach().contiguous();
    fd::NamedTensor n{info.name, t.sizes().vec(), {}};
    n.values.assign(t.data_ptr<float>(), t.data_ptr<float>() + t.numel());
    w.push_back(std::move(n));
  }
  return w;
}

// ---- round checkpoints ----

struct Resumed {
  int64_t round = 0;
  std::string dir;  // the round's step directory
  fd::Weights global;
  json state;
};

std::optional<Resumed> load_latest_round(const FederateConfig& c, fd::Strategy& strategy,
                                         privacy::RdpAccountant& accountant) {
  if (!fs::exists(c.checkpoint_dir)) return std::nullopt;
  tr::remove_checkpoint_leftovers(c.checkpoint_dir);
  const auto dir = tr::latest_checkpoint(c.checkpoint_dir);
  if (!dir) return std::nullopt;
  const std::string state_path = *dir + "/" + kStateFile;
  if (!fs::exists(state_path))
    CONFLUX_THROW(ConfigError, "checkpoint.dir {} holds {}, which is not a federated round (no {}); use another "
                  "checkpoint.dir or model.init_from to start from it", c.checkpoint_dir, *dir, kStateFile);
  Resumed r;
  r.dir = *dir;
  std::ifstream in(state_path);
  r.state = json::parse(in, nullptr, false);
  if (r.state.is_discarded() || !r.state.contains("round"))
    CONFLUX_THROW(DataError, "{}: not a federated round state (unparsable or no 'round')", state_path);
  r.round = r.state["round"].get<int64_t>();
  const tr::TrainerState ts = tr::load_trainer_state(*dir);
  const auto& m = ts.model;
  if (m.vocab_size != c.model.vocab_size || m.context != c.model.context || m.n_layer != c.model.n_layer ||
      m.n_head != c.model.n_head || m.d_model != c.model.d_model)
    CONFLUX_THROW(ConfigError, "{}: the checkpoint's model differs from [model] of this config; resume with the "
                  "config it was written with, or use another checkpoint.dir", *dir);
  r.global = fd::read_weights(*dir + "/model-tp00-of-01.safetensors").weights;
  if (r.state.value("strategy", std::string()) != strategy.name())
    CONFLUX_THROW(ConfigError, "{}: written by strategy '{}', this config says '{}'", state_path,
                  r.state.value("strategy", std::string()), strategy.name());
  strategy.load_state(fd::read_strategy_state(*dir + "/" + kStrategyFile));
  accountant.set_history(ts.accountant);
  log::info("federate: resuming after round {} from {}", r.round, *dir);
  return r;
}

void write_round(const FederateConfig& c, int64_t round, const fd::Weights& global, const fd::Strategy& strategy,
                 const privacy::RdpAccountant& accountant, bool noise_private, const json& state,
                 const std::string& effective_json, const tr::Lineage& origin) {
  fs::create_directories(c.checkpoint_dir);
  const std::string name = tr::checkpoint_dir_name(round);
  const std::string staging = c.checkpoint_dir + "/.tmp-" + name;
  fs::remove_all(staging);
  fs::create_directories(staging);
  std::map<std::string, std::string> meta;
  for (const auto& t : global)
    meta["shard." + t.name] = json{{"global_shape", t.shape}, {"dim", -1}, {"offset", 0}}.dump();
  fd::write_weights(staging + "/model-tp00-of-01.safetensors", global, meta);
  tr::TrainerState ts;
  ts.step = round;
  ts.seed = static_cast<uint64_t>(c.seed);
  ts.noise_private = noise_private;
  ts.accountant = accountant.history();
  ts.model = c.model;
  ts.model.init_seed = static_cast<uint64_t>(c.init_seed);
  write_file_atomic(staging + "/trainer_state.json", tr::trainer_state_text(ts, 0));
  tr::Lineage lineage;
  lineage.config_json = effective_json;
  lineage.dataset_dir = "federated";
  lineage.init_checkpoint = origin.init_checkpoint;
  lineage.init_digest = origin.init_digest;
  write_file_atomic(staging + "/lineage.json", tr::lineage_text(lineage));
  fd::write_strategy_state(staging + "/" + kStrategyFile, strategy.save_state());
  write_file_atomic(staging + "/" + kStateFile, state.dump(2) + "\n");
  publish_directory(staging, c.checkpoint_dir + "/" + name);
  if (c.keep_last > 0) {
    auto all = tr::list_checkpoints(c.checkpoint_dir);
    while (static_cast<int64_t>(all.size()) > c.keep_last) {
      fs::remove_all(all.front());
      all.erase(all.begin());
    }
  }
}

// ---- sampling ----

// The connected participants offering "fit" (and, with secure aggregation, its stages: the others,
// e.g. the Python participant, are left out and named in `excluded`).
std::vector<std::string> participants(const proto::WorkerPool& pool, bool secagg,
                                      std::vector<std::string>* excluded = nullptr) {
  std::vector<std::string> ids;
  for (const auto& [id, info] : pool.workers()) {
    const auto& kinds = info.hello.task_kinds();
    auto has = [&](const char* k) { return std::find(kinds.begin(), kinds.end(), k) != kinds.end(); };
    if (!has("fit")) continue;
    if (secagg && !(has("secagg_advertise") && has("secagg_share_keys") && has("secagg_unmask"))) {
      if (excluded) excluded->push_back(id);
      continue;
    }
    ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

std::vector<std::string> sample(const FederateConfig& c, const std::vector<std::string>& available, int64_t round,
                                int64_t attempt, RandomSource* secure) {
  std::vector<std::string> chosen;
  if (c.dp_enabled) {
    const double q = static_cast<double>(c.clients_per_round) / static_cast<double>(c.dp_population);
    Stream seeded(static_cast<uint64_t>(c.seed), "poisson-sample", static_cast<uint64_t>(round),
                  static_cast<uint64_t>(attempt));
    RandomSource& rng = secure ? *secure : static_cast<RandomSource&>(seeded);
    for (const auto& id : available)
      if (rng.bernoulli(q)) chosen.push_back(id);
    return chosen;
  }
  chosen = available;
  Stream rng(static_cast<uint64_t>(c.seed), "sample", static_cast<uint64_t>(round), static_cast<uint64_t>(attempt));
  const size_t k = c.clients_per_round == 0 ? chosen.size()
                                            : std::min(chosen.size(), static_cast<size_t>(c.clients_per_round));
  for (size_t i = 0; i < k; ++i) std::swap(chosen[i], chosen[i + rng.below(chosen.size() - i)]);
  chosen.resize(k);
  std::sort(chosen.begin(), chosen.end());
  return chosen;
}

int64_t participant_seed(const FederateConfig& c, int64_t round, const std::string& id) {
  Stream s(static_cast<uint64_t>(c.seed), "fit", static_cast<uint64_t>(round), hash64(id.data(), id.size()));
  return static_cast<int64_t>(s.next_u64() >> 1);
}

// The coordinator's conflux_federate_* series (docs/operations.md).
struct FederateMetrics {
  explicit FederateMetrics(metrics::Registry& r)
      : round(r.gauge("conflux_federate_round", "the last completed round (the global model's round)")),
        connected(r.gauge("conflux_federate_participants_connected", "participants offering 'fit' connected")),
        sampled(r.gauge("conflux_federate_participants_sampled", "participants sampled in the current round")),
        accepted(r.counter("conflux_federate_updates_accepted", "updates folded into a global model")),
        rejected(r.counter("conflux_federate_updates_rejected", "updates rejected (malformed, over the norm bound)")),
        dropped(r.counter("conflux_federate_updates_dropped", "sampled participants without a result (lost, cancelled, failed)")),
        retries(r.counter("conflux_federate_round_retries", "rounds retried for missing min_clients")),
        train_loss(r.gauge("conflux_federate_train_loss", "local training loss of the last round, weighted by examples")),
        val_loss(r.gauge("conflux_federate_val_loss", "validation loss of the global model across participants")),
        epsilon(r.gauge("conflux_federate_epsilon", "user-level epsilon spent (DP-FedAvg)")),
        clip_norm(r.gauge("conflux_federate_clip_norm", "DP-FedAvg's clip bound S for the next round")),
        seconds(r.gauge("conflux_federate_round_seconds", "wall time of the last round")) {}
  metrics::Gauge &round, &connected, &sampled;
  metrics::Counter &accepted, &rejected, &dropped, &retries;
  metrics::Gauge &train_loss, &val_loss, &epsilon, &clip_norm, &seconds;
};

// ---- one round ----

// The per-participant facts of a round's results: accepted list, weighted train loss, the
// federated evaluation (merged exactly from the participants' NLL sums).
struct Stats {
  json accepted = json::array(), per_eval = json::object();
  double loss_weighted = 0, examples = 0, val_nll = 0, val_tokens = 0;

  // Returns the participant's entry (the caller may add to it).
  json& add(const std::string& who, const json& s, int64_t n, uint64_t elapsed_ms) {
    // No local steps (local.steps = 0) means no training loss, not a loss of 0.
    json loss = nullptr;
    if (s.contains("train_loss") && s.value("steps", int64_t{1}) > 0) {
      loss = s["train_loss"].get<double>();
      loss_weighted += loss.get<double>() * static_cast<double>(n);
      examples += static_cast<double>(n);
    }
    if (s.contains("val_loss_sum") && s.value("val_tokens", int64_t{0}) > 0) {
      const double vn = s["val_loss_sum"].get<double>(), vt = s["val_tokens"].get<double>();
      per_eval[who] = vn / vt;
      val_nll += vn;
      val_tokens += vt;
    }
    accepted.push_back({{"participant", who}, {"num_examples", n}, {"train_loss", loss},
                        {"seconds", static_cast<double>(elapsed_ms) / 1000.0}});
    return accepted.back();
  }

  void write(json& rec, int64_t round) const {
    if (examples > 0) rec["train_loss"] = loss_weighted / examples;
    if (val_tokens > 0) {
      double lo = 1e300, hi = -1e300;
      for (auto& [k, v] : per_eval.items()) {
        lo = std::min(lo, v.get<double>());
        hi = std::max(hi, v.get<double>());
      }
      rec["eval"] = {{"loss", val_nll / val_tokens}, {"perplexity", std::exp(val_nll / val_tokens)},
                     {"tokens", val_tokens}, {"per_participant", per_eval}, {"largest_gap", hi - lo},
                     {"model_round", round - 1}};
    }
  }
};

struct RoundOutcome {
  bool complete = false;
  fd::Weights next;
  double next_clip = 0;  // DP-FedAvg: the bound of the next round
  json record;
};

class Federation {
 public:
  Federation(const FederateConfig& c, const std::string& effective_json, metrics::Registry* registry)
      : c_(c), effective_json_(effective_json), strategy_(fd::make_strategy(c.strategy, *c.strategy_params)),
        registry_(registry), clip_(c.dp_clip) {
    check();
    if (registry_) metrics_ = std::make_unique<FederateMetrics>(*registry_);
  }

  FederateOutput run(const std::string& effective_toml) {
    fs::create_directories(c_.output_dir);
    write_file_atomic(c_.output_dir + "/config.toml", effective_toml);
    privacy::RdpAccountant accountant;
    int64_t done = 0;
    json last_record;
    if (auto r = load_latest_round(c_, *strategy_, accountant)) {
      done = r->round;
      global_ = std::move(r->global);
      last_record = r->state.value("record", json());
      clip_ = r->state.value("clip_norm", c_.dp_clip);
      const tr::Lineage prev = tr::load_lineage(r->dir);  // keeps the origin round 1 recorded
      origin_.init_checkpoint = prev.init_checkpoint;
      origin_.init_digest = prev.init_digest;
    } else {
      global_ = initial_weights(c_);
      if (!c_.init_from.empty()) {
        origin_.init_checkpoint = resolve_checkpoint(c_.init_from);
        origin_.init_digest = tr::checkpoint_digest(origin_.init_checkpoint);
      }
    }
    load_records(done, last_record);
    FederateOutput out;
    out.rounds_completed = done;
    out.status = "completed";
    if (done >= c_.rounds) {
      log::info("federate: all {} round(s) already done ({})", c_.rounds, c_.checkpoint_dir);
      out.checkpoint = tr::latest_checkpoint(c_.checkpoint_dir).value_or("");
      return out;
    }
    proto::ServerOptions so = make_server_options(c_.endpoint, c_.insecure, c_.key, c_.allow, c_.heartbeat_ms,
                                                  c_.dead_after_ms, "federate");
    if (registry_) so.link.metrics = proto::register_link_metrics(*registry_, "conflux_coordinator");
    proto::Server server(so);
    log::info("federate: listening on {}; rounds {}..{} with strategy {}", server.endpoint(), done + 1, c_.rounds,
              c_.strategy);
    proto::DispatcherOptions dopt;
    dopt.max_attempts = static_cast<uint32_t>(c_.max_attempts);
    dopt.metrics = registry_;
    proto::TaskDispatcher dispatcher(server, dopt);
    if (metrics_) metrics_->round.set(static_cast<double>(done));
    if (metrics_ && c_.dp_enabled) metrics_->clip_norm.set(clip_);
    std::unique_ptr<SecureRandom> secure;
    if (c_.dp_enabled && c_.dp_noise_seed < 0) secure = std::make_unique<SecureRandom>();
    tr::EventWriter events(c_.output_dir);
    ProgressOptions po;
    if (!c_.progress) po.terminal = 0;
    Progress progress("federate", static_cast<uint64_t>(c_.rounds), po);
    progress.set(static_cast<uint64_t>(done));
    for (int64_t round = done + 1; round <= c_.rounds; ++round) {
      if (c_.dp_enabled && c_.dp_target_epsilon > 0) {
        privacy::RdpAccountant next = accountant;
        next.step(c_.dp_noise_multiplier, q());
        const double eps = next.epsilon(c_.dp_delta).epsilon;
        if (eps > c_.dp_target_epsilon) {
          log::info("federate: stopping before round {}: it would spend epsilon {:.4f} > privacy.target_epsilon {}",
                    round, eps, c_.dp_target_epsilon);
          out.status = "epsilon budget reached";
          break;
        }
      }
      RoundOutcome r;
      for (int64_t attempt = 0; attempt <= c_.round_retries; ++attempt) {
        r = run_round(server, dispatcher, round, attempt, secure.get());
        if (r.complete) break;
        if (metrics_) metrics_->retries.inc();
        log::warn("federate: round {} attempt {} incomplete: {}", round, attempt + 1,
                  r.record.value("why", std::string()));
      }
      if (!r.complete)
        CONFLUX_THROW(CommError, "round {} could not complete after {} attempt(s): {}; the last complete round is "
                      "{} (restart to resume from it)", round, c_.round_retries + 1,
                      r.record.value("why", std::string()), round - 1);
      if (c_.dp_enabled) accountant.step(c_.dp_noise_multiplier, q());
      r.record["update_norm"] = fd::l2_distance(r.next, global_);
      global_ = std::move(r.next);
      if (c_.dp_enabled) {
        const auto e = accountant.epsilon(c_.dp_delta);
        r.record["epsilon"] = e.epsilon;
        r.record["delta"] = c_.dp_delta;
        r.record["noise"] = secure ? "secure" : "seeded (not private)";
        out.epsilon = e.epsilon;
      }
      if (c_.dp_enabled) clip_ = r.next_clip;
      if (metrics_ && c_.dp_enabled) metrics_->clip_norm.set(clip_);  // before the round gauge moves
      json state = {{"round", round}, {"strategy", strategy_->name()}, {"seed", c_.seed}, {"record", r.record}};
      if (c_.dp_enabled) state["clip_norm"] = clip_;  // the next round's bound (adaptive clipping)
      write_round(c_, round, global_, *strategy_, accountant, secure != nullptr, state, effective_json_, origin_);
      append_record(r.record);
      scalars(events, r.record, round);
      out.rounds_completed = round;
      if (metrics_) {
        const auto& cl = r.record["clients"];
        metrics_->round.set(static_cast<double>(round));
        metrics_->accepted.inc(cl["accepted"].get<double>());
        metrics_->rejected.inc(static_cast<double>(cl["rejected"].size()));
        metrics_->dropped.inc(static_cast<double>(cl["dropped"].size()));
        metrics_->seconds.set(r.record["seconds"].get<double>());
        if (r.record.contains("train_loss")) metrics_->train_loss.set(r.record["train_loss"].get<double>());
        if (r.record.contains("eval")) metrics_->val_loss.set(r.record["eval"]["loss"].get<double>());
        if (r.record.contains("epsilon")) metrics_->epsilon.set(r.record["epsilon"].get<double>());
      }
      std::string extra = fmt::format("{}/{} responded", r.record["clients"]["accepted"].get<int64_t>(),
                                      r.record["clients"]["asked"].get<int64_t>());
      if (r.record.contains("train_loss")) extra += fmt::format(", loss {:.4f}", r.record["train_loss"].get<double>());
      if (r.record.contains("epsilon")) extra += fmt::format(", eps {:.3f}", r.record["epsilon"].get<double>());
      progress.set(static_cast<uint64_t>(round), extra);
      log::info("federate: round {} done: {}", round, extra);
    }
    progress.finish();
    out.checkpoint = tr::latest_checkpoint(c_.checkpoint_dir).value_or("");
    return out;
  }

 private:
  void check() {
    if (!c_.insecure && (c_.key.empty() || c_.allow.empty()))  // before anything is written
      CONFLUX_THROW(ConfigError, "server.key and server.allow are required (or server.insecure = true)");
    proto::check_endpoint(c_.endpoint, proto::EndpointUse::Bind, "server.bind");
    tr::validate(c_.model, 1);
    check_secagg();
    if (c_.clients_per_round > 0 && c_.min_clients > c_.clients_per_round && !c_.dp_enabled)
      CONFLUX_THROW(ConfigError, "federate.min_clients ({}) exceeds federate.clients_per_round ({})", c_.min_clients,
                    c_.clients_per_round);
    if (c_.min_available < c_.min_clients)
      CONFLUX_THROW(ConfigError, "federate.min_available ({}) is below federate.min_clients ({}): a round could never "
                    "complete", c_.min_available, c_.min_clients);
    if (c_.dp_enabled) {
      if (c_.strategy != "fedavg")
        CONFLUX_THROW(ConfigError, "privacy.enabled uses DP-FedAvg's own clipped average; set federate.strategy = "
                      "\"fedavg\" (got \"{}\")", c_.strategy);
      if (c_.clients_per_round < 1 || c_.dp_population < c_.clients_per_round)
        CONFLUX_THROW(ConfigError, "privacy.enabled needs federate.clients_per_round >= 1 and privacy.population >= "
                      "it (q = clients_per_round / population), got {} and {}", c_.clients_per_round,
                      c_.dp_population);
    }
    update_noise_multiplier_ = c_.dp_noise_multiplier;
    if (c_.dp_enabled && c_.dp_adaptive_clip) check_adaptive_clip();
  }

  // Adaptive clipping: gamma in (0, 1), sigma_b (default M / 20), and z_delta for the update sum.
  void check_adaptive_clip() {
    if (!(c_.dp_target_quantile > 0 && c_.dp_target_quantile < 1))
      CONFLUX_THROW(ConfigError, "privacy.target_quantile must be in (0, 1) (exclusive), got {}",
                    c_.dp_target_quantile);
    if (c_.dp_clip_count_stddev < 0 && c_.dp_clip_count_stddev != -1)
      CONFLUX_THROW(ConfigError, "privacy.clip_count_stddev must be >= 0 (or -1: clients_per_round / 20), got {}",
                    c_.dp_clip_count_stddev);
    adaptive_.target_quantile = c_.dp_target_quantile;
    adaptive_.clip_lr = c_.dp_clip_lr;
    adaptive_.count_stddev = c_.dp_clip_count_stddev < 0 ? static_cast<double>(c_.clients_per_round) / 20.0
                                                         : c_.dp_clip_count_stddev;
    if (c_.dp_noise_multiplier > 0 && !(2 * adaptive_.count_stddev > c_.dp_noise_multiplier))
      CONFLUX_THROW(ConfigError, "privacy.clip_count_stddev (sigma_b = {}{}) is too small for privacy.noise_multiplier "
                    "z = {}: the update noise z_delta = (z^-2 - (2 sigma_b)^-2)^(-1/2) needs sigma_b > z/2 = {}; raise "
                    "privacy.clip_count_stddev or lower privacy.noise_multiplier", adaptive_.count_stddev,
                    c_.dp_clip_count_stddev < 0 ? ", the default clients_per_round / 20" : "", c_.dp_noise_multiplier,
                    c_.dp_noise_multiplier / 2);
    update_noise_multiplier_ =
        privacy::adaptive_clip_update_noise_multiplier(c_.dp_noise_multiplier, adaptive_.count_stddev);
  }

  void check_secagg() const {
    const auto& sa = c_.secagg;
    if (!sa.enabled) return;
    if (c_.dp_enabled && c_.dp_adaptive_clip)
      CONFLUX_THROW(ConfigError, "privacy.adaptive_clip cannot be on with secure_aggregation.enabled: the count of "
                    "clipped updates would need a secure sum of its own (not implemented); use a fixed privacy.clip");
    if (c_.strategy != "fedavg")
      CONFLUX_THROW(ConfigError, "secure_aggregation.enabled sums updates, so only federate.strategy = \"fedavg\" "
                    "works with it (got \"{}\")", c_.strategy);
    if (c_.save_updates)
      CONFLUX_THROW(ConfigError, "output.save_updates cannot be on with secure_aggregation.enabled: the coordinator "
                    "never sees an individual update");
    if (c_.max_update_norm > 0)
      CONFLUX_THROW(ConfigError, "federate.max_update_norm cannot be checked with secure_aggregation.enabled (the "
                    "coordinator never sees an individual update); bound updates with secure_aggregation.clip");
    if (sa.neighbours == 1)
      CONFLUX_THROW(ConfigError, "secure_aggregation.neighbours = 1 leaves each participant a single neighbour; use 0 "
                    "(all) or an even number >= 2");
    if (sa.threshold == 1)
      CONFLUX_THROW(ConfigError, "secure_aggregation.threshold = 1 lets any one participant rebuild another's secrets; "
                    "use 0 (automatic) or >= 2");
    if (sa.neighbours > 0 && sa.threshold > sa.neighbours)
      CONFLUX_THROW(ConfigError, "secure_aggregation.threshold ({}) exceeds secure_aggregation.neighbours ({})",
                    sa.threshold, sa.neighbours);
    if (c_.clients_per_round > 0 && sa.threshold >= c_.clients_per_round)
      CONFLUX_THROW(ConfigError, "secure_aggregation.threshold ({}) must be below federate.clients_per_round ({}): "
                    "a participant shares its secrets with at most clients_per_round - 1 others",
                    sa.threshold, c_.clients_per_round);
  }

  double q() const { return static_cast<double>(c_.clients_per_round) / static_cast<double>(c_.dp_population); }

  RoundOutcome run_round(proto::Server& server, proto::TaskDispatcher& dispatcher, int64_t round, int64_t attempt,
                         RandomSource* secure) {
    RoundOutcome out;
    json& rec = out.record;
    const auto started = std::chrono::steady_clock::now();
    // 1. Enough participants.
    const auto wait_until = started + milliseconds(static_cast<int64_t>(c_.wait_s * 1000));
    while (static_cast<int64_t>(participants(server, c_.secagg.enabled).size()) < c_.min_available &&
           std::chrono::steady_clock::now() < wait_until)
      dispatcher.step(milliseconds(100));
    std::vector<std::string> excluded;
    const auto available = participants(server, c_.secagg.enabled, &excluded);
    for (const auto& id : excluded)
      log::warn("federate: round {}: participant '{}' offers 'fit' but not secure aggregation "
                "(secagg_advertise, secagg_share_keys, secagg_unmask; e.g. the Python participant): left out "
                "because secure_aggregation.enabled = true", round, id);
    if (metrics_) metrics_->connected.set(static_cast<double>(available.size()));
    rec = {{"round", round}, {"attempt", attempt + 1}, {"strategy", c_.strategy}};
    if (static_cast<int64_t>(available.size()) < c_.min_available) {
      rec["why"] = fmt::format("only {} participant(s) offering 'fit'{} connected within {} s (federate.min_available "
                               "= {}){}", available.size(), c_.secagg.enabled ? " and secure aggregation" : "",
                               c_.wait_s, c_.min_available,
                               excluded.empty() ? "" : fmt::format("; left out for lacking secure aggregation: {}",
                                                                   fmt::join(excluded, ", ")));
      return out;
    }
    // 2. The cohort.
    const auto cohort = sample(c_, available, round, attempt, secure);
    if (static_cast<int64_t>(cohort.size()) < c_.min_clients && !c_.dp_enabled) {
      rec["why"] = fmt::format("sampled {} participant(s), fewer than federate.min_clients = {}", cohort.size(),
                               c_.min_clients);
      return out;
    }
    if (metrics_) metrics_->sampled.set(static_cast<double>(cohort.size()));
    log::info("federate: round {} attempt {}: sampled {} of {} participant(s): {}", round, attempt + 1, cohort.size(),
              available.size(), fmt::join(cohort, ", "));
    const bool evaluate = c_.evaluate_every > 0 && (round - 1) % c_.evaluate_every == 0;
    // 3. The batch.
    auto shared = std::make_shared<proto::SharedInputs>();
    shared->key = fmt::format("global-r{}-{:016x}", round - 1, weights_digest());
    shared->tensors = to_tensors(global_);
    shared->replaces = "global-";  // workers keep one round's model, not every round's
    if (c_.secagg.enabled)
      return secure_round(dispatcher, round, attempt, cohort, available.size(), evaluate, shared, started, rec);
    proto::BatchSpec batch;
    batch.round = static_cast<uint64_t>(round);
    batch.quorum = static_cast<size_t>(std::min<int64_t>(c_.min_clients, static_cast<int64_t>(cohort.size())));
    batch.deadline = milliseconds(static_cast<int64_t>(c_.round_timeout_s * 1000));
    for (const auto& id : cohort) batch.tasks.push_back(fit_task(round, id, evaluate, shared, ""));
    // 4. Fold results in task order.
    std::unique_ptr<fd::DpFedAvg> dp;
    if (c_.dp_enabled) {
      dp = std::make_unique<fd::DpFedAvg>(
          fd::DpFedAvgOptions{clip_, update_noise_multiplier_, static_cast<double>(c_.clients_per_round)});
      dp->begin_round(global_);
    } else {
      strategy_->begin_round(&global_);
    }
    std::map<size_t, proto::TaskResult> waiting;  // results waiting for earlier tasks
    size_t next = 0;                               // the next task index to fold
    json rejected = json::array();
    Stats st;
    uint64_t bytes_in = 0;
    auto fold = [&](proto::TaskResult&& r) {
      const std::string& who = cohort[r.index];
      const std::string source = "participant '" + who + "'";
      try {
        const json s = json::parse(r.summary);
        const auto n = s.at("num_examples").get<int64_t>();
        if (n < 1) CONFLUX_THROW(DataError, "{}: num_examples {} < 1", source, n);
        fd::ClientResult cr{from_tensors(r.outputs, source), static_cast<uint64_t>(n), source};
        fd::match_layout(cr.weights, global_, source);
        const double norm = fd::l2_distance(cr.weights, global_);
        if (!std::isfinite(norm)) fd::check_weights(cr.weights, source);  // names the NaN or Inf
        if (c_.max_update_norm > 0 && norm > c_.max_update_norm)
          CONFLUX_THROW(DataError, "{}: update norm {:.6g} exceeds federate.max_update_norm {}", source, norm,
                        c_.max_update_norm);
        if (c_.save_updates) save_update(round, who, cr.weights, n);
        if (dp) dp->add(std::move(cr));
        else strategy_->add(std::move(cr));
        st.add(who, s, n, r.elapsed_ms)["update_norm"] = norm;
      } catch (const Error& e) {
        log::warn("federate: round {}: rejected the update of {}: {}", round, who, e.message());
        rejected.push_back({{"participant", who}, {"why", e.message()}});
      } catch (const json::exception& e) {
        log::warn("federate: round {}: rejected the update of {}: bad summary: {}", round, who, e.what());
        rejected.push_back({{"participant", who}, {"why", std::string("bad summary: ") + e.what()}});
      }
    };
    auto drain = [&](bool all) {
      while (!waiting.empty()) {
        auto it = waiting.begin();
        if (!all && it->first != next) break;
        next = it->first + 1;
        fold(std::move(it->second));
        waiting.erase(it);
      }
    };
    const uint64_t sends_before = dispatcher.shared_sends(), stale_before = dispatcher.stale_results();
    proto::BatchReport report = dispatcher.run_batch(
        std::move(batch),
        [&](proto::TaskResult&& r) {
          for (const auto& t : r.outputs) bytes_in += t.byte_length();
          waiting.emplace(r.index, std::move(r));
          drain(false);  // the rest wait until the batch closes (a missing task is known only then)
        },
        milliseconds(static_cast<int64_t>(c_.round_timeout_s * 1000) + 5000));
    drain(true);
    json dropped = json::array();
    for (const auto& m : report.missing)
      dropped.push_back({{"participant", cohort[m.index]}, {"why", proto::missing_name(m.why)},
                         {"kind", proto::task_error_kind_name(m.error_kind)}, {"detail", m.detail}});
    const size_t n_accepted = st.accepted.size();
    rec["clients"] = {{"available", available.size()}, {"asked", cohort.size()}, {"responded", report.succeeded},
                      {"accepted", n_accepted},   {"dropped", dropped},         {"rejected", rejected},
                      {"participants", st.accepted}};
    rec["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    rec["bytes_in"] = bytes_in;
    rec["stale_results"] = dispatcher.stale_results() - stale_before;  // late or replayed, answered STALE_RESULT
    rec["bytes_out"] = (dispatcher.shared_sends() - sends_before) * fd::weight_bytes(global_);
    st.write(rec, round);
    const int64_t need = c_.dp_enabled ? std::min<int64_t>(c_.min_clients, static_cast<int64_t>(cohort.size()))
                                       : c_.min_clients;
    if (static_cast<int64_t>(n_accepted) < need || n_accepted == 0) {
      rec["why"] = fmt::format("{} accepted result(s), federate.min_clients = {}; {}", n_accepted, c_.min_clients,
                               report.describe());
      return out;  // the strategy's server state moves only in finish(): nothing to undo
    }
    if (dp) {
      Stream seeded(static_cast<uint64_t>(std::max<int64_t>(c_.dp_noise_seed, 0)), "dp-fedavg-noise",
                    static_cast<uint64_t>(round));
      RandomSource& noise = secure ? *secure : static_cast<RandomSource&>(seeded);
      rec["clipped"] = dp->clipped();
      rec["clip_norm"] = clip_;
      out.next = dp->finish(noise);
      out.next_clip = clip_;
      if (c_.dp_adaptive_clip) {  // the noised bit count, after the update noise
        Stream seeded_count(static_cast<uint64_t>(std::max<int64_t>(c_.dp_noise_seed, 0)), "dp-fedavg-clip-count",
                            static_cast<uint64_t>(round));
        const auto step = dp->adapt_clip(adaptive_, secure ? *secure : static_cast<RandomSource&>(seeded_count));
        rec["clip_fraction"] = step.fraction;
        rec["next_clip_norm"] = step.next_clip;
        rec["update_noise_multiplier"] = update_noise_multiplier_;
        out.next_clip = step.next_clip;
      }
    } else {
      out.next = strategy_->finish();
    }
    out.complete = true;
    return out;
  }

  proto::TaskSpec fit_task(int64_t round, const std::string& id, bool evaluate,
                           const std::shared_ptr<proto::SharedInputs>& shared, const std::string& secagg) const {
    FitParams p;
    p.model = c_.model;
    p.init_seed = c_.init_seed;
    p.local = c_.local;
    p.seed = participant_seed(c_, round, id);
    p.round = round;
    p.evaluate = evaluate;
    p.secagg = secagg;
    proto::TaskSpec spec;
    spec.kind = "fit";
    spec.params = p.to_json();
    spec.shared = shared;
    spec.target = id;
    return spec;
  }

  // A round under secure aggregation (secagg_round.h): the stages, then global + the unmasked
  // example-weighted mean update.
  RoundOutcome secure_round(proto::TaskDispatcher& dispatcher, int64_t round, int64_t attempt,
                            const std::vector<std::string>& cohort, size_t available, bool evaluate,
                            const std::shared_ptr<proto::SharedInputs>& shared,
                            std::chrono::steady_clock::time_point started, json rec) {
    RoundOutcome out;
    size_t num_values = 0;
    for (const auto& t : global_) num_values += t.values.size();
    const uint64_t sends_before = dispatcher.shared_sends();
    SecaggOutcome s = run_secagg_round(
        dispatcher, c_.secagg, cohort, round, attempt, static_cast<uint64_t>(c_.seed), num_values,
        [&](size_t index, const std::string& kind, const json& stage) {
          proto::TaskSpec spec = fit_task(round, cohort[index], evaluate, shared, stage.dump());
          spec.kind = kind;
          if (kind != "fit") spec.shared = nullptr;
          return spec;
        },
        SecaggDp{c_.dp_enabled, clip_, c_.dp_noise_multiplier, static_cast<double>(c_.clients_per_round),
                 c_.min_clients, c_.dp_noise_seed});
    Stats st;
    for (const auto& [index, r] : s.fit) {
      const json summary = json::parse(r.summary, nullptr, false);
      st.add(cohort[index], summary, summary.value("num_examples", int64_t{0}), r.elapsed_ms);
    }
    rec["clients"] = {{"available", available}, {"asked", cohort.size()}, {"responded", s.fit.size()},
                      {"accepted", s.fit.size()}, {"dropped", s.dropped}, {"rejected", json::array()},
                      {"participants", st.accepted}};
    rec["secure_aggregation"] = s.record;
    rec["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    rec["bytes_in"] = s.bytes_in;
    rec["bytes_out"] = (dispatcher.shared_sends() - sends_before) * fd::weight_bytes(global_);
    st.write(rec, round);
    out.record = std::move(rec);
    if (!s.complete) {
      out.record["why"] = s.why;
      return out;
    }
    if (static_cast<int64_t>(s.fit.size()) < c_.min_clients) {
      out.record["why"] = fmt::format("{} masked input(s) unmasked, federate.min_clients = {}", s.fit.size(),
                                      c_.min_clients);
      return out;
    }
    out.next = global_;
    size_t i = 0;
    for (auto& t : out.next)
      for (auto& v : t.values) v = static_cast<float>(static_cast<double>(v) + s.mean_delta[i++]);
    if (c_.dp_enabled) {
      out.record["clip_norm"] = clip_;
      out.next_clip = clip_;
    }
    out.complete = true;
    return out;
  }

  uint64_t weights_digest() const {
    uint64_t h = 0;
    for (const auto& t : global_) h = hash64(t.values.data(), t.values.size() * sizeof(float), h);
    return h;
  }

  void save_update(int64_t round, const std::string& who, const fd::Weights& w, int64_t n) {
    const std::string dir = fmt::format("{}/updates/round-{:05d}", c_.output_dir, round);
    fs::create_directories(dir);
    std::string safe = who;
    for (char& ch : safe)
      if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '-' && ch != '_') ch = '_';
    fd::write_weights(dir + "/" + safe + ".safetensors", w, {{"num_examples", std::to_string(n)}});
  }

  // rounds.jsonl: the records of rounds 1..done (a resumed run drops lines of rounds it redoes).
  // A coordinator killed between publishing round `done` and rewriting rounds.jsonl left that
  // round's line out: it comes back from the checkpoint (`last`, federated_state.json's record).
  void load_records(int64_t done, const json& last) {
    records_.clear();
    std::ifstream in(c_.output_dir + "/rounds.jsonl");
    std::string line;
    bool have_last = false;
    while (std::getline(in, line)) {
      const json j = json::parse(line, nullptr, false);
      if (j.is_discarded()) continue;
      const int64_t r = j.value("round", int64_t{0});
      if (r <= done) records_.push_back(line);
      have_last = have_last || r == done;
    }
    if (done > 0 && !have_last && last.is_object()) {
      log::info("federate: restoring round {}'s line of rounds.jsonl from its checkpoint", done);
      append_record(last);
    }
  }

  void append_record(const json& rec) {
    records_.push_back(rec.dump());
    std::string text;
    for (const auto& l : records_) text += l + "\n";
    write_file_atomic(c_.output_dir + "/rounds.jsonl", text);
  }

  static void scalars(tr::EventWriter& ev, const json& rec, int64_t round) {
    if (rec.contains("train_loss")) ev.add_scalar("federate/train_loss", rec["train_loss"].get<double>(), round);
    if (rec.contains("eval")) ev.add_scalar("federate/val_loss", rec["eval"]["loss"].get<double>(), round);
    if (rec.contains("epsilon")) ev.add_scalar("federate/epsilon", rec["epsilon"].get<double>(), round);
    if (rec.contains("clip_norm")) ev.add_scalar("federate/clip_norm", rec["clip_norm"].get<double>(), round);
    ev.add_scalar("federate/accepted", rec["clients"]["accepted"].get<double>(), round);
    ev.add_scalar("federate/update_norm", rec["update_norm"].get<double>(), round);
    ev.flush();
  }

  const FederateConfig& c_;
  const std::string effective_json_;
  std::unique_ptr<fd::Strategy> strategy_;
  metrics::Registry* registry_ = nullptr;
  std::unique_ptr<FederateMetrics> metrics_;
  fd::Weights global_;
  tr::Lineage origin_;  // init_checkpoint / init_digest: where round 1 started
  std::vector<std::string> records_;
  double clip_ = 0;                     // DP-FedAvg's bound S of the next round (adaptive clipping moves it)
  double update_noise_multiplier_ = 0;  // z, or z_delta with adaptive clipping
  fd::AdaptiveClipOptions adaptive_;
};

}  // namespace

FederateOutput run_federation(const FederateConfig& cfg, const std::string& effective_toml,
                              const std::string& effective_json, metrics::Registry* metrics) {
  Federation f(cfg, effective_json, metrics);
  return f.run(effective_toml);
}

}  // namespace conflux::tasks
