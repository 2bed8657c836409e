// Data parallelism under mpirun: the world is the dp group (np 2 and 4). The bucketed, overlapped
// reducer gives the gradients and, after k AdamW steps with clipping, the weights of one process
// training on the concatenated batch (1e-6); gradient accumulation over micro-batches gives the
// same again; rank 0's initial weights are broadcast and mismatched models are refused.
#include "conflux/trainer/gpt.h"
#include "conflux/trainer/optim.h"
#include "conflux/trainer/reducer.h"

#include "conflux/core/error.h"
#include "mpi_main.h"

#include <gtest/gtest.h>
#include "tiny_gpt.h"

namespace conflux::trainer {
namespace {

GptConfig tiny(uint64_t seed = 3) { return test::tiny_gpt(2, seed); }

void run_steps(int micro_batches) {
  auto& dp = test::grid().world();
  const int r = dp.rank(), n = dp.size();
  Gpt plain(tiny());
  Gpt model(tiny(3 + r));  // different init per rank: sync_parameters must fix it
  ReducerOptions ro;
  ro.bucket_bytes = 16 * 1024;  // several buckets for this tiny model
  ro.first_bucket_bytes = 4 * 1024;
  GradReducer reducer(model->parameters(), &dp, ro);
  ASSERT_GT(reducer.num_buckets(), 3u);
  reducer.sync_parameters();
  AdamW ref_opt(plain->param_infos(), {});
  AdamW opt(model->param_infos(), {});
  torch::manual_seed(9);
  const int64_t per_rank = 4;
  for (int step = 0; step < 3; ++step) {
    torch::Tensor ids = torch::randint(0, 64, {per_rank * n, 16}, torch::kInt64);
    torch::Tensor tg = ids.roll(-1, 1);
    plain->zero_grad();
    plain->loss(ids, tg).backward();
    torch::Tensor mine = ids.slice(0, r * per_rank, (r + 1) * per_rank);
    torch::Tensor mine_tg = tg.slice(0, r * per_rank, (r + 1) * per_rank);
    const int64_t mb = per_rank / micro_batches;
    for (int m = 0; m < micro_batches; ++m) {
      reducer.begin_micro_batch(m == 0, m == micro_batches - 1);
      (model->loss(mine.slice(0, m * mb, (m + 1) * mb), mine_tg.slice(0, m * mb, (m + 1) * mb)) /
       micro_batches)
          .backward();
    }
    reducer.finish();
    auto pp = plain->parameters(), mp = model->parameters();
    if (step == 0) {
      for (size_t i = 0; i < pp.size(); ++i)
        EXPECT_LT((pp[i].grad() - mp[i].grad()).abs().max().item<float>(), 1e-6) << i;
    }
    clip_grad_norm(plain->param_infos(), TpGroup{}, 0.5);
    clip_grad_norm(model->param_infos(), TpGroup{}, 0.5);
    // Adam normalises each coordinate: rounding-level gradient differences on near-zero
    // gradients move a weight by up to ~lr per step, so lr stays small next to the tolerance
    // (the weights still move by ~3e-4 over the steps, far above it).
    ref_opt.step(1e-4);
    opt.step(1e-4);
  }
  auto pp = plain->parameters(), mp = model->parameters();
  for (size_t i = 0; i < pp.size(); ++i)
    EXPECT_LT((pp[i] - mp[i]).abs().max().item<float>(), 1e-6) << i;
}

TEST(DataParallel, MatchesConcatenatedBatch) { run_steps(1); }
TEST(DataParallel, AccumulationMatchesConcatenatedBatch) { run_steps(2); }

TEST(DataParallel, RefusesMismatchedModels) {
  auto& dp = test::grid().world();
  GptConfig c = tiny();
  if (dp.rank() == 1) c.n_layer = 3;
  Gpt model(c);
  GradReducer reducer(model->parameters(), &dp);
  EXPECT_THROW(reducer.sync_parameters(), CommError);
}

TEST(DataParallel, BucketsCoverEveryParameterOnceInReverseOrder) {
  Gpt model(tiny());
  GradReducer reducer(model->parameters(), nullptr, {64 * 1024, 1024, true});
  std::vector<size_t> order;
  for (size_t b = 0; b < reducer.num_buckets(); ++b)
    for (size_t k : reducer.bucket_params(b)) order.push_back(k);
  const size_t n = model->parameters().size();
  ASSERT_EQ(order.size(), n);
  for (size_t i = 0; i < n; ++i) EXPECT_EQ(order[i], n - 1 - i);
  // The first bucket is small: up to 1 KiB holds ln_f.bias, ln_f.weight and h.1.mlp.proj.bias
  // (32 floats each); the next parameter (h.1.mlp.proj.weight, 16 KiB) opens a new bucket.
  EXPECT_EQ(reducer.bucket_params(0).size(), 3u);
  EXPECT_EQ(reducer.bucket_params(1).front(), n - 4);
}

}  // namespace
}  // namespace conflux::trainer
