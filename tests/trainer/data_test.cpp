// Token windows: packing, held-out split, deterministic shuffling that covers each training
// window once per epoch, batches independent of the dp size, and Poisson sampling.
#include "conflux/trainer/data.h"

#include "conflux/core/error.h"
#include "conflux/core/rng.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <set>

namespace conflux::trainer {
namespace {

VectorTokenSource tokens(int n) {
  std::vector<int32_t> t(n);
  std::iota(t.begin(), t.end(), 0);
  return VectorTokenSource(t);
}

TEST(Windows, PackingAndHeldOut) {
  auto src = tokens(1001);  // (1001 - 1) / 10 = 100 windows
  WindowSampler s(src, 10, 0.1, 7);
  EXPECT_EQ(s.train_windows(), 90);
  EXPECT_EQ(s.val_windows(), 10);
  auto w = s.read_windows({0, 3});
  ASSERT_EQ(w.size(), 22u);
  EXPECT_EQ(w[0], 0);
  EXPECT_EQ(w[10], 10);  // T + 1 tokens: the target of the last input
  EXPECT_EQ(w[11], 30);
  auto val = s.val_batch(100);
  ASSERT_EQ(val.size(), 10u);
  EXPECT_EQ(val.front(), 90);
  EXPECT_THROW(WindowSampler(tokens(15), 10, 0.0, 1), DataError);
}

TEST(Windows, EpochIsAPermutationAndDeterministic) {
  auto src = tokens(1001);
  WindowSampler a(src, 10, 0.1, 7), b(src, 10, 0.1, 7), c(src, 10, 0.1, 8);
  DataPosition pa, pb, pc;
  auto ea = a.next_batch(90, &pa);
  EXPECT_EQ(ea, b.next_batch(90, &pb));
  EXPECT_NE(ea, c.next_batch(90, &pc));
  std::set<int64_t> seen(ea.begin(), ea.end());
  EXPECT_EQ(seen.size(), 90u);
  EXPECT_EQ(*seen.rbegin(), 89);  // never a held-out window
  auto next = a.next_batch(5, &pa);
  EXPECT_EQ(pa.epoch, 1);
  EXPECT_EQ(pa.position, 5);
  auto e1 = b.next_batch(90, &pb);
  EXPECT_NE(e1, ea);  // another order in the next epoch
  EXPECT_EQ(std::vector<int64_t>(e1.begin(), e1.begin() + 5), next);
}

TEST(Windows, GlobalBatchesDoNotDependOnDpSize) {
  auto src = tokens(1001);
  for (int dp : {1, 2, 3, 4}) {
    WindowSampler ref(src, 10, 0.1, 3), s(src, 10, 0.1, 3);
    DataPosition pr, ps;
    for (int step = 0; step < 7; ++step) {
      auto global = ref.next_batch(12, &pr);
      auto again = s.next_batch(12, &ps);
      std::vector<int64_t> joined;
      for (int r = 0; r < dp; ++r) {
        int64_t b, e;
        share(12, r, dp, &b, &e);
        joined.insert(joined.end(), again.begin() + b, again.begin() + e);
      }
      EXPECT_EQ(joined, global) << "dp " << dp << " step " << step;
    }
  }
}

TEST(Windows, PoissonSamplingRate) {
  auto src = tokens(100001);
  WindowSampler s(src, 10, 0.0, 1);
  Stream rng(5, "poisson-test");
  size_t total = 0;
  for (int i = 0; i < 20; ++i) total += s.poisson_batch(0.05, rng).size();
  // 20 x 10000 windows at q = 0.05: mean 10000, sd ~97; a fixed seed gives a fixed count.
  EXPECT_NEAR(static_cast<double>(total), 10000.0, 400.0);
  Stream r1(9, "p"), r2(9, "p");
  EXPECT_EQ(s.poisson_batch(0.01, r1), s.poisson_batch(0.01, r2));
}

}  // namespace
}  // namespace conflux::trainer
