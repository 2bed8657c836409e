// Allocation placement for task executors that allocate and free the same large buffers on every
// task (evaluation activations; a participant's copies of the global model and its update).
// With glibc's default, dynamic thresholds, freed memory above ~2x the largest freed block is
// trimmed back to the system and each task page-faults it in again (zeroed by the kernel): 15 %
// of an evaluation worker's samples, and a quarter of all CPU in a 16-participant round with no
// training (docs/benchmarks.md). Keep up to 1 GiB of freed heap and serve blocks up to 32 MiB
// (glibc's own dynamic maximum) from the heap. Process-wide and once (the executor's process is a
// worker or an evaluation rank). No computed value changes.
#pragma once

#include <mutex>

#include <malloc.h>

namespace conflux::tasks::detail {

inline void keep_freed_memory() {
#if defined(__GLIBC__)
  static std::once_flag once;
  std::call_once(once, [] {
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
  });
#endif
}

}  // namespace conflux::tasks::detail
