// Bounds for the MPI calls that have no deadline of their own: MPI_Init, the blocking set-up
// collectives of a process grid (MPI_Comm_split, MPI_Comm_split_type, MPI_Comm_dup,
// MPI_Win_allocate_shared) and its teardown (MPI_Win_free, MPI_Comm_free, MPI_Finalize). A
// stalled rank (SIGSTOP, a hung device or file system) would block its peers in any of them
// forever; the collectives of Communicator poll non-blocking MPI against a deadline instead, but
// these calls cannot be polled.
//
// Contract
// - check_arrival(): a deadline-bounded "is every rank here?" over `comm`, run right before such
//   calls so that a rank that is missing is named. Protocol (point to point on `comm` with `tag`):
//     a) every rank but 0 sends rank 0 one arrival message;
//     b) rank 0 waits up to `timeout` for all of them, then tells every rank that arrived which
//        ranks did not (none: go on);
//     c) a rank other than 0 waits up to 1.5 x `timeout` for that answer, so that rank 0's verdict
//        naming the missing ranks normally comes first; with no answer, rank 0 is the one named.
//   Returns when every rank arrived; otherwise throws CommError naming the missing ranks (ranks
//   of `comm`), the communicator and the point. Every rank of `comm` calls it with the same
//   point and tag, in the same order as its other checks on `comm`.
// - StallGuard: a watchdog over a blocking call made after check_arrival() passed (or before
//   MPI exists at all: MPI_Init). Unless destroyed before `timeout`, its thread prints the
//   CommError paragraph main() would print and ends the job: MPI_Abort (exit code 3) while MPI
//   may be used, or _exit(3) before MPI_Init returned or once MPI_Finalize was entered (MPI_Abort
//   is not allowed there; mpirun ends the job when a rank exits non-zero, srun with
//   --kill-on-bad-exit). The one place where the library ends the process itself: the calling
//   thread is blocked inside MPI and cannot throw.
// Thread safety: check_arrival() runs on the calling thread; a StallGuard is owned by one thread.
#pragma once

#include <mpi.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

namespace conflux::detail {

// `point` names where the ranks meet ("the process grid set-up"); `consequence`, if not empty,
// is appended to the error as its own sentence.
void check_arrival(MPI_Comm comm, const std::string& comm_name, const std::string& point,
                   std::chrono::milliseconds timeout, int tag, const std::string& consequence = "");

class StallGuard {
 public:
  enum class End { Abort, Exit };  // MPI_Abort(MPI_COMM_WORLD, 3), or _exit(3)
  // `what`: the sentence reported after `timeout`, e.g. "MPI_Init did not complete within 5.0 s: ...".
  StallGuard(std::chrono::milliseconds timeout, std::string what, End end);
  ~StallGuard();  // disarms and joins
  StallGuard(const StallGuard&) = delete;
  StallGuard& operator=(const StallGuard&) = delete;
  // From now on end with _exit (call right before MPI_Finalize).
  void exit_instead_of_abort() { end_.store(End::Exit); }

 private:
  void watch(std::chrono::steady_clock::time_point deadline);
  std::string what_;
  std::atomic<End> end_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool disarmed_ = false;
  std::thread thread_;
};

}  // namespace conflux::detail
