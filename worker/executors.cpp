// Registry of the worker's task kinds. Built in: "reduce_sum" (protocol machinery checks).
// Evaluation ("evaluate": perplexity etc. on the local dataset with the trainer's GPT) and
// federated ("fit") executors are added here as they land:
//   registry.add("evaluate", std::make_shared<EvaluateExecutor>(...));
#include "executors.h"

namespace conflux::worker {

void register_worker_executors(protocol::ExecutorRegistry& registry) {
  protocol::register_builtin_executors(registry);
}

}  // namespace conflux::worker
