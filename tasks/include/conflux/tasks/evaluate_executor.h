// The "evaluate" task executor of conflux-worker (kind "evaluate"): params are EvaluateParams as
// JSON (evaluate_task.h), the data is the worker's --data dataset. Output: one uint8 tensor
// "stats" holding MetricSet::to_bytes of the task's Stats (CBOR), and, when the params carry
// "generation", a uint8 tensor "generations" (JSON lines, generation.h); summary: windows,
// tokens, checkpoint_step, manifest_sha256, prompts, skipped_rows and the row range.
#pragma once

#include <conflux/protocol/executor.h>

#include <memory>

namespace conflux::tasks {

std::shared_ptr<protocol::TaskExecutor> make_evaluate_executor();

}  // namespace conflux::tasks
