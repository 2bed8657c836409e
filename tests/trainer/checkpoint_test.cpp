// Checkpoint files: safetensors round trip and an independent Python+numpy reader, checkpoint
// directories (atomic, keep-last-K, trainer state), and TensorBoard event files checked by an
// independent Python reader of the TFRecord framing, CRC-32C and protobuf.
#include "conflux/trainer/checkpoint.h"
#include "conflux/trainer/metrics.h"
#include "conflux/trainer/safetensors.h"

#include "conflux/core/error.h"
#include "scratch_dir.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <array>
#include <cmath>
#include <limits>
#include <map>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>

namespace fs = std::filesystem;

namespace conflux::trainer {
namespace {

std::string run(const std::string& cmd) {
  std::string out;
  std::unique_ptr<FILE, int (*)(FILE*)> p(popen(cmd.c_str(), "r"), pclose);
  if (!p) throw std::runtime_error("popen failed: " + cmd);
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p.get())) > 0) out.append(buf.data(), n);
  return out;
}

fs::path temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("conflux-trainer-" + name + "-" + std::to_string(getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  conflux::test::remove_at_exit(d.string());
  return d;
}

TEST(Crc32c, KnownVectors) {
  // RFC 3720 B.4: 32 bytes of zeros -> 0x8a9136aa; "123456789" -> 0xe3069283.
  std::string zeros(32, '\0');
  EXPECT_EQ(crc32c(zeros.data(), zeros.size()), 0x8a9136aau);
  EXPECT_EQ(crc32c("123456789", 9), 0xe3069283u);
}

TEST(Safetensors, RoundTripAndPythonReader) {
  fs::path dir = temp_dir("st");
  torch::manual_seed(3);
  torch::Tensor a = torch::randn({3, 5});
  torch::Tensor b = torch::arange(7, torch::kInt64);
  torch::Tensor c = torch::randn({2, 2, 2}, torch::kFloat64);
  std::string path = (dir / "x.safetensors").string();
  write_safetensors(path, {{"a", a}, {"b.weight", b}, {"c", c}}, {{"k", "v"}});
  SafetensorsFile f = read_safetensors(path);
  ASSERT_EQ(f.tensors.size(), 3u);
  EXPECT_TRUE(f.find("a")->equal(a));
  EXPECT_TRUE(f.find("b.weight")->equal(b));
  EXPECT_TRUE(f.find("c")->equal(c));
  EXPECT_EQ(f.metadata.at("k"), "v");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator{}), 1);  // no temp file

  auto j = nlohmann::json::parse(run("/usr/bin/python3 " CONFLUX_TRAINER_TEST_DIR "/read_safetensors.py " + path));
  EXPECT_EQ(j["metadata"]["k"], "v");
  auto values = j["tensors"]["a"]["values"].get<std::vector<double>>();
  ASSERT_EQ(values.size(), 15u);
  auto af = a.reshape({-1});
  for (int i = 0; i < 15; ++i) EXPECT_EQ(values[i], static_cast<double>(af[i].item<float>()));
  EXPECT_EQ(j["tensors"]["b.weight"]["values"].get<std::vector<double>>()[6], 6.0);
  EXPECT_EQ(j["tensors"]["c"]["shape"], nlohmann::json({2, 2, 2}));
  EXPECT_EQ(j["tensors"]["c"]["values"][7].get<double>(), c.reshape({-1})[7].item<double>());
}

TEST(Safetensors, RejectsCorruptFiles) {
  fs::path dir = temp_dir("stbad");
  std::string path = (dir / "x.safetensors").string();
  write_safetensors(path, {{"a", torch::ones({4})}});
  fs::resize_file(path, fs::file_size(path) - 4);  // truncate the data
  try {
    read_safetensors(path);
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("'a'"), std::string::npos) << e.what();
  }
  std::ofstream(path, std::ios::binary) << "xx";
  EXPECT_THROW(read_safetensors(path), DataError);
}

TEST(Checkpoint, SaveLoadKeepLastAndState) {
  fs::path root = temp_dir("ckpt");
  GptConfig c;
  c.vocab_size = 32;
  c.context = 8;
  c.d_model = 16;
  c.n_head = 2;
  c.n_layer = 1;
  Gpt model(c);
  AdamW opt(model->param_infos(), {});
  torch::Tensor ids = torch::randint(0, 32, {2, 8}, torch::kInt64);
  model->loss(ids, ids).backward();
  opt.step(1e-2);
  TrainerState st;
  st.model = c;
  st.seed = 99;
  st.epoch = 2;
  st.epoch_position = 17;
  st.accountant = {{1.1, 0.01, 5}};
  Lineage lin;
  lin.config_json = R"({"train": {"steps": 5}})";
  for (int64_t step : {1, 2, 3}) {
    st.step = step;
    save_checkpoint(root.string(), st, *model, &opt, lin, nullptr, 0, 2);
  }
  auto all = list_checkpoints(root.string());
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(fs::path(all[1]).filename(), "step-00000003");
  EXPECT_TRUE(fs::exists(fs::path(all[1]) / "model-tp00-of-01.safetensors"));
  EXPECT_TRUE(fs::exists(fs::path(all[1]) / "lineage.json"));

  TrainerState back = load_trainer_state(all[1]);
  EXPECT_EQ(back.step, 3);
  EXPECT_EQ(back.seed, 99u);
  EXPECT_EQ(back.epoch_position, 17);
  ASSERT_EQ(back.accountant.size(), 1u);
  EXPECT_EQ(back.accountant[0].steps, 5);
  EXPECT_EQ(back.model.d_model, 16);

  c.init_seed = 5;  // different weights, then load
  Gpt other(c);
  AdamW other_opt(other->param_infos(), {});
  load_model(all[1], *other);
  load_optimizer(all[1], other_opt);
  auto p1 = model->parameters(), p2 = other->parameters();
  for (size_t i = 0; i < p1.size(); ++i) EXPECT_TRUE(p1[i].equal(p2[i]));
  for (size_t i = 0; i < p1.size(); ++i) EXPECT_TRUE(opt.exp_avg_sq()[i].equal(other_opt.exp_avg_sq()[i]));
  EXPECT_EQ(other_opt.steps(), 1);

  // A model of another shape is refused with the tensor named.
  c.d_model = 32;
  Gpt wrong(c);
  try {
    load_model(all[1], *wrong);
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("global shape"), std::string::npos) << e.what();
  }
}

