// The training loop under mpirun (world = dp group, np 2 and 4): exact resume after a preemption
// requested on one rank only (all ranks agree, checkpoint, stop; the resumed run ends with the
// weights of an uninterrupted run, bitwise), and DP-SGD steps that log the accountant's epsilon
// and stop before exceeding the target.
#include "conflux/trainer/checkpoint.h"
#include "conflux/trainer/preempt.h"
#include "conflux/trainer/trainer.h"

#include "conflux/core/privacy.h"
#include "conflux/core/rng.h"
#include "conflux/core/tensor_comm.h"
#include "mpi_main.h"
#include "scratch_dir.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;

namespace conflux::trainer {
namespace {

TrainerComms comms() {
  auto& w = test::grid().world();
  TrainerComms c;
  c.world = &w;
  c.dp = &w;
  c.dp_rank = w.rank();
  c.dp_size = w.size();
  return c;
}

VectorTokenSource corpus() {
  Stream rng(42, "corpus");
  std::vector<int32_t> t(6000);
  for (size_t i = 0; i < t.size(); ++i) t[i] = static_cast<int32_t>(i % 7 == 0 ? 1 : rng.below(48));
  return VectorTokenSource(t);
}

// A directory name all ranks agree on (rank 0's pid).
std::string shared_dir(const std::string& name) {
  torch::Tensor pid = torch::tensor({static_cast<int64_t>(getpid())}, torch::kInt64);
  broadcast(test::grid().world(), pid, 0);
  std::string dir = (fs::temp_directory_path() / ("conflux-train-" + name + "-" + std::to_string(pid.item<int64_t>()))).string();
  conflux::test::remove_at_exit(dir);
  return dir;
}

TrainConfig base(const std::string& dir) {
  TrainConfig cfg;
  cfg.model.vocab_size = 48;
  cfg.model.context = 16;
  cfg.model.n_layer = 2;
  cfg.model.n_head = 2;
  cfg.model.d_model = 32;
  cfg.model.dropout = 0.1;  // dropout randomness must resume exactly too
  cfg.dataset = "memory";
  cfg.steps = 6;
  cfg.batch_size = 8;
  cfg.micro_batches = 2;
  cfg.lr = 1e-3;
  cfg.warmup_steps = 2;
  cfg.eval_every = 3;
  cfg.eval_windows = 8;
  cfg.checkpoint_dir = dir + "/ckpt";
  cfg.checkpoint_every = 0;
  cfg.output_dir = dir + "/out";
  cfg.progress = false;
  return cfg;
}

TEST(Train, PreemptOnOneRankThenExactResume) {
  auto src = corpus();
  std::string dir = shared_dir("resume");
  if (test::grid().world_rank() == 0) fs::remove_all(dir);
  test::grid().world().barrier();

  TrainConfig straight = base(dir + "/a");
  TrainResult r1 = train(straight, src, comms());
  EXPECT_EQ(r1.status, TrainStatus::Completed);
  EXPECT_EQ(r1.step, 6);
  EXPECT_GT(r1.val_loss, 0);

  TrainConfig split = base(dir + "/b");
  TrainHooks hooks;
  const int last = test::grid().world_size() - 1;
  hooks.after_step = [&](int64_t step) {
    if (step == 3 && test::grid().world_rank() == last) request_preemption();
  };
  TrainResult r2 = train(split, src, comms(), "{}", "", hooks);
  clear_preemption();
  EXPECT_EQ(r2.status, TrainStatus::Preempted);
  EXPECT_EQ(r2.step, 3);
  ASSERT_TRUE(fs::exists(r2.checkpoint + "/trainer_state.json"));
  EXPECT_EQ(load_trainer_state(r2.checkpoint).step, 3);
  TrainResult r3 = train(split, src, comms());
  EXPECT_EQ(r3.status, TrainStatus::Completed);
  EXPECT_EQ(r3.step, 6);
  EXPECT_EQ(r3.last_loss, r1.last_loss);

  auto a = load_global_tensors(r1.checkpoint, "model");
  auto b = load_global_tensors(r3.checkpoint, "model");
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(a[i].second.equal(b[i].second)) << a[i].first;
  auto oa = load_global_tensors(r1.checkpoint, "optim");
  auto ob = load_global_tensors(r3.checkpoint, "optim");
  for (size_t i = 0; i < oa.size(); ++i) EXPECT_TRUE(oa[i].second.equal(ob[i].second)) << oa[i].first;
  // The metrics file has one line per step of each run (3 + 3 for the split run).
  if (test::grid().world_rank() == 0) {
    std::ifstream in(split.output_dir + "/metrics.jsonl");
    int lines = 0;
    for (std::string l; std::getline(in, l);) ++lines;
    EXPECT_EQ(lines, 6);
  }
}

TEST(Train, DpSgdLogsEpsilonAndStopsAtTarget) {
  auto src = corpus();
  std::string dir = shared_dir("dpsgd");
  TrainConfig cfg = base(dir);
  cfg.model.dropout = 0;
  cfg.dp_enabled = true;
  cfg.dp_sample_rate = 0.05;
  cfg.dp_noise_multiplier = 1.0;
  cfg.dp_clip = 1.0;
  cfg.dp_noise_seed = 3;
  cfg.steps = 10;
  const double eps3 = privacy::dpsgd_epsilon(0.05, 1.0, 3, 1e-5).epsilon;
  const double eps4 = privacy::dpsgd_epsilon(0.05, 1.0, 4, 1e-5).epsilon;
  cfg.dp_target_epsilon = 0.5 * (eps3 + eps4);
  TrainResult r = train(cfg, src, comms());
  EXPECT_EQ(r.status, TrainStatus::EpsilonReached);
  EXPECT_EQ(r.step, 3);
  EXPECT_NEAR(r.epsilon, eps3, 1e-9 * eps3);
  TrainerState st = load_trainer_state(r.checkpoint);
  ASSERT_FALSE(st.accountant.empty());
  EXPECT_FALSE(st.noise_private);  // seeded noise is marked not private
  int64_t steps = 0;
  for (auto& e : st.accountant) steps += e.steps;
  EXPECT_EQ(steps, 3);
}

TEST(Train, InitFromCheckpointWithFrozenLayers) {
  auto src = corpus();
  std::string dir = shared_dir("transfer");
  TrainConfig first = base(dir + "/first");
  first.steps = 2;
  TrainResult r1 = train(first, src, comms());
  TrainConfig second = base(dir + "/second");
  second.steps = 2;
  second.model_init_seed = 77;  // would give other weights; init_from overrides them
  second.init_from = r1.checkpoint;
  second.freeze = {"wte", "h.0."};
  TrainResult r2 = train(second, src, comms());
  auto a = load_global_tensors(r1.checkpoint, "model");
  auto b = load_global_tensors(r2.checkpoint, "model");
  ASSERT_EQ(a.size(), b.size());
  int frozen = 0, trained = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const std::string& n = a[i].first;
    if (n.rfind("wte", 0) == 0 || n.rfind("h.0.", 0) == 0) {
      EXPECT_TRUE(a[i].second.equal(b[i].second)) << n << " should be frozen";
      ++frozen;
    } else {
      EXPECT_FALSE(a[i].second.equal(b[i].second)) << n << " should have trained";
      ++trained;
    }
  }
  EXPECT_GT(frozen, 5);
  EXPECT_GT(trained, 5);
}

}  // namespace
}  // namespace conflux::trainer
