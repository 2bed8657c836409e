// The "fit" and "evaluate_federated" executors (fit_task.h): the global weights from the shared
// inputs into a cached GPT, local training on the worker's own windows, the new weights out.
#include <conflux/tasks/fit_task.h>

#include <conflux/core/error.h>
#include <conflux/core/log.h>
#include <conflux/tasks/secagg_round.h>
#include <conflux/trainer/data.h>
#include <conflux/trainer/gpt.h>
#include <conflux/trainer/train_config.h>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "keep_freed_memory.h"

#include <cmath>

namespace conflux::tasks {

void LocalTrainParams::bind(ConfigBinder& b, const std::string& prefix) {
  const std::string p = prefix + ".";
  b.field(p + "steps", steps, "local optimizer steps per round (when epochs = 0; 0: no training, the global weights come back unchanged)").min(0);
  b.field(p + "epochs", epochs, "> 0: local epochs over the participant's training windows instead of steps")
      .range(0, 1000);
  b.field(p + "batch_size", batch_size, "windows per local step").min(1);
  b.field(p + "optimizer", optimizer, "local optimizer (fresh every round)").one_of({"sgd", "adamw"});
  b.field(p + "lr", lr, "local learning rate").range(0, 10);
  b.field(p + "momentum", momentum, "SGD momentum").range(0, 0.999);
  b.field(p + "weight_decay", weight_decay, "weight decay (SGD: L2; AdamW: decoupled)").range(0, 1);
  b.field(p + "proximal_mu", proximal_mu, "FedProx: adds mu/2 ||w - w_global||^2 to the local loss").min(0);
  b.field(p + "grad_clip", grad_clip, "local gradient-norm clip (0: off)").min(0);
  b.field(p + "val_fraction", val_fraction, "share of each participant's windows held out for validation")
      .range(0, 0.5);
  b.field(p + "eval_windows", eval_windows, "validation windows evaluated per participant (0: all)").min(0);
  b.field(p + "threads", threads, "torch threads per participant (same everywhere for bitwise results)").min(1);
}

void FitParams::bind(ConfigBinder& b) {
  trainer::bind_gpt_config(b, model, init_seed);
  local.bind(b, "local");
  b.field("seed", seed, "this participant's seed for this round").min(0);
  b.field("round", round, "federated round").min(0);
  b.field("evaluate", evaluate, "also evaluate the global model before training");
  b.field("secagg", secagg, "secure aggregation stage (JSON; empty: plain weights)");
}

std::string FitParams::to_json() const {
  FitParams copy = *this;
  ConfigBinder dump(ConfigBinder::Mode::Dump, nullptr);
  copy.bind(dump);
  return dump.to_json();
}

FitParams FitParams::from_json(const std::string& text) {
  FitParams p = bind_config<FitParams>(parse_config_json(text, "fit task params"));
  trainer::validate(p.model, 1);
  return p;
}

namespace {

namespace tr = conflux::trainer;

bool same_model(const tr::GptConfig& a, const tr::GptConfig& b) {
  return a.vocab_size == b.vocab_size && a.context == b.context && a.n_layer == b.n_layer &&
         a.n_head == b.n_head && a.d_model == b.d_model && a.dropout == b.dropout;
}

class ParticipantExecutor final : public protocol::TaskExecutor {
 public:
  ParticipantExecutor(bool train, std::shared_ptr<SecaggClient> secagg) : train_(train), secagg_(std::move(secagg)) {
    detail::keep_freed_memory();
  }

  protocol::TaskOutput execute(const protocol::TaskContext& ctx) override {
    FitParams p = FitParams::from_json(ctx.params);
    const bool advertise = ctx.kind == "secagg_advertise";
    nlohmann::json stage;
    if (!p.secagg.empty()) {
      if (!secagg_ || !train_)
        CONFLUX_THROW(ConfigError, "{} task {}: this executor does not run secure aggregation", ctx.kind, ctx.task_id);
      stage = nlohmann::json::parse(p.secagg);
      if (!advertise) SecaggClient::test_exit_hook("masked_input");
    } else if (advertise) {
      CONFLUX_THROW(ConfigError, "{} task {}: params carry no secagg stage", ctx.kind, ctx.task_id);
    }
    const bool fit = train_ && !advertise;
    const bool evaluate = (!train_ || p.evaluate) && !advertise;
    torch::set_num_threads(p.local.threads);
    torch::manual_seed(static_cast<uint64_t>(p.seed));
    if (ctx.data_path.empty())
      CONFLUX_THROW(ConfigError, "{}: this worker has no --data dataset to train or evaluate on", ctx.kind);
    open_data(ctx.data_path, p.model.vocab_size);
    if (advertise) {  // keys, and the weight (training windows) the masked update will carry
      tr::WindowSampler sampler(*source_, p.model.context, p.local.val_fraction, static_cast<uint64_t>(p.seed));
      nlohmann::json s = secagg_->advertise(stage);
      s["num_examples"] = sampler.train_windows();
      protocol::TaskOutput out;
      out.summary = s.dump();
      return out;
    }
    prepare_model(p.model);
    load_global(ctx);
    tr::WindowSampler sampler(*source_, p.model.context, p.local.val_fraction,
                              static_cast<uint64_t>(p.seed));
    nlohmann::json s = {{"manifest_sha256", manifest_sha256_},
                        {"train_windows", sampler.train_windows()},
                        {"val_windows", sampler.val_windows()},
                        {"round", p.round}};
    if (evaluate) validation(p, sampler, ctx, &s);
    protocol::TaskOutput out;
    if (fit) {
      if (sampler.train_windows() < 1)
        CONFLUX_THROW(DataError, "{}: no training windows of {} tokens (the dataset has {} tokens)",
                      ctx.data_path, p.model.context, source_->num_tokens());
      local_training(p, sampler, ctx, &s);
      if (!stage.is_null()) {
        out.tensors.push_back(masked_update(stage, sampler.train_windows()));
        s.erase("update_norm");  // an individual update's norm is what secure aggregation hides
        out.summary = s.dump();
        return out;
      }
      for (const auto& info : model_->param_infos()) {
        torch::Tensor t = info.tensor.detach().contiguous();
        out.tensors.push_back(protocol::Tensor::copy(info.name, DType::F32, t.sizes().vec(), t.data_ptr<float>(),
                                                     static_cast<size_t>(t.numel()) * sizeof(float)));
      }
    }
    out.summary = s.dump();
    return out;
  }

