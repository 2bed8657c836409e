// `conflux train CONFIG.toml`: data-parallel x tensor-parallel GPT training (see
// trainer/include/conflux/trainer/trainer.h). Run under mpirun or srun; world = dp x tp.
// Exit codes: 0 done (or target epsilon reached), 75 preempted with a checkpoint written
// (SIGUSR1/SIGTERM; rerun the same command to resume), others as every verb.
#include "conflux/cli/cli.h"
#include "conflux/core/error.h"
#include "conflux/core/log.h"
#include "conflux/core/process_grid.h"
#include "conflux/trainer/trainer.h"

#include <nlohmann/json.hpp>

#include <chrono>

namespace {

namespace tr = conflux::trainer;

int run_train(const conflux::cli::Args& args) {
  namespace po = conflux::cli::po;
  po::options_description opts("options");
  std::string config;
  opts.add_options()
      ("config", po::value(&config)->required(), "training config (TOML)")
      ("set", po::value<std::vector<std::string>>()->multitoken(), "override a config value: a.b=c (repeatable)")
      ("json", "print the result as JSON");
  conflux::cli::add_metrics_listen_option(opts);
  po::positional_options_description pos;
  pos.add("config", 1);
  po::variables_map vm;
  if (!conflux::cli::parse(args, opts, &pos, vm,
                           {"train", "CONFIG.toml [--set a.b=c]... [--metrics-listen HOST:PORT] [--json]",
                            "Trains a GPT on a tokens dataset with data x tensor parallelism (world = dp x tp, "
                            "tp from parallel.tp), AdamW + warmup/cosine, optional DP-SGD. Resumes from the newest "
                            "checkpoint in checkpoint.dir. SIGUSR1/SIGTERM: checkpoint and exit 75. Writes "
                            "metrics.jsonl and TensorBoard events to output.dir; rank 0 serves Prometheus metrics on "
                            "metrics.listen / --metrics-listen (docs/operations.md). See docs/training.md.",
                            "mpirun -np 2 conflux train trainer/configs/train-fortunes.toml --set train.steps=200"}))
    return 0;
  std::string toml, json;
  auto cfg = conflux::load_config<tr::TrainConfig>(config, conflux::cli::overrides(vm), &toml, &json);
  conflux::cli::check_metrics_listen(cfg.metrics_endpoint, vm);  // every rank, before MPI starts
  conflux::ProcessGrid grid(cfg.grid.options());
  // Rank 0 serves the metrics (bound before the first step; a taken port aborts the job).
  const auto metrics = conflux::cli::start_metrics(cfg.metrics_endpoint, vm, "train", grid.world_rank() == 0);
  tr::TrainerComms comms;
  comms.world = &grid.world();
  comms.dp = &grid.dp();
  comms.tp = &grid.tp();
  comms.dp_rank = grid.dp_rank();
  comms.dp_size = grid.dp_size();
  comms.tp_rank = grid.tp_rank();
  comms.tp_size = grid.tp_size();
  comms.local_rank = grid.launch().local_rank;
  if (cfg.device == "cuda") {
    comms.dp = &grid.nccl("dp", comms.local_rank);
    comms.tp = &grid.nccl("tp", comms.local_rank);
  }
  int64_t vocab = 0;
  std::string sha;
  const auto loading = std::chrono::steady_clock::now();
  auto source = tr::open_token_dataset(cfg.dataset, &vocab, &sha);
  if (cfg.model.vocab_size < vocab)
    CONFLUX_THROW(ConfigError, "model.vocab_size = {} is smaller than the dataset tokenizer's {} ({})",
                  cfg.model.vocab_size, vocab, cfg.dataset);
  // Shard checksums and token ids (< model.vocab_size, which the embedding would otherwise index
  // out of range), each shard on one rank; every rank gets the same DataError.
  tr::check_token_dataset(cfg.dataset, {cfg.verify_checksums, cfg.model.vocab_size}, grid.world());
  if (grid.world_rank() == 0)
    conflux::log::info("train: dataset {} opened and checked in {:.3f} s (checksums {}, token ids < {})", cfg.dataset,
                       std::chrono::duration<double>(std::chrono::steady_clock::now() - loading).count(),
                       cfg.verify_checksums ? "verified" : "skipped", cfg.model.vocab_size);
  if (grid.world_rank() == 0)
    conflux::log::info("train: world {} = dp {} x tp {}, {} tokens, {} parameters", grid.world_size(),
                       grid.dp_size(), grid.tp_size(), source->num_tokens(), cfg.model.num_params());
  tr::TrainHooks hooks;
  hooks.metrics = metrics.get();
  tr::TrainResult r = tr::train(cfg, *source, comms, json, sha, hooks);
  if (grid.world_rank() == 0) {
    const char* status = r.status == tr::TrainStatus::Completed        ? "completed"
                         : r.status == tr::TrainStatus::Preempted      ? "preempted"
                                                                       : "epsilon_reached";
    nlohmann::json j = {{"status", status}, {"step", r.step}, {"loss", r.last_loss},
                        {"tokens_per_s", r.tokens_per_second}, {"checkpoint", r.checkpoint}};
    if (r.val_loss >= 0) j["val_loss"] = r.val_loss;
    if (cfg.dp_enabled) j["epsilon"] = r.epsilon;
    conflux::cli::emit(vm.count("json") > 0, j.dump(),
                       fmt::format("{} at step {}: loss {:.4f}{}, {:.0f} tokens/s, checkpoint {}", status,
                                   r.step, r.last_loss,
                                   r.val_loss >= 0 ? fmt::format(" (val {:.4f})", r.val_loss) : "",
                                   r.tokens_per_second, r.checkpoint));
  }
  metrics.final_scrape(cfg.metrics_endpoint);
  return r.status == tr::TrainStatus::Preempted ? conflux::kExitPreempted : conflux::kExitOk;
}

CONFLUX_CONFIG_SCHEMA("train", "GPT training run (conflux train)", tr::TrainConfig);
CONFLUX_VERB("train", "train a GPT (data x tensor parallel, DP-SGD, resume, preemption)", run_train);

}  // namespace
