// Tensor parallelism under mpirun: the world is the tp group (np 2 -> tp 2, np 4 -> tp 4). With
// the same initial weights, the tp model gives the loss, logits, gathered gradients, global
// gradient norm and clipped AdamW updates of the plain (tp = 1) model computed on every rank.
#include "conflux/trainer/checkpoint.h"
#include "conflux/trainer/gpt.h"
#include "conflux/trainer/optim.h"

#include "conflux/core/tensor_comm.h"
#include "mpi_main.h"
#include "scratch_dir.h"

#include <gtest/gtest.h>
#include "tiny_gpt.h"

#include <filesystem>

namespace conflux::trainer {
namespace {

GptConfig tiny() { return test::tiny_gpt(); }

TpGroup world_tp() {
  auto& w = test::grid().world();
  return TpGroup{&w, w.rank(), w.size()};
}

// Gathers a sharded tensor along its shard dimension (replicated tensors are returned as is).
torch::Tensor gather(const torch::Tensor& local, const ShardSpec& spec, const TpGroup& tp) {
  if (!spec.sharded()) return local;
  torch::Tensor parts = allgather(*tp.comm, local.contiguous());  // (tp, *local)
  return torch::cat(parts.unbind(0), spec.dim);
}

TEST(TensorParallel, MatchesPlainModel) {
  TpGroup tp = world_tp();
  GptConfig c = tiny();
  Gpt plain(c);
  Gpt model(c, tp);
  torch::manual_seed(5);  // same batch on every rank
  torch::Tensor ids = torch::randint(0, c.vocab_size, {3, 12}, torch::kInt64);
  torch::Tensor targets = torch::randint(0, c.vocab_size, {3, 12}, torch::kInt64);

  // Initial weights are slices of the plain model's.
  auto pi = plain->param_infos(), mi = model->param_infos();
  ASSERT_EQ(pi.size(), mi.size());
  for (size_t i = 0; i < pi.size(); ++i) {
    ASSERT_EQ(pi[i].name, mi[i].name);
    EXPECT_TRUE(gather(mi[i].tensor.detach(), mi[i].spec, tp).equal(pi[i].tensor)) << pi[i].name;
    EXPECT_EQ(mi[i].spec.global_shape, pi[i].tensor.sizes().vec()) << pi[i].name;
  }

  torch::Tensor ref_loss = plain->loss(ids, targets);
  torch::Tensor loss = model->loss(ids, targets);
  EXPECT_NEAR(loss.item<float>(), ref_loss.item<float>(), 1e-5);
  torch::Tensor logits = model->full_logits(ids);
  EXPECT_LT((logits - plain->full_logits(ids)).abs().max().item<float>(), 1e-5);

  ref_loss.backward();
  loss.backward();
  for (size_t i = 0; i < pi.size(); ++i) {
    torch::Tensor g = gather(mi[i].tensor.grad(), mi[i].spec, tp);
    EXPECT_LT((g - pi[i].tensor.grad()).abs().max().item<float>(), 1e-5) << pi[i].name;
  }
  EXPECT_NEAR(global_grad_norm(mi, tp), global_grad_norm(pi, TpGroup{}), 1e-5);
}

TEST(TensorParallel, ClippedAdamWStepsMatch) {
  TpGroup tp = world_tp();
  GptConfig c = tiny();
  Gpt plain(c);
  Gpt model(c, tp);
  AdamW ref_opt(plain->param_infos(), {});
  AdamW opt(model->param_infos(), {});
  torch::manual_seed(6);
  for (int step = 0; step < 3; ++step) {
    torch::Tensor ids = torch::randint(0, c.vocab_size, {2, 16}, torch::kInt64);
    plain->zero_grad();
    model->zero_grad();
    plain->loss(ids, ids.roll(-1, 1)).backward();
    model->loss(ids, ids.roll(-1, 1)).backward();
    // max_norm well below the norm so clipping is active
    double ref_norm = clip_grad_norm(plain->param_infos(), TpGroup{}, 0.1);
    double norm = clip_grad_norm(model->param_infos(), tp, 0.1);
    ASSERT_GT(ref_norm, 0.1);
    EXPECT_NEAR(norm, ref_norm, 1e-5 * ref_norm);
    // Adam normalises each coordinate, so rounding-level gradient differences on near-zero
    // gradients move weights by up to ~lr per step: a small lr keeps that below the tolerance.
    ref_opt.step(1e-3);
    opt.step(1e-3);
  }
  auto pi = plain->param_infos(), mi = model->param_infos();
  for (size_t i = 0; i < pi.size(); ++i) {
    torch::Tensor w = gather(mi[i].tensor.detach(), mi[i].spec, tp);
    EXPECT_LT((w - pi[i].tensor.detach()).abs().max().item<float>(), 1e-5) << pi[i].name;
  }
}

TEST(TensorParallel, DropoutIsSharedOnReplicatedAndPerRankOnShardedActivations) {
  TpGroup tp = world_tp();
  GptConfig c = tiny();
  c.dropout = 0.5;
  Gpt model(c, tp);
  model->seed_dropout(100, 200 + tp.rank);
  torch::Tensor x = torch::ones({64});
  torch::Tensor shared = dropout(x, model->context(), false);
  torch::Tensor local = dropout(x, model->context(), true);
  torch::Tensor all_shared = allgather(*tp.comm, shared.contiguous());
  torch::Tensor all_local = allgather(*tp.comm, local.contiguous());
  for (int r = 1; r < tp.size; ++r) {
    EXPECT_TRUE(all_shared[r].equal(all_shared[0]));
    EXPECT_FALSE(all_local[r].equal(all_local[0]));
  }
}

TEST(TensorParallel, CheckpointsReshardBetweenTpSizes) {
  TpGroup tp = world_tp();
  auto& world = *tp.comm;
  torch::Tensor pid = torch::tensor({static_cast<int64_t>(getpid())}, torch::kInt64);
  broadcast(world, pid, 0);
  std::string root = (std::filesystem::temp_directory_path() /
                      ("conflux-reshard-" + std::to_string(pid.item<int64_t>()))).string();
  conflux::test::remove_at_exit(root);
  GptConfig c = tiny();
  torch::manual_seed(8);
  torch::Tensor ids = torch::randint(0, c.vocab_size, {2, 16}, torch::kInt64);
  // Train the tp model one step so the weights differ from any fresh init, save at tp = N.
  Gpt model(c, tp);
  AdamW opt(model->param_infos(), {});
  model->loss(ids, ids.roll(-1, 1)).backward();
  opt.step(1e-2);
  TrainerState st;
  st.model = c;
  st.step = 1;
  std::string dir_n = save_checkpoint(root + "/tpN", st, *model, &opt, {}, &world, 0, 1);
  const float loss_n = model->loss(ids, ids.roll(-1, 1)).item<float>();
  // Load at tp = 1 (every rank): same loss.
  c.init_seed = 999;
  Gpt plain(c);
  load_model(dir_n, *plain);
  EXPECT_NEAR(plain->loss(ids, ids.roll(-1, 1)).item<float>(), loss_n, 1e-5);
  // Save at tp = 1 (rank 0 writes: dp_rank = world rank), load back at tp = N.
  std::string dir_1 = save_checkpoint(root + "/tp1", st, *plain, nullptr, {}, &world, world.rank(), 1);
  Gpt again(c, tp);
  load_model(dir_1, *again);
  EXPECT_NEAR(again->loss(ids, ids.roll(-1, 1)).item<float>(), loss_n, 1e-5);
  AdamW opt2(again->param_infos(), {});
  load_optimizer(dir_n, opt2);
  for (size_t i = 0; i < opt.exp_avg().size(); ++i) EXPECT_TRUE(opt.exp_avg()[i].equal(opt2.exp_avg()[i]));
  world.barrier();
  if (world.rank() == 0) std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace conflux::trainer
