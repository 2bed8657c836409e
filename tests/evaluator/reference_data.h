// Test helper: the oracle reference vectors (reference.json, made by gen_reference.py) and
// helpers to build batches from them.
#pragma once

#include "conflux/evaluator/batch.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace conflux::evaluator::test {

inline const nlohmann::json& reference() {
  static const nlohmann::json data = [] {
    std::ifstream in(CONFLUX_EVAL_REFERENCE);
    if (!in) throw std::runtime_error("cannot open " CONFLUX_EVAL_REFERENCE);
    return nlohmann::json::parse(in);
  }();
  return data;
}

// A text batch of ROUGE pairs [begin, end) (hypotheses with their references).
inline Batch text_batch(const nlohmann::json& pairs, size_t begin, size_t end) {
  Batch b;
  b.first_example = static_cast<int64_t>(begin);
  for (size_t i = begin; i < end; ++i) {
    b.hypotheses.push_back(pairs[i].at("hyp").get<std::string>());
    b.references.push_back(pairs[i].at("refs").get<std::vector<std::string>>());
  }
  return b;
}

// Token rows of the reference (logits, targets with ignore_index -100) as owned data.
struct TokenData {
  std::vector<float> logits;
  std::vector<int64_t> targets;
  int64_t rows = 0, classes = 0;
  TokenData() {
    const auto& t = reference().at("tokens");
    rows = t.at("rows").get<int64_t>();
    classes = t.at("classes").get<int64_t>();
    for (double x : t.at("logits")) logits.push_back(static_cast<float>(x));
    targets = t.at("targets").get<std::vector<int64_t>>();
  }
  // Rows [begin, end) as a batch (ids = row numbers).
  Batch batch(int64_t begin, int64_t end) const {
    Batch b;
    b.logits = LogitsView{logits.data() + begin * classes, end - begin, classes, false};
    b.targets.assign(targets.begin() + begin, targets.begin() + end);
    b.first_example = begin;
    return b;
  }
};

}  // namespace conflux::evaluator::test
