// Internal: small thread helpers for the I/O-bound parts of the dataplane (checksums of shards,
// writing shard files). HDF5 calls stay on the calling thread (the library is not thread safe);
// workers only hash, read and write plain files.
#pragma once

#include <cstddef>
#include <functional>

namespace conflux::dataplane {

// Worker threads to use: `requested` if > 0, else the hardware threads divided by the MPI ranks
// on this node (OMPI_COMM_WORLD_LOCAL_SIZE / MPI_LOCALNRANKS / SLURM_NTASKS_PER_NODE), at least 1.
int worker_threads(int requested);

// Calls fn(i) for i in [0, n) on up to `threads` threads (the caller's included). Every call runs
// even if one throws; then the exception of the lowest failing i is rethrown.
void parallel_for(size_t n, int threads, const std::function<void(size_t)>& fn);

}  // namespace conflux::dataplane
