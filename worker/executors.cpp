// Registry of the worker's task kinds. Built in: "reduce_sum" (protocol machinery checks).
// "evaluate" (perplexity, token accuracy, ECE, calibration of a GPT checkpoint on row ranges of
// the local --data dataset; tasks/include/conflux/tasks/evaluate_task.h) when the build has the trainer, evaluator
// and dataplane libraries (CONFLUX_WORKER_EVALUATE), and with them the federated participant's
// "fit" and "evaluate_federated" (tasks/include/conflux/tasks/fit_task.h) and secure aggregation's
// "secagg_advertise", "secagg_share_keys", "secagg_unmask" (tasks/include/conflux/tasks/secagg_round.h).
#include "executors.h"

#ifdef CONFLUX_WORKER_EVALUATE
#include <conflux/tasks/evaluate_executor.h>
#include <conflux/tasks/fit_task.h>
#include <conflux/tasks/secagg_round.h>
#endif

namespace conflux::worker {

void register_worker_executors(protocol::ExecutorRegistry& registry) {
  protocol::register_builtin_executors(registry);
#ifdef CONFLUX_WORKER_EVALUATE
  registry.add("evaluate", tasks::make_evaluate_executor());
  // Secure aggregation: one participant state shared by its four stages (secagg_round.h).
  auto secagg = std::make_shared<tasks::SecaggClient>();
  auto fit = tasks::make_fit_executor(secagg);
  registry.add("fit", fit);
  registry.add("secagg_advertise", fit);
  auto stages = tasks::make_secagg_executor(secagg);
  registry.add("secagg_share_keys", stages);
  registry.add("secagg_unmask", stages);
  registry.add("evaluate_federated", tasks::make_federated_evaluate_executor());
#endif
}

}  // namespace conflux::worker
