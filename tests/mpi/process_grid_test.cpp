// Process-grid splits: (dp, tp) = (n, 1), (1, n), (2, 2); tp ranks adjacent; group collectives
// only involve the group's members.
#include "mpi_main.h"

#include "conflux/core/process_grid.h"

#include "conflux/core/error.h"

#include <gtest/gtest.h>
#include <mpi.h>

using namespace conflux;

namespace {
void check_grid(int tp) {
  GridOptions o;
  o.tp = tp;
  ProcessGrid g(o);
  const int w = g.world_size(), r = g.world_rank();
  EXPECT_EQ(g.tp_size(), tp);
  EXPECT_EQ(g.dp_size(), w / tp);
  EXPECT_EQ(g.tp_rank(), r % tp);
  EXPECT_EQ(g.dp_rank(), r / tp);
  EXPECT_EQ(g.tp().size(), tp);
  EXPECT_EQ(g.dp().size(), w / tp);
  EXPECT_EQ(g.tp().rank(), g.tp_rank());
  EXPECT_EQ(g.dp().rank(), g.dp_rank());
  // Sum of world ranks within my tp group: adjacent ranks dp_rank*tp .. dp_rank*tp+tp-1.
  int64_t v = r, expect = 0;
  for (int k = 0; k < tp; ++k) expect += g.dp_rank() * tp + k;
  g.tp().allreduce(&v, 1, DType::I64, ReduceOp::Sum);
  EXPECT_EQ(v, expect);
  // Within my dp group: ranks with the same tp_rank.
  v = r, expect = 0;
  for (int k = 0; k < w / tp; ++k) expect += k * tp + g.tp_rank();
  g.dp().allreduce(&v, 1, DType::I64, ReduceOp::Sum);
  EXPECT_EQ(v, expect);
  EXPECT_EQ(g.launch().launcher, "mpirun");
  EXPECT_GE(g.launch().local_rank, 0);
  EXPECT_EQ(g.mpi_thread_level(), MPI_THREAD_MULTIPLE);
}
}  // namespace

TEST(ProcessGrid, DataParallelOnly) { check_grid(1); }
TEST(ProcessGrid, TensorParallelOnly) { check_grid(test::grid().world_size()); }
TEST(ProcessGrid, TwoByTwo) {
  if (test::grid().world_size() != 4) GTEST_SKIP() << "needs 4 ranks";
  check_grid(2);
}
TEST(ProcessGrid, RejectsTpThatDoesNotDivide) {
  GridOptions o;
  o.tp = test::grid().world_size() + 1;
  EXPECT_THROW({ ProcessGrid g(o); }, ConfigError);
}
