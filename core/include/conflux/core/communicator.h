// Communicator: collectives over a group of ranks, with an MPI back end (CPU memory, with a
// shared-memory fast path for ranks on one node) and an NCCL back end (CUDA memory).
//
// Contract
// - Every rank of the group calls the same collectives in the same order with the same dtype,
//   op and element count. Each call gets a sequence number; ranks on one node publish
//   (sequence, signature, call site) on an arrival board before touching data, so a rank that
//   calls something else fails fast with a CommError naming both calls and call sites, and a
//   rank that never arrives is named in a CommError after `timeout`.
// - Buffers are contiguous; `data` is read and overwritten in place (all-reduce, broadcast),
//   or `send`/`recv` are separate (all-gather, reduce-scatter, all-to-all-v). Buffers must stay
//   alive and untouched until the Work completes.
// - Reductions on bf16/f16 accumulate in float32 and round once; Avg divides the sum by size()
//   (integer division for integer types). Results are bitwise deterministic for a fixed number
//   of ranks.
// - Synchronous calls run on the calling thread; *_async calls run in FIFO order on the
//   communicator's progress thread and return a Work handle. A synchronous call first waits for
//   earlier async work, so program order is preserved.
// Thread safety: one thread issues calls on a given Communicator at a time; Work::wait may be
// called from any thread.
#pragma once

#include "conflux/core/dtype.h"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace conflux {

// The failure state of a set of communicators whose peers are the same processes (a ProcessGrid's
// world, dp, tp and NCCL communicators share one; a standalone communicator owns its own). The
// first collective that fails in any of them sets it: the peers are now out of step or stalled,
// so no collective of the set runs again (each fails at once naming the first error), and their
// destructors skip collective teardown (MPI_Win_free, MPI_Comm_free, MPI_Finalize), which would
// wait for the stalled peer forever. Ending the job is main()'s business (MPI_Abort).
// Thread safety: all members may be called from any thread.
class CommFailure {
 public:
  // Records `what` if nothing failed before; returns true for the first failure.
  bool set(const std::string& what);
  bool failed() const { return failed_.load(std::memory_order_acquire); }
  std::string what() const;  // the first failure's message, "" if none

 private:
  mutable std::mutex mu_;
  std::string what_;
  std::atomic<bool> failed_{false};
};

// Where a collective was called from; filled in by default arguments at the call site.
struct CallSite {
  const char* file = "";
  int line = 0;
  static CallSite here(const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    return CallSite{file, line};
  }
};

class Work {
 public:
  virtual ~Work() = default;
  // Blocks until done; rethrows the collective's error (CommError) if it failed.
  virtual void wait() = 0;
  virtual bool done() const = 0;
};
using WorkHandle = std::shared_ptr<Work>;

struct CommOptions {
  std::chrono::milliseconds timeout{std::chrono::minutes(5)};
  // Shared-memory all-reduce, used when the ranks of a group share a node (or, hierarchically,
  // when every node holds the same number of them):
  bool enable_shm = true;
  // Up to this size a one-phase algorithm (every rank reduces the whole buffer from all staging
  // slots) has the lowest latency.
  size_t shm_small_bytes = 64 * 1024;
  // From this size on, reduce-scatter + all-gather through the staging slots in chunks; between
  // the two thresholds MPI_Allreduce (after the arrival check) measured fastest on one node.
  size_t shm_large_bytes = 2 * 1024 * 1024;
  // Per-rank staging slot (double-buffered). Small slots keep the working set in cache: 128 KiB
  // measured about 2x faster than 4 MiB at 64 MiB buffers (docs/benchmarks.md).
  size_t shm_chunk_bytes = 128 * 1024;
  // Testing aid: pretend every `emulate_node_size` consecutive ranks form one node, to exercise
  // the hierarchical (intra-node shm + inter-node MPI) path on a single machine. 0 = real nodes.
  int emulate_node_size = 0;
  // Shared failure state (see CommFailure); null: the communicator creates its own.
  std::shared_ptr<CommFailure> failure;
};

enum class Backend { Mpi, Nccl };

