// The evaluate task: packs the windows of a row range into fixed-shape (batch_size, T) batches,
// runs the checkpoint's GPT forward in eval mode, and feeds the real positions' logits to the
// evaluator's MetricSet (see evaluate_task.h for the window and exactness rules).
#include <conflux/tasks/evaluate_task.h>

#include <conflux/core/error.h>
#include <conflux/core/log.h>
#include <conflux/dataplane/dataset.h>
#include <conflux/dataplane/manifest.h>
#include <conflux/trainer/checkpoint.h>
#include <conflux/trainer/generate.h>

#include "keep_freed_memory.h"

#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#if defined(__GLIBC__)
#endif

namespace conflux::tasks {

namespace fs = std::filesystem;
namespace ev = conflux::evaluator;

void EvaluateParams::bind(ConfigBinder& b) {
  b.field("checkpoint", checkpoint, "checkpoint step directory (absolute path)").required();
  b.field("row_begin", row_begin, "first row of the worker's dataset").min(0);
  b.field("row_end", row_end, "end row (exclusive)").min(0);
  b.field("metrics", metrics, "metric names");
  b.field("context", context, "window length T (0 = the model's context)").min(0);
  b.field("batch_size", batch_size, "windows per forward pass").min(1);
  b.field("threads", threads, "torch intra-op threads").min(1);
  b.field("manifest_sha256", manifest_sha256, "expected SHA-256 of the dataset's manifest.json");
  b.field("checkpoint_step", checkpoint_step, "expected trainer step (-1 = any)").min(-1);
  const bool present = b.mode() == ConfigBinder::Mode::Load ? b.has("generation") : generation.has_value();
  if (present) {
    if (!generation) generation.emplace();
    generation->bind(b, "generation");
  }
}

std::string EvaluateParams::to_json() const {
  EvaluateParams copy = *this;
  ConfigBinder dump(ConfigBinder::Mode::Dump, nullptr);
  copy.bind(dump);
  return dump.to_json();
}

EvaluateParams EvaluateParams::from_json(const std::string& text) {
  auto p = bind_config<EvaluateParams>(parse_config_json(text, "evaluate task params"));
  if (p.row_end < p.row_begin)
    CONFLUX_THROW(ConfigError, "evaluate task params: row_end {} < row_begin {}", p.row_end, p.row_begin);
  return p;
}

nlohmann::json metric_specs(const std::vector<std::string>& names) {
  nlohmann::json specs = nlohmann::json::array();
  for (const auto& n : names) specs.push_back({{"metric", n}});
  return specs;
}

nlohmann::json EvaluateResult::summary() const {
  return {{"windows", windows},
          {"tokens", tokens},
          {"checkpoint_step", checkpoint_step},
          {"manifest_sha256", manifest_sha256},
          {"prompts", generations.size()},
          {"skipped_rows", skipped_rows}};
}

std::string resolve_checkpoint(const std::string& path) {
  if (fs::exists(fs::path(path) / "trainer_state.json")) return fs::absolute(path).string();
  if (!fs::is_directory(path))
    CONFLUX_THROW(UsageError, "checkpoint '{}' is not a directory", path);
  auto latest = trainer::latest_checkpoint(path);
  if (!latest) CONFLUX_THROW(UsageError, "no complete checkpoint under '{}'", path);
  return fs::absolute(*latest).string();
}

struct EvaluateTask::Impl {
  std::string model_dir;
  trainer::InferenceModel model;
  std::string data_dir;
  std::unique_ptr<dataplane::Dataset> data;
  std::string manifest_sha256;

