// GPU check (run by scripts/gpu-check.sh on a machine with CUDA; exits 0 with a note otherwise):
// the GPT on CUDA equals the CPU model (fp32, 1e-4), a bf16-autocast step runs, and a ~125M GPT
// training step is timed: prints tokens/s and MFU against the peak given as argv[1] (TFLOP/s).
#include "conflux/trainer/gpt.h"
#include "conflux/trainer/optim.h"

#include <ATen/autocast_mode.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

using namespace conflux::trainer;

int main(int argc, char** argv) {
  if (!torch::cuda::is_available()) {
    std::printf("no CUDA device: GPU check not run\n");
    return 0;
  }
  const double peak = argc > 1 ? std::atof(argv[1]) : 989.0;
  torch::Device dev(torch::kCUDA, 0);
  // 1. CUDA equals CPU.
  GptConfig small;
  small.vocab_size = 128, small.context = 32, small.n_layer = 2, small.n_head = 4, small.d_model = 64;
  Gpt cpu(small), gpu(small);
  gpu->to(dev);
  torch::Tensor ids = torch::randint(0, 128, {4, 32}, torch::kInt64);
  torch::Tensor lc = cpu->loss(ids, ids.roll(-1, 1));
  torch::Tensor lg = gpu->loss(ids.to(dev), ids.roll(-1, 1).to(dev));
  const double diff = std::abs(lc.item<double>() - lg.item<double>());
  std::printf("cuda vs cpu loss: %.6f vs %.6f (diff %.2e)\n", lc.item<double>(), lg.item<double>(), diff);
  if (diff > 1e-4) {
    std::printf("FAIL: CUDA loss differs from CPU\n");
    return 1;
  }
  // 2./3. ~125M GPT with bf16 autocast.
  GptConfig c;
  c.vocab_size = 50304, c.context = 1024, c.n_layer = 12, c.n_head = 12, c.d_model = 768;
  Gpt model(c);
  model->to(dev);
  AdamW opt(model->param_infos(), {});
  const int64_t batch = 8, t = 1024;
  auto step = [&]() {
    torch::Tensor x = torch::randint(0, c.vocab_size, {batch, t + 1}, torch::TensorOptions().dtype(torch::kInt64).device(dev));
    at::autocast::set_enabled(true);
    at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
    torch::Tensor loss = model->loss(x.slice(1, 0, t), x.slice(1, 1, t + 1));
    at::autocast::set_enabled(false);
    at::autocast::clear_cache();
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
  std::printf("GPT %.1fM params, batch %lld x %lld, bf16 autocast: %.0f tokens/s, MFU %.1f%% "
              "(peak %.0f TFLOP/s), loss %.3f\n",
              c.num_params() / 1e6, static_cast<long long>(batch), static_cast<long long>(t), tok_s,
              100 * mfu, peak, loss);
  return 0;
}
