// The federated participant's tasks: "fit" (local training of the round's global GPT on the
// worker's own --data dataset, returning the new weights) and "evaluate_federated" (the global
// model's next-token loss on the participant's own validation windows). Both run in
// conflux-worker; the coordinator side is federate_job.h.
//
// Inputs: the global weights arrive as the task's shared inputs (float32 tensors named like the
// trainer's parameters, global shapes: cached once per worker by the job layer). Params are
// FitParams as JSON (declared once by bind(): the model, the [local] settings, the seed, the
// round).
//
// Data: the participant's dataset is one token stream cut into windows of model.context tokens
// (trainer/data.h); the last local.val_fraction of the windows are its validation split and are
// never trained on. Local training visits the training windows in the order drawn from `seed`
// (the coordinator derives it from the run seed, the round and the participant's identity), so
// a task re-run with the same params gives the same weights bit for bit (CPU, same threads).
//
// Local objective: mean next-token cross-entropy, plus FedProx's mu/2 * ||w - w_global||^2 when
// local.proximal_mu > 0 (Li et al. 2020); SGD (with momentum and weight decay) or AdamW, a fresh
// optimizer every round; optional gradient-norm clipping. local.steps = 0 (with epochs = 0) trains
// nothing: the global weights come back unchanged with num_examples as usual and no train_loss
// (benchmarks of the round itself: bench/federated/run_rounds.sh).
//
// Outputs of "fit": the new weights (same names, shapes, float32) and a JSON summary:
// num_examples (training windows of this participant: FedAvg's weight), steps, train_loss (mean
// over the local steps), update_norm (L2 of w - w_global), manifest_sha256, train_windows,
// val_windows and, when params.evaluate is true, the global model's validation statistics before
// training (val_loss_sum: summed token NLL in float64, val_tokens). "evaluate_federated" returns
// only the statistics, no tensors.
// Thread safety: an executor runs one task at a time (slots() = 1); it caches the model and the
// dataset of the last task.
#pragma once

#include <conflux/core/config.h>
#include <conflux/protocol/executor.h>
#include <conflux/trainer/gpt_config.h>

#include <memory>
#include <string>

namespace conflux::tasks {

// The [local] section of a federated config: how a participant trains in a round.
struct LocalTrainParams {
  int64_t steps = 10;         // optimizer steps per round (when epochs == 0; 0: no training)
  double epochs = 0;          // > 0: ceil(epochs * training windows / batch_size) steps instead
  int64_t batch_size = 8;     // windows per step
  std::string optimizer = "sgd";  // sgd | adamw
  double lr = 0.05, momentum = 0, weight_decay = 0;
  double proximal_mu = 0;     // FedProx's mu (0: plain local training)
  double grad_clip = 0;       // gradient-norm clip (0: off)
  double val_fraction = 0.1;  // share of the participant's windows held out for validation
  int64_t eval_windows = 0;   // validation windows evaluated (0: all of them)
  int threads = 1;            // torch intra-op threads (keep equal on every participant)

  void bind(ConfigBinder& b, const std::string& prefix);  // prefix.steps, prefix.lr, ...
};

struct FitParams {
  trainer::GptConfig model;
  int64_t init_seed = 1234;   // bound with the model keys; weights come from the global
  LocalTrainParams local;
  int64_t seed = 0;           // this participant's seed for this round
  int64_t round = 0;
  bool evaluate = false;      // fit: also evaluate the global model first
  std::string secagg;         // secure aggregation: this stage's JSON (secagg_round.h); "" = off

  void bind(ConfigBinder& b);
  std::string to_json() const;
  static FitParams from_json(const std::string& text);
};

class SecaggClient;

// Executor kinds "fit" and "evaluate_federated". With a SecaggClient the fit executor also runs
// "secagg_advertise" and, when params.secagg is set, returns the masked quantized update
// (secagg_round.h) instead of the weights.
std::shared_ptr<protocol::TaskExecutor> make_fit_executor(std::shared_ptr<SecaggClient> secagg = nullptr);
std::shared_ptr<protocol::TaskExecutor> make_federated_evaluate_executor();

}  // namespace conflux::tasks
