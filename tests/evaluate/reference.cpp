// In-process single-pass reference for the distributed evaluation tests: reads the whole token
// stream of a dataset, runs the checkpoint's GPT over every window with the same fixed
// (batch_size, T) padded batches as the evaluate task (that shape rule is what makes logits
// independent of the split), keeps ALL logits, then calls MetricSet::partial once on the whole
// stream and finalizes. Prints {"results": [...], "torch_nll_sum": x, "tokens": n}, where
// torch_nll_sum is an independent float64 cross-entropy sum from torch::log_softmax.
// usage: evaluate_reference CHECKPOINT_STEP_DIR DATASET_DIR CONTEXT BATCH_SIZE METRIC...
#include <conflux/dataplane/dataset.h>
#include <conflux/evaluator/metric_set.h>
#include <conflux/trainer/generate.h>

#include <torch/torch.h>

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
  for (int i = 5; i < argc; ++i) specs.push_back({{"metric", argv[i]}});
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
  nlohmann::json out;
  out["results"] = set.report(set.partial(b)).to_json()["results"];
  out["torch_nll_sum"] = torch_nll;
  out["tokens"] = targets.size();
  std::cout << out.dump() << "\n";
  return 0;
}
