// Multi-rank tests (run under mpirun -np 2 and 4): ingest and prepare give byte-identical
// output to a single-rank run (MPI_COMM_SELF on rank 0) in the same job; exact and near dedup
// semantics on planted duplicates; seeded reproducibility vs secure noise; bad input leaves no
// output behind and fails on every rank.
#include "conflux/core/error.h"
#include "conflux/core/process_grid.h"
#include "conflux/dataplane/dataset.h"
#include "conflux/dataplane/dedup.h"
#include "conflux/dataplane/ingest.h"
#include "conflux/dataplane/prepare.h"
#include "conflux/dataplane/writer.h"
#include "mpi_main.h"
#include "test_util.h"
#include "scratch_dir.h"

#include <gtest/gtest.h>

#include <cmath>
#include <mpi.h>

#include <filesystem>
#include <set>

namespace conflux::dataplane {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

Communicator& world() { return conflux::test::grid().world(); }

// A one-rank communicator for the single-rank reference runs; freed before MPI_Finalize.
std::unique_ptr<Communicator>& self_holder() {
  static std::unique_ptr<Communicator> c;
  return c;
}
Communicator& self() {
  if (!self_holder())
    self_holder() = make_mpi_communicator(reinterpret_cast<intptr_t>(MPI_COMM_SELF), "self", CommOptions{});
  return *self_holder();
}

// One directory shared by all ranks for the whole test program.
const std::string& shared_dir() {
  static std::string dir = [] {
    std::vector<uint8_t> buf(256, 0);
    if (world().rank() == 0) {
      std::string p = conflux::test::make_scratch_dir("conflux-dp-mpi-");  // removed at exit
      std::copy(p.begin(), p.end(), buf.begin());
    }
    world().broadcast(buf.data(), buf.size(), DType::U8, 0);
    return std::string(reinterpret_cast<char*>(buf.data()));
  }();
  return dir;
}

std::string path(const std::string& name) { return shared_dir() + "/" + name; }

std::string random_word(Stream& rng) {
  std::string w;
  int len = 3 + static_cast<int>(rng.below(6));
  for (int i = 0; i < len; ++i) w.push_back(static_cast<char>('a' + rng.below(26)));
  return w;
}

struct Corpus {
  std::vector<std::string> docs;
  std::vector<std::pair<size_t, size_t>> exact_sets;  // (first, duplicate) indices
  std::vector<std::pair<size_t, size_t>> near_pairs;  // (original, variant)
};

// 1100 random documents of 60 random words (so 4 ranks all get blocks of 256 rows); exact copies and near variants (the last f of the
// words replaced) appended later in the corpus.
Corpus make_corpus() {
  Corpus c;
  Stream rng(5, "corpus");
  std::vector<std::vector<std::string>> words;
  for (int d = 0; d < 1100; ++d) {
    words.emplace_back();
    for (int w = 0; w < 60; ++w) words.back().push_back(random_word(rng));
  }
  auto join = [](const std::vector<std::string>& ws) {
    std::string s;
    for (auto& w : ws) s += (s.empty() ? "" : " ") + w;
    return s;
  };
  for (auto& ws : words) c.docs.push_back(join(ws));
  for (size_t d : {3, 50, 51, 900}) {
    c.docs.push_back(c.docs[d]);
    c.exact_sets.push_back({d, c.docs.size() - 1});
  }
  c.docs.push_back(c.docs[50]);  // a third copy
  c.exact_sets.push_back({50, c.docs.size() - 1});
  const double fractions[] = {0.02, 0.04, 0.06, 0.45, 0.6, 0.8};
  for (int k = 0; k < 6; ++k) {
    size_t d = 200 + 150 * k;
    auto ws = words[d];
    size_t change = static_cast<size_t>(fractions[k] * ws.size() + 0.5);
    for (size_t i = ws.size() - change; i < ws.size(); ++i) ws[i] = random_word(rng);
    c.docs.push_back(join(ws));
    c.near_pairs.push_back({d, c.docs.size() - 1});
  }
  return c;
}

void write_jsonl(const Corpus& c) {
  if (world().rank() == 0) {
    fs::create_directories(path("raw"));
    for (int f = 0; f < 4; ++f) {
      std::string text;
      for (size_t i = f * c.docs.size() / 4; i < (f + 1) * c.docs.size() / 4; ++i)
        text += json({{"body", c.docs[i]}, {"y", static_cast<int>(i % 3)}, {"who", i % 2 ? "odd" : "even"}}).dump() + "\n";
      test::write_file(path("raw") + "/part" + std::to_string(f) + ".jsonl", text);
    }
    // Features: 8 columns with structure, label column "cls".
    std::string csv = "a,b,c,d,e,f,g,h,cls\n";
    Stream rng(6, "csv");
    for (int r = 0; r < 1500; ++r) {
      double z1 = rng.normal(), z2 = rng.normal();
      for (int j = 0; j < 8; ++j) csv += fmt::format("{},", z1 * (j + 1) + z2 * (j % 2 ? 1 : -1) + 0.1 * rng.normal());
      csv += std::to_string(r % 4) + "\n";
    }
    fs::create_directories(path("csv"));
    test::write_file(path("csv") + "/a.csv", csv.substr(0, csv.size() / 2 + csv.substr(csv.size() / 2).find('\n') + 1));
    test::write_file(path("csv") + "/b.csv", "a,b,c,d,e,f,g,h,cls\n" + csv.substr(csv.size() / 2 + csv.substr(csv.size() / 2).find('\n') + 1));
  }
  world().barrier();
}

// Removes keys that legitimately differ between runs (times, paths, command lines).
void strip(json& j) {
  if (j.is_object()) {
    for (const char* k : {"time", "command", "config", "parent", "timings_rank0"}) j.erase(k);
    for (auto& kv : j.items()) strip(kv.value());
  } else if (j.is_array()) {
    for (auto& e : j) strip(e);
  }
}

void expect_same_dataset(const std::string& a, const std::string& b) {
  auto ma = Manifest::load(a), mb = Manifest::load(b);
  ASSERT_EQ(ma.shards.size(), mb.shards.size());
  for (size_t s = 0; s < ma.shards.size(); ++s)
    EXPECT_EQ(test::read_file(a + "/" + ma.shards[s].file), test::read_file(b + "/" + mb.shards[s].file))
        << "shard " << ma.shards[s].file << " differs between " << a << " and " << b;
  json ja = json::parse(ma.to_json_text()), jb = json::parse(mb.to_json_text());
  strip(ja);
  strip(jb);
  EXPECT_EQ(ja, jb);
}

IngestOptions text_ingest(const std::string& out) {
  IngestOptions o;
  o.inputs = {path("raw")};
  o.output = out;
  o.format = "jsonl";
  o.text_field = "body";
  o.label_field = "y";
  o.group_field = "who";
  o.keep_text = true;
  o.rows_per_shard = 97;
  return o;
}

class Pipeline : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    shared_dir();  // collective: every rank learns rank 0's directory
    corpus_ = new Corpus(make_corpus());
    write_jsonl(*corpus_);
    ingest(world(), text_ingest(path("text")));
    IngestOptions c;
    c.inputs = {path("csv")};
    c.output = path("features");
    c.format = "csv";
    c.label_column = "cls";
    c.rows_per_shard = 400;
    ingest(world(), c);
  }
  static void TearDownTestSuite() {
    world().barrier();
    self_holder().reset();
    delete corpus_;
  }
  // Runs `cfg` on all ranks into out_world and on rank 0 alone into out_self.
  static void run_both(PrepareConfig cfg, const std::string& out_world, const std::string& out_self) {
    cfg.output = out_world;
    prepare(world(), cfg, json::object());
    if (world().rank() == 0) {
      cfg.output = out_self;
      prepare(self(), cfg, json::object());
    }
    world().barrier();
  }
  static Corpus* corpus_;
};
Corpus* Pipeline::corpus_ = nullptr;