  void open(const EvaluateParams& p, const std::string& dir) {
    if (dir.empty())
      CONFLUX_THROW(UsageError, "the evaluate task needs a tokens dataset (conflux-worker --data DIR)");
    if (!data || data_dir != dir) {
      data = std::make_unique<dataplane::Dataset>(dataplane::Dataset::open(dir));
      data_dir = dir;
      manifest_sha256 = dataplane::sha256_file(dir + "/manifest.json");
    }
    if (model.model.is_empty() || model_dir != p.checkpoint) {
      if (!fs::exists(fs::path(p.checkpoint) / "trainer_state.json"))
        CONFLUX_THROW(UsageError, "checkpoint directory '{}' (from the task) is not readable here",
                      p.checkpoint);
      model = trainer::load_for_inference(p.checkpoint);
      model_dir = p.checkpoint;
    }
  }
};

EvaluateTask::EvaluateTask() : impl_(std::make_unique<Impl>()) {}
EvaluateTask::~EvaluateTask() = default;

EvaluateResult EvaluateTask::run(const EvaluateParams& p, const std::string& data_dir,
                                 const std::atomic<bool>* cancel) {
  detail::keep_freed_memory();
  impl_->open(p, data_dir);
  const dataplane::Dataset& ds = *impl_->data;
  trainer::GptImpl& model = *impl_->model.model;
  const auto& mc = model.config();
  EvaluateResult r;
  r.checkpoint_step = impl_->model.state.step;
  r.manifest_sha256 = impl_->manifest_sha256;
  if (!p.manifest_sha256.empty() && p.manifest_sha256 != r.manifest_sha256)
    CONFLUX_THROW(DataError, "dataset '{}' has manifest SHA-256 {}, the coordinator expects {}",
                  data_dir, r.manifest_sha256, p.manifest_sha256);
  if (p.checkpoint_step >= 0 && p.checkpoint_step != r.checkpoint_step)
    CONFLUX_THROW(DataError, "checkpoint '{}' is at step {}, the coordinator expects {}",
                  p.checkpoint, r.checkpoint_step, p.checkpoint_step);
  if (p.row_end > ds.num_rows())
    CONFLUX_THROW(DataError, "rows [{}, {}) outside dataset '{}' of {} rows", p.row_begin, p.row_end,
                  data_dir, ds.num_rows());
  const int64_t T = p.context > 0 ? p.context : mc.context;
  if (T > mc.context)
    CONFLUX_THROW(DataError, "context {} exceeds the model's context {}", T, mc.context);
  const int64_t B = p.batch_size, V = mc.vocab_size;

  ev::MetricSet metrics(metric_specs(p.metrics));
  r.stats = metrics.empty();
  bool token_metrics = false, text_metrics = false;
  for (const auto& name : metrics.names()) {
    const ev::InputKind k = metrics.metric(name).inputs();
    token_metrics = token_metrics || k == ev::InputKind::Tokens;
    text_metrics = text_metrics || k == ev::InputKind::Text;
    if (k == ev::InputKind::Features)
      CONFLUX_THROW(DataError, "metric '{}' reads features; the evaluate task has none", name);
  }
  torch::set_num_threads(p.threads);
  c10::InferenceMode inference;  // no autograd bookkeeping per op (the same kernels, same bits)
  if (text_metrics) {
    if (!p.generation)
      CONFLUX_THROW(DataError, "evaluate params: text metrics need 'generation' params");
    r.generations = generate_examples(model, ds, p.row_begin, p.row_end, *p.generation,
                                      &r.skipped_rows, cancel);
    if (!r.generations.empty())
      ev::MetricSet::merge_into(r.stats, metrics.partial(text_batch(r.generations)));
  }
  const int64_t n_tokens = ds.num_tokens();
  if (!token_metrics || p.row_end == p.row_begin || n_tokens < 2) return r;
  const auto offsets = ds.token_offsets(p.row_begin, p.row_end);
  const auto ceil_div = [](int64_t a, int64_t b) { return (a + b - 1) / b; };
  const int64_t w_begin = ceil_div(offsets.front(), T);
  const int64_t w_end = std::min(ceil_div(offsets.back(), T), ceil_div(n_tokens - 1, T));

  if (w_end <= w_begin) return r;
  // The task's whole token span in one read (not one per batch: shard reads decode whole chunks).
  const int64_t first = w_begin * T;
  const std::vector<int32_t> tok =
      ds.read_token_stream(first, std::min(n_tokens, w_end * T + 1) - first);
  std::vector<int64_t> ids(static_cast<size_t>(B * T));
  for (int64_t w0 = w_begin; w0 < w_end; w0 += B) {
    if (cancel && cancel->load()) CONFLUX_THROW(CommError, "evaluate task cancelled");
    const int64_t nb = std::min(B, w_end - w0);
    // ids (B, T): windows back to back, zero-padded; targets for the real positions only.
    std::fill(ids.begin(), ids.end(), 0);
    std::vector<int64_t> targets, example_ids;
    for (int64_t i = 0; i < nb; ++i) {
      const int64_t s = (w0 + i) * T;
      const int64_t len = std::min(T, n_tokens - 1 - s);
      for (int64_t t = 0; t < len; ++t) {
        const int64_t in = tok[static_cast<size_t>(s - first + t)];
        const int64_t tg = tok[static_cast<size_t>(s - first + t + 1)];
        if (in < 0 || in >= V || tg < 0 || tg >= V)
          CONFLUX_THROW(DataError, "dataset '{}': token {} at stream position {} is outside the "
                        "model vocabulary 0..{}", data_dir, in < 0 || in >= V ? in : tg,
                        in < 0 || in >= V ? s + t : s + t + 1, V - 1);
        ids[static_cast<size_t>(i * T + t)] = in;
        targets.push_back(tg);
        example_ids.push_back(s + t + 1);
      }
      // Only the stream's last window can be short, so real rows form a prefix of the batch.
      CONFLUX_CHECK(len == T || i == nb - 1, "short window inside a batch");
    }
    torch::Tensor x = torch::from_blob(ids.data(), {B, T}, torch::kInt64);
    torch::Tensor logits = model.full_logits(x).to(torch::kFloat32).contiguous();  // (B, T, V)
    ev::Batch batch;
    batch.logits = {logits.data_ptr<float>(), static_cast<int64_t>(targets.size()), V, false};
    batch.targets = std::move(targets);
    batch.example_ids = std::move(example_ids);
    ev::MetricSet::merge_into(r.stats, metrics.partial(batch));
    r.windows += nb;
    r.tokens += static_cast<int64_t>(batch.targets.size());
  }
  return r;
}

}  // namespace conflux::tasks
