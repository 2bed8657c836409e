// `conflux generate --checkpoint DIR --prompt TEXT`: samples text from a trained checkpoint with
// the library's sampler (trainer/include/conflux/trainer/generate.h), byte-level tokens.
#include "conflux/cli/cli.h"
#include "conflux/core/error.h"
#include "conflux/trainer/generate.h"

#include <nlohmann/json.hpp>

#include <filesystem>

namespace {

namespace tr = conflux::trainer;

int run_generate(const conflux::cli::Args& args) {
  namespace po = conflux::cli::po;
  po::options_description opts("options");
  std::string checkpoint, prompt;
  tr::SamplingOptions so;
  int64_t seed = 0;
  opts.add_options()
      ("checkpoint", po::value(&checkpoint)->required(), "checkpoint step directory (or a checkpoint root: newest step)")
      ("prompt", po::value(&prompt)->required(), "prompt text (UTF-8 bytes are the tokens)")
      ("max-tokens", conflux::cli::number(&so.max_tokens, 1)->default_value(64), "tokens to sample (>= 1)")
      ("temperature", conflux::cli::number(&so.temperature, 0.0)->default_value(1.0), "softmax temperature, finite, >= 0 (0: greedy)")
      ("top-k", conflux::cli::number(&so.top_k, 0)->default_value(0), "sample among the k most likely tokens (0: all)")
      ("seed", conflux::cli::number(&seed, 0)->default_value(0), "sampling seed")
      ("json", "print JSON {prompt, completion, tokens}");
  po::variables_map vm;
  if (!conflux::cli::parse(args, opts, nullptr, vm,
                           {"generate", "--checkpoint DIR --prompt TEXT [--max-tokens N] [--temperature T] "
                                        "[--top-k K] [--seed S] [--json]",
                            "Samples a continuation of PROMPT from a GPT checkpoint written by `conflux train` "
                            "(any tp size). Stops at --max-tokens or the end-of-document token.",
                            "conflux generate --checkpoint checkpoints/step-00000200 --prompt 'The ' "
                            "--max-tokens 80 --temperature 0.8 --top-k 40 --seed 1"}))
    return 0;
  so.seed = static_cast<uint64_t>(seed);
  if (prompt.empty()) CONFLUX_THROW(UsageError, "--prompt must not be empty");
  if (!std::filesystem::exists(std::filesystem::path(checkpoint) / "trainer_state.json")) {
    auto latest = tr::latest_checkpoint(checkpoint);
    if (!latest) CONFLUX_THROW(UsageError, "--checkpoint {}: no trainer_state.json and no step-* directories", checkpoint);
    checkpoint = *latest;
  }
  auto m = tr::load_for_inference(checkpoint);
  so.allowed_vocab = std::min<int64_t>(m.state.model.vocab_size, 258);  // bytes + pad + eos
  so.eos_id = 257;
  std::vector<int64_t> tokens = tr::generate(*m.model, tr::encode_bytes(prompt), so);
  std::vector<int64_t> added(tokens.begin() + static_cast<long>(prompt.size()), tokens.end());
  std::string completion = tr::decode_bytes(added);
  nlohmann::json j = {{"checkpoint", checkpoint}, {"prompt", prompt}, {"completion", completion},
                      {"tokens", added}};
  // Sampled bytes need not be valid UTF-8: JSON output replaces invalid sequences (U+FFFD); the
  // exact ids are in "tokens".
  conflux::cli::emit(vm.count("json") > 0, j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                     prompt + completion);
  return 0;
}

CONFLUX_VERB("generate", "sample text from a trained GPT checkpoint", run_generate);

}  // namespace
