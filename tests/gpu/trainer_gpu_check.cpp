// GPU check of the trainer (scripts/gpu-check.sh; ctest label "gpu"; exits 77 = skipped when no
// CUDA device is visible). Run under mpirun (any number of ranks, one device per local rank):
//   1. the GPT on CUDA equals the CPU model (fp32 loss within 1e-4);
//   2. CUDA tensors go through the NCCL communicator (tensor overloads), CPU tensors are refused;
//   3. `train()` on CUDA with NCCL data-parallel groups and bf16 autocast: the loss falls over 60
//      steps, a checkpoint is written at step 30 and a second run resumes from it to step 60;
//   4. a ~125M-parameter GPT (12 layers, width 768, 12 heads, context 1024, vocab 50304) training
//      step on one device with bf16 autocast: tokens/s and MFU (model FLOPs per token 6N + 12 L d T
//      against the dense bf16 peak given as argv[1] or GPU_PEAK_TFLOPS in TFLOP/s, default 989 for
//      H100/H200 SXM).
#include "conflux/core/error.h"
#include "conflux/core/process_grid.h"
#include "conflux/core/rng.h"
#include "conflux/core/tensor_comm.h"
#include "conflux/trainer/autocast.h"
#include "conflux/trainer/gpt.h"
#include "conflux/trainer/optim.h"
#include "conflux/trainer/trainer.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

using namespace conflux;
using namespace conflux::trainer;
namespace fs = std::filesystem;

namespace {

int g_failures = 0;

void expect(bool ok, const char* what) {
  std::printf("%s: %s\n", ok ? "ok" : "FAIL", what);
  if (!ok) ++g_failures;
}

std::vector<double> losses(const std::string& metrics) {
  std::vector<double> out;
  std::ifstream in(metrics);
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object() && j.contains("loss")) out.push_back(j["loss"].get<double>());
  }
  return out;
}

void cuda_equals_cpu() {
  GptConfig small;
  small.vocab_size = 128, small.context = 32, small.n_layer = 2, small.n_head = 4, small.d_model = 64;
  Gpt cpu(small), gpu(small);
  gpu->to(torch::Device(torch::kCUDA, 0));
  torch::Tensor ids = torch::randint(0, 128, {4, 32}, torch::kInt64);
  const double lc = cpu->loss(ids, ids.roll(-1, 1)).item<double>();
  const double lg = gpu->loss(ids.cuda(), ids.roll(-1, 1).cuda()).item<double>();
  std::printf("cuda vs cpu loss: %.6f vs %.6f (diff %.2e)\n", lc, lg, std::abs(lc - lg));
  expect(std::abs(lc - lg) <= 1e-4, "GPT loss on CUDA equals the CPU loss (1e-4)");
}

void nccl_tensors(ProcessGrid& grid, int device) {
  Communicator& nccl = grid.nccl("world", device);
  const int n = grid.world_size();
  auto opts = torch::TensorOptions().device(torch::kCUDA, device);
  torch::Tensor t = torch::arange(1000, opts.dtype(torch::kFloat32)) * double(grid.world_rank() + 1);
  allreduce(nccl, t, ReduceOp::Sum);
  torch::Tensor want = torch::arange(1000, opts.dtype(torch::kFloat32)) * double(n * (n + 1) / 2);
  expect(torch::equal(t, want), "CUDA tensor all-reduce through NCCL");
  torch::Tensor b = torch::full({64}, double(grid.world_rank()), opts.dtype(torch::kBFloat16));
  allreduce(nccl, b, ReduceOp::Max);
  expect(b.to(torch::kFloat32).eq(double(n - 1)).all().item<bool>(), "bf16 CUDA tensor max through NCCL");
  bool refused = false;
  try {
    torch::Tensor c = torch::ones({4});
    allreduce(nccl, c, ReduceOp::Sum);
  } catch (const CommError&) {
    refused = true;
  }
  expect(refused, "CPU tensor refused by the NCCL communicator");
}

