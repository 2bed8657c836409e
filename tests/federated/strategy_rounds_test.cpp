// The round protocol and its errors, the registry and parameters, and server state: a FedAdam
// or FedAvgM run whose state is saved after round 1 and loaded into a fresh strategy continues
// bit-identically to the uninterrupted run; safetensors round trips.
#include "conflux/core/error.h"
#include "conflux/federated/safetensors_io.h"
#include "conflux/federated/strategy.h"
#include "scratch_dir.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace cf = conflux::federated;

namespace {

cf::Weights model(float a, float b) {
  return {{"w", {2, 2}, {a, b, a + 1, b - 1}}, {"bias", {1}, {a * b}}};
}

template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const conflux::Error& e) {
    return e.message();
  }
  return "(no error)";
}

}  // namespace

TEST(FederatedStrategy, FedAvgWeightsByExamples) {
  auto s = cf::make_strategy("fedavg");
  s->begin_round(nullptr);
  s->add({model(1, 2), 1, "a"});
  s->add({model(4, 8), 3, "b"});
  const cf::Weights g = s->finish();
  ASSERT_EQ(g.size(), 2u);
  EXPECT_EQ(g[0].name, "w");
  EXPECT_EQ(g[0].values, (std::vector<float>{3.25f, 6.5f, 4.25f, 5.5f}));
  EXPECT_EQ(g[1].values, (std::vector<float>{(2.0f + 96.0f) / 4.0f}));
}

// The NaN/Inf scan tests blocks of values at once and then searches the block: the first
// non-finite value is reported wherever it falls (block edges, the tail, -Inf, a NaN payload).
TEST(FederatedStrategy, NonFiniteValuesAreFoundAtEveryPosition) {
  const size_t n = 10000;  // two full blocks of 4096 and a tail
  for (size_t at : {size_t{0}, size_t{4095}, size_t{4096}, size_t{8191}, size_t{8192}, n - 1}) {
    for (float bad : {std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::infinity(),
                      std::numeric_limits<float>::signaling_NaN()}) {
      cf::Weights w{{"big", {static_cast<int64_t>(n)}, std::vector<float>(n, 1.5f)}};
      w[0].values[at] = bad;
      if (at + 7 < n) w[0].values[at + 7] = std::numeric_limits<float>::infinity();  // a later one is not reported
      EXPECT_EQ(error_of([&] { cf::check_weights(w, "u"); }),
                "u: tensor 'big' has " + std::string(std::isnan(bad) ? "NaN" : "Inf") + " at index " +
                    std::to_string(at));
    }
  }
  // The largest finite values and denormals pass.
  cf::Weights ok{{"edge", {4}, {std::numeric_limits<float>::max(), -std::numeric_limits<float>::max(),
                                std::numeric_limits<float>::denorm_min(), -0.0f}}};
  EXPECT_EQ(error_of([&] { cf::check_weights(ok, "u"); }), "(no error)");
}

// FedAvg takes the first result's buffers as its sum: results given as copies, moved in, or in
// another order give the same bits, and a second round starts from an empty sum.
TEST(FederatedStrategy, FedAvgFoldInPlaceIsExact) {
  auto s = cf::make_strategy("fedavg");
  for (int round = 0; round < 2; ++round) {
    s->begin_round(nullptr);
    const cf::Weights a = model(1, 2), b = model(4, 8);
    s->add({a, 1, "a"});
    s->add({b, 3, "b"});
    const cf::Weights g = s->finish();
    EXPECT_EQ(a[0].values, (std::vector<float>{1, 2, 2, 1})) << "the caller's copy is untouched";
    EXPECT_EQ(g[0].values, (std::vector<float>{3.25f, 6.5f, 4.25f, 5.5f})) << "round " << round;
    EXPECT_EQ(g[1].values, (std::vector<float>{(2.0f + 96.0f) / 4.0f})) << "round " << round;
  }
}

TEST(FederatedStrategy, ResultsAreMatchedByName) {
  auto s = cf::make_strategy("median");
  const cf::Weights global = model(0, 0);
  s->begin_round(&global);
  cf::Weights reordered = model(1, 1);
  std::swap(reordered[0], reordered[1]);
  s->add({reordered, 5, "r"});
  const cf::Weights g = s->finish();
  EXPECT_EQ(g[0].name, "w");
  EXPECT_EQ(g[1].values, (std::vector<float>{1.0f}));
}

