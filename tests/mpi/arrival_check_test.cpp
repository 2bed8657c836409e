// check_arrival (core/src/mpi/bounded_mpi.h), the deadline-bounded check that the process grid
// runs before its blocking set-up and before MPI_Finalize: returns when every rank is there, and
// otherwise every rank that is there fails naming the ranks that are not (rank 0 collects the
// arrivals; the others name rank 0 when it is the one missing). Ranks "stall" here by skipping the
// call, each test on its own communicator (left allocated: a skipped check can leave unmatched
// messages behind, which must not meet a later communicator that reuses its context id).
#include "mpi_main.h"

#include "mpi/bounded_mpi.h"

#include "conflux/core/error.h"

#include <gtest/gtest.h>
#include <mpi.h>

#include <chrono>
#include <string>

using namespace conflux;

namespace {
constexpr int kTag = 99;

MPI_Comm fresh_comm() {
  MPI_Comm c;
  MPI_Comm_dup(reinterpret_cast<MPI_Comm>(test::grid().mpi_world()), &c);
  return c;
}

std::string check(MPI_Comm comm, std::chrono::milliseconds timeout) {
  try {
    detail::check_arrival(comm, "arrival", "the test point", timeout, kTag, "What happens next");
  } catch (const CommError& e) {
    return e.message();
  }
  return "";
}
}  // namespace

TEST(ArrivalCheck, ReturnsWhenEveryRankArrives) {
  MPI_Comm comm = fresh_comm();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(check(comm, std::chrono::seconds(60)), "") << "round " << i;
}

TEST(ArrivalCheck, NamesTheRanksThatDidNotArrive) {
  MPI_Comm comm = fresh_comm();
  const int size = test::grid().world_size(), rank = test::grid().world_rank();
  // The upper half of the ranks (rank 1 of 2; ranks 2 and 3 of 4) never arrive.
  const int first_missing = size / 2;
  if (rank >= first_missing) return;
  const std::string msg = check(comm, std::chrono::seconds(1));
  const std::string who = size == 2 ? "rank 1" : "ranks 2, 3";
  EXPECT_EQ(msg.rfind(who + " of communicator 'arrival' did not arrive at the test point within 1.0 s", 0), 0u)
      << msg;
  EXPECT_NE(msg.find("slower than comm.timeout_s"), std::string::npos) << msg;
  EXPECT_NE(msg.find(". What happens next"), std::string::npos) << msg;
  // Rank 0 found out itself; the others that arrived heard it from rank 0.
  EXPECT_EQ(msg.find("reported by rank 0") != std::string::npos, rank != 0) << msg;
}

TEST(ArrivalCheck, TheOthersNameRankZeroWhenItIsMissing) {
  MPI_Comm comm = fresh_comm();
  if (test::grid().world_rank() == 0) return;  // rank 0 never arrives
  const std::string msg = check(comm, std::chrono::seconds(1));
  EXPECT_EQ(msg.rfind("rank 0 of communicator 'arrival' did not answer at the test point within 1.5 s", 0), 0u)
      << msg;
}