void train_on_cuda(ProcessGrid& grid, int device) {
  TrainerComms comms;
  comms.world = &grid.world();
  comms.dp = &grid.nccl("dp", device);
  comms.tp = &grid.nccl("tp", device);
  comms.dp_rank = grid.dp_rank(), comms.dp_size = grid.dp_size();
  comms.tp_rank = grid.tp_rank(), comms.tp_size = grid.tp_size();
  comms.local_rank = device;
  // A learnable stream: repeated random phrases of 12 tokens over a vocabulary of 64.
  Stream rng(7, "gpu-corpus");
  std::vector<std::vector<int32_t>> phrases(16, std::vector<int32_t>(12));
  for (auto& p : phrases)
    for (auto& t : p) t = static_cast<int32_t>(2 + rng.below(62));
  std::vector<int32_t> tokens;
  while (tokens.size() < 200000) {
    const auto& p = phrases[rng.below(16)];
    tokens.insert(tokens.end(), p.begin(), p.end());
    tokens.push_back(1);
  }
  VectorTokenSource source(tokens);
  const std::string dir = (fs::temp_directory_path() / "conflux-gpu-check").string();
  if (grid.world_rank() == 0) fs::remove_all(dir);
  grid.world().barrier();
  TrainConfig cfg;
  cfg.model.vocab_size = 64, cfg.model.context = 64, cfg.model.n_layer = 4, cfg.model.n_head = 4;
  cfg.model.d_model = 128;
  cfg.dataset = "memory";
  cfg.device = "cuda";
  cfg.steps = 30;
  cfg.batch_size = 32 * grid.dp_size();
  cfg.lr = 3e-3, cfg.min_lr = 3e-4, cfg.warmup_steps = 5;
  cfg.eval_every = 30, cfg.eval_windows = 16;
  cfg.checkpoint_dir = dir + "/ckpt", cfg.checkpoint_every = 30;
  cfg.output_dir = dir + "/out";
  cfg.progress = false;
  TrainResult first = train(cfg, source, comms);
  cfg.steps = 60;
  TrainResult second = train(cfg, source, comms);
  std::vector<double> l = losses(dir + "/out/metrics.jsonl");
  if (grid.world_rank() == 0 && !l.empty())
    std::printf("train on CUDA: %zu logged steps, loss %.3f -> %.3f, %.0f tokens/s, val loss %.3f\n",
                l.size(), l.front(), l.back(), second.tokens_per_second, second.val_loss);
  expect(first.step == 30 && !first.checkpoint.empty(), "first CUDA run stops at step 30 with a checkpoint");
  expect(second.step == 60, "second CUDA run resumes and reaches step 60");
  expect(grid.world_rank() != 0 || (l.size() >= 2 && l.back() < l.front() - 1.0),
         "training loss falls by more than 1 nat on CUDA");
}

void throughput_125m(double peak) {
  GptConfig c;
  c.vocab_size = 50304, c.context = 1024, c.n_layer = 12, c.n_head = 12, c.d_model = 768;
  torch::Device dev(torch::kCUDA, 0);
  Gpt model(c);
  model->to(dev);
  AdamW opt(model->param_infos(), {});
  const int64_t batch = 8, t = 1024;
  auto step = [&]() {
    torch::Tensor x = torch::randint(0, c.vocab_size, {batch, t + 1},
                                     torch::TensorOptions().dtype(torch::kInt64).device(dev));
    torch::Tensor loss;
    {
      CudaAutocast autocast(true);
      loss = model->loss(x.slice(1, 0, t), x.slice(1, 1, t + 1));
    }
    for (auto& p : model->parameters()) p.mutable_grad() = torch::Tensor();
    loss.backward();
    clip_grad_norm(model->param_infos(), TpGroup{}, 1.0);
    opt.step(1e-4);
    return loss.item<double>();
  };
  for (int i = 0; i < 3; ++i) step();
  torch::cuda::synchronize();
  const int steps = 10;
  auto t0 = std::chrono::steady_clock::now();
  double loss = 0;
  for (int i = 0; i < steps; ++i) loss = step();
  torch::cuda::synchronize();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double tok_s = double(steps * batch * t) / secs;
  const double mfu = tok_s * c.flops_per_token(t) / (peak * 1e12);
  std::printf("GPT %.1fM params, batch %lld x %lld, bf16 autocast: %.0f tokens/s, %.1f ms/step, MFU %.1f%% "
              "(peak %.0f TFLOP/s), loss %.3f\n",
              c.num_params() / 1e6, static_cast<long long>(batch), static_cast<long long>(t), tok_s,
              1e3 * secs / steps, 100 * mfu, peak, loss);
  expect(std::isfinite(loss), "125M GPT bf16 steps give a finite loss");
}

}  // namespace

int main(int argc, char** argv) {
  const char* env_peak = std::getenv("GPU_PEAK_TFLOPS");
  const double peak = argc > 1 ? std::atof(argv[1]) : env_peak ? std::atof(env_peak) : 989.0;
  int rc = 0;
  try {
    ProcessGrid grid;
    if (!torch::cuda::is_available()) {
      if (grid.world_rank() == 0) std::printf("no CUDA device: trainer GPU check skipped\n");
      rc = 77;
    } else {
      const int device = grid.launch().local_rank % static_cast<int>(torch::cuda::device_count());
      if (grid.world_rank() == 0) cuda_equals_cpu();
      nccl_tensors(grid, device);
      train_on_cuda(grid, device);
      if (grid.world_rank() == 0) throughput_125m(peak);
      rc = g_failures ? 1 : 0;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "trainer_gpu_check: %s\n", e.what());
    rc = 1;
  }
  return rc;
}