TEST_F(Pipeline, IngestIsIdenticalForAnyRankCount) {
  if (world().rank() == 0) {
    ingest(self(), text_ingest(path("text_self")));
    expect_same_dataset(path("text"), path("text_self"));
    auto ds = Dataset::open(path("text"));
    EXPECT_EQ(ds.num_rows(), static_cast<int64_t>(corpus_->docs.size()));
    EXPECT_EQ(ds.read_text(7, 8)[0], corpus_->docs[7]);
    EXPECT_EQ(ds.read_labels(7, 9), (std::vector<int64_t>{1, 2}));
    EXPECT_EQ(ds.read_groups(7, 9), (std::vector<int64_t>{1, 0}));  // names sorted: even=0, odd=1
    EXPECT_EQ(ds.num_shards(), (static_cast<int64_t>(corpus_->docs.size()) + 96) / 97);
  }
  world().barrier();
}

PrepareConfig text_config(int64_t seed) {
  PrepareConfig cfg;
  cfg.input = path("text");
  cfg.seed = seed;
  cfg.rows_per_shard = 113;
  cfg.near = true;
  cfg.minhash.bands = 20;
  cfg.minhash.rows = 5;
  cfg.minhash.threshold = 0.8;
  return cfg;
}

TEST_F(Pipeline, DedupKeepsOnePerExactSetAndCollapsesNearPairsAboveThreshold) {
  auto cfg = text_config(1);
  run_both(cfg, path("dedup"), path("dedup_self"));
  if (world().rank() == 0) {
    expect_same_dataset(path("dedup"), path("dedup_self"));
    auto ds = Dataset::open(path("dedup"));
    auto texts = ds.read_text(0, ds.num_rows());
    std::multiset<std::string> out(texts.begin(), texts.end());
    for (auto& [first, dup] : corpus_->exact_sets) EXPECT_EQ(out.count(corpus_->docs[first]), 1u) << first;
    int above = 0, below = 0;
    for (auto& [orig, variant] : corpus_->near_pairs) {
      auto ta = byte_tokens(corpus_->docs[orig], true), tb = byte_tokens(corpus_->docs[variant], true);
      double j = jaccard(shingle_set(ta.data(), ta.size(), 5), shingle_set(tb.data(), tb.size(), 5));
      EXPECT_EQ(out.count(corpus_->docs[orig]), 1u) << "the earlier record is kept, J=" << j;
      if (j >= 0.8) {
        ++above;
        EXPECT_EQ(out.count(corpus_->docs[variant]), 0u) << "J=" << j << " above threshold must collapse";
      } else {
        ++below;
        EXPECT_EQ(out.count(corpus_->docs[variant]), 1u) << "J=" << j << " below threshold must be kept";
      }
    }
    EXPECT_GE(above, 2);  // the planted pairs cover both sides of the threshold
    EXPECT_GE(below, 2);
    auto m = Manifest::load(path("dedup"));
    auto& stage = m.provenance.back();
    EXPECT_EQ(stage["dropped"]["exact_duplicate"].get<int64_t>(), 5);
    EXPECT_EQ(stage["dropped"]["near_duplicate"].get<int64_t>(), above);
    EXPECT_EQ(stage["rows_out"].get<int64_t>(), static_cast<int64_t>(corpus_->docs.size()) - 5 - above);
  }
  world().barrier();
}

