// Numeric feature tables for drift: CSV with a header row of feature names, one column per
// feature, one row per example. Blank lines are skipped; fields may be double-quoted; every
// other cell must parse completely as a finite number (C locale). Directories are dataset
// inputs, which need the dataplane: they are refused with a clear message for now.
#pragma once

#include <string>
#include <vector>

namespace conflux::evaluator {

struct FeatureTable {
  std::vector<std::string> names;
  std::vector<std::vector<double>> columns;  // columns[k][row]
  size_t rows() const { return columns.empty() ? 0 : columns[0].size(); }
};

// Throws DataError naming file:line and column for bad content, IoError if unreadable.
FeatureTable read_feature_csv(const std::string& path);

}  // namespace conflux::evaluator
