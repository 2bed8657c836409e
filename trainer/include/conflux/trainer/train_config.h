// The `conflux train` configuration (TOML through core/config.h; no libtorch here).
//
//   [model]      vocab_size, context, n_layer, n_head, d_model, dropout, init_seed
//   [data]       dataset (directory), val_fraction, verify_checksums
//   [train]      steps, batch_size (global windows per step), micro_batches, lr, min_lr,
//                warmup_steps, weight_decay, beta1, beta2, grad_clip, seed, threads, eval_every,
//                eval_windows, device ("cpu" | "cuda")
//   [parallel]   tp (dp = world / tp), bucket_mb, overlap
//   [comm]       timeout_s (every collective), shm (shared-memory all-reduce on one node),
//                shm_small_bytes, shm_large_bytes, shm_chunk_bytes (core's GridConfig)
//   [checkpoint] dir, every, keep_last, resume, init_from, freeze (parameter-name prefixes)
//   [privacy]    enabled, clip, noise_multiplier, target_epsilon (then the multiplier is solved
//                for `train.steps`), sample_rate, delta, noise_seed (-1: SecureRandom)
//   [output]     dir (metrics.jsonl and TensorBoard events), progress
//   [metrics]    listen (rank 0 serves Prometheus metrics on it; docs/operations.md)
#pragma once

#include "conflux/core/config.h"
#include "conflux/core/metrics_exporter.h"
#include "conflux/core/process_grid.h"
#include "conflux/trainer/gpt_config.h"

#include <string>
#include <vector>

namespace conflux::trainer {

// The [model] keys (model.vocab_size, context, n_layer, n_head, d_model, dropout, init_seed),
// shared by every config that describes a GPT (training, federated rounds and their tasks).
void bind_gpt_config(ConfigBinder& b, GptConfig& model, int64_t& init_seed);

struct TrainConfig {
  GptConfig model;
  int64_t model_init_seed = 1234;

  std::string dataset;
  double val_fraction = 0.05;
  bool verify_checksums = true;  // SHA-256 of every shard before the first step (token ids: always)

  int64_t steps = 100;
  int64_t batch_size = 16;
  int64_t micro_batches = 1;
  double lr = 3e-4, min_lr = 3e-5;
  int64_t warmup_steps = 10;
  double weight_decay = 0.1, beta1 = 0.9, beta2 = 0.95, grad_clip = 1.0;
  int64_t seed = 1;
  int threads = 1;
  int64_t eval_every = 50;
  int64_t eval_windows = 32;
  std::string device = "cpu";

  GridConfig grid;  // parallel.tp and [comm] (core: shared by every MPI stage's config)
  double bucket_mb = 25.0;
  bool overlap = true;

  std::string checkpoint_dir = "checkpoints";
  int64_t checkpoint_every = 100;
  int keep_last = 3;
  bool resume = true;
  std::string init_from;
  std::vector<std::string> freeze;

  bool dp_enabled = false;
  double dp_clip = 1.0;
  double dp_noise_multiplier = 1.0;
  double dp_target_epsilon = 0.0;
  double dp_sample_rate = 0.01;
  double dp_delta = 1e-5;
  int64_t dp_noise_seed = -1;

  std::string output_dir = "runs/train";
  bool progress = true;

  metrics::MetricsConfig metrics_endpoint;  // [metrics] listen, final_scrape_timeout_s

  void bind(ConfigBinder& b);
};

}  // namespace conflux::trainer
