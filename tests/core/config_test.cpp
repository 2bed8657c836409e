// Config binding: types, defaults, ranges, choices, unknown keys with file:line and a
// suggestion, --set overrides, arrays of tables, effective-config output.
#include "conflux/core/config.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>

using namespace conflux;

namespace {
struct Op {
  std::string name;
  double p = 0.5;
  void bind(ConfigBinder& b, const std::string& at) {
    b.field(at + ".name", name, "op name").required().one_of({"mask", "crop"});
    b.field(at + ".p", p, "probability").range(0, 1);
  }
};

struct Sample {
  int64_t steps = 100;
  double lr = 3e-4;
  bool shuffle = true;
  int tp = 1;
  std::string dataset;
  std::string mode = "fast";
  std::vector<int64_t> dims{1, 2};
  std::vector<double> weights{1.0};
  double margin = 0;  // no declared range: must still be finite
  std::vector<Op> ops;
  void bind(ConfigBinder& b) {
    b.field("train.steps", steps, "optimizer steps").min(1);
    b.field("train.lr", lr, "learning rate").range(0, 1);
    b.field("train.shuffle", shuffle, "shuffle windows");
    b.field("parallel.tp", tp, "tensor-parallel size").min(1);
    b.field("data.path", dataset, "dataset directory").required();
    b.field("data.mode", mode, "read mode").one_of({"fast", "safe"});
    b.field("data.dims", dims, "dimensions");
    b.field("data.weights", weights, "mixing weights");
    b.field("train.margin", margin, "margin");
    if (b.mode() == ConfigBinder::Mode::Load) ops.resize(b.array_length("augment"));
    for (size_t i = 0; i < ops.size(); ++i) ops[i].bind(b, "augment[" + std::to_string(i) + "]");
  }
};

std::string error_of(const std::string& text, std::vector<std::string> ov = {}) {
  try {
    bind_config<Sample>(parse_config_text(text, "run.toml", ov));
  } catch (const ConfigError& e) {
    return e.message();
  }
  return "";
}
}  // namespace

TEST(Config, ParsesTypesAndFillsDefaults) {
  auto c = bind_config<Sample>(parse_config_text("[train]\nsteps = 10\n[data]\npath = \"/d\"\ndims = [3, 4, 5]\n", "run.toml", {}));
  EXPECT_EQ(c.steps, 10);
  EXPECT_DOUBLE_EQ(c.lr, 3e-4);
  EXPECT_TRUE(c.shuffle);
  EXPECT_EQ(c.dataset, "/d");
  EXPECT_EQ(c.dims, (std::vector<int64_t>{3, 4, 5}));
}

TEST(Config, IntegerAcceptedForFloatField) {
  auto c = bind_config<Sample>(parse_config_text("train.lr = 1\ndata.path = \"x\"\n", "run.toml", {}));
  EXPECT_DOUBLE_EQ(c.lr, 1.0);
}

TEST(Config, UnknownKeyNamesFileLineAndSuggests) {
  EXPECT_EQ(error_of("[data]\npath = \"x\"\n[train]\nstepz = 5\n"),
            "run.toml:4: unknown key 'train.stepz' (did you mean 'train.steps'?)");
}

TEST(Config, WrongTypeNamesKeyAndValue) {
  EXPECT_EQ(error_of("data.path = \"x\"\n\ntrain.steps = \"ten\"\n"),
            "run.toml:3: key 'train.steps' must be an integer, got a string ('ten')");
}

TEST(Config, OutOfRangeAndChoices) {
  EXPECT_EQ(error_of("data.path = \"x\"\ntrain.lr = 2.5\n"),
            "run.toml:2: key 'train.lr' = 2.5 is out of range [0.0, 1.0] (learning rate)");
  EXPECT_EQ(error_of("data.path = \"x\"\ndata.mode = \"slow\"\n"),
            "run.toml:2: key 'data.mode' = \"slow\" is not one of: fast, safe");
}

// NaN compares false with every bound, so it used to pass range checks (issue 17): every float
// setting must be finite, with a range or without, in the file, in arrays and in --set.
TEST(Config, NonFiniteFloatsAreRefused) {
  EXPECT_EQ(error_of("data.path = \"x\"\ntrain.lr = nan\n"),
            "run.toml:2: key 'train.lr' = nan is not a finite number (learning rate)");
  EXPECT_EQ(error_of("data.path = \"x\"\ntrain.margin = -inf\n"),
            "run.toml:2: key 'train.margin' = -inf is not a finite number (margin)");
  EXPECT_EQ(error_of("data.path = \"x\"\n", {"train.margin=inf"}),
            "--set train.margin: key 'train.margin' = inf is not a finite number (margin)");
  EXPECT_EQ(error_of("data.path = \"x\"\ndata.weights = [0.5, nan]\n"),
            "run.toml:2: key 'data.weights' = [0.5, nan] is not a finite number (mixing weights)");
  EXPECT_EQ(error_of("data.path = \"x\"\n[[augment]]\nname = \"mask\"\np = nan\n"),
            "run.toml:4: key 'augment[0].p' = nan is not a finite number (probability)");
  EXPECT_EQ(error_of("data.path = \"x\"\ntrain.margin = 1e308\n"), "");
}

