// ProcessGrid: the MPI world (or a single rank when not launched by mpirun/srun) split into
// data-parallel x tensor-parallel groups.
//
// Layout: world rank = dp_rank * tp + tp_rank, so the tp ranks of one data-parallel replica are
// adjacent (and share a node when tp divides the ranks per node). Each rank belongs to one tp
// group (size tp) and one dp group (size dp).
// Lifetime: the first ProcessGrid initialises MPI (MPI_THREAD_MULTIPLE, since async collectives
// run on a progress thread while the caller may issue others) and finalises it when the last
// grid is destroyed. Communicators must be destroyed before the grid.
// Failure: the grid's communicators (world, dp, tp, NCCL) share one CommFailure. After a
// collective failed, or when the grid is destroyed while an exception unwinds, the grid and its
// communicators skip every collective teardown and MPI_Finalize (a stalled peer would block them
// forever); the program's top-level handler must then end the job with MPI_Abort (conflux's
// main() does, exit code 3 for a CommError).
// Stalled ranks outside the collectives: every MPI call of the grid that has no deadline of its
// own is bounded by options.comm.timeout (comm.timeout_s) as well (mpi/bounded_mpi.h):
// - MPI_Init (which waits for every rank to start MPI) runs under a watchdog that prints a
//   CommError and exits with code 3 (MPI cannot name the missing rank before it starts);
// - the constructor checks that every rank arrived before its blocking set-up collectives and
//   throws CommError naming the ranks that did not;
// - the destructor of a grid whose job went well checks that every rank arrived before the
//   teardown and MPI_Finalize; if one did not, it prints the CommError naming it and aborts the
//   job (MPI_Abort, exit code 3), since a destructor cannot throw;
// - the blocking calls after a passed check run under a watchdog that aborts the job likewise.
// Test hook: CONFLUX_TEST_STOP_AT=POINT:RANK (mpi-init, grid-setup, grid-teardown) makes that
// rank stop itself with SIGSTOP there (tests/mpi/stall_test.sh); inert when unset.
#pragma once

#include "conflux/core/communicator.h"

#include <memory>
#include <string>

namespace conflux {

struct GridOptions {
  int tp = 1;  // tensor-parallel size; must divide the world size
  CommOptions comm;
};

class ConfigBinder;
// The [parallel] and [comm] sections of an MPI stage's config, bound and turned into GridOptions
// in one place: parallel.tp, comm.timeout_s, comm.shm, comm.shm_small_bytes,
// comm.shm_large_bytes, comm.shm_chunk_bytes. TrainConfig embeds it (`conflux config show --kind
// grid` prints it); a stage without these sections runs with GridOptions' defaults.
struct GridConfig {
  int tp = 1;
  double timeout_s = 300;
  bool shm = true;
  int64_t shm_small_bytes = 64 * 1024;
  int64_t shm_large_bytes = 2 * 1024 * 1024;
  int64_t shm_chunk_bytes = 128 * 1024;
  void bind(ConfigBinder& b);
  // The [comm] keys only, for stages that use the world communicator alone (prepare).
  void bind_comm(ConfigBinder& b);
  GridOptions options() const;
};

struct LaunchInfo {
  std::string launcher;  // "mpirun", "srun", "none"
  int local_rank = 0;
  int local_size = 1;
  std::string host;
};

class ProcessGrid {
 public:
  explicit ProcessGrid(GridOptions options = {});
  ~ProcessGrid();
  ProcessGrid(const ProcessGrid&) = delete;
  ProcessGrid& operator=(const ProcessGrid&) = delete;

  int world_rank() const { return world_rank_; }
  int world_size() const { return world_size_; }
  int dp_rank() const { return world_rank_ / tp_; }
  int dp_size() const { return world_size_ / tp_; }
  int tp_rank() const { return world_rank_ % tp_; }
  int tp_size() const { return tp_; }
  const LaunchInfo& launch() const { return launch_; }
  int mpi_thread_level() const { return thread_level_; }

  // True once a collective of any of this grid's communicators failed.
  bool failed() const;

  Communicator& world();
  Communicator& dp();
  Communicator& tp();
  // An NCCL communicator over the same ranks as `group` ("world", "dp" or "tp"), created on
  // first use on CUDA device `device`. Throws CommError when the build has no NCCL.
  Communicator& nccl(const std::string& group, int device);

  // The underlying MPI communicator (an MPI_Comm cast to intptr_t keeps mpi.h out of users).
  intptr_t mpi_world() const;

  // Abort every rank of the job (MPI_Abort) with `code`; used by main() after an error on one rank
  // so the others do not wait forever.
  [[noreturn]] void abort(int code) const;

 private:
  void set_up(GridOptions options);  // the constructor's part after MPI_Init
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int world_rank_ = 0;
  int world_size_ = 1;
  int tp_ = 1;
  int thread_level_ = 0;
  LaunchInfo launch_;
};

// Creates an MPI-backed communicator over an existing MPI communicator (given as intptr_t).
std::unique_ptr<Communicator> make_mpi_communicator(intptr_t mpi_comm, std::string name,
                                                   CommOptions options);

// True when this build has the NCCL back end compiled in.
bool nccl_compiled();
// Number of visible CUDA devices; -1 when the build has no CUDA, with the reason in *why.
int cuda_device_count(std::string* why);

}  // namespace conflux
