// Federated learning rounds on the job layer: what `conflux federate fl.toml` runs.
//
// A round, step by step:
//  1. Wait until federate.min_available workers offering "fit" are connected (server.wait_s).
//  2. Sample the cohort from the connected participants, sorted by authenticated identity:
//     seeded (federate.seed, the round, the attempt) clients_per_round of them (0 = all); with
//     privacy on, Poisson sampling with rate q = clients_per_round / privacy.population (what the
//     accountant assumes).
//  3. One job-layer batch: a "fit" task targeted at each sampled participant (it trains on its
//     own data only; a lost participant's task never runs elsewhere), the global model as the
//     batch's shared inputs (sent once per worker, cached), quorum = min_clients, deadline =
//     round_timeout_s. The batch closes when every task finished or at the deadline; stragglers
//     are cancelled and their late results answered STALE_RESULT.
//  4. Results are folded into the strategy (or DP-FedAvg's clipped sum) as they arrive, in task
//     order: a result waits only for the results of earlier tasks still running, so the sum is
//     the same whatever the arrival order (the reason a restarted run is bit-identical). A result
//     that does not fit the global model (names, shapes, dtype, NaN/Inf) or whose update norm
//     exceeds federate.max_update_norm is rejected for that round and logged; the round goes on.
//  5. Fewer than min_clients accepted results: the round is retried (a new sample) up to
//     federate.round_retries times, then the run stops with a CommError saying why.
//  6. The new global model is written as a checkpoint in the trainer's format
//     (checkpoint.dir/step-<round>: model-tp00-of-01.safetensors, trainer_state.json,
//     lineage.json) plus federated_state.json (round, accountant, run facts) and
//     strategy_state.safetensors (the strategy's server state), published atomically. `conflux
//     generate`, `conflux evaluate` (split = "all") and train.init_from read it.
//  7. One JSON line per round is appended to output.dir/rounds.jsonl (the file is rewritten
//     atomically) and TensorBoard scalars to output.dir.
//
// Resume: started again with the same config, the run continues after the newest complete round
// checkpoint (global weights, strategy state, accountant); every random choice derives from
// (federate.seed, round, attempt, participant), so with the same participants the final model
// equals an uninterrupted run's bit for bit. Workers reconnect by themselves.
//
// Privacy (DP-FedAvg, dp_fedavg.h): per-participant updates clipped to privacy.clip, noise
// z * clip added once per round to the sum, divided by the expected cohort size; the RDP
// accountant's user-level epsilon is logged per round and stored with it, and the run stops
// before a round would exceed privacy.target_epsilon. With privacy.adaptive_clip the bound moves
// each round toward a quantile of the update norms (noised bit count, geometric update; the bound
// is part of the round state: checkpointed, logged as clip_norm). Noise comes from SecureRandom unless
// privacy.noise_seed >= 0 (then reproducible and recorded as not private).
// Secure aggregation (secure_aggregation.enabled, secagg_round.h): step 3-4 become the four
// SecAgg/SecAgg+ stage batches; the coordinator gets only the example-weighted mean of the
// survivors' clipped, quantized updates (FedAvg only; no per-update norm check, no saved updates,
// privacy.enabled refused: distributed DP noise shares are not implemented). Masks and the
// stochastic rounding come from the secure generator, so such a run is not bit-reproducible.
// Thread safety: one federation per process.
#pragma once

#include <conflux/core/config.h>
#include <conflux/core/metrics_exporter.h>
#include <conflux/tasks/fit_task.h>
#include <conflux/tasks/secagg_round.h>
#include <conflux/trainer/gpt_config.h>

#include <memory>
#include <string>

namespace conflux::federated {
class StrategyParams;
}

namespace conflux::tasks {

struct FederateConfig {
  trainer::GptConfig model;
  int64_t init_seed = 1234;
  std::string init_from;            // a checkpoint (root or step directory) to start from

  int64_t rounds = 3;
  int64_t clients_per_round = 0;    // 0: every available participant
  int64_t min_clients = 1;          // accepted results needed to complete a round
  int64_t min_available = 1;        // connected participants needed to start one
  double round_timeout_s = 300;
  int64_t round_retries = 3;
  int64_t seed = 1;
  double max_update_norm = 0;       // > 0: reject updates whose L2 distance to the global exceeds it
  std::string strategy = "fedavg";
  std::shared_ptr<federated::StrategyParams> strategy_params;  // [strategy.<name>]

  LocalTrainParams local;

  bool dp_enabled = false;
  double dp_clip = 1.0, dp_noise_multiplier = 1.0, dp_target_epsilon = 0, dp_delta = 1e-5;
  int64_t dp_population = 0;
  int64_t dp_noise_seed = -1;
  // Adaptive clipping (Andrew et al. 2021): dp_clip is the initial bound, moved each round toward
  // the dp_target_quantile of the update norms; dp_clip_count_stddev < 0: clients_per_round / 20.
  bool dp_adaptive_clip = false;
  double dp_target_quantile = 0.5, dp_clip_lr = 0.2, dp_clip_count_stddev = -1;

  SecaggConfig secagg;              // [secure_aggregation]

  int64_t evaluate_every = 1;       // rounds between federated evaluations (0: never)

  std::string endpoint = "tcp://127.0.0.1:5555", key, allow;
  bool insecure = false;
  double wait_s = 120;
  int max_attempts = 2, heartbeat_ms = 1000, dead_after_ms = 5000;

  std::string checkpoint_dir = "fl-checkpoints";
  int64_t keep_last = 0;            // 0: keep every round's checkpoint
  std::string output_dir = "fl-out";
  bool save_updates = false;        // write each round's accepted updates (safetensors) for audits
  bool progress = true;
  metrics::MetricsConfig metrics_endpoint;  // [metrics] listen: the coordinator's Prometheus endpoint

  void bind(ConfigBinder& b);
};

struct FederateOutput {
  int64_t rounds_completed = 0;     // the global model's round (resumed rounds included)
  std::string status;               // "completed", "epsilon budget reached"
  std::string checkpoint;           // newest round checkpoint
  double epsilon = 0;
};

// Runs (or resumes) the federation; `effective_toml`/`effective_json` are the config as loaded.
// With `metrics`, the run registers and updates conflux_federate_* (round, participants
// connected, accepted / rejected / dropped updates, train and validation loss, epsilon, round
// seconds) and the job layer's conflux_coordinator_* series (docs/operations.md).
FederateOutput run_federation(const FederateConfig& cfg, const std::string& effective_toml,
                              const std::string& effective_json, metrics::Registry* metrics = nullptr);

}  // namespace conflux::tasks