// Free-form table keys become parts of field paths, so they cannot hold the path separators (a
// quoted "x[abc]" next to an array x reached std::stoul: found by fuzz/config_fuzz.cpp).
TEST(Config, FreeTableKeysCannotHoldPathSeparators) {
  struct Free {
    std::map<std::string, double> v;
    void bind(ConfigBinder& b) {
      if (b.mode() == ConfigBinder::Mode::Load)
        for (auto& k : b.table_keys("free")) v[k];
      for (auto& [k, x] : v) b.field("free." + k, x, "free number");
    }
  };
  auto err = [](const std::string& text) {
    try {
      bind_config<Free>(parse_config_text(text, "run.toml", {}));
    } catch (const ConfigError& e) {
      return e.message();
    }
    return std::string();
  };
  EXPECT_EQ(err("[free]\nx = 1.5\n"), "");
  EXPECT_EQ(err("[free]\n\"x[abc]\" = 2\n"), "run.toml:2: key 'x[abc]' under 'free' cannot contain '.', '[' or ']'");
  EXPECT_EQ(err("[free]\n\"a.b\" = 2\n"), "run.toml:2: key 'a.b' under 'free' cannot contain '.', '[' or ']'");
}

TEST(Config, DirectoryAsConfigFileIsNamed) {
  try {
    load_config<Sample>("/tmp");
    FAIL() << "a directory was read as a config";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.message(), "config file '/tmp' is a directory, not a TOML file");
  }
}

TEST(Config, MissingRequiredKey) {
  EXPECT_EQ(error_of("train.steps = 3\n"), "run.toml: required key 'data.path' is missing (dataset directory)");
}

TEST(Config, InvalidTomlNamesLineAndColumn) {
  auto msg = error_of("data.path = \"x\"\ntrain.steps = = 3\n");
  EXPECT_EQ(msg.rfind("run.toml:2:", 0), 0u) << msg;
  EXPECT_NE(msg.find("invalid TOML"), std::string::npos) << msg;
}

TEST(Config, OverridesApplyAndAreNamedInErrors) {
  auto c = bind_config<Sample>(parse_config_text("data.path = \"x\"\n", "run.toml",
                                                 {"train.steps=7", "data.mode=safe", "train.lr=0.5"}));
  EXPECT_EQ(c.steps, 7);
  EXPECT_EQ(c.mode, "safe");
  EXPECT_DOUBLE_EQ(c.lr, 0.5);
  EXPECT_EQ(error_of("data.path = \"x\"\n", {"train.steps=0"}),
            "--set train.steps: key 'train.steps' = 0 is out of range [1.0, inf] (optimizer steps)");
  EXPECT_EQ(error_of("data.path = \"x\"\n", {"train.stesp=3"}),
            "--set train.stesp: unknown key 'train.stesp' (did you mean 'train.steps'?)");
  EXPECT_EQ(error_of("data.path = \"x\"\n", {"a[0=1"}), "key path 'a[0': '[' without ']'");  // hung
  EXPECT_EQ(error_of("data.path = \"x\"\n", {"data.mode=\xd0"}), "--set 'data.mode=\xd0': not valid UTF-8");
  EXPECT_EQ(error_of("data.path = \"x\"\n", {"data.mode=\xed\xa0\x80"}),  // a surrogate
            "--set 'data.mode=\xed\xa0\x80': not valid UTF-8");
  EXPECT_EQ(error_of("data.path = \"x\"\n", {"data.mode=\xc0\xaf"}), "--set 'data.mode=\xc0\xaf': not valid UTF-8");
  EXPECT_EQ(error_of("data.path = \"x\"\n", {"data.path=d\xc3\xa9j\xe0\xa4\xb9\xf0\x9f\x98\x80"}), "");
  EXPECT_EQ(error_of("data.path = \"x\"\n", {"novalue"}),
            "--set 'novalue': expected KEY=VALUE, e.g. --set train.steps=100");
}

TEST(Config, ArraysOfTables) {
  auto c = bind_config<Sample>(parse_config_text(
      "data.path = \"x\"\n[[augment]]\nname = \"mask\"\np = 0.25\n[[augment]]\nname = \"crop\"\n", "run.toml", {}));
  ASSERT_EQ(c.ops.size(), 2u);
  EXPECT_EQ(c.ops[0].name, "mask");
  EXPECT_DOUBLE_EQ(c.ops[0].p, 0.25);
  EXPECT_DOUBLE_EQ(c.ops[1].p, 0.5);
  EXPECT_EQ(error_of("data.path = \"x\"\n[[augment]]\nname = \"mask\"\nq = 1\n"),
            "run.toml:4: unknown key 'augment[0].q' (did you mean 'augment[0].p'?)");
}

TEST(Config, EffectiveConfigRoundTrips) {
  std::string toml_text, json_text;
  auto doc = parse_config_text("data.path = \"/d\"\ntrain.steps = 12\n", "run.toml", {"parallel.tp=2"});
  auto c = bind_config<Sample>(doc, &toml_text, &json_text);
  EXPECT_NE(toml_text.find("[train]\nsteps = 12  # optimizer steps\n"), std::string::npos) << toml_text;
  EXPECT_NE(toml_text.find("tp = 2"), std::string::npos) << toml_text;
  EXPECT_NE(json_text.find("\"steps\": 12"), std::string::npos) << json_text;
  // The effective TOML parses back to the same values.
  auto again = bind_config<Sample>(parse_config_text(toml_text, "effective.toml", {}));
  EXPECT_EQ(again.steps, c.steps);
  EXPECT_EQ(again.tp, 2);
  EXPECT_EQ(again.dims, c.dims);
  EXPECT_EQ(again.dataset, "/d");
}

TEST(Config, MissingFileIsConfigError) {
  EXPECT_THROW(load_config<Sample>("/nonexistent/run.toml"), ConfigError);
}
