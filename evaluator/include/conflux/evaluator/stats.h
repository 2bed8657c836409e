// Stats: the mergeable sufficient statistics of a metric.
//
// Contract: every metric turns a batch into Stats (partial), Stats combine with merge(), and the
// metric's finalize() turns merged Stats into a value. merge() is commutative and associative
// *exactly* (not just up to rounding): integer counts add, float64 sums are ExactSum (order-free),
// value and string multisets take the union of counts, keyed records take a disjoint union, and
// child Stats (per group, clean/perturbed) merge by key. So any split of the data into batches, and
// any grouping of the merges across workers, yields identical Stats and identical finalize().
// Two Stats merge only if they belong to the same metric with the same configuration.
// Serialisation: to_json()/from_json() (human-readable), to_bytes()/from_bytes() (CBOR, compact;
// for the wire). Both round-trip exactly (doubles are stored losslessly).
// Thread safety: a value type; no shared state.
#pragma once

#include "conflux/evaluator/exact_sum.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace conflux::evaluator {

struct Stats {
  std::string metric;       // registry name of the metric that made these stats
  nlohmann::json config;    // the metric's options; merge requires equality
  std::map<std::string, std::vector<int64_t>> counts;          // added elementwise
  std::map<std::string, std::vector<ExactSum>> sums;           // added elementwise, exactly
  std::map<std::string, std::map<double, int64_t>> values;     // numeric multisets (value -> count)
  std::map<std::string, std::map<std::string, int64_t>> strings;  // string multisets
  std::map<std::string, std::map<int64_t, std::vector<double>>> records;  // disjoint keyed rows
  std::map<std::string, Stats> children;                       // merged by key

  // Convenience accessors; missing entries read as zero/empty.
  int64_t count(const std::string& name, size_t i = 0) const;
  std::vector<int64_t>& counts_of(const std::string& name, size_t n);   // sized to n on creation
  std::vector<ExactSum>& sums_of(const std::string& name, size_t n);

  nlohmann::json to_json() const;
  static Stats from_json(const nlohmann::json& j);  // throws DataError naming the bad field
  std::vector<uint8_t> to_bytes() const;
  static Stats from_bytes(const std::vector<uint8_t>& bytes);

  bool operator==(const Stats& other) const;
  bool operator!=(const Stats& other) const { return !(*this == other); }
};

// Validates the structure of CBOR bytes without recursion: every length within the buffer, no
// trailing bytes, nesting at most max_depth. Stats::from_bytes and MetricSet::from_bytes call it
// first, so hostile input (e.g. a million nested arrays) is refused instead of exhausting the
// stack of the recursive decoder. Throws DataError.
void check_cbor_structure(const std::vector<uint8_t>& bytes, size_t max_depth = 64);

// a + b. Throws DataError if the metrics or configs differ, vector lengths disagree, or a keyed
// record appears on both sides (the same example counted twice).
Stats merge(const Stats& a, const Stats& b);
void merge_into(Stats& into, const Stats& from);

}  // namespace conflux::evaluator
