// ShmGroup: the shared-memory segment of the ranks of one communicator that share a node.
//
// Layout (one MPI-3 shared window, MPI_Win_allocate_shared, one region per local rank):
//   [RankControl: arrival board + phase counter, 4 KiB] [buffer 0: chunk] [buffer 1: chunk]
// The arrival board is how collectives detect divergence and missing ranks: before touching any
// data a rank publishes (sequence number, call signature, description, call site) and waits
// until every local peer has published the same sequence number; a peer with a different
// signature is a divergence, a peer that never arrives is named after the deadline. Entries are
// kept in a ring of 4 indexed by sequence number, so a fast peer (at most one collective ahead,
// since it cannot pass the next arrival wait without us) never overwrites what we still read.
// Thread safety: used by one thread at a time (the communicator serialises its collectives).
#pragma once

#include <mpi.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../comm_base.h"

namespace conflux::detail {

// Raw call description; formatted into words only when an error is reported, so publishing an
// arrival costs a few stores.
struct BoardEntry {
  uint64_t seq;
  uint64_t sig;
  uint64_t count;
  int32_t arg;
  int32_t line;
  uint8_t dtype;
  char kind[23];
  char file[96];  // the tail of the call site's path
};

struct alignas(64) RankControl {
  std::atomic<uint64_t> arrived;  // last sequence number published
  char pad0[56];
  std::atomic<uint64_t> phase;    // counter for the phase barriers of multi-step algorithms
  char pad1[56];
  std::atomic<uint64_t> heartbeat;  // bumped by every wait loop: a rank whose count stands still
  char pad2[56];                    // is stalled (stopped, hung), not just waiting
  BoardEntry entries[4];
};

using Clock = std::chrono::steady_clock;

// A shared-memory window of equal-sized per-rank parts (SharedBuffer storage).
struct ShmRegion {
  MPI_Win win = MPI_WIN_NULL;
  size_t bytes = 0;
  std::vector<uint8_t*> bases;  // each local rank's part, mapped in this process
};

class ShmGroup {
 public:
  // node_comm: the local ranks; group_ranks[i]: rank in the full communicator of local rank i.
  ShmGroup(MPI_Comm node_comm, std::vector<int> group_ranks, size_t chunk_bytes, std::string comm_name);
  ~ShmGroup();

  int local_rank() const { return local_rank_; }
  int local_size() const { return local_size_; }
  size_t chunk_bytes() const { return chunk_bytes_; }
  uint8_t* buffer(int local, int which) const { return bufs_[local] + which * chunk_bytes_; }

  // Publishes this rank's entry for `seq` (after any data it wrote to its buffer).
  void arrive(uint64_t seq, const OpDesc& op);
  // Waits until every local peer has arrived at `seq` with the same signature.
  void wait_arrivals(uint64_t seq, Clock::time_point deadline);
  // Collective over the local ranks: a window with `bytes` per rank (page-aligned parts).
  std::unique_ptr<ShmRegion> alloc_region(size_t bytes);
  // Collective: frees the window.
  void free_region(ShmRegion& r);
  // Phase barrier among local ranks: every rank calls with the same increasing sequence.
  void phase_barrier(Clock::time_point deadline);
  // Called on every iteration of a wait for peers (cheap: one relaxed store).
  void beat() { ctl(local_rank_)->heartbeat.store(++beats_, std::memory_order_relaxed); }
  // After a timeout inside a collective every peer arrived at: the local peers whose heartbeat
  // did not move during `window` (a waiting peer beats continuously), as "rank 1" / "ranks 1, 3"
  // (ranks of the full communicator); "" if every local peer is alive.
  std::string stalled_peers(Clock::duration window);

 private:
  [[noreturn]] void missing(int local, uint64_t seq, Clock::time_point start, bool inside) const;
  RankControl* ctl(int local) const { return ctls_[local]; }

  MPI_Win win_ = MPI_WIN_NULL;
  MPI_Comm node_comm_ = MPI_COMM_NULL;
  int local_rank_ = 0, local_size_ = 1;
  size_t chunk_bytes_;
  std::vector<RankControl*> ctls_;
  std::vector<uint8_t*> bufs_;
  std::vector<int> group_ranks_;
  std::string name_;
  uint64_t phase_ = 0;
  uint64_t my_seq_ = 0;
  uint64_t beats_ = 0;
};

// Spin-then-yield-then-sleep waiting that stays fair when ranks outnumber cores. On a
// communicator's progress thread (async collectives overlapping the caller's computation) it
// falls asleep much sooner, so waiting for peers does not take CPU from the compute thread.
class Backoff {
 public:
  void pause();
  static void mark_progress_thread();  // called once by the progress thread
 private:
  uint32_t n_ = 0;
  uint32_t sleep_us_ = 10;
};

}  // namespace conflux::detail
