// Batch: the plain-data input every metric's partial() consumes.
//
// A batch carries whichever inputs its metrics need; it never owns a model. An *example* is one
// hypothesis (text metrics), else one logits row (token metrics), else one feature row (drift).
// Each example has a global id (first_example + i unless example_ids is given): ids key the
// per-example random streams of perturbations and the records of temperature scaling, so results
// never depend on how the data was split into batches or tasks.
// A batch holds one kind of example (text, token rows or feature rows); select() keeps that kind.
// Ownership: `logits` is a non-owning view; the caller keeps the floats alive during partial().
// select() copies what it keeps into the returned batch (owned_logits).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace conflux::evaluator {

// Row-major [rows, classes] float32 scores: logits, or log-probabilities if log_probs is set.
struct LogitsView {
  const float* data = nullptr;
  int64_t rows = 0;
  int64_t classes = 0;
  bool log_probs = false;
  const float* row(int64_t r) const { return data + r * classes; }
};

struct Batch {
  // Generated text: hypotheses[i] is scored against references[i] (one or more strings).
  std::vector<std::string> hypotheses;
  std::vector<std::vector<std::string>> references;

  // Token prediction: logits [rows, classes] and one target class per row (ignore_index skips).
  LogitsView logits;
  std::vector<int64_t> targets;
  int64_t ignore_index = -100;
  std::shared_ptr<std::vector<float>> owned_logits;  // set when the batch owns its floats

  // Numeric features for drift: name -> values, for the current and reference data. Features
  // may differ in length unless groups or example_ids are given (then they are per-row columns).
  std::map<std::string, std::vector<double>> features;
  std::map<std::string, std::vector<double>> reference_features;

  // Per-example metadata.
  int64_t first_example = 0;
  std::vector<int64_t> example_ids;  // optional explicit global ids
  std::vector<std::string> groups;   // group label per example (fairness)

  size_t num_examples() const;
  int64_t example_id(size_t i) const {
    return example_ids.empty() ? first_example + static_cast<int64_t>(i) : example_ids[i];
  }
  // Checks that the per-example vectors agree in length; throws DataError naming the field.
  void validate() const;
  // The sub-batch of the given examples (ids, groups and inputs of those examples only).
  // Reference features (drift) are not per-example and are kept whole.
  Batch select(const std::vector<size_t>& examples) const;
};

}  // namespace conflux::evaluator