TEST(FederatedStrategy, BadResultsAreErrorsNamingTheSourceAndTensor) {
  auto s = cf::make_strategy("fedavg");
  const cf::Weights global = model(0, 0);
  s->begin_round(&global);
  cf::Weights nan = model(1, 1);
  nan[0].values[3] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(error_of([&] { s->add({nan, 1, "u.safetensors"}); }), "u.safetensors: tensor 'w' has NaN at index 3");
  cf::Weights inf = model(1, 1);
  inf[1].values[0] = std::numeric_limits<float>::infinity();
  EXPECT_EQ(error_of([&] { s->add({inf, 1, "v"}); }), "v: tensor 'bias' has Inf at index 0");
  cf::Weights reshaped = model(1, 1);
  reshaped[0].shape = {4, 1};
  EXPECT_EQ(error_of([&] { s->add({reshaped, 1, "x"}); }),
            "x: tensor 'w' has shape [4, 1], the global model's is [2, 2]");
  cf::Weights missing = model(1, 1);
  missing.pop_back();
  EXPECT_EQ(error_of([&] { s->add({missing, 1, "y"}); }),
            "y: tensor 'bias' is missing (the global model has it, shape [1])");
  cf::Weights extra = model(1, 1);
  extra.push_back({"z", {1}, {0}});
  EXPECT_EQ(error_of([&] { s->add({extra, 1, "z"}); }), "z: tensor 'z' is not in the global model");
  EXPECT_EQ(error_of([&] { s->add({model(1, 1), 0, "e"}); }),
            "e: num_examples is 0; a result must count at least 1 example");
  EXPECT_EQ(s->results_in_round(), 0u);  // rejected results leave the round untouched
  EXPECT_EQ(error_of([&] { s->finish(); }), "strategy fedavg: no results to aggregate");
}

TEST(FederatedStrategy, RegistryAndParameters) {
  EXPECT_EQ(cf::strategy_names(),
            (std::vector<std::string>{"fedavg", "fedavgm", "fedprox", "fedadagrad", "fedadam", "fedyogi", "median",
                                      "trimmed_avg", "krum", "bulyan"}));
  EXPECT_EQ(error_of([] { cf::make_strategy("fedsgd"); }),
            "unknown strategy 'fedsgd' (known: fedavg, fedavgm, fedprox, fedadagrad, fedadam, fedyogi, median, "
            "trimmed_avg, krum, bulyan)");
  // Flower's defaults, and overrides.
  EXPECT_EQ(cf::make_strategy("fedyogi")->params(),
            nlohmann::json({{"eta", 0.01}, {"eta_l", 0.0316}, {"beta_1", 0.9}, {"beta_2", 0.99}, {"tau", 1e-3}}));
  EXPECT_EQ(cf::make_strategy("fedadam", {"strategy.fedadam.eta=0.5"})->params().at("eta"), 0.5);
  EXPECT_EQ(cf::make_strategy("trimmed_avg")->params(), nlohmann::json({{"beta", 0.2}}));
  EXPECT_EQ(cf::make_strategy("krum")->params(), nlohmann::json({{"num_malicious", 0}, {"to_keep", 0}}));
  EXPECT_EQ(cf::make_strategy("fedprox", {"strategy.fedprox.proximal_mu=0.01"})->params(),
            nlohmann::json({{"proximal_mu", 0.01}}));
  // FedProx requires mu (as Flower), another strategy's key is unknown, ranges are checked.
  EXPECT_NE(error_of([] { cf::make_strategy("fedprox"); }).find("strategy.fedprox.proximal_mu"), std::string::npos);
  EXPECT_NE(error_of([] { cf::make_strategy("fedavg", {"strategy.fedadam.eta=0.5"}); }).find("strategy.fedadam.eta"),
            std::string::npos);
  EXPECT_NE(error_of([] { cf::make_strategy("trimmed_avg", {"strategy.trimmed_avg.beta=0.5"}); }).find("below 0.5"),
            std::string::npos);
  EXPECT_NE(error_of([] { cf::make_strategy("bulyan", {"strategy.bulyan.to_keep=2"}); }).find("strategy.bulyan.to_keep"),
            std::string::npos);
  EXPECT_EQ(error_of([] { cf::make_strategy("fedadagrad", {"strategy.fedadagrad.beta_1=0.5"}); }).find("(no error)"),
            std::string::npos);
}

TEST(FederatedStrategy, ServerOptimizersNeedTheGlobal) {
  for (const char* name : {"fedadagrad", "fedadam", "fedyogi"})
    EXPECT_EQ(error_of([&] { cf::make_strategy(name)->begin_round(nullptr); }),
              std::string("strategy ") + name + " needs the current global weights (a server optimizer steps from them)");
  cf::make_strategy("fedavgm")->begin_round(nullptr);  // lr 1, momentum 0: plain FedAvg
  EXPECT_NE(error_of([] { cf::make_strategy("fedavgm", {"strategy.fedavgm.server_momentum=0.9"})->begin_round(nullptr); }),
            "(no error)");
}

