// Binding of the `conflux train` config (see train_config.h).
#include "conflux/trainer/train_config.h"

namespace conflux::trainer {

void bind_gpt_config(ConfigBinder& b, GptConfig& model, int64_t& init_seed) {
  b.field("model.vocab_size", model.vocab_size, "vocabulary size (>= the tokenizer's; divisible by tp)").min(2);
  b.field("model.context", model.context, "sequence length of a training window").min(1);
  b.field("model.n_layer", model.n_layer, "transformer blocks").min(1);
  b.field("model.n_head", model.n_head, "attention heads (divisible by tp)").min(1);
  b.field("model.d_model", model.d_model, "model width (divisible by n_head)").min(1);
  b.field("model.dropout", model.dropout, "dropout probability").range(0, 0.99);
  b.field("model.init_seed", init_seed, "seed of the initial weights").min(0);
}

void TrainConfig::bind(ConfigBinder& b) {
  bind_gpt_config(b, model, model_init_seed);

  b.field("data.dataset", dataset, "tokens dataset directory (conflux ingest output)").required();
  b.field("data.val_fraction", val_fraction, "share of windows held out for validation").range(0, 0.5);
  b.field("data.verify_checksums", verify_checksums,
          "check every shard's SHA-256 against the manifest before the first step (shared among the ranks)");

  b.field("train.steps", steps, "optimizer steps").min(1);
  b.field("train.batch_size", batch_size, "global batch in windows per step").min(1);
  b.field("train.micro_batches", micro_batches, "gradient-accumulation micro-batches per step").min(1);
  b.field("train.lr", lr, "peak learning rate").range(0, 10);
  b.field("train.min_lr", min_lr, "final learning rate of the cosine schedule").range(0, 10);
  b.field("train.warmup_steps", warmup_steps, "linear warmup steps").min(0);
  b.field("train.weight_decay", weight_decay, "AdamW decoupled weight decay (2-D weights)").range(0, 1);
  b.field("train.beta1", beta1, "AdamW beta1").range(0, 0.999999);
  b.field("train.beta2", beta2, "AdamW beta2").range(0, 0.999999);
  b.field("train.grad_clip", grad_clip, "global gradient-norm clip (0: off)").min(0);
  b.field("train.seed", seed, "seed of shuffling, dropout and sampling").min(0);
  b.field("train.threads", threads, "intra-op threads per rank").range(1, 256);
  b.field("train.eval_every", eval_every, "validation loss every N steps (0: only at the end)").min(0);
  b.field("train.eval_windows", eval_windows, "held-out windows per validation").min(1);
  b.field("train.device", device, "cpu or cuda").one_of({"cpu", "cuda"});

  grid.bind(b);  // parallel.tp, comm.*
  b.field("parallel.bucket_mb", bucket_mb, "gradient bucket size in MB").range(0.001, 4096);
  b.field("parallel.overlap", overlap, "all-reduce buckets during backward");

  b.field("checkpoint.dir", checkpoint_dir, "checkpoint root directory");
  b.field("checkpoint.every", checkpoint_every, "checkpoint every N steps (0: only at the end)").min(0);
  b.field("checkpoint.keep_last", keep_last, "step directories kept").min(1);
  b.field("checkpoint.resume", resume, "resume from the newest checkpoint in checkpoint.dir");
  b.field("checkpoint.init_from", init_from, "start from this checkpoint's weights (transfer)");
  b.field("checkpoint.freeze", freeze, "parameter-name prefixes kept frozen (e.g. \"h.0.\", \"wte\")");

  b.field("privacy.enabled", dp_enabled, "train with DP-SGD");
  b.field("privacy.clip", dp_clip, "per-sample gradient clip norm C").min(1e-9);
  b.field("privacy.noise_multiplier", dp_noise_multiplier, "noise sigma / C").min(0);
  b.field("privacy.target_epsilon", dp_target_epsilon,
          "stop at this epsilon; with noise_multiplier = 0 solve sigma to reach it at train.steps").min(0);
  b.field("privacy.sample_rate", dp_sample_rate, "Poisson sampling rate q").range(1e-9, 1);
  b.field("privacy.delta", dp_delta, "delta of (epsilon, delta)").range(1e-30, 1);
  b.field("privacy.noise_seed", dp_noise_seed, "-1: secure noise; >= 0 seeded (marked NOT private)").min(-1);

  b.field("output.dir", output_dir, "metrics.jsonl and TensorBoard events go here");
  b.field("output.progress", progress, "rank 0 progress bar on stderr");
  metrics_endpoint.bind(b);
}

}  // namespace conflux::trainer
