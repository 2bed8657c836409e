// Merging metric Stats across the ranks of an MPI communicator (`conflux evaluate --mpi`).
//
// Each rank serialises its Stats (CBOR), the bytes are exchanged with one all-to-all-v, and every
// rank merges all ranks' Stats in rank order. Because Stats merge exactly, the result equals the
// single-process Stats bit for bit whatever the split of the data across ranks. Collective: every
// rank of `comm` must call it with Stats of the same metric and options.
#pragma once

#include "conflux/core/communicator.h"
#include "conflux/evaluator/stats.h"

namespace conflux::evaluator {

Stats merge_across(const Stats& local, Communicator& comm);

}  // namespace conflux::evaluator