 private:
  // The update w_local - w_global, flattened in parameter order, masked by the secagg client.
  protocol::Tensor masked_update(const nlohmann::json& stage, int64_t num_examples) {
    std::vector<float> delta;
    torch::NoGradGuard no_grad;
    auto infos = model_->param_infos();
    for (size_t i = 0; i < infos.size(); ++i) {
      torch::Tensor d = (infos[i].tensor.detach() - global_[i]).contiguous();
      delta.insert(delta.end(), d.data_ptr<float>(), d.data_ptr<float>() + d.numel());
    }
    std::vector<uint32_t> y = secagg_->masked_input(stage, std::move(delta), num_examples);
    return protocol::Tensor::copy("secagg.masked", DType::I32, {static_cast<int64_t>(y.size())}, y.data(),
                                  y.size() * sizeof(uint32_t));
  }

  void open_data(const std::string& dir, int64_t model_vocab) {
    if (dir != data_dir_) {
      source_ = tr::open_token_dataset(dir, &vocab_, &manifest_sha256_);
      data_dir_ = dir;
    }
    if (vocab_ > model_vocab)
      CONFLUX_THROW(DataError, "{}: the tokenizer's vocabulary ({}) exceeds the model's model.vocab_size ({})",
                    dir, vocab_, model_vocab);
  }

  void prepare_model(const tr::GptConfig& cfg) {
    if (!model_ || !same_model(cfg, model_->config())) model_ = tr::Gpt(cfg);
  }

  // The shared inputs are the global model: exactly the model's parameters, float32, same shapes.
  void load_global(const protocol::TaskContext& ctx) {
    const auto& given = ctx.shared.empty() ? ctx.inputs : ctx.shared;
    auto infos = model_->param_infos();
    if (given.size() != infos.size())
      CONFLUX_THROW(ConfigError, "{} task {}: the global model has {} tensors, the model config {}", ctx.kind,
                    ctx.task_id, given.size(), infos.size());
    torch::NoGradGuard no_grad;
    global_.clear();
    for (size_t i = 0; i < infos.size(); ++i) {
      const auto& t = given[i];
      const auto& info = infos[i];
      if (t.name() != info.name || t.dtype() != DType::F32 || t.shape() != info.tensor.sizes().vec())
        CONFLUX_THROW(ConfigError, "{} task {}: global tensor {} is '{}' {} ({}), the model expects '{}' float32",
                      ctx.kind, ctx.task_id, i, t.name(), fmt::join(t.shape(), "x"), dtype_name(t.dtype()),
                      info.name);
      torch::Tensor g = torch::from_blob(const_cast<uint8_t*>(t.data()), t.shape(), torch::kFloat32);
      info.tensor.copy_(g);
      global_.push_back(g.clone());
    }
  }

