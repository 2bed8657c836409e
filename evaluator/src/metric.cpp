// Metric base class, Result serialisation and Batch helpers.
#include "conflux/evaluator/metric.h"

#include "conflux/core/error.h"

namespace conflux::evaluator {

Metric::Metric(std::string name, nlohmann::json options)
    : name_(std::move(name)), options_(std::move(options)) {}

Stats Metric::empty() const {
  Stats s;
  s.metric = name_;
  s.config = options_;
  return s;
}

void Metric::check_stats(const Stats& stats) const {
  if (stats.metric != name_)
    CONFLUX_THROW(DataError, "metric '{}' cannot finalize stats of metric '{}'", name_,
                  stats.metric);
  if (stats.config != options_)
    CONFLUX_THROW(DataError, "metric '{}' with options {} cannot finalize stats made with {}",
                  name_, options_.dump(), stats.config.dump());
}

nlohmann::json Result::to_json() const {
  return nlohmann::json{{"metric", metric}, {"primary", primary}, {"value", value},
                        {"detail", detail}, {"line", line}};
}

Result finalize_stats(const std::vector<Stats>& stats) {
  if (stats.empty()) CONFLUX_THROW(DataError, "finalize_stats needs at least one Stats");
  Stats merged = stats[0];
  for (size_t i = 1; i < stats.size(); ++i) merge_into(merged, stats[i]);
  return make_metric(merged.metric, merged.config)->finalize(merged);
}

const char* input_kind_name(InputKind kind) {
  switch (kind) {
    case InputKind::Text: return "text";
    case InputKind::Tokens: return "tokens";
    case InputKind::Features: return "features";
  }
  return "?";
}

bool batch_has(const Batch& batch, InputKind kind) {
  switch (kind) {
    case InputKind::Text: return !batch.hypotheses.empty();
    case InputKind::Tokens: return batch.logits.rows > 0;
    case InputKind::Features: return !batch.features.empty() || !batch.reference_features.empty();
  }
  return false;
}

size_t Batch::num_examples() const {
  if (!hypotheses.empty()) return hypotheses.size();
  if (logits.rows > 0) return static_cast<size_t>(logits.rows);
  if (!targets.empty()) return targets.size();
  if (!features.empty()) return features.begin()->second.size();
  return 0;
}

void Batch::validate() const {
  const size_t n = num_examples();
  if (!references.empty() && references.size() != hypotheses.size())
    CONFLUX_THROW(DataError, "batch has {} hypotheses but {} reference lists", hypotheses.size(),
                  references.size());
  if (logits.rows > 0) {
    if (logits.data == nullptr || logits.classes <= 0)
      CONFLUX_THROW(DataError, "batch logits have {} rows but no data or {} classes", logits.rows,
                    logits.classes);
    if (targets.size() != static_cast<size_t>(logits.rows))
      CONFLUX_THROW(DataError, "batch has {} logits rows but {} targets", logits.rows,
                    targets.size());
  }
  // Features may differ in length (e.g. token ids vs sequence lengths) unless per-example
  // metadata must line up with their rows.
  const bool aligned = !groups.empty() || !example_ids.empty();
  for (const auto& [name, v] : features)
    if (aligned && v.size() != features.begin()->second.size())
      CONFLUX_THROW(DataError, "feature '{}' has {} rows but feature '{}' has {}", name, v.size(),
                    features.begin()->first, features.begin()->second.size());
  if (!example_ids.empty() && example_ids.size() != n)
    CONFLUX_THROW(DataError, "batch has {} examples but {} example ids", n, example_ids.size());
  if (!groups.empty() && groups.size() != n)
    CONFLUX_THROW(DataError, "batch has {} examples but {} group labels", n, groups.size());
}

Batch Batch::select(const std::vector<size_t>& examples) const {
  validate();
  Batch out;
  out.ignore_index = ignore_index;
  out.reference_features = reference_features;
  for (size_t i : examples) {
    if (i >= num_examples())
      CONFLUX_THROW(DataError, "select: example {} out of range ({} examples)", i,
                    num_examples());
    out.example_ids.push_back(example_id(i));
    if (!groups.empty()) out.groups.push_back(groups[i]);
    if (!hypotheses.empty()) out.hypotheses.push_back(hypotheses[i]);
    if (!references.empty()) out.references.push_back(references[i]);
  }
  if (!hypotheses.empty()) return out;  // text batch: examples are hypotheses
  if (logits.rows > 0) {
    auto owned = std::make_shared<std::vector<float>>();
    owned->reserve(examples.size() * static_cast<size_t>(logits.classes));
    for (size_t i : examples) {
      const float* r = logits.row(static_cast<int64_t>(i));
      owned->insert(owned->end(), r, r + logits.classes);
      out.targets.push_back(targets[i]);
    }
    out.owned_logits = owned;
    out.logits = LogitsView{owned->data(), static_cast<int64_t>(examples.size()), logits.classes,
                            logits.log_probs};
    return out;
  }
  if (!targets.empty())
    for (size_t i : examples) out.targets.push_back(targets[i]);
  for (const auto& [name, v] : features) {
    auto& dst = out.features[name];
    for (size_t i : examples) dst.push_back(v[i]);
  }
  return out;
}

}  // namespace conflux::evaluator