TEST_F(Pipeline, TokenAugmentationIsIdenticalAndMarked) {
  auto cfg = text_config(77);
  cfg.augment_ops = {"mask", "span", "crop", "dropout"};
  cfg.copies = 2;
  cfg.augment_params["crop"]["length"] = 200;
  cfg.augment_params["span"]["probability"] = 0.5;
  run_both(cfg, path("aug"), path("aug_self"));
  if (world().rank() == 0) {
    expect_same_dataset(path("aug"), path("aug_self"));
    auto ds = Dataset::open(path("aug"));
    auto t = ds.read(0, ds.num_rows(), {"aug_source", "aug_op"});
    int64_t n;
    int64_t originals = 0;
    for (int64_t r = 0; r < t.rows(); ++r) {
      int64_t src = *t.row<int64_t>(0, r, &n), op = *t.row<int64_t>(1, r, &n);
      if (src < 0) {
        ++originals;
        EXPECT_EQ(op, 0);
      } else {
        EXPECT_NE(op & 1, 0) << "mask has probability 1";
      }
    }
    EXPECT_EQ(t.rows(), originals * 3);
  }
  world().barrier();
}

PrepareConfig feature_config(int64_t seed) {
  PrepareConfig cfg;
  cfg.input = path("features");
  cfg.seed = seed;
  cfg.rows_per_shard = 500;
  cfg.dp_features.mechanism = "gaussian";
  cfg.dp_features.epsilon = 2.0;
  cfg.dp_features.delta = 1e-5;
  cfg.dp_features.clip = 10.0;
  cfg.dp_labels.mechanism = "randomized_response";
  cfg.dp_labels.epsilon = 2.0;
  cfg.dp_labels.classes = 4;
  cfg.augment_ops = {"jitter", "scale", "mixup"};
  cfg.copies = 1;
  cfg.pca_components = 3;
  return cfg;
}

