// `conflux eval bleu` and `conflux eval rouge`: score a file of hypotheses against one or more
// files of references (one segment per line), exactly as sacrebleu (default corpus BLEU) and
// rouge-score (ROUGE-L, mean over lines) do. Results on stdout; --json for machines.
#include "conflux/cli/cli.h"
#include "conflux/core/error.h"
#include "conflux/evaluator/metric.h"
#include "conflux/evaluator/text.h"

#include <nlohmann/json.hpp>

namespace {

using conflux::cli::Args;
namespace po = conflux::cli::po;
namespace ev = conflux::evaluator;

// Reads --hyp and every --ref, checks line counts agree, and returns the batch.
ev::Batch read_text_batch(const std::string& hyp_path, const std::vector<std::string>& ref_paths) {
  if (ref_paths.empty()) CONFLUX_THROW(UsageError, "give at least one --ref FILE");
  ev::Batch b;
  b.hypotheses = ev::read_lines(hyp_path);
  b.references.assign(b.hypotheses.size(), {});
  for (const auto& rp : ref_paths) {
    const auto refs = ev::read_lines(rp);
    if (refs.size() != b.hypotheses.size())
      CONFLUX_THROW(DataError, "reference file '{}' has {} lines but hypothesis file '{}' has {}",
                    rp, refs.size(), hyp_path, b.hypotheses.size());
    for (size_t i = 0; i < refs.size(); ++i) b.references[i].push_back(refs[i]);
  }
  return b;
}

int eval_bleu(const Args& args) {
  std::string hyp;
  std::vector<std::string> refs;
  bool json = false;
  po::options_description o("options");
  o.add_options()("hyp", po::value(&hyp)->required(), "hypotheses, one segment per line")(
      "ref", po::value(&refs)->required()->composing(), "references (repeat for several)")(
      "json", po::bool_switch(&json), "print score, precisions, bp, sys_len, ref_len as JSON");
  po::variables_map vm;
  if (!conflux::cli::parse(args, o, nullptr, vm,
                           {"eval bleu", "--hyp FILE --ref FILE [--ref FILE...] [--json]",
                            "Corpus BLEU identical to sacrebleu's default (13a tokenizer, mixed "
                            "case, n-gram orders 1-4, exp smoothing, closest reference length).",
                            "conflux eval bleu --hyp out.txt --ref ref1.txt --ref ref2.txt"}))
    return 0;
  auto metric = ev::make_metric("bleu");
  const ev::Result r = metric->finalize(metric->partial(read_text_batch(hyp, refs)));
  nlohmann::json j = r.detail;
  conflux::cli::emit(json, j.dump(), r.line);
  return 0;
}

int eval_rouge(const Args& args) {
  std::string hyp;
  std::vector<std::string> refs;
  bool json = false, stem = false;
  po::options_description o("options");
  o.add_options()("hyp", po::value(&hyp)->required(), "predictions, one per line")(
      "ref", po::value(&refs)->required()->composing(),
      "targets (repeat for several; the best-F target counts per line)")(
      "stem", po::bool_switch(&stem), "Porter-stem tokens longer than 3 (rouge-score use_stemmer)")(
      "json", po::bool_switch(&json), "print precision, recall, fmeasure, pairs as JSON");
  po::variables_map vm;
  if (!conflux::cli::parse(args, o, nullptr, vm,
                           {"eval rouge", "--hyp FILE --ref FILE [--ref FILE...] [--stem] [--json]",
                            "ROUGE-L as google-research rouge-score computes it per line, reported "
                            "as the mean precision, recall and F over lines.",
                            "conflux eval rouge --hyp out.txt --ref ref.txt --stem"}))
    return 0;
  auto metric = ev::make_metric("rouge_l", {{"stem", stem}});
  const ev::Result r = metric->finalize(metric->partial(read_text_batch(hyp, refs)));
  conflux::cli::emit(json, r.detail.dump(), r.line);
  return 0;
}

CONFLUX_VERB("eval bleu", "corpus BLEU of a hypothesis file (sacrebleu-identical)", eval_bleu);
CONFLUX_VERB("eval rouge", "ROUGE-L of a prediction file (rouge-score-identical)", eval_rouge);

}  // namespace
