// check_arrival (a deadline-bounded arrival check that names missing ranks) and StallGuard (a
// watchdog over blocking MPI calls); see bounded_mpi.h.
#include "bounded_mpi.h"

#include "conflux/core/checks.h"
#include "conflux/core/error.h"
#include "shm_group.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <vector>

namespace conflux::detail {
namespace {

constexpr int kMaxNamed = 16;  // missing ranks listed in rank 0's answer (and the error)

double seconds(std::chrono::milliseconds d) { return std::chrono::duration<double>(d).count(); }

// "rank 3" / "ranks 1, 3" / "ranks 1, 2, ..., 16 and 4 more"; `listed` holds the first of `total`.
std::string name_ranks(const int* listed, int total) {
  std::string out = total == 1 ? "rank " : "ranks ";
  const int n = std::min(total, kMaxNamed);
  for (int i = 0; i < n; ++i) out += (i ? ", " : "") + std::to_string(listed[i]);
  if (total > n) out += fmt::format(" and {} more", total - n);
  return out;
}

// Polls `req` until it completes or `deadline` passes; true if it completed.
bool wait_until(MPI_Request* req, Clock::time_point deadline) {
  Backoff backoff;
  for (;;) {
    int done = 0;
    MPI_CHECK(MPI_Test(req, &done, MPI_STATUS_IGNORE));
    if (done) return true;
    if (Clock::now() > deadline) return false;
    backoff.pause();
  }
}

// Withdraws a receive that never matched, so that its buffer may go.
void cancel(MPI_Request* req) {
  if (*req == MPI_REQUEST_NULL) return;
  MPI_Cancel(req);
  MPI_Wait(req, MPI_STATUS_IGNORE);
}

std::string sentence(const std::string& s) { return s.empty() ? "" : ". " + s; }

// Rank 0: collects the arrivals; returns the missing ranks after telling the others.
std::vector<int> collect(MPI_Comm comm, int size, std::chrono::milliseconds timeout, int tag) {
  std::vector<MPI_Request> reqs(static_cast<size_t>(size - 1), MPI_REQUEST_NULL);
  std::vector<int> inbox(static_cast<size_t>(size - 1));
  for (int r = 1; r < size; ++r) MPI_CHECK(MPI_Irecv(&inbox[r - 1], 1, MPI_INT, r, tag, comm, &reqs[r - 1]));
  const auto deadline = Clock::now() + timeout;
  std::vector<int> done_idx(reqs.size());
  int outstanding = size - 1;
  Backoff backoff;
  while (outstanding > 0 && Clock::now() <= deadline) {
    int n = 0;
    MPI_CHECK(MPI_Testsome(size - 1, reqs.data(), &n, done_idx.data(), MPI_STATUSES_IGNORE));
    if (n == MPI_UNDEFINED) break;
    outstanding -= n;
    if (n == 0) backoff.pause();
  }
  std::vector<int> missing;
  for (int r = 1; r < size; ++r)
    if (reqs[r - 1] != MPI_REQUEST_NULL) {
      missing.push_back(r);
      cancel(&reqs[r - 1]);
    }
  // The answer: [number missing, the first kMaxNamed of them]. Sent to the ranks that arrived
  // (they wait for it); the sends complete at once (the receives are posted, the message small).
  std::array<int, 1 + kMaxNamed> answer{};
  answer[0] = static_cast<int>(missing.size());
  for (size_t i = 0; i < missing.size() && i < kMaxNamed; ++i) answer[1 + i] = missing[i];
  std::vector<MPI_Request> sends;
  for (int r = 1; r < size; ++r)
    if (!std::binary_search(missing.begin(), missing.end(), r)) {
      sends.emplace_back();
      MPI_CHECK(MPI_Isend(answer.data(), 1 + kMaxNamed, MPI_INT, r, tag, comm, &sends.back()));
    }
  const auto send_deadline = Clock::now() + timeout;
  for (auto& s : sends)
    if (!wait_until(&s, send_deadline))
      CONFLUX_THROW(CommError, "rank 0 could not deliver the arrival check's answer within {:.1f} s (a rank stalled "
                               "right after arriving)", seconds(timeout));
  return missing;
}

}  // namespace

void check_arrival(MPI_Comm comm, const std::string& comm_name, const std::string& point,
                   std::chrono::milliseconds timeout, int tag, const std::string& consequence) {
  int rank = 0, size = 1;
  MPI_CHECK(MPI_Comm_rank(comm, &rank));
  MPI_CHECK(MPI_Comm_size(comm, &size));
  if (size == 1) return;
  if (rank == 0) {
    const std::vector<int> missing = collect(comm, size, timeout, tag);
    if (missing.empty()) return;
    CONFLUX_THROW(CommError, "{} of communicator '{}' did not arrive at {} within {:.1f} s (stopped, hung, or "
                             "slower than comm.timeout_s){}",
                  name_ranks(missing.data(), static_cast<int>(missing.size())), comm_name, point, seconds(timeout),
                  sentence(consequence));
  }
  static const int kArrived = 1;  // outlives the send, whose request is let go
  MPI_Request send;
  MPI_CHECK(MPI_Isend(&kArrived, 1, MPI_INT, 0, tag, comm, &send));
  MPI_CHECK(MPI_Request_free(&send));
  std::array<int, 1 + kMaxNamed> answer{};
  MPI_Request recv;
  MPI_CHECK(MPI_Irecv(answer.data(), 1 + kMaxNamed, MPI_INT, 0, tag, comm, &recv));
  const auto wait = timeout * 3 / 2;
  if (!wait_until(&recv, Clock::now() + wait)) {
    cancel(&recv);
    CONFLUX_THROW(CommError, "rank 0 of communicator '{}' did not answer at {} within {:.1f} s (rank 0 collects every "
                             "rank's arrival there): it is stopped, hung, or slower than comm.timeout_s{}",
                  comm_name, point, seconds(wait), sentence(consequence));
  }
  if (answer[0] == 0) return;
  CONFLUX_THROW(CommError, "{} of communicator '{}' did not arrive at {} within {:.1f} s (stopped, hung, or slower "
                           "than comm.timeout_s; reported by rank 0){}",
                name_ranks(answer.data() + 1, answer[0]), comm_name, point, seconds(timeout), sentence(consequence));
}

StallGuard::StallGuard(std::chrono::milliseconds timeout, std::string what, End end)
    : what_(std::move(what)), end_(end) {
  const auto deadline = Clock::now() + timeout;
  thread_ = std::thread([this, deadline] { watch(deadline); });
}

StallGuard::~StallGuard() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    disarmed_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void StallGuard::watch(Clock::time_point deadline) {
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (cv_.wait_until(lock, deadline, [this] { return disarmed_; })) return;
  }
  // The calling thread is still blocked inside MPI: report as main() would, then end the job.
  const CommError e(what_, __FILE__, __LINE__);
  const std::string text = describe_for_user(e) + "\n";
  std::fputs(text.c_str(), stderr);
  std::fflush(stdout);
  std::fflush(stderr);
  if (end_.load() == End::Abort) MPI_Abort(MPI_COMM_WORLD, kExitComm);
  ::_exit(kExitComm);
}

}  // namespace conflux::detail
