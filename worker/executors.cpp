// Registry of the worker's task kinds. Built in: "reduce_sum" (protocol machinery checks).
// "evaluate" (perplexity, token accuracy, ECE, calibration of a GPT checkpoint on row ranges of
// the local --data dataset; tasks/include/conflux/tasks/evaluate_task.h) when the build has the trainer, evaluator
// and dataplane libraries (CONFLUX_WORKER_EVALUATE), and with them the federated participant's
// "fit" and "evaluate_federated" (tasks/include/conflux/tasks/fit_task.h).
#include "executors.h"

#ifdef CONFLUX_WORKER_EVALUATE
#include <conflux/tasks/evaluate_executor.h>
#include <conflux/tasks/fit_task.h>
#endif

namespace conflux::worker {

void register_worker_executors(protocol::ExecutorRegistry& registry) {
  protocol::register_builtin_executors(registry);
#ifdef CONFLUX_WORKER_EVALUATE
  registry.add("evaluate", tasks::make_evaluate_executor());
  registry.add("fit", tasks::make_fit_executor());
  registry.add("evaluate_federated", tasks::make_federated_evaluate_executor());
#endif
}

}  // namespace conflux::worker
