// Checkpoint metadata without libtorch (this test does not link it): trainer_state.json and
// lineage.json round trips, every malformed field a DataError naming the file and the field,
// and what interrupted writes leave behind (ignored by readers, removed before the next write).
#include "conflux/trainer/checkpoint_meta.h"

#include "conflux/core/error.h"
#include "scratch_dir.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;

namespace conflux::trainer {
namespace {

TrainerState sample_state() {
  TrainerState s;
  s.step = 42;
  s.epoch = 1;
  s.epoch_position = 7;
  s.tokens_seen = 1234;
  s.seed = 18446744073709551615ull;  // needs the full unsigned range
  s.noise_private = false;
  s.accountant = {{1.1, 0.01, 5}, {0.9, 0.02, 3}};
  s.model.vocab_size = 260;
  s.model.d_model = 48;
  s.model.dropout = 0.125;
  return s;
}

void write(const fs::path& p, const std::string& text) { std::ofstream(p) << text; }

// The DataError message reading trainer_state.json = `text` gives ("" if none).
std::string state_rejection(const std::string& dir, const std::string& text) {
  write(fs::path(dir) / "trainer_state.json", text);
  try {
    load_trainer_state(dir);
  } catch (const DataError& e) {
    return e.message();
  }
  return "";
}

TEST(CheckpointMeta, TrainerStateAndLineageRoundTrip) {
  const std::string dir = test::make_scratch_dir("ckmeta-");
  const TrainerState s = sample_state();
  write(fs::path(dir) / "trainer_state.json", trainer_state_text(s, 40));
  const TrainerState b = load_trainer_state(dir);
  EXPECT_EQ(b.step, 42);
  EXPECT_EQ(b.epoch_position, 7);
  EXPECT_EQ(b.tokens_seen, 1234);
  EXPECT_EQ(b.seed, s.seed);
  EXPECT_FALSE(b.noise_private);
  ASSERT_EQ(b.accountant.size(), 2u);
  EXPECT_EQ(b.accountant[1].sample_rate, 0.02);
  EXPECT_EQ(b.model.vocab_size, 260);
  EXPECT_EQ(b.model.dropout, 0.125);
  EXPECT_EQ(load_optimizer_step(dir), 40);

  Lineage l{R"({"train":{"steps":5}})", "/data/fortunes", std::string(64, 'a'), 2, 3, "", ""};
  write(fs::path(dir) / "lineage.json", lineage_text(l));
  EXPECT_EQ(lineage_text(l).find("\"init\""), std::string::npos);  // no "init" without one
  Lineage m = load_lineage(dir);
  EXPECT_EQ(m.config_json, l.config_json);
  EXPECT_EQ(m.dataset_dir, "/data/fortunes");
  EXPECT_EQ(m.manifest_sha256, l.manifest_sha256);
  EXPECT_EQ(m.dp, 2);
  EXPECT_EQ(m.tp, 3);
  EXPECT_EQ(m.init_checkpoint, "");
  // A run started from another checkpoint records it and its digest.
  l.init_checkpoint = "/runs/a/step-00000020";
  l.init_digest = std::string(64, 'c');
  write(fs::path(dir) / "lineage.json", lineage_text(l));
  m = load_lineage(dir);
  EXPECT_EQ(m.init_checkpoint, l.init_checkpoint);
  EXPECT_EQ(m.init_digest, l.init_digest);
  write(fs::path(dir) / "lineage.json", R"({"config": {}, "dataset": {"dir": "d", "manifest_sha256": ""},
    "world": {"dp": 1, "tp": 1}, "init": {"checkpoint": 7}})");
  try {
    load_lineage(dir);
    ADD_FAILURE() << "a non-string init.checkpoint was accepted";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("field 'init.checkpoint' has the wrong type"), std::string::npos) << e.what();
  }
}

TEST(CheckpointMeta, MalformedFieldsNameFileAndField) {
  const std::string dir = test::make_scratch_dir("ckmeta-");
  const std::string file = (fs::path(dir) / "trainer_state.json").string();
  EXPECT_EQ(state_rejection(dir, "{\"step\": 3,").rfind(file + ": not valid JSON: ", 0), 0u);
  EXPECT_EQ(state_rejection(dir, R"({"step": 3})"), file + ": field 'data' is missing");
  EXPECT_EQ(state_rejection(dir, R"({"step": "3"})"),
            file + ": field 'step' has the wrong type (string: \"3\")");
  std::string text = trainer_state_text(sample_state(), 1);
  const auto replace = [&](const std::string& from, const std::string& to) {
    std::string t = text;
    t.replace(t.find(from), from.size(), to);
    return t;
  };
  EXPECT_EQ(state_rejection(dir, replace("\"epoch\": 1", "\"epoch\": null")),
            file + ": field 'data.epoch' has the wrong type (null: null)");
  EXPECT_EQ(state_rejection(dir, replace("\"seed\": 18446744073709551615", "\"seed\": -4")),
            file + ": field 'rng.seed' must not be negative (-4)");
  EXPECT_EQ(state_rejection(dir, replace("\"accountant\": [", "\"accountant\": 7, \"x\": [")),
            file + ": field 'privacy.accountant' must be an array");
  EXPECT_EQ(state_rejection(dir, replace("\"step\": 42", "\"step\": -1")),
            file + ": field 'step' is negative (-1)");
  fs::remove(file);
  EXPECT_EQ(state_rejection(dir, "").rfind(file + ": not valid JSON", 0), 0u);

  const std::string lin = (fs::path(dir) / "lineage.json").string();
  write(lin, R"({"config": {}, "dataset": {"dir": 5}, "world": {"dp": 1, "tp": 1}})");
  try {
    load_lineage(dir);
    FAIL();
  } catch (const DataError& e) {
    EXPECT_EQ(e.message(), lin + ": field 'dataset.dir' has the wrong type (number: 5)");
  }
  write(lin, R"({"config": [], "dataset": {}, "world": {}})");
  EXPECT_THROW(load_lineage(dir), DataError);
}

TEST(CheckpointMeta, LeftoversAreIgnoredThenRemoved) {
  const std::string root = test::make_scratch_dir("ckmeta-");
  for (const char* d : {"step-00000010", "step-00000020", ".tmp-step-00000030", ".tmp-old-step-00000000",
                        "step-00000040"}) {
    fs::create_directories(fs::path(root) / d);
    if (std::string(d) != "step-00000040")  // no trainer_state.json: not complete
      write(fs::path(root) / d / "trainer_state.json", "{}");
  }
  write(fs::path(root) / ".notes.txt.tmp-123-0", "torn");
  write(fs::path(root) / "notes.txt", "kept");
  const auto all = list_checkpoints(root);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(*latest_checkpoint(root), (fs::path(root) / "step-00000020").string());
  EXPECT_EQ(remove_checkpoint_leftovers(root), 3u);
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(root)) left.push_back(e.path().filename().string());
  std::sort(left.begin(), left.end());
  EXPECT_EQ(left, (std::vector<std::string>{"notes.txt", "step-00000010", "step-00000020", "step-00000040"}));
  EXPECT_EQ(remove_checkpoint_leftovers(root + "/missing"), 0u);
  EXPECT_EQ(checkpoint_dir_name(7), "step-00000007");
}

}  // namespace
}  // namespace conflux::trainer
