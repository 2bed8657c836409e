// The training loop (see trainer.h).
#include "conflux/trainer/trainer.h"
#include "conflux/trainer/autocast.h"

#include "conflux/core/error.h"
#include "conflux/core/log.h"
#include "conflux/core/metrics_registry.h"
#include "conflux/core/privacy.h"
#include "conflux/core/progress.h"
#include "conflux/core/rng.h"
#include "conflux/core/tensor_comm.h"
#include "conflux/trainer/checkpoint.h"
#include "conflux/trainer/grad_sample.h"
#include "conflux/trainer/metrics.h"
#include "conflux/trainer/optim.h"
#include "conflux/trainer/preempt.h"
#include "conflux/trainer/reducer.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <filesystem>

namespace conflux::trainer {
namespace {

using Clock = std::chrono::steady_clock;

struct Batch {
  torch::Tensor ids, targets;  // (n, T) int64 each
};

Batch to_batch(const std::vector<int32_t>& tokens, int64_t n, int64_t t, const torch::Device& dev) {
  if (n == 0) return {torch::empty({0, t}, torch::kInt64), torch::empty({0, t}, torch::kInt64)};
  torch::Tensor all = torch::from_blob(const_cast<int32_t*>(tokens.data()), {n, t + 1}, torch::kInt32)
                          .to(torch::kInt64);  // (n, T+1)
  return {all.slice(1, 0, t).contiguous().to(dev), all.slice(1, 1, t + 1).contiguous().to(dev)};
}

double world_average(Communicator* world, double v) {
  if (!world || world->size() == 1) return v;
  torch::Tensor t = torch::tensor({v}, torch::kFloat64);
  allreduce(*world, t, ReduceOp::Avg);
  return t.item<double>();
}

bool any_rank(Communicator* world, bool flag) {
  if (!world || world->size() == 1) return flag;
  torch::Tensor t = torch::tensor({flag ? int32_t{1} : int32_t{0}}, torch::kInt32);
  allreduce(*world, t, ReduceOp::Max);
  return t.item<int32_t>() != 0;
}

// Same window list on every rank: rank 0 draws (SecureRandom) and broadcasts.
std::vector<int64_t> broadcast_windows(Communicator* world, std::vector<int64_t> v) {
  if (!world || world->size() == 1) return v;
  torch::Tensor n = torch::tensor({static_cast<int64_t>(v.size())}, torch::kInt64);
  broadcast(*world, n, 0);
  torch::Tensor buf = torch::zeros({n.item<int64_t>()}, torch::kInt64);
  if (world->rank() == 0 && !v.empty()) buf.copy_(torch::tensor(v, torch::kInt64));
  if (buf.numel() > 0) broadcast(*world, buf, 0);
  return std::vector<int64_t>(buf.data_ptr<int64_t>(), buf.data_ptr<int64_t>() + buf.numel());
}

// Rank 0's conflux_train_* series (docs/operations.md lists them), registered once per run.
struct TrainMetrics {
  TrainMetrics(metrics::Registry& r, const TrainConfig& cfg)
      : steps(r.counter("conflux_train_steps", "optimizer steps taken by this process")),
        step(r.gauge("conflux_train_step", "current optimizer step (counts steps before a resume too)")),
        target_steps(r.gauge("conflux_train_target_steps", "train.steps of the run")),
        loss(r.gauge("conflux_train_loss", "training loss of the last step (average over ranks)")),
        val_loss(r.gauge("conflux_train_val_loss", "last validation loss (NaN until the first validation)")),
        lr(r.gauge("conflux_train_learning_rate", "learning rate of the last step")),
        grad_norm(r.gauge("conflux_train_grad_norm", "global gradient norm of the last step (before clipping)")),
        tokens_per_second(r.gauge("conflux_train_tokens_per_second", "tokens per second of the last step (global batch)")),
        tokens(r.counter("conflux_train_tokens", "training tokens processed by this process (global batch)")),
        allreduce_bytes(r.counter("conflux_train_allreduce_bytes",
                                  "gradient bytes rank 0 all-reduced over the data-parallel group")),
        allreduce_seconds(r.counter("conflux_train_allreduce_wait_seconds",
                                    "seconds rank 0 waited for gradient all-reduces (not hidden behind backward)")),
        checkpoint_seconds(r.histogram("conflux_train_checkpoint_seconds", "time to write a checkpoint (all ranks)",
                                       metrics::seconds_buckets())),
        checkpoint_step(r.gauge("conflux_train_checkpoint_step", "step of the last checkpoint written")) {
    target_steps.set(static_cast<double>(cfg.steps));
    val_loss.set(std::nan(""));
    if (cfg.dp_enabled) {
      epsilon = &r.gauge("conflux_train_privacy_epsilon", "DP-SGD privacy spent so far (epsilon at privacy.delta)");
      r.gauge("conflux_train_privacy_delta", "privacy.delta of the DP-SGD guarantee").set(cfg.dp_delta);
    }
  }
  metrics::Counter& steps;
  metrics::Gauge &step, &target_steps, &loss, &val_loss, &lr, &grad_norm, &tokens_per_second;
  metrics::Counter &tokens, &allreduce_bytes, &allreduce_seconds;
  metrics::Histogram& checkpoint_seconds;
  metrics::Gauge& checkpoint_step;
  metrics::Gauge* epsilon = nullptr;  // only with DP-SGD
};

uint64_t derived(uint64_t seed, const char* purpose, uint64_t a, uint64_t b = 0) {
  Stream s(seed, purpose, a, b);
  return s.derive_seed() >> 1;  // torch generators take seeds < 2^63 comfortably
}

class Loop {
 public:
  Loop(const TrainConfig& cfg, const TokenSource& source, const TrainerComms& comms,
       std::string config_json, std::string manifest_sha, const TrainHooks& hooks)
      : cfg_(cfg), comms_(comms), config_json_(std::move(config_json)),
        manifest_sha_(std::move(manifest_sha)), hooks_(hooks),
        device_(cfg.device == "cuda" ? torch::Device(torch::kCUDA, comms.local_rank) : torch::Device(torch::kCPU)),
        sampler_(source, cfg.model.context, cfg.val_fraction, static_cast<uint64_t>(cfg.seed)) {
    world_rank_ = comms.world ? comms.world->rank() : 0;
    if (cfg.grid.tp != comms.tp_size)
      CONFLUX_THROW(ConfigError, "parallel.tp = {} but the process grid has tp = {}", cfg.grid.tp, comms.tp_size);
    if (cfg.device == "cuda" && !torch::cuda::is_available())
      CONFLUX_THROW(ConfigError, "train.device = \"cuda\" but no CUDA device is visible");
    if (!cfg.dp_enabled && cfg.batch_size % (comms.dp_size * cfg.micro_batches) != 0)
      CONFLUX_THROW(ConfigError, "train.batch_size = {} must be divisible by dp ({}) x "
                    "train.micro_batches ({})", cfg.batch_size, comms.dp_size, cfg.micro_batches);
    if (cfg.dp_enabled && comms.tp_size > 1)
      CONFLUX_THROW(ConfigError, "privacy.enabled with parallel.tp = {}: DP-SGD supports tp = 1 only",
                    comms.tp_size);
    torch::set_num_threads(cfg.threads);
    if (hooks.metrics && world_rank_ == 0) metrics_ = std::make_unique<TrainMetrics>(*hooks.metrics, cfg);
  }