  // Sum of token NLL (float64) over the participant's validation windows.
  void validation(const FitParams& p, const tr::WindowSampler& sampler, const protocol::TaskContext& ctx,
                  nlohmann::json* s) {
    int64_t count = sampler.val_windows();
    if (p.local.eval_windows > 0) count = std::min(count, p.local.eval_windows);
    const std::vector<int64_t> windows = sampler.val_batch(count);
    const int64_t T = p.model.context;
    double nll = 0;
    int64_t tokens = 0;
    torch::NoGradGuard no_grad;
    model_->set_training(false);
    for (size_t b = 0; b < windows.size(); b += static_cast<size_t>(p.local.batch_size)) {
      if (ctx.cancelled()) CONFLUX_THROW(CommError, "{} task {} cancelled", ctx.kind, ctx.task_id);
      std::vector<int64_t> part(windows.begin() + static_cast<int64_t>(b),
                                windows.begin() + static_cast<int64_t>(std::min(windows.size(), b + p.local.batch_size)));
      auto [ids, targets] = batch(sampler, part, T);
      torch::Tensor logits = model_->forward(ids).to(torch::kFloat64);
      torch::Tensor loss = torch::nn::functional::cross_entropy(
          logits.reshape({-1, logits.size(-1)}), targets.reshape({-1}),
          torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
      nll += loss.item<double>();
      tokens += targets.numel();
    }
    (*s)["val_loss_sum"] = nll;
    (*s)["val_tokens"] = tokens;
  }

  std::pair<torch::Tensor, torch::Tensor> batch(const tr::WindowSampler& sampler, const std::vector<int64_t>& w,
                                                int64_t T) {
    std::vector<int32_t> tok = sampler.read_windows(w);
    torch::Tensor all = torch::from_blob(tok.data(), {static_cast<int64_t>(w.size()), T + 1}, torch::kInt32)
                            .to(torch::kInt64);
    return {all.narrow(1, 0, T).contiguous(), all.narrow(1, 1, T).contiguous()};
  }

  void local_training(const FitParams& p, tr::WindowSampler& sampler, const protocol::TaskContext& ctx,
                      nlohmann::json* s) {
    const auto& L = p.local;
    int64_t steps = L.steps;
    if (L.epochs > 0)
      steps = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(L.epochs * static_cast<double>(sampler.train_windows()) /
                                                                  static_cast<double>(L.batch_size))));
    std::vector<torch::Tensor> params;
    for (const auto& info : model_->param_infos()) params.push_back(info.tensor);
    std::unique_ptr<torch::optim::Optimizer> opt;
    if (L.optimizer == "adamw")
      opt = std::make_unique<torch::optim::AdamW>(params, torch::optim::AdamWOptions(L.lr).weight_decay(L.weight_decay));
    else
      opt = std::make_unique<torch::optim::SGD>(
          params, torch::optim::SGDOptions(L.lr).momentum(L.momentum).weight_decay(L.weight_decay));
    model_->set_training(true);
    tr::DataPosition pos;
    double loss_sum = 0;
    for (int64_t step = 0; step < steps; ++step) {
      if (ctx.cancelled()) CONFLUX_THROW(CommError, "{} task {} cancelled", ctx.kind, ctx.task_id);
      auto [ids, targets] = batch(sampler, sampler.next_batch(L.batch_size, &pos), p.model.context);
      if (p.model.dropout > 0) model_->seed_dropout(static_cast<uint64_t>(p.seed), static_cast<uint64_t>(step));
      opt->zero_grad();
      torch::Tensor loss = model_->loss(ids, targets);
      torch::Tensor objective = loss;
      if (L.proximal_mu > 0) {
        torch::Tensor prox = torch::zeros({}, torch::kFloat32);
        for (size_t i = 0; i < params.size(); ++i) prox = prox + (params[i] - global_[i]).pow(2).sum();
        objective = objective + 0.5 * L.proximal_mu * prox;
      }
      objective.backward();
      if (L.grad_clip > 0) torch::nn::utils::clip_grad_norm_(params, L.grad_clip);
      opt->step();
      const double l = loss.item<double>();
      if (!std::isfinite(l))
        CONFLUX_THROW(DataError, "{}: local training diverged at step {} of round {} (loss {})", ctx.data_path, step,
                      p.round, l);
      loss_sum += l;
    }
    model_->set_training(false);
    double norm2 = 0;
    {
      torch::NoGradGuard no_grad;
      for (size_t i = 0; i < params.size(); ++i)
        norm2 += (params[i] - global_[i]).to(torch::kFloat64).pow(2).sum().item<double>();
    }
    (*s)["num_examples"] = sampler.train_windows();
    (*s)["steps"] = steps;
    if (steps > 0) (*s)["train_loss"] = loss_sum / static_cast<double>(steps);  // steps = 0: no loss to report
    (*s)["update_norm"] = std::sqrt(norm2);
    log::info("{}: round {} task {}: {} local step(s), loss {:.4f}", ctx.kind, p.round, ctx.task_id, steps,
              steps > 0 ? loss_sum / static_cast<double>(steps) : 0.0);
  }

  const bool train_;
  std::shared_ptr<SecaggClient> secagg_;
  std::string data_dir_, manifest_sha256_;
  int64_t vocab_ = 0;
  std::unique_ptr<tr::TokenSource> source_;
  tr::Gpt model_{nullptr};
  std::vector<torch::Tensor> global_;
};

}  // namespace

std::shared_ptr<protocol::TaskExecutor> make_fit_executor(std::shared_ptr<SecaggClient> secagg) {
  return std::make_shared<ParticipantExecutor>(true, std::move(secagg));
}
std::shared_ptr<protocol::TaskExecutor> make_federated_evaluate_executor() {
  return std::make_shared<ParticipantExecutor>(false, nullptr);
}

}  // namespace conflux::tasks
