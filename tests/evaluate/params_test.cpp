// The evaluate task's params are declared once (EvaluateParams::bind, GenerationParams::bind)
// and that one declaration reads and writes the JSON on the wire: a round trip keeps every
// field, and every malformed field is a ConfigError naming the key (not retried by the job
// layer), as in config files.
#include <conflux/core/error.h>
#include <conflux/tasks/evaluate_task.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace conflux::tasks {
namespace {

std::string error_of(const std::string& text) {
  try {
    EvaluateParams::from_json(text);
  } catch (const ConfigError& e) {
    return e.message();
  }
  return "(no error)";
}

TEST(EvaluateParams, RoundTripKeepsEveryField) {
  EvaluateParams p;
  p.checkpoint = "/ckpt/step-00000600";
  p.row_begin = 40;
  p.row_end = 45;
  p.metrics = {"perplexity", "ece", "bleu"};
  p.context = 24;
  p.batch_size = 4;
  p.threads = 2;
  p.manifest_sha256 = "cd40";
  p.checkpoint_step = 600;
  p.generation = GenerationParams{12, 16, 0, 3, false};
  const EvaluateParams q = EvaluateParams::from_json(p.to_json());
  EXPECT_EQ(q.checkpoint, p.checkpoint);
  EXPECT_EQ(q.row_begin, 40);
  EXPECT_EQ(q.row_end, 45);
  EXPECT_EQ(q.metrics, p.metrics);
  EXPECT_EQ(q.context, 24);
  EXPECT_EQ(q.batch_size, 4);
  EXPECT_EQ(q.threads, 2);
  EXPECT_EQ(q.manifest_sha256, "cd40");
  EXPECT_EQ(q.checkpoint_step, 600);
  ASSERT_TRUE(q.generation.has_value());
  EXPECT_EQ(q.generation->prompt_tokens, 12);
  EXPECT_EQ(q.generation->max_new_tokens, 16);
  EXPECT_EQ(q.generation->reference_tokens, 0);
  EXPECT_EQ(q.generation->every, 3);
  EXPECT_FALSE(q.generation->stop_at_eos);
  p.generation.reset();
  EXPECT_FALSE(EvaluateParams::from_json(p.to_json()).generation.has_value());
  EXPECT_EQ(nlohmann::json::parse(p.to_json()).count("generation"), 0u);
}

TEST(EvaluateParams, DefaultsFillWhatIsMissing) {
  const auto p = EvaluateParams::from_json(R"({"checkpoint": "/c", "row_begin": 0, "row_end": 8})");
  EXPECT_EQ(p.batch_size, 8);
  EXPECT_EQ(p.threads, 1);
  EXPECT_EQ(p.checkpoint_step, -1);
  EXPECT_EQ(p.metrics, std::vector<std::string>{"perplexity"});
}

TEST(EvaluateParams, EveryBadFieldIsAConfigErrorNamingTheKey) {
  const std::string ok = R"("checkpoint": "/c", "row_begin": 0, "row_end": 8)";
  auto has = [](const std::string& msg, const std::string& part) {
    return msg.find(part) != std::string::npos;
  };
  std::string e = error_of("{" + ok + R"(, "batchsize": 4})");
  EXPECT_TRUE(has(e, "unknown key 'batchsize'") && has(e, "did you mean 'batch_size'")) << e;
  e = error_of("{" + ok + R"(, "batch_size": "4"})");
  EXPECT_TRUE(has(e, "'batch_size'") && has(e, "string")) << e;
  e = error_of("{" + ok + R"(, "batch_size": 0})");
  EXPECT_TRUE(has(e, "'batch_size'")) << e;
  e = error_of("{" + ok + R"(, "generation": {"every": 0}})");
  EXPECT_TRUE(has(e, "'generation.every'")) << e;
  e = error_of("{" + ok + R"(, "generation": {"every": null}})");
  EXPECT_TRUE(has(e, "'generation.every' is null")) << e;
  e = error_of(R"({"row_begin": 0, "row_end": 8})");
  EXPECT_TRUE(has(e, "'checkpoint'")) << e;
  e = error_of(R"({"checkpoint": "/c", "row_begin": 9, "row_end": 8})");
  EXPECT_TRUE(has(e, "row_end 8 < row_begin 9")) << e;
  EXPECT_TRUE(has(error_of("[1, 2]"), "expected a JSON object"));
  EXPECT_TRUE(has(error_of("{not json"), "not valid JSON"));
}

}  // namespace
}  // namespace conflux::tasks
