// CSV feature tables for `conflux drift` (see feature_table.h).
#include "conflux/evaluator/feature_table.h"

#include "conflux/core/error.h"
#include "conflux/evaluator/text.h"

#include <sys/stat.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <set>

namespace conflux::evaluator {
namespace {

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t' || s[b] == '\r')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\r')) --e;
  return s.substr(b, e - b);
}

std::vector<std::string> split_csv(const std::string& line, const std::string& where) {
  std::vector<std::string> out;
  std::string cur;
  bool quoted = false, was_quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') { cur += '"'; ++i; }
      else if (c == '"') quoted = false;
      else cur += c;
    } else if (c == '"' && trim(cur).empty()) {
      quoted = was_quoted = true;
      cur.clear();
    } else if (c == ',') {
      out.push_back(was_quoted ? cur : trim(cur));
      cur.clear();
      was_quoted = false;
    } else {
      cur += c;
    }
  }
  if (quoted) CONFLUX_THROW(DataError, "{}: unterminated quoted field", where);
  out.push_back(was_quoted ? cur : trim(cur));
  return out;
}

}  // namespace

FeatureTable read_feature_csv(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
    CONFLUX_THROW(UsageError, "'{}' is a directory: dataset inputs need the dataplane; pass CSV "
                  "(a header row of feature names, then one row of numbers per example)", path);
  const auto lines = read_lines(path);
  FeatureTable t;
  size_t lineno = 0;
  for (const auto& raw : lines) {
    ++lineno;
    if (trim(raw).empty()) continue;
    const std::string where = path + ":" + std::to_string(lineno);
    auto cells = split_csv(raw, where);
    if (t.names.empty()) {
      std::set<std::string> seen;
      for (auto& n : cells) {
        if (n.empty()) CONFLUX_THROW(DataError, "{}: empty feature name in the header row", where);
        if (!seen.insert(n).second) CONFLUX_THROW(DataError, "{}: duplicate feature name '{}'", where, n);
      }
      t.names = cells;
      t.columns.resize(cells.size());
      continue;
    }
    if (cells.size() != t.names.size())
      CONFLUX_THROW(DataError, "{}: {} fields, but the header names {} features", where,
                    cells.size(), t.names.size());
    for (size_t k = 0; k < cells.size(); ++k) {
      const char* s = cells[k].c_str();
      char* end = nullptr;
      errno = 0;
      const double v = std::strtod(s, &end);
      if (cells[k].empty() || *end != '\0' || !std::isfinite(v))
        CONFLUX_THROW(DataError, "{}: column '{}': '{}' is not a finite number", where,
                      t.names[k], cells[k]);
      t.columns[k].push_back(v);
    }
  }
  if (t.names.empty()) CONFLUX_THROW(DataError, "{}: empty file (expected a header row of feature names)", path);
  if (t.rows() == 0) CONFLUX_THROW(DataError, "{}: a header but no rows of numbers", path);
  return t;
}

}  // namespace conflux::evaluator
