// Faults must fail fast with named errors, never hang: ranks calling different collectives
// (divergence), and a rank that never arrives (missing rank, named within the timeout).
#include "mpi_main.h"

#include "conflux/core/communicator.h"
#include "conflux/core/error.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

using namespace conflux;

namespace {
std::string run_and_catch(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const CommError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(CommFaults, DivergentCountFailsFastNamingBothCalls) {
  CommOptions o;
  o.timeout = std::chrono::seconds(60);  // must fail long before this
  auto comm = make_mpi_communicator(test::grid().mpi_world(), "diverge", o);
  std::vector<float> buf(2048, 1.0f);
  size_t n = comm->rank() == 1 ? 1000 : 1024;  // rank 1 disagrees
  auto t0 = std::chrono::steady_clock::now();
  std::string msg = run_and_catch([&] { comm->allreduce(buf.data(), n, DType::F32, ReduceOp::Sum); });
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_FALSE(msg.empty()) << "divergent all-reduce did not fail";
  EXPECT_LT(secs, 30.0) << "divergence must be detected without waiting for the timeout";
  EXPECT_NE(msg.find("collective #1 diverged"), std::string::npos) << msg;
  EXPECT_NE(msg.find("allreduce(float32 x 1024, sum)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("allreduce(float32 x 1000, sum)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("comm_faults_test.cpp"), std::string::npos) << msg;
  // The communicator is now unusable and says why, instead of hanging on the next call.
  std::string again = run_and_catch([&] { comm->barrier(); });
  EXPECT_NE(again.find("unusable after an earlier failure"), std::string::npos) << again;
}

TEST(CommFaults, DivergentOpKindFailsFast) {
  auto comm = make_mpi_communicator(test::grid().mpi_world(), "diverge-kind", CommOptions{});
  std::vector<double> buf(16, 2.0);
  std::string msg = run_and_catch([&] {
    if (comm->rank() == 0) comm->broadcast(buf.data(), 16, DType::F64, 0);
    else comm->allreduce(buf.data(), 16, DType::F64, ReduceOp::Max);
  });
  EXPECT_NE(msg.find("diverged"), std::string::npos) << msg;
  EXPECT_NE(msg.find("broadcast(float64 x 16, root 0)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("allreduce(float64 x 16, max)"), std::string::npos) << msg;
}

TEST(CommFaults, MissingRankNamedWithinTimeout) {
  CommOptions o;
  o.timeout = std::chrono::seconds(2);
  auto comm = make_mpi_communicator(test::grid().mpi_world(), "missing", o);
  const int last = comm->size() - 1;
  std::vector<int32_t> buf(8, 1);
  comm->barrier();  // collective #1, everyone
  if (comm->rank() == last) {
    // This rank "hangs" (skips the collective) long enough for the others to time out. The
    // others then skip the communicator's collective teardown (they saw it fail), so this rank
    // must not wait in it either: in a real job it is the stalled rank that MPI_Abort ends.
    std::this_thread::sleep_for(std::chrono::seconds(4));
    (void)comm.release();
    return;
  }
  auto t0 = std::chrono::steady_clock::now();
  std::string msg = run_and_catch([&] { comm->allreduce(buf.data(), 8, DType::I32, ReduceOp::Sum); });
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_FALSE(msg.empty());
  EXPECT_GE(secs, 1.9);
  EXPECT_LT(secs, 20.0);
  EXPECT_NE(msg.find(fmt::format("rank {} of communicator 'missing' did not arrive at collective #2", last)),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("its last collective: #1 barrier()"), std::string::npos) << msg;
}

// The communicators of a process grid share one failure state: after a collective of one failed,
// the others refuse every call at once (the peers are out of step) instead of waiting for them.
TEST(CommFaults, FailureIsSharedByTheCommunicatorsOfAGrid) {
  CommOptions o;
  o.timeout = std::chrono::seconds(60);
  o.failure = std::make_shared<CommFailure>();
  auto a = make_mpi_communicator(test::grid().mpi_world(), "grid-a", o);
  auto b = make_mpi_communicator(test::grid().mpi_world(), "grid-b", o);
  b->barrier();  // healthy so far
  std::vector<float> buf(64, 1.0f);
  const size_t n = a->rank() == 1 ? 32 : 64;
  std::string msg = run_and_catch([&] { a->allreduce(buf.data(), n, DType::F32, ReduceOp::Sum); });
  ASSERT_NE(msg.find("diverged in communicator 'grid-a'"), std::string::npos) << msg;
  EXPECT_TRUE(o.failure->failed());
  auto t0 = std::chrono::steady_clock::now();
  std::string again = run_and_catch([&] { b->barrier(); });
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 30.0);
  EXPECT_NE(again.find("communicator 'grid-b' is unusable after an earlier failure (collective #1 diverged in "
                       "communicator 'grid-a'"),
            std::string::npos)
      << again;
  // Destroying them now skips MPI_Win_free / MPI_Comm_free on every rank (all saw the failure).
}
