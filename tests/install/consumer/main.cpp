// Uses the installed Conflux::core: a process grid and an all-reduce.
#include <conflux/core/process_grid.h>

#include <cstdio>

int main() {
  conflux::ProcessGrid grid;
  int64_t v = grid.world_rank() + 1;
  grid.world().allreduce(&v, 1, conflux::DType::I64, conflux::ReduceOp::Sum);
  std::printf("consumer: sum %lld over %d ranks\n", static_cast<long long>(v), grid.world_size());
  return 0;
}
