// The executors this worker binary offers, by task kind. One place to plug new kinds in.
#pragma once

#include <conflux/protocol/executor.h>

namespace conflux::worker {

// Fills `registry` with every executor kind this build of conflux-worker supports.
void register_worker_executors(protocol::ExecutorRegistry& registry);

}  // namespace conflux::worker