TEST_F(Pipeline, FeaturePipelineIsIdenticalAndSeededRunsReproduce) {
  auto cfg = feature_config(9);
  run_both(cfg, path("feat"), path("feat_self"));
  cfg.output = path("feat_again");
  prepare(world(), cfg, json::object());
  if (world().rank() == 0) {
    expect_same_dataset(path("feat"), path("feat_self"));
    expect_same_dataset(path("feat"), path("feat_again"));
    auto ds = Dataset::open(path("feat"));
    EXPECT_EQ(ds.schema()[ds.schema().require("features")].dim, 3);
    EXPECT_EQ(ds.num_rows(), 3000);
    auto m = ds.manifest();
    EXPECT_EQ(m.privacy["entries"].size(), 2u);
    EXPECT_EQ(m.privacy["entries"][0]["noise"], "seeded: not private");
    EXPECT_FALSE(m.privacy["total"]["private"].get<bool>());
    EXPECT_DOUBLE_EQ(m.privacy["total"]["basic"]["epsilon"].get<double>(), 4.0);
    auto& pca = m.provenance.back()["pca"];
    auto ev = pca["eigenvalues"].get<std::vector<double>>();
    ASSERT_EQ(ev.size(), 8u);
    for (size_t i = 1; i < ev.size(); ++i) EXPECT_GE(ev[i - 1], ev[i]);
    double top = ev[0] + ev[1] + ev[2], all = 0;
    for (double v : ev) all += v;
    EXPECT_NEAR(pca["explained_variance_ratio"].get<double>(), top / all, 1e-12);
  }
  world().barrier();
}

TEST_F(Pipeline, SecureNoiseDoesNotReproduce) {
  auto cfg = feature_config(-1);
  cfg.augment_ops.clear();
  cfg.copies = 0;
  cfg.pca_components = 0;
  cfg.output = path("secure_a");
  prepare(world(), cfg, json::object());
  cfg.output = path("secure_b");
  prepare(world(), cfg, json::object());
  if (world().rank() == 0) {
    auto a = Dataset::open(path("secure_a")), b = Dataset::open(path("secure_b"));
    auto xa = a.read_features(0, a.num_rows()), xb = b.read_features(0, b.num_rows());
    size_t same = 0;
    for (size_t i = 0; i < xa.values.size(); ++i) same += xa.values[i] == xb.values[i];
    EXPECT_EQ(same, 0u);
    EXPECT_EQ(a.manifest().privacy["entries"][0]["noise"], "secure");
    EXPECT_TRUE(a.manifest().privacy["total"]["private"].get<bool>());
    EXPECT_EQ(a.manifest().provenance.back()["seed"], "secure");
  }
  world().barrier();
}