  TrainResult run();

 private:
  void setup_model();
  void resume_or_init();
  double standard_step(int64_t step);
  double private_step(int64_t step, double sigma);
  double validation_loss();
  void checkpoint(int64_t step);
  void log_step(int64_t step, double loss, double lr, double norm, double tok_s, double eps, double val);
  void update_metrics(int64_t step, double loss, double lr, double norm, double tok_s, double eps, double val,
                      int64_t tokens);

  TrainConfig cfg_;
  TrainerComms comms_;
  std::string config_json_, manifest_sha_;
  std::string init_checkpoint_, init_digest_;  // lineage "init" (rank 0): what init_from named
  TrainHooks hooks_;
  torch::Device device_;
  WindowSampler sampler_;
  int world_rank_ = 0;
  Gpt model_{nullptr};
  std::vector<ParamInfo> trainable_;
  std::unique_ptr<AdamW> opt_;
  std::unique_ptr<GradReducer> reducer_;
  TrainerState state_;
  privacy::RdpAccountant accountant_;
  std::string last_checkpoint_;
  int64_t checkpoint_step_ = -1;
  std::unique_ptr<JsonlWriter> jsonl_;
  std::unique_ptr<EventWriter> events_;
  std::unique_ptr<TrainMetrics> metrics_;  // rank 0 with TrainHooks::metrics only
};

void Loop::setup_model() {
  GptConfig mc = cfg_.model;
  mc.init_seed = static_cast<uint64_t>(cfg_.model_init_seed);
  model_ = Gpt(mc, TpGroup{comms_.tp, comms_.tp_rank, comms_.tp_size});
  model_->to(device_);
  std::vector<torch::Tensor> params;
  for (auto& p : model_->param_infos()) {
    bool frozen = false;
    for (const auto& prefix : cfg_.freeze) frozen |= p.name.rfind(prefix, 0) == 0;
    if (frozen) {
      p.tensor.set_requires_grad(false);
      continue;
    }
    trainable_.push_back(p);
    params.push_back(p.tensor);
  }
  if (trainable_.empty()) CONFLUX_THROW(ConfigError, "checkpoint.freeze froze every parameter");
  AdamWOptions ao;
  ao.beta1 = cfg_.beta1;
  ao.beta2 = cfg_.beta2;
  ao.weight_decay = cfg_.weight_decay;
  opt_ = std::make_unique<AdamW>(trainable_, ao);
  ReducerOptions ro;
  ro.bucket_bytes = static_cast<size_t>(cfg_.bucket_mb * 1e6);
  ro.first_bucket_bytes = std::min<size_t>(ro.bucket_bytes, 1u << 20);
  ro.overlap = cfg_.overlap;
  reducer_ = std::make_unique<GradReducer>(params, comms_.dp, ro);
  reducer_->set_hooks_enabled(!cfg_.dp_enabled);  // DP-SGD forms .grad itself
}

void Loop::resume_or_init() {
  state_.seed = static_cast<uint64_t>(cfg_.seed);
  state_.model = model_->config();
  state_.noise_private = cfg_.dp_noise_seed < 0;
  if (world_rank_ == 0) {  // before any rank writes; the first save barriers after it
    const size_t gone = remove_checkpoint_leftovers(cfg_.checkpoint_dir);
    if (gone > 0) log::info("removed {} leftover(s) of an interrupted checkpoint in {}", gone, cfg_.checkpoint_dir);
  }
  auto latest = cfg_.resume ? latest_checkpoint(cfg_.checkpoint_dir) : std::nullopt;
  if (latest) {
    TrainerState st = load_trainer_state(*latest);
    if (st.seed != state_.seed)
      log::warn("resuming {} written with train.seed = {} (config says {})", *latest, st.seed, state_.seed);
    load_model(*latest, *model_);
    load_optimizer(*latest, *opt_);
    state_.step = st.step;
    state_.epoch = st.epoch;
    state_.epoch_position = st.epoch_position;
    state_.tokens_seen = st.tokens_seen;
    state_.accountant = st.accountant;
    state_.noise_private = st.noise_private && state_.noise_private;
    accountant_.set_history(st.accountant);
    last_checkpoint_ = *latest;
    checkpoint_step_ = st.step;
    if (world_rank_ == 0) {
      const Lineage prev = load_lineage(*latest);  // a resumed run keeps the origin it recorded
      init_checkpoint_ = prev.init_checkpoint;
      init_digest_ = prev.init_digest;
      log::info("resumed from {} at step {}", *latest, st.step);
    }
  } else if (!cfg_.init_from.empty()) {
    load_model(cfg_.init_from, *model_);
    if (world_rank_ == 0) {
      init_checkpoint_ = std::filesystem::absolute(cfg_.init_from).lexically_normal().string();
      init_digest_ = checkpoint_digest(cfg_.init_from);
      log::info("initialised weights from {} (digest {})", cfg_.init_from, init_digest_.substr(0, 12));
    }
  }
  reducer_->sync_parameters();  // same weights on every dp rank (rank 0's)
}

double Loop::standard_step(int64_t step) {
  const int64_t t = cfg_.model.context;
  DataPosition pos{state_.epoch, state_.epoch_position};
  std::vector<int64_t> global = sampler_.next_batch(cfg_.batch_size, &pos);
  state_.epoch = pos.epoch;
  state_.epoch_position = pos.position;
  int64_t begin, end;
  share(cfg_.batch_size, comms_.dp_rank, comms_.dp_size, &begin, &end);
  std::vector<int64_t> mine(global.begin() + begin, global.begin() + end);
  Batch b = to_batch(sampler_.read_windows(mine), end - begin, t, device_);
  const int64_t mb = (end - begin) / cfg_.micro_batches;
  double loss_sum = 0;
  for (int64_t m = 0; m < cfg_.micro_batches; ++m) {
    reducer_->begin_micro_batch(m == 0, m == cfg_.micro_batches - 1);
    model_->seed_dropout(derived(state_.seed, "dropout", step, m * 1000003 + comms_.dp_rank),
                         derived(state_.seed, "dropout-tp", step,
                                 (m * 1000003 + comms_.dp_rank) * 4096 + comms_.tp_rank));
    torch::Tensor loss;
    {
      CudaAutocast autocast(device_.is_cuda());
      loss = model_->loss(b.ids.slice(0, m * mb, (m + 1) * mb), b.targets.slice(0, m * mb, (m + 1) * mb));
    }
    loss_sum += loss.item<double>();
    (loss / double(cfg_.micro_batches)).backward();
  }
  reducer_->finish();
  state_.tokens_seen += cfg_.batch_size * t;
  return loss_sum / double(cfg_.micro_batches);
}

double Loop::private_step(int64_t step, double sigma) {
  const int64_t t = cfg_.model.context;
  const double q = cfg_.dp_sample_rate;
  std::vector<int64_t> sample;
  if (cfg_.dp_noise_seed >= 0) {
    Stream rng(static_cast<uint64_t>(cfg_.dp_noise_seed), "poisson", static_cast<uint64_t>(step));
    sample = sampler_.poisson_batch(q, rng);
  } else {
    if (world_rank_ == 0) {
      SecureRandom rng;
      sample = sampler_.poisson_batch(q, rng);
    }
    sample = broadcast_windows(comms_.world, std::move(sample));
  }
  int64_t begin, end;
  share(static_cast<int64_t>(sample.size()), comms_.dp_rank, comms_.dp_size, &begin, &end);
  std::vector<int64_t> mine(sample.begin() + begin, sample.begin() + end);
  for (auto& p : trainable_) p.tensor.mutable_grad() = torch::zeros_like(p.tensor);
  double loss_sum = 0;
  if (!mine.empty()) {
    Batch b = to_batch(sampler_.read_windows(mine), end - begin, t, device_);
    GradSampler gs;
    model_->context().sampler = &gs;
    model_->seed_dropout(derived(state_.seed, "dropout", step, comms_.dp_rank),
                         derived(state_.seed, "dropout-tp", step, comms_.dp_rank));
    for (auto& p : trainable_) p.tensor.mutable_grad() = torch::Tensor();
    torch::Tensor losses = model_->sample_losses(b.ids, b.targets);  // (n)
    losses.sum().backward();
    model_->context().sampler = nullptr;
    std::vector<torch::Tensor> params;
    for (auto& p : trainable_) {
      p.tensor.mutable_grad() = torch::Tensor();
      params.push_back(p.tensor);
    }
    clip_and_accumulate(gs, params, cfg_.dp_clip);
    loss_sum = losses.sum().item<double>();
  }
  // Noise sigma * C once per global step: only dp rank 0 adds it before the sum over ranks.
  if (comms_.dp_rank == 0 && sigma > 0) {
    std::unique_ptr<RandomSource> rng;
    if (cfg_.dp_noise_seed >= 0) {
      rng = std::make_unique<Stream>(static_cast<uint64_t>(cfg_.dp_noise_seed), "dp-noise",
                                     static_cast<uint64_t>(step));
    } else {
      rng = std::make_unique<SecureRandom>();
    }
    std::vector<torch::Tensor> grads;
    for (auto& p : trainable_) grads.push_back(p.tensor.mutable_grad());
    add_gaussian_noise(grads, sigma * cfg_.dp_clip, *rng);
  }
  reducer_->reduce_grads_now(/*average=*/false);
  const double expected = q * double(sampler_.train_windows());  // Opacus: divide by q * N
  torch::NoGradGuard no_grad;
  for (auto& p : trainable_) p.tensor.mutable_grad().div_(expected);
  accountant_.step(sigma, q);
  state_.accountant = accountant_.history();
  state_.tokens_seen += static_cast<int64_t>(sample.size()) * t;
  double n = static_cast<double>(sample.size());
  double total = loss_sum;
  if (comms_.dp && comms_.dp_size > 1) {
    torch::Tensor s = torch::tensor({total}, torch::kFloat64);
    allreduce(*comms_.world, s, ReduceOp::Sum);
    total = s.item<double>() / comms_.tp_size;
  }
  return n > 0 ? total / n : 0.0;
}

double Loop::validation_loss() {
  std::vector<int64_t> val = sampler_.val_batch(cfg_.eval_windows);
  if (val.empty()) return -1;
  int64_t begin, end;
  share(static_cast<int64_t>(val.size()), comms_.dp_rank, comms_.dp_size, &begin, &end);
  std::vector<int64_t> mine(val.begin() + begin, val.begin() + end);
  double sums[2] = {0, 0};
  model_->set_training(false);
  {
    torch::NoGradGuard no_grad;
    const int64_t chunk = 16;
    for (size_t i = 0; i < mine.size(); i += chunk) {
      std::vector<int64_t> part(mine.begin() + i, mine.begin() + std::min(mine.size(), i + chunk));
      Batch b = to_batch(sampler_.read_windows(part), static_cast<int64_t>(part.size()),
                         cfg_.model.context, device_);
      sums[0] += model_->loss(b.ids, b.targets).item<double>() * double(b.ids.numel());
      sums[1] += double(b.ids.numel());
    }
  }
  model_->set_training(true);
  if (comms_.world && comms_.world->size() > 1) {
    torch::Tensor s = torch::tensor({sums[0], sums[1]}, torch::kFloat64);
    allreduce(*comms_.world, s, ReduceOp::Sum);  // tp ranks count the same windows: ratio unchanged
    sums[0] = s[0].item<double>();
    sums[1] = s[1].item<double>();
  }
  return sums[0] / sums[1];
}

void Loop::checkpoint(int64_t step) {
  state_.step = step;
  Lineage lin{config_json_, cfg_.dataset, manifest_sha_, comms_.dp_size, comms_.tp_size, init_checkpoint_, init_digest_};
  checkpoint_step_ = step;
  const auto t0 = Clock::now();
  last_checkpoint_ = save_checkpoint(cfg_.checkpoint_dir, state_, *model_, opt_.get(), lin,
                                     comms_.world, comms_.dp_rank, cfg_.keep_last);
  if (metrics_) {
    metrics_->checkpoint_seconds.observe(std::chrono::duration<double>(Clock::now() - t0).count());
    metrics_->checkpoint_step.set(static_cast<double>(step));
  }
  if (world_rank_ == 0) log::info("checkpoint {}", last_checkpoint_);
}

void Loop::log_step(int64_t step, double loss, double lr, double norm, double tok_s, double eps,
                    double val) {
  if (world_rank_ != 0) return;
  nlohmann::json j = {{"step", step}, {"loss", loss}, {"lr", lr}, {"grad_norm", norm},
                      {"tokens_per_s", tok_s}, {"tokens_seen", state_.tokens_seen}};
  if (cfg_.dp_enabled) {
    j["epsilon"] = eps;
    j["delta"] = cfg_.dp_delta;
    j["noise_private"] = state_.noise_private;
  }
  if (val >= 0) j["val_loss"] = val;
  jsonl_->write(j.dump());
  events_->add_scalar("train/loss", loss, step);
  events_->add_scalar("train/lr", lr, step);
  events_->add_scalar("train/grad_norm", norm, step);
  events_->add_scalar("train/tokens_per_s", tok_s, step);
  if (cfg_.dp_enabled) events_->add_scalar("privacy/epsilon", eps, step);
  if (val >= 0) events_->add_scalar("val/loss", val, step);
  events_->flush();
}

void Loop::update_metrics(int64_t step, double loss, double lr, double norm, double tok_s, double eps,
                          double val, int64_t tokens) {
  if (!metrics_) return;
  TrainMetrics& m = *metrics_;
  m.steps.inc();
  m.step.set(static_cast<double>(step));
  m.loss.set(loss);
  m.lr.set(lr);
  m.grad_norm.set(norm);
  m.tokens_per_second.set(tok_s);
  m.tokens.inc(static_cast<double>(tokens));
  m.allreduce_bytes.inc(static_cast<double>(reducer_->last_bytes()));
  m.allreduce_seconds.inc(reducer_->last_wait_seconds());
  if (m.epsilon) m.epsilon->set(eps);
  if (val >= 0) m.val_loss.set(val);
}

TrainResult Loop::run() {
  setup_model();
  resume_or_init();
  if (world_rank_ == 0) {
    jsonl_ = std::make_unique<JsonlWriter>((std::filesystem::path(cfg_.output_dir) / "metrics.jsonl").string());
    events_ = std::make_unique<EventWriter>(cfg_.output_dir);
  }
  double sigma = cfg_.dp_noise_multiplier;
  if (cfg_.dp_enabled && sigma == 0 && cfg_.dp_target_epsilon > 0)
    sigma = privacy::dpsgd_noise_multiplier(cfg_.dp_target_epsilon, cfg_.dp_delta, cfg_.dp_sample_rate, cfg_.steps);
  if (cfg_.dp_enabled && world_rank_ == 0)
    log::info("DP-SGD: q = {}, sigma = {}, C = {}, delta = {}, noise {}", cfg_.dp_sample_rate, sigma,
              cfg_.dp_clip, cfg_.dp_delta, state_.noise_private ? "secure" : "SEEDED (not private)");

  ProgressOptions po;
  po.rank = cfg_.progress ? world_rank_ : 1;
  po.unit = "step";
  Progress bar("train", static_cast<uint64_t>(cfg_.steps), po);
  bar.set(static_cast<uint64_t>(state_.step));
  TrainResult result;
  const auto start = Clock::now();
  int64_t tokens_at_start = state_.tokens_seen;
  install_preemption_handlers();
  const long long preempt_at = test_preempt_step();
  int64_t step = state_.step;
  while (step < cfg_.steps) {
    if (cfg_.dp_enabled && cfg_.dp_target_epsilon > 0) {
      privacy::RdpAccountant next = accountant_;
      next.step(sigma, cfg_.dp_sample_rate);
      if (next.epsilon(cfg_.dp_delta).epsilon > cfg_.dp_target_epsilon) {
        result.status = TrainStatus::EpsilonReached;
        break;
      }
    }
    const auto t0 = Clock::now();
    const int64_t tokens_before = state_.tokens_seen;
    const double lr = learning_rate({cfg_.lr, cfg_.min_lr, cfg_.warmup_steps, cfg_.steps}, step);
    double loss = cfg_.dp_enabled ? private_step(step, sigma) : standard_step(step);
    // Clipping is folded into the optimizer's pass (DP-SGD clips per sample instead).
    const double norm = global_grad_norm(trainable_, model_->tp());
    opt_->step(lr, clip_coefficient(norm, cfg_.dp_enabled ? 0.0 : cfg_.grad_clip));
    ++step;
    state_.step = step;
    loss = world_average(comms_.world, loss);
    const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
    const double tok_s = double(cfg_.batch_size * cfg_.model.context) / dt;
    const double eps = cfg_.dp_enabled ? accountant_.epsilon(cfg_.dp_delta).epsilon : 0.0;
    double val = -1;
    if ((cfg_.eval_every > 0 && step % cfg_.eval_every == 0) || step == cfg_.steps) {
      val = validation_loss();
      result.val_loss = val;
    }
    log_step(step, loss, lr, norm, tok_s, eps, val);
    update_metrics(step, loss, lr, norm, tok_s, eps, val, state_.tokens_seen - tokens_before);
    const double avg_tok_s =
        double(state_.tokens_seen - tokens_at_start) /
        std::max(1e-9, std::chrono::duration<double>(Clock::now() - start).count());
    std::string extra = fmt::format("loss {:.4f} tok/s {:.0f}", loss, avg_tok_s);
    if (cfg_.dp_enabled) extra += fmt::format(" eps {:.3f}", eps);
    bar.set(static_cast<uint64_t>(step), extra);
    result.last_loss = loss;
    result.epsilon = eps;
    result.tokens_per_second = avg_tok_s;
    if (hooks_.after_step) hooks_.after_step(step);
    if (step == preempt_at) request_preemption();
    const bool preempt = any_rank(comms_.world, preemption_requested());
    if (preempt) {
      checkpoint(step);
      result.status = TrainStatus::Preempted;
      break;
    }
    if (cfg_.checkpoint_every > 0 && step % cfg_.checkpoint_every == 0 && step < cfg_.steps) checkpoint(step);
  }
  uninstall_preemption_handlers();
  if (result.status != TrainStatus::Preempted && checkpoint_step_ != step) checkpoint(step);
  bar.finish();
  result.step = step;
  result.checkpoint = last_checkpoint_;
  return result;
}

}  // namespace

TrainResult train(const TrainConfig& cfg, const TokenSource& source, const TrainerComms& comms,
                  const std::string& config_json, const std::string& manifest_sha256,
                  const TrainHooks& hooks) {
  Loop loop(cfg, source, comms, config_json, manifest_sha256, hooks);
  return loop.run();
}

}  // namespace conflux::trainer