// A one-layer model checkpointed once into `root`; returns the step directory.
std::string small_checkpoint(const fs::path& root, GptConfig* c) {
  c->vocab_size = 32;
  c->context = 8;
  c->d_model = 16;
  c->n_head = 2;
  c->n_layer = 1;
  Gpt model(*c);
  TrainerState st;
  st.model = *c;
  st.step = 1;
  return save_checkpoint(root.string(), st, *model, nullptr, Lineage{}, nullptr, 0, 1);
}

// Rewrites tensor `name` of a checkpoint's model file with `value` in its first element.
void poison(const std::string& dir, const std::string& name, float value,
            std::map<std::string, std::string>* meta_override = nullptr) {
  const std::string path = dir + "/model-tp00-of-01.safetensors";
  SafetensorsFile f = read_safetensors(path);
  for (auto& [n, t] : f.tensors)
    if (n == name) t.view({-1})[0] = value;
  if (meta_override)
    for (auto& [k, v] : *meta_override) f.metadata[k] = v;
  write_safetensors(path, f.tensors, f.metadata);
}

TEST(Checkpoint, NonFiniteWeightsAreADataErrorNamingFileAndTensor) {
  fs::path root = temp_dir("nan");
  GptConfig c;
  const std::string dir = small_checkpoint(root, &c);
  const std::string file = dir + "/model-tp00-of-01.safetensors";
  poison(dir, "ln_f.weight", std::numeric_limits<float>::quiet_NaN());
  Gpt model(c);
  try {
    load_model(dir, *model);
    FAIL() << "NaN weights loaded";
  } catch (const DataError& e) {
    EXPECT_EQ(e.message(), file + ": tensor 'ln_f.weight' has 1 non-finite value(s) (NaN or Inf): the "
                              "checkpoint is corrupt or training diverged");
  }
  poison(dir, "ln_f.weight", -std::numeric_limits<float>::infinity());
  EXPECT_THROW(load_model(dir, *model), DataError);
  load_model(dir, *model, NonFinite::Warn);  // inspection opt-out: loads, with a warning
  EXPECT_TRUE(std::isinf(model->named_parameters()["ln_f.weight"].view({-1})[0].item<float>()));
}

TEST(Checkpoint, MalformedShardMetadataIsADataErrorNamingFileAndTensor) {
  fs::path root = temp_dir("shardmeta");
  GptConfig c;
  const std::string dir = small_checkpoint(root, &c);
  const std::string file = dir + "/model-tp00-of-01.safetensors";
  Gpt model(c);
  for (const std::string& bad : {std::string("{\"dim\": -1"), std::string(R"({"dim": -1, "offset": 0})"),
                                 std::string(R"({"global_shape": [3], "dim": -1, "offset": 0})")}) {
    std::map<std::string, std::string> meta{{"shard.ln_f.bias", bad}};
    poison(dir, "ln_f.bias", 0.0f, &meta);
    try {
      load_model(dir, *model);
      FAIL() << "loaded with shard metadata " << bad;
    } catch (const DataError& e) {
      EXPECT_EQ(e.message().rfind(file + ": tensor 'ln_f.bias'", 0), 0u) << e.message();
    }
  }
}

TEST(EventWriter, ReadableByIndependentReader) {
  fs::path dir = temp_dir("tb");
  std::string path;
  {
    EventWriter w(dir.string());
    path = w.path();
    w.add_scalar("train/loss", 2.5, 1);
    w.add_scalar("train/lr", 3e-4, 1);
    w.add_scalar("train/loss", 2.25, 200);
    w.flush();
  }
  EXPECT_NE(fs::path(path).filename().string().find("events.out.tfevents."), std::string::npos);
  auto j = nlohmann::json::parse(run("/usr/bin/python3 " CONFLUX_TRAINER_TEST_DIR "/read_tfevents.py " + path));
  EXPECT_EQ(j["file_version"], "brain.Event:2");
  ASSERT_EQ(j["scalars"].size(), 3u);
  EXPECT_EQ(j["scalars"][0], nlohmann::json({1, "train/loss", 2.5}));
  EXPECT_EQ(j["scalars"][1][2].get<double>(), static_cast<double>(3e-4f));
  EXPECT_EQ(j["scalars"][2], nlohmann::json({200, "train/loss", 2.25}));
  // A flipped byte is caught by the reader's CRC check.
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(20);
    f.put('\x7f');
  }
  EXPECT_NE(run("/usr/bin/python3 " CONFLUX_TRAINER_TEST_DIR "/read_tfevents.py " + path +
                " >/dev/null 2>&1; echo $?"),
            "0\n");
}

}  // namespace
}  // namespace conflux::trainer
