// MetricSet: the metrics of one evaluation, evaluated and merged together.
//
// Built from a JSON list of specs, e.g.
//   [{"metric": "perplexity"}, {"metric": "bleu"},
//    {"name": "bleu_by_lang", "metric": "fairness", "options": {"metric": "bleu"}}]
// ("name" defaults to "metric"; names must be unique). partial(batch) feeds every metric whose
// inputs (text, tokens or features) the batch carries; the others get their empty Stats, so one
// MetricSet can see text batches and token batches of the same task. SetStats (name -> Stats)
// merge exactly like Stats, serialise as one JSON object or CBOR blob (a worker's task result),
// and finalize into Results in spec order, ready for a Report. Immutable; thread-safe.
#pragma once

#include "conflux/evaluator/metric.h"
#include "conflux/evaluator/report.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace conflux::evaluator {

using SetStats = std::map<std::string, Stats>;

class MetricSet {
 public:
  explicit MetricSet(const nlohmann::json& specs);  // throws ConfigError naming the bad spec

  const std::vector<std::string>& names() const { return names_; }
  const Metric& metric(const std::string& name) const;
  nlohmann::json specs() const;  // normalised: every spec with name, metric and full options

  SetStats empty() const;
  SetStats partial(const Batch& batch) const;
  // Throws DataError if the sets differ in names or any Stats refuse to merge.
  static void merge_into(SetStats& into, const SetStats& from);
  std::vector<Result> finalize(const SetStats& stats) const;
  Report report(const SetStats& stats, const nlohmann::json& meta = nlohmann::json::object()) const;

  static nlohmann::json to_json(const SetStats& stats);
  static SetStats from_json(const nlohmann::json& j);
  static std::vector<uint8_t> to_bytes(const SetStats& stats);
  static SetStats from_bytes(const std::vector<uint8_t>& bytes);

 private:
  std::vector<std::string> names_;
  std::map<std::string, std::unique_ptr<Metric>> metrics_;
};

}  // namespace conflux::evaluator