// Memory for collective buffers such as gradient buckets, from Communicator::alloc_buffer.
// Allocating and freeing are collectives: every rank of the group allocates the same size in the
// same order and destroys its buffer in the same order (a buffer destroyed while an exception
// unwinds, or after the communicator failed, is not freed, so a failing rank never waits for its
// peers). It must not outlive its communicator.
class SharedBuffer {
 public:
  virtual ~SharedBuffer() = default;
  virtual void* data() const = 0;
  virtual size_t bytes() const = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual Backend backend() const = 0;
  virtual std::string name() const = 0;  // "world", "dp", "tp", ...

  virtual WorkHandle allreduce_async(void* data, size_t count, DType dtype, ReduceOp op,
                                     CallSite site = CallSite::here()) = 0;
  virtual WorkHandle broadcast_async(void* data, size_t count, DType dtype, int root,
                                     CallSite site = CallSite::here()) = 0;
  // recv holds size() * count elements, rank r's contribution at offset r * count.
  virtual WorkHandle allgather_async(const void* send, void* recv, size_t count, DType dtype,
                                     CallSite site = CallSite::here()) = 0;
  // send holds size() * count elements; recv gets the reduction of block rank().
  virtual WorkHandle reduce_scatter_async(const void* send, void* recv, size_t count, DType dtype,
                                          ReduceOp op, CallSite site = CallSite::here()) = 0;
  // Counts and displacements in elements, one per rank, as MPI_Alltoallv.
  virtual WorkHandle alltoallv_async(const void* send, const std::vector<size_t>& send_counts,
                                     const std::vector<size_t>& send_displs, void* recv,
                                     const std::vector<size_t>& recv_counts,
                                     const std::vector<size_t>& recv_displs, DType dtype,
                                     CallSite site = CallSite::here()) = 0;
  virtual WorkHandle barrier_async(CallSite site = CallSite::here()) = 0;

  // Synchronous forms: run on the calling thread after earlier async work has finished.
  virtual void allreduce(void* data, size_t count, DType dtype, ReduceOp op,
                         CallSite site = CallSite::here()) = 0;
  virtual void broadcast(void* data, size_t count, DType dtype, int root,
                         CallSite site = CallSite::here()) = 0;
  virtual void allgather(const void* send, void* recv, size_t count, DType dtype,
                         CallSite site = CallSite::here()) = 0;
  virtual void reduce_scatter(const void* send, void* recv, size_t count, DType dtype, ReduceOp op,
                              CallSite site = CallSite::here()) = 0;
  virtual void alltoallv(const void* send, const std::vector<size_t>& send_counts,
                         const std::vector<size_t>& send_displs, void* recv,
                         const std::vector<size_t>& recv_counts,
                         const std::vector<size_t>& recv_displs, DType dtype,
                         CallSite site = CallSite::here()) = 0;
  virtual void barrier(CallSite site = CallSite::here()) = 0;

  // A buffer for collectives (see SharedBuffer). The MPI back end places it in a node
  // shared-memory window when every rank of the group shares one node: an all-reduce on any
  // range of it (the same offset on every rank) then runs in place without staging copies, each
  // rank reducing its segment straight from its peers' buffers and copying their reduced segments
  // back (zero-copy reduce-scatter + all-gather; NCCL's registered buffers play the same trick).
  // Elsewhere it is ordinary host memory, 64-byte aligned (the NCCL back end: device memory).
  virtual std::unique_ptr<SharedBuffer> alloc_buffer(size_t bytes, CallSite site = CallSite::here());

  // Convenience: exchange per-rank counts, then all-to-all-v the payloads (dedup shuffles).
  // send_counts[r] elements starting at send + send_displs[r] go to rank r; returns what this rank
  // received, concatenated in source-rank order, and fills recv_counts.
  std::vector<uint8_t> alltoallv_bytes(const std::vector<std::vector<uint8_t>>& per_rank,
                                       std::vector<size_t>* recv_counts,
                                       CallSite site = CallSite::here());

  const CommOptions& options() const { return options_; }

 protected:
  explicit Communicator(CommOptions options) : options_(options) {}
  CommOptions options_;
};

}  // namespace conflux
