// The "evaluate" executor: decodes the task params, runs EvaluateTask on the worker's dataset
// (model and dataset cached between tasks) and returns the serialised Stats, plus the generated
// texts as JSON lines when the task has generation params.
#include <conflux/tasks/evaluate_executor.h>

#include <conflux/tasks/evaluate_task.h>

#include <conflux/core/error.h>
#include <conflux/core/log.h>

namespace conflux::tasks {
namespace {

class EvaluateExecutor final : public protocol::TaskExecutor {
 public:
  protocol::TaskOutput execute(const protocol::TaskContext& ctx) override {
    const EvaluateParams p = EvaluateParams::from_json(ctx.params);
    log::info("evaluate: task {} attempt {}: rows [{}, {})", ctx.task_id, ctx.attempt, p.row_begin,
              p.row_end);
    EvaluateResult r = task_.run(p, ctx.data_path, ctx.cancel);
    std::vector<uint8_t> bytes = evaluator::MetricSet::to_bytes(r.stats);
    const auto n = static_cast<int64_t>(bytes.size());
    protocol::TaskOutput out;
    out.tensors.push_back(protocol::Tensor::from_vector("stats", DType::U8, {n}, std::move(bytes)));
    if (p.generation) {
      std::vector<uint8_t> lines = examples_to_jsonl(r.generations);
      const auto m = static_cast<int64_t>(lines.size());
      out.tensors.push_back(
          protocol::Tensor::from_vector("generations", DType::U8, {m}, std::move(lines)));
    }
    nlohmann::json s = r.summary();
    s["rows"] = {p.row_begin, p.row_end};
    out.summary = s.dump();
    return out;
  }

 private:
  EvaluateTask task_;  // executor thread only (one task at a time)
};

}  // namespace

std::shared_ptr<protocol::TaskExecutor> make_evaluate_executor() {
  return std::make_shared<EvaluateExecutor>();
}

}  // namespace conflux::tasks
