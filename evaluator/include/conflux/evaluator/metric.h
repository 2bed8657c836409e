// Metric: partial(batch) -> Stats, merge (stats.h), finalize(Stats) -> Result; and the registry.
//
// Contract: partial() is a pure function of the batch and the metric's options; finalize() is a
// pure function of the Stats. Because Stats merge exactly (stats.h), evaluating a dataset in one
// batch, in many batches, or across K workers gives bit-identical results. Every metric lives in
// one file (src/metric_<name>.cpp) and is registered in one table (src/registry.cpp).
// Metrics are immutable after construction and may be shared between threads.
#pragma once

#include "conflux/evaluator/batch.h"
#include "conflux/evaluator/stats.h"

#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace conflux::evaluator {

struct Result {
  std::string metric;       // registry name
  std::string primary;      // name of the headline value inside `detail`, e.g. "score"
  double value = 0.0;       // the headline value
  nlohmann::json detail;    // every reported number (and chart data), JSON-serialisable
  std::string line;         // one human-readable line
  nlohmann::json to_json() const;
};

// What a metric reads from a Batch: hypotheses/references, logits/targets, or features.
enum class InputKind { Text, Tokens, Features };
const char* input_kind_name(InputKind kind);
// Whether `batch` carries inputs of this kind (MetricSet skips metrics whose inputs are absent).
bool batch_has(const Batch& batch, InputKind kind);

class Metric {
 public:
  virtual ~Metric() = default;
  virtual InputKind inputs() const = 0;
  const std::string& name() const { return name_; }
  const nlohmann::json& options() const { return options_; }
  // Stats of no data (the identity of merge).
  Stats empty() const;
  virtual Stats partial(const Batch& batch) const = 0;
  virtual Result finalize(const Stats& stats) const = 0;

 protected:
  Metric(std::string name, nlohmann::json options);
  // Throws DataError unless `stats` came from this metric with these options.
  void check_stats(const Stats& stats) const;

 private:
  std::string name_;
  nlohmann::json options_;
};

using MetricFactory = std::function<std::unique_ptr<Metric>(const nlohmann::json& options)>;

struct MetricInfo {
  std::string name;
  std::string summary;
  MetricFactory make;
};

// The registry table (src/registry.cpp).
const std::vector<MetricInfo>& metric_registry();
std::vector<std::string> metric_names();
// Throws ConfigError naming the metric if unknown, or an option if invalid.
std::unique_ptr<Metric> make_metric(const std::string& name,
                                    const nlohmann::json& options = nlohmann::json::object());
// Convenience: finalize the merge of a list of Stats with a metric made from stats[0]'s options.
Result finalize_stats(const std::vector<Stats>& stats);

}  // namespace conflux::evaluator