void expect_fails_cleanly(const PrepareConfig& cfg, const std::string& needle) {
  try {
    prepare(world(), cfg, json::object());
    ADD_FAILURE() << "prepare should fail (" << needle << ")";
  } catch (const Error& e) {
    // Every rank names the real cause: the rank that hit it with its own message, the others
    // with the failing rank's message (whichever rank reports first, the user sees the cause).
    EXPECT_NE(std::string(e.message()).find(needle), std::string::npos) << e.message();
  }
  world().barrier();
  EXPECT_FALSE(fs::exists(cfg.output)) << cfg.output;
  EXPECT_FALSE(fs::exists(staging_dir_for(cfg.output)));
}

TEST_F(Pipeline, BadInputFailsOnEveryRankAndLeavesNoOutput) {
  // A corrupt shard (same size, flipped bytes) in a copy of the text dataset.
  if (world().rank() == 0) {
    fs::copy(path("text"), path("corrupt"), fs::copy_options::recursive);
    std::string p = path("corrupt") + "/part-00002.h5";
    std::string bytes = test::read_file(p);
    bytes[bytes.size() / 2] ^= 0x40;
    test::write_file(p, bytes);
  }
  world().barrier();
  auto cfg = text_config(1);
  cfg.input = path("corrupt");
  cfg.output = path("out_corrupt");
  expect_fails_cleanly(cfg, "checksum mismatch");

  cfg = text_config(1);
  cfg.input = path("does-not-exist");
  cfg.output = path("out_missing");
  expect_fails_cleanly(cfg, "does not exist");

  cfg = text_config(1);
  cfg.require_fields = {"tokens", "summary"};
  cfg.output = path("out_field");
  expect_fails_cleanly(cfg, "required field 'summary' is missing");

  // NaN where the config forbids it.
  if (world().rank() == 0) {
    fs::create_directories(path("nan_csv"));
    test::write_file(path("nan_csv") + "/x.csv", "1,2\n3,nan\n5,6\n");
  }
  world().barrier();
  IngestOptions io;
  io.inputs = {path("nan_csv")};
  io.output = path("nan_ds");
  io.format = "csv";
  ingest(world(), io);
  PrepareConfig nan_cfg;
  nan_cfg.input = path("nan_ds");
  nan_cfg.output = path("out_nan");
  nan_cfg.checks.nonfinite = "error";
  expect_fails_cleanly(nan_cfg, "forbids NaN");
  nan_cfg.checks.nonfinite = "drop";
  prepare(world(), nan_cfg, json::object());
  if (world().rank() == 0) {
    EXPECT_EQ(Dataset::open(path("out_nan")).num_rows(), 2);
  }
  world().barrier();
}