TEST(FederatedStrategy, RobustStrategiesCheckTheirCounts) {
  auto k = cf::make_strategy("krum", {"strategy.krum.to_keep=3"});
  k->begin_round(nullptr);
  k->add({model(1, 1), 1, "a"});
  k->add({model(2, 1), 1, "b"});
  EXPECT_EQ(error_of([&] { k->finish(); }), "krum: to_keep is 3 but the round has only 2 results");
  auto b = cf::make_strategy("bulyan", {"strategy.bulyan.num_malicious=1"});
  b->begin_round(nullptr);
  for (int i = 0; i < 6; ++i) b->add({model(static_cast<float>(i), 1), 1, "c"});
  EXPECT_EQ(error_of([&] { b->finish(); }), "bulyan with num_malicious 1 needs at least 7 results (4f + 3), got 6");
}

TEST(FederatedStrategy, KrumAndMedianIgnoreAHugeUpdate) {
  for (const char* name : {"krum", "median"}) {
    auto s = cf::make_strategy(name, std::string(name) == "krum" ? std::vector<std::string>{"strategy.krum.num_malicious=1"}
                                                                  : std::vector<std::string>{});
    s->begin_round(nullptr);
    for (int i = 0; i < 4; ++i) s->add({model(1.0f + 0.01f * static_cast<float>(i), 2), 1, "honest"});
    s->add({model(1000, 2000), 1, "attacker"});
    const cf::Weights g = s->finish();
    EXPECT_LT(std::fabs(g[0].values[0] - 1.015f), 0.02f) << name;
  }
}

namespace {

// Runs `rounds` rounds of `name`, saving and reloading the state into a fresh strategy after
// round `reload_after` (0: never); returns the final global.
cf::Weights run(const std::string& name, const std::vector<std::string>& params, int rounds, int reload_after,
                const std::string& state_path) {
  auto s = cf::make_strategy(name, params);
  cf::Weights global = model(0.5f, -0.25f);
  for (int r = 1; r <= rounds; ++r) {
    s->begin_round(&global);
    for (int c = 0; c < 3; ++c)
      s->add({model(0.5f + 0.1f * static_cast<float>(c * r), -0.2f * static_cast<float>(c)), 10u + static_cast<uint64_t>(c), "c"});
    global = s->finish();
    if (r == reload_after) {
      cf::write_strategy_state(state_path, s->save_state());
      s = cf::make_strategy(name, params);
      s->load_state(cf::read_strategy_state(state_path));
      EXPECT_EQ(s->rounds_completed(), static_cast<uint64_t>(r));
    }
  }
  return global;
}

}  // namespace

TEST(FederatedStrategy, ServerStateResumesBitIdentically) {
  const std::string path = conflux::test::make_scratch_dir("federated_state") + "/state.safetensors";
  for (const auto& [name, params] :
       std::vector<std::pair<std::string, std::vector<std::string>>>{
           {"fedadam", {}}, {"fedyogi", {}}, {"fedadagrad", {}}, {"fedavgm", {"strategy.fedavgm.server_momentum=0.9"}}}) {
    const cf::Weights straight = run(name, params, 4, 0, path);
    const cf::Weights resumed = run(name, params, 4, 2, path);
    ASSERT_EQ(straight.size(), resumed.size());
    for (size_t k = 0; k < straight.size(); ++k) EXPECT_EQ(straight[k].values, resumed[k].values) << name;
  }
  const cf::StrategyState st = cf::read_strategy_state(path);
  EXPECT_EQ(st.meta.at("strategy"), "fedavgm");
  EXPECT_EQ(st.meta.at("rounds"), 2);
  ASSERT_EQ(st.tensors.size(), 2u);
  EXPECT_EQ(st.tensors[0].name, "momentum/w");
  auto other = cf::make_strategy("fedadam");
  EXPECT_EQ(error_of([&] { other->load_state(st); }), "strategy state belongs to strategy \"fedavgm\", not fedadam");
}

TEST(FederatedStrategy, SafetensorsRoundTripAndDtypeCheck) {
  const std::string path = conflux::test::make_scratch_dir("federated_io") + "/m.safetensors";
  cf::write_weights(path, model(1.5f, -2), {{"k", "v"}});
  const cf::WeightsFile f = cf::read_weights(path);
  EXPECT_EQ(f.metadata.at("k"), "v");
  ASSERT_EQ(f.weights.size(), 2u);
  EXPECT_EQ(f.weights[0].values, model(1.5f, -2)[0].values);
  EXPECT_EQ(f.weights[1].shape, (std::vector<int64_t>{1}));
}
