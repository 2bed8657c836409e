// main() for multi-rank GoogleTest executables run under mpirun: one ProcessGrid for the whole
// run (tests reach it through conflux::test::grid()), only rank 0 prints gtest's output, and
// every rank exits with the same status because failures are summed across ranks.
#include "mpi_main.h"

#include <gtest/gtest.h>
#include <mpi.h>

namespace conflux::test {
namespace {
ProcessGrid* g_grid = nullptr;
}
ProcessGrid& grid() { return *g_grid; }
}  // namespace conflux::test

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  int rc = 0;
  {
    conflux::ProcessGrid grid;
    conflux::test::g_grid = &grid;
    if (grid.world_rank() != 0) {
      auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
      delete listeners.Release(listeners.default_result_printer());
    }
    int local = RUN_ALL_TESTS() == 0 ? 0 : 1;
    int failed = 0;
    MPI_Allreduce(&local, &failed, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (grid.world_rank() == 0 && failed)
      std::fprintf(stderr, "%d of %d ranks had failures\n", failed, grid.world_size());
    rc = failed ? 1 : 0;
    conflux::test::g_grid = nullptr;
  }
  return rc;
}