// An empty input never replaces a dataset (issue 17): zero rows in all is a DataError on every
// rank before anything is written, unless allow_empty, which still refuses to replace a dataset
// that has rows; the existing dataset stays byte for byte and no staging directory is left.
TEST_F(Pipeline, EmptyOutputIsRefusedOnEveryRankAndKeepsTheDataset) {
  if (world().rank() == 0) {
    fs::create_directories(path("empty_in"));
    test::write_file(path("empty_in") + "/a.jsonl", "");
    test::write_file(path("empty_in") + "/b.jsonl", "{\"body\": \"  \"}\n");
  }
  world().barrier();
  const std::string manifest_before = test::read_file(path("text") + "/" + kManifestFile);
  IngestOptions io = text_ingest(path("text"));
  io.inputs = {path("empty_in")};
  io.label_field = io.group_field = "";
  auto expect_refused = [&](const std::string& needle) {
    try {
      ingest(world(), io);
      ADD_FAILURE() << "an empty ingest replaced " << io.output;
    } catch (const DataError& e) {
      EXPECT_NE(e.message().find(needle), std::string::npos) << e.message();
    }
    EXPECT_FALSE(fs::exists(staging_dir_for(io.output)));
  };
  expect_refused(fmt::format("refusing to write an empty dataset to '{}': no documents in 2 input file(s) of 15 "
                             "bytes (1 empty document(s) skipped)", path("text")));
  io.allow_empty = true;
  expect_refused(fmt::format("refusing to replace the dataset at '{}' ({} rows) with an empty one", path("text"),
                             corpus_->docs.size()));
  EXPECT_EQ(test::read_file(path("text") + "/" + kManifestFile), manifest_before);
  // Asked for, to a new path: an empty dataset, the same on every rank.
  io.output = path("empty_ds");
  EXPECT_EQ(ingest(world(), io).rows, 0);
  if (world().rank() == 0) {
    EXPECT_EQ(Dataset::open(path("empty_ds")).num_rows(), 0);
  }
  world().barrier();
}

// Rows validation drops and exact duplicates are removed in one pass: dedup sees only the valid
// rows (a duplicate of a NaN row is counted as nonfinite, not as a duplicate), with the same rows
// and counts on any number of ranks.
TEST_F(Pipeline, InvalidRowsAndDuplicatesAreRemovedTogether) {
  if (world().rank() == 0) {
    std::vector<std::string> lines;
    for (int r = 0; r < 600; ++r) {
      const int src = r >= 301 && r < 320 ? r - 300 : r;  // rows 301..319 repeat rows 1..19
      lines.push_back(r % 50 == 0 ? fmt::format("{},nan,{}", r, r % 3)
                                  : fmt::format("{},{},{}", src, src * 0.5, src % 3));
    }
    std::string a, b;
    for (int r = 0; r < 600; ++r) (r < 280 ? a : b) += lines[static_cast<size_t>(r)] + "\n";
    fs::create_directories(path("dup_nan_csv"));
    test::write_file(path("dup_nan_csv") + "/a.csv", a);
    test::write_file(path("dup_nan_csv") + "/b.csv", b);
  }
  world().barrier();
  IngestOptions io;
  io.inputs = {path("dup_nan_csv")};
  io.output = path("dup_nan_ds");
  io.format = "csv";
  io.rows_per_shard = 128;
  ingest(world(), io);
  PrepareConfig cfg;
  cfg.input = path("dup_nan_ds");
  cfg.rows_per_shard = 100;
  cfg.exact = true;
  cfg.checks.nonfinite = "drop";
  cfg.output = path("dup_nan_out");
  PrepareResult res = prepare(world(), cfg, json::object());
  EXPECT_EQ(res.dropped["nonfinite_features"], 12);  // rows 0, 50, ..., 550
  EXPECT_EQ(res.dropped["exact_duplicate"], 19);
  EXPECT_EQ(res.rows_out, 600 - 12 - 19);
  if (world().rank() == 0) {
    cfg.output = path("dup_nan_self");
    PrepareResult one = prepare(self(), cfg, json::object());
    EXPECT_EQ(one.dropped, res.dropped);
    expect_same_dataset(path("dup_nan_out"), path("dup_nan_self"));
    auto ds = Dataset::open(path("dup_nan_out"));
    auto f = ds.read_features(0, ds.num_rows());
    ASSERT_EQ(f.values.size(), static_cast<size_t>(3 * (600 - 31)));
    EXPECT_EQ(f.values[0], 1.0f);                    // row 0 (NaN) is gone
    EXPECT_EQ(f.values[3 * 48], 49.0f);              // rows 1..49 kept, then 51
    EXPECT_EQ(f.values[3 * 49], 51.0f);
    for (float v : f.values) EXPECT_TRUE(std::isfinite(v));
  }
  world().barrier();
}

}  // namespace
}  // namespace conflux::dataplane
