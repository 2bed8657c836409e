// In-process single-pass reference for the distributed evaluation tests: reads the whole token
// stream of a dataset, runs the checkpoint's GPT over every window with the same fixed
// (batch_size, T) padded batches as the evaluate task (that shape rule is what makes logits
// independent of the split), keeps ALL logits, then calls MetricSet::partial once on the whole
// stream and finalizes. Prints {"results": [...], "torch_nll_sum": x, "tokens": n}, where
// torch_nll_sum is an independent float64 cross-entropy sum from torch::log_softmax.
// With --gen=K,NEW,REF,EVERY it also generates, written here from the documented rule (not the
// worker's code): for every row r % EVERY == 0 whose content (tokens before the first id >= 256)
// has at least K+1 tokens, prompt = content[:K], reference = content[K:K+REF] (REF 0: to the
// end), hypothesis = trainer::generate greedy (temperature 0, ids < 258, stop after EOS 257, at
// most NEW tokens), texts decoded from bytes with U+FFFD replacement; then ONE
// MetricSet::partial over all examples; prints them as "generations".
// usage: evaluate_reference CHECKPOINT_STEP_DIR DATASET_DIR CONTEXT BATCH_SIZE [--gen=...] METRIC...
#include <conflux/dataplane/dataset.h>
#include <conflux/evaluator/metric_set.h>
#include <conflux/evaluator/text.h>
#include <conflux/trainer/generate.h>

#include <torch/torch.h>

#include <cstdio>
#include <iostream>

int main(int argc, char** argv) {
  if (argc < 6) {
    std::cerr << "usage: evaluate_reference CKPT DATA CONTEXT BATCH METRIC...\n";
    return 2;
  }
  namespace ev = conflux::evaluator;
  torch::set_num_threads(1);
  auto m = conflux::trainer::load_for_inference(argv[1]);
  auto ds = conflux::dataplane::Dataset::open(argv[2]);
  const int64_t T = std::stoll(argv[3]), B = std::stoll(argv[4]);
  nlohmann::json specs = nlohmann::json::array();
  long long gk = 0, gnew = 0, gref = 0, gevery = 0;
  int first_metric = 5;
  if (std::string(argv[5]).rfind("--gen=", 0) == 0) {
    if (std::sscanf(argv[5], "--gen=%lld,%lld,%lld,%lld", &gk, &gnew, &gref, &gevery) != 4) {
      std::cerr << "bad " << argv[5] << "\n";
      return 2;
    }
    first_metric = 6;
  }
  for (int i = first_metric; i < argc; ++i) specs.push_back({{"metric", argv[i]}});
  ev::MetricSet set(specs);
  const int64_t N = ds.num_tokens(), V = m.model->config().vocab_size;
  const std::vector<int32_t> tok = ds.read_token_stream(0, N);
  const int64_t windows = (N - 1 + T - 1) / T;
  std::vector<float> all_logits;
  std::vector<int64_t> targets;
  double torch_nll = 0;
  torch::NoGradGuard ng;
  for (int64_t w0 = 0; w0 < windows; w0 += B) {
    torch::Tensor ids = torch::zeros({B, T}, torch::kInt64);  // (B, T)
    int64_t real = 0;
    std::vector<int64_t> tg;
    for (int64_t i = 0; i < B && w0 + i < windows; ++i) {
      const int64_t s = (w0 + i) * T, len = std::min(T, N - 1 - s);
      for (int64_t t = 0; t < len; ++t) {
        ids[i][t] = tok[s + t];
        tg.push_back(tok[s + t + 1]);
      }
      real += len;
    }
    torch::Tensor logits = m.model->full_logits(ids).contiguous().view({B * T, V});  // (B*T, V)
    const float* p = logits.data_ptr<float>();
    all_logits.insert(all_logits.end(), p, p + real * V);
    torch::Tensor lp = torch::log_softmax(logits.slice(0, 0, real).to(torch::kFloat64), 1);
    torch::Tensor tt = torch::tensor(tg, torch::kInt64);
    torch_nll -= lp.gather(1, tt.unsqueeze(1)).sum().item<double>();
    targets.insert(targets.end(), tg.begin(), tg.end());
  }
  ev::Batch b;
  b.logits = {all_logits.data(), static_cast<int64_t>(targets.size()), V, false};
  b.targets = targets;
  b.first_example = 1;  // example id = stream position of the target
  ev::SetStats stats = set.partial(b);
  nlohmann::json gens = nlohmann::json::array();
  if (gevery > 0) {
    auto utf8 = [](const std::vector<int64_t>& ids) {
      return ev::utf8_replace_invalid(conflux::trainer::decode_bytes(ids));
    };
    const auto rows = ds.read_tokens(0, ds.num_rows());
    conflux::trainer::SamplingOptions so;
    so.max_tokens = gnew;
    so.temperature = 0;
    so.allowed_vocab = std::min<int64_t>(V, 258);
    so.eos_id = 257;
    ev::Batch tb;
    for (int64_t r = 0; r < rows.rows(); r += gevery) {
      std::vector<int64_t> content;
      for (int64_t i = rows.offsets[r]; i < rows.offsets[r + 1] && rows.values[i] < 256; ++i)
        content.push_back(rows.values[i]);
      const int64_t n = static_cast<int64_t>(content.size());
      if (n < gk + 1) continue;
      std::vector<int64_t> prompt(content.begin(), content.begin() + gk);
      std::vector<int64_t> ref(content.begin() + gk, content.begin() + (gref ? std::min<int64_t>(n, gk + gref) : n));
      auto full = conflux::trainer::generate(*m.model, prompt, so);
      std::vector<int64_t> added(full.begin() + gk, full.end());
      tb.hypotheses.push_back(utf8(added));
      tb.references.push_back({utf8(ref)});
      tb.example_ids.push_back(r);
      gens.push_back({{"row", r}, {"prompt", utf8(prompt)}, {"hypothesis", tb.hypotheses.back()},
                      {"reference", utf8(ref)}, {"new_tokens", added.size()}});
    }
    ev::MetricSet::merge_into(stats, set.partial(tb));
  }
  nlohmann::json out;
  out["results"] = set.report(stats).to_json()["results"];
  out["generations"] = gens;
  out["torch_nll_sum"] = torch_nll;
  out["tokens"] = targets.size();
  std::cout << out.dump() << "\n";
  return 0;
}
