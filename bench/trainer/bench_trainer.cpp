// Training throughput of Conflux's GPT + bucketed, overlapped data-parallel reducer (MPI back end),
// for the side-by-side run with PyTorch DDP-gloo in run.sh. Every rank trains on its own random
// token batches (same shapes as the reference); rank 0 prints one JSON line:
//   {"impl": "conflux", "config", "ranks", "threads", "params", "tokens_per_s" (global),
//    "step_ms", "comm_wait_ms" (time finish() waited for all-reduces), "overlap"}
// usage: mpirun -np N bench_trainer CONFIG STEPS WARMUP OVERLAP(0|1) [BUCKET_MB]   CONFIG: small | heavy
// (BUCKET_MB: the reducer's bucket size, default ReducerOptions::bucket_bytes)
#include "conflux/core/process_grid.h"
#include "conflux/trainer/gpt.h"
#include "conflux/trainer/optim.h"
#include "conflux/trainer/reducer.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

using namespace conflux;
using namespace conflux::trainer;

int main(int argc, char** argv) {
  if (argc != 5 && argc != 6) {
    std::fprintf(stderr, "usage: bench_trainer small|heavy STEPS WARMUP OVERLAP [BUCKET_MB]\n");
    return 2;
  }
  const std::string which = argv[1];
  const int steps = std::atoi(argv[2]), warmup = std::atoi(argv[3]);
  const bool overlap = std::atoi(argv[4]) != 0;
  GptConfig c;
  int64_t batch = 8, seq = 128;  // per rank
  c.vocab_size = 256;
  if (which == "small") {
    c.n_layer = 4, c.n_head = 4, c.d_model = 256, c.context = 128;
  } else {
    c.n_layer = 4, c.n_head = 12, c.d_model = 768, c.context = 64;
    batch = 2, seq = 64;
  }
  torch::set_num_threads(1);
  ProcessGrid grid;
  Communicator& dp = grid.world();
  Gpt model(c);
  ReducerOptions ro;
  ro.overlap = overlap;
  if (argc == 6) ro.bucket_bytes = static_cast<size_t>(std::atof(argv[5]) * (1 << 20));
  GradReducer reducer(model->parameters(), &dp, ro);
  reducer.sync_parameters();
  AdamW opt(model->param_infos(), {});
  torch::manual_seed(1 + grid.world_rank());
  double wait = 0, fwd_bwd = 0, finish = 0, update = 0;
  using Clock = std::chrono::steady_clock;
  auto since = [](Clock::time_point a) { return std::chrono::duration<double>(Clock::now() - a).count(); };
  Clock::time_point t0;
  for (int s = 0; s < warmup + steps; ++s) {
    if (s == warmup) {
      dp.barrier();
      t0 = std::chrono::steady_clock::now();
      wait = fwd_bwd = finish = update = 0;
    }
    auto ta = Clock::now();
    torch::Tensor ids = torch::randint(0, c.vocab_size, {batch, seq + 1}, torch::kInt64);
    reducer.begin_micro_batch(true, true);
    model->loss(ids.slice(1, 0, seq), ids.slice(1, 1, seq + 1)).backward();
    fwd_bwd += since(ta);
    auto tb = Clock::now();
    reducer.finish();
    finish += since(tb);
    wait += reducer.last_wait_seconds();
    auto tc = Clock::now();
    const double norm = global_grad_norm(model->param_infos(), TpGroup{});
    opt.step(1e-4, clip_coefficient(norm, 1.0));
    update += since(tc);
  }
  dp.barrier();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (grid.world_rank() == 0) {
    const double tokens = double(steps) * batch * seq * grid.world_size();
    std::printf("{\"impl\": \"conflux\", \"config\": \"%s\", \"ranks\": %d, \"threads\": 1, "
                "\"params\": %lld, \"tokens_per_s\": %.1f, \"step_ms\": %.2f, \"comm_wait_ms\": %.2f, "
                "\"fwd_bwd_ms\": %.1f, \"finish_ms\": %.1f, \"update_ms\": %.1f, \"overlap\": %s, \"bucket_mb\": %.2f}\n",
                which.c_str(), grid.world_size(), static_cast<long long>(c.num_params()),
                tokens / secs, 1e3 * secs / steps, 1e3 * wait / steps, 1e3 * fwd_bwd / steps, 1e3 * finish / steps,
                1e3 * update / steps, overlap ? "true" : "false", double(ro.bucket_bytes) / (1 << 20));
    std::fflush(stdout);
  }
  return 0;
}
