// Greedy continuations of dataset prompts for the text metrics of the evaluate task, and their
// JSON-lines form (see generation.h for the exact rules).
#include <conflux/tasks/generation.h>

#include <conflux/core/error.h>
#include <conflux/dataplane/dataset.h>
#include <conflux/dataplane/manifest.h>
#include <conflux/evaluator/text.h>
#include <conflux/trainer/generate.h>

#include <torch/torch.h>

#include <algorithm>

namespace conflux::tasks {

namespace {
constexpr int64_t kFirstSpecialId = 256;  // ids >= 256 are pad/eos/mask, not bytes
constexpr int64_t kAllowedVocab = 258;    // bytes + pad + eos (as `conflux generate`)

std::string text_of(const std::vector<int64_t>& ids) {
  return evaluator::utf8_replace_invalid(trainer::decode_bytes(ids));
}
}  // namespace

void GenerationParams::bind(ConfigBinder& b, const std::string& prefix) {
  b.field(prefix + ".prompt_tokens", prompt_tokens, "prompt = the first N content tokens of a row").min(1);
  b.field(prefix + ".max_new_tokens", max_new_tokens, "greedy tokens per prompt").min(1);
  b.field(prefix + ".reference_tokens", reference_tokens,
          "reference = the next N content tokens (0 = the rest of the row)").min(0);
  b.field(prefix + ".every", every, "prompt rows with row % every == 0").min(1);
  b.field(prefix + ".stop_at_eos", stop_at_eos, "stop a continuation after EOS");
  b.field(prefix + ".batch_size", batch_size,
          "prompts decoded together (speed only: every continuation is the one-prompt-at-a-time one)")
      .range(1, 1024);
}

nlohmann::json GeneratedExample::to_json() const {
  return {{"row", row},
          {"prompt", prompt},
          {"hypothesis", hypothesis},
          {"reference", reference},
          {"new_tokens", new_tokens}};
}

std::vector<GeneratedExample> generate_examples(trainer::GptImpl& model, const dataplane::Dataset& ds,
                                                int64_t row_begin, int64_t row_end,
                                                const GenerationParams& p, int64_t* skipped,
                                                const std::atomic<bool>* cancel) {
  const std::string kind = ds.manifest().tokenizer.value("kind", "");
  if (kind != "bytes")
    CONFLUX_THROW(DataError, "dataset '{}': generation metrics need the byte tokenizer, the manifest "
                  "says '{}'", ds.dir(), kind);
  std::vector<GeneratedExample> out;
  *skipped = 0;
  if (row_end <= row_begin) return out;
  const dataplane::Ragged<int32_t> rows = ds.read_tokens(row_begin, row_end);
  trainer::SamplingOptions so;
  so.max_tokens = p.max_new_tokens;
  so.temperature = 0;  // greedy: argmax, no random draw
  so.allowed_vocab = std::min<int64_t>(model.config().vocab_size, kAllowedVocab);
  so.eos_id = p.stop_at_eos ? dataplane::kEosId : -1;
  // Prompts are all p.prompt_tokens long: decoded p.batch_size at a time (trainer::generate_batch:
  // the same tokens as one at a time, so the report does not depend on the batch size or on how
  // rows are split into tasks).
  std::vector<GeneratedExample> pending;
  std::vector<std::vector<int64_t>> prompts;
  const auto flush = [&] {
    if (prompts.empty()) return;
    const auto all = trainer::generate_batch(model, prompts, so);
    for (size_t i = 0; i < all.size(); ++i) {
      const std::vector<int64_t> added(all[i].begin() + p.prompt_tokens, all[i].end());
      pending[i].hypothesis = text_of(added);
      pending[i].new_tokens = static_cast<int64_t>(added.size());
      out.push_back(std::move(pending[i]));
    }
    pending.clear();
    prompts.clear();
  };
  for (int64_t r = row_begin; r < row_end; ++r) {
    if (r % p.every != 0) continue;
    if (cancel && cancel->load()) CONFLUX_THROW(CommError, "evaluate task cancelled");
    const auto b = rows.offsets[static_cast<size_t>(r - row_begin)];
    const auto e = rows.offsets[static_cast<size_t>(r - row_begin + 1)];
    std::vector<int64_t> content;
    for (auto i = b; i < e && rows.values[static_cast<size_t>(i)] < kFirstSpecialId; ++i)
      content.push_back(rows.values[static_cast<size_t>(i)]);
    const auto n = static_cast<int64_t>(content.size());
    if (n < p.prompt_tokens + 1) {
      ++*skipped;
      continue;
    }
    const std::vector<int64_t> prompt(content.begin(), content.begin() + p.prompt_tokens);
    const int64_t ref_end =
        p.reference_tokens == 0 ? n : std::min(n, p.prompt_tokens + p.reference_tokens);
    const std::vector<int64_t> reference(content.begin() + p.prompt_tokens, content.begin() + ref_end);
    GeneratedExample ex;
    ex.row = r;
    ex.prompt = text_of(prompt);
    ex.reference = text_of(reference);
    pending.push_back(std::move(ex));
    prompts.push_back(prompt);
    if (static_cast<int64_t>(prompts.size()) == p.batch_size) flush();
  }
  flush();
  return out;
}

evaluator::Batch text_batch(const std::vector<GeneratedExample>& examples) {
  evaluator::Batch b;
  for (const auto& e : examples) {
    b.hypotheses.push_back(e.hypothesis);
    b.references.push_back({e.reference});
    b.example_ids.push_back(e.row);
  }
  return b;
}

std::vector<uint8_t> examples_to_jsonl(const std::vector<GeneratedExample>& examples) {
  std::string s;
  for (const auto& e : examples) s += e.to_json().dump() + "\n";
  return std::vector<uint8_t>(s.begin(), s.end());
}

std::vector<GeneratedExample> examples_from_jsonl(const uint8_t* data, size_t size) {
  std::vector<GeneratedExample> out;
  const std::string s(reinterpret_cast<const char*>(data), size);
  size_t pos = 0;
  while (pos < s.size()) {
    size_t nl = s.find('\n', pos);
    if (nl == std::string::npos) CONFLUX_THROW(DataError, "generations: last line has no newline");
    try {
      const auto j = nlohmann::json::parse(s.substr(pos, nl - pos));
      GeneratedExample e;
      e.row = j.at("row").get<int64_t>();
      e.prompt = j.at("prompt").get<std::string>();
      e.hypothesis = j.at("hypothesis").get<std::string>();
      e.reference = j.at("reference").get<std::string>();
      e.new_tokens = j.at("new_tokens").get<int64_t>();
      out.push_back(std::move(e));
    } catch (const nlohmann::json::exception& e) {
      CONFLUX_THROW(DataError, "generations: line {}: {}", out.size() + 1, e.what());
    }
    pos = nl + 1;
  }
  return out;
}

}  // namespace conflux::tasks
