// Stats: exact merge and lossless (de)serialisation of metric statistics (see stats.h).
#include "conflux/evaluator/stats.h"

#include "conflux/core/error.h"

namespace conflux::evaluator {

using nlohmann::json;

int64_t Stats::count(const std::string& name, size_t i) const {
  auto it = counts.find(name);
  if (it == counts.end() || i >= it->second.size()) return 0;
  return it->second[i];
}

std::vector<int64_t>& Stats::counts_of(const std::string& name, size_t n) {
  auto& v = counts[name];
  if (v.empty()) v.assign(n, 0);
  if (v.size() != n)
    CONFLUX_THROW(DataError, "'{}' stats: counts '{}' have {} entries, expected {}", metric, name,
                  v.size(), n);
  return v;
}

std::vector<ExactSum>& Stats::sums_of(const std::string& name, size_t n) {
  auto& v = sums[name];
  if (v.empty()) v.assign(n, ExactSum());
  if (v.size() != n)
    CONFLUX_THROW(DataError, "'{}' stats: sums '{}' have {} entries, expected {}", metric, name,
                  v.size(), n);
  return v;
}

void merge_into(Stats& into, const Stats& from) {
  if (into.metric != from.metric)
    CONFLUX_THROW(DataError, "cannot merge stats of metric '{}' with stats of metric '{}'",
                  into.metric, from.metric);
  if (into.config != from.config)
    CONFLUX_THROW(DataError, "cannot merge '{}' stats made with different options ({} vs {})",
                  into.metric, into.config.dump(), from.config.dump());
  for (const auto& [name, v] : from.counts) {
    auto& dst = into.counts[name];
    if (dst.empty()) dst.assign(v.size(), 0);
    if (dst.size() != v.size())
      CONFLUX_THROW(DataError, "'{}' stats: counts '{}' have lengths {} and {}", into.metric, name,
                    dst.size(), v.size());
    for (size_t i = 0; i < v.size(); ++i) dst[i] += v[i];
  }
  for (const auto& [name, v] : from.sums) {
    auto& dst = into.sums[name];
    if (dst.empty()) dst.assign(v.size(), ExactSum());
    if (dst.size() != v.size())
      CONFLUX_THROW(DataError, "'{}' stats: sums '{}' have lengths {} and {}", into.metric, name,
                    dst.size(), v.size());
    for (size_t i = 0; i < v.size(); ++i) dst[i] += v[i];
  }
  for (const auto& [name, m] : from.values) {
    auto& dst = into.values[name];
    for (const auto& [x, c] : m) dst[x] += c;
  }
  for (const auto& [name, m] : from.strings) {
    auto& dst = into.strings[name];
    for (const auto& [s, c] : m) dst[s] += c;
  }
  for (const auto& [name, m] : from.records) {
    auto& dst = into.records[name];
    for (const auto& [key, row] : m) {
      if (!dst.emplace(key, row).second)
        CONFLUX_THROW(DataError, "'{}' stats: record {} of '{}' appears in both operands (an "
                      "example was evaluated twice)", into.metric, key, name);
    }
  }
  for (const auto& [key, child] : from.children) {
    auto it = into.children.find(key);
    if (it == into.children.end()) into.children.emplace(key, child);
    else merge_into(it->second, child);
  }
}

Stats merge(const Stats& a, const Stats& b) {
  Stats out = a;
  merge_into(out, b);
  return out;
}

json Stats::to_json() const {
  json j;
  j["metric"] = metric;
  j["config"] = config;
  json c = json::object();
  for (const auto& [name, v] : counts) c[name] = v;
  j["counts"] = c;
  json s = json::object();
  for (const auto& [name, v] : sums) {
    json arr = json::array();
    for (const auto& x : v) arr.push_back(x.to_string());
    s[name] = arr;
  }
  j["sums"] = s;
  json vals = json::object();
  for (const auto& [name, m] : values) {
    json arr = json::array();
    for (const auto& [x, n] : m) arr.push_back(json::array({x, n}));
    vals[name] = arr;
  }
  j["values"] = vals;
  json strs = json::object();
  for (const auto& [name, m] : strings) strs[name] = m;
  j["strings"] = strs;
  json recs = json::object();
  for (const auto& [name, m] : records) {
    json arr = json::array();
    for (const auto& [key, row] : m) arr.push_back(json::array({key, row}));
    recs[name] = arr;
  }
  j["records"] = recs;
  json ch = json::object();
  for (const auto& [key, child] : children) ch[key] = child.to_json();
  j["children"] = ch;
  return j;
}

namespace {
const json& field(const json& j, const char* name) {
  if (!j.is_object() || !j.contains(name))
    CONFLUX_THROW(DataError, "stats JSON lacks the field '{}'", name);
  return j.at(name);
}
}  // namespace

Stats Stats::from_json(const json& j) {
  Stats s;
  try {
    s.metric = field(j, "metric").get<std::string>();
    s.config = field(j, "config");
    for (const auto& [name, v] : field(j, "counts").items())
      s.counts[name] = v.get<std::vector<int64_t>>();
    for (const auto& [name, v] : field(j, "sums").items()) {
      auto& dst = s.sums[name];
      for (const auto& x : v) dst.push_back(ExactSum::from_string(x.get<std::string>()));
    }
    for (const auto& [name, v] : field(j, "values").items()) {
      auto& dst = s.values[name];
      for (const auto& pair : v) dst[pair.at(0).get<double>()] += pair.at(1).get<int64_t>();
    }
    for (const auto& [name, v] : field(j, "strings").items())
      s.strings[name] = v.get<std::map<std::string, int64_t>>();
    for (const auto& [name, v] : field(j, "records").items()) {
      auto& dst = s.records[name];
      for (const auto& pair : v)
        dst[pair.at(0).get<int64_t>()] = pair.at(1).get<std::vector<double>>();
    }
    for (const auto& [key, child] : field(j, "children").items())
      s.children[key] = Stats::from_json(child);
  } catch (const json::exception& e) {
    CONFLUX_THROW(DataError, "malformed stats JSON for metric '{}': {}", s.metric, e.what());
  }
  return s;
}

void check_cbor_structure(const std::vector<uint8_t>& b, size_t max_depth) {
  struct Frame {
    uint64_t remaining;  // items left (map entries count twice)
    bool indefinite;     // ends with a 0xff break instead
  };
  std::vector<Frame> stack{{1, false}};
  size_t pos = 0;
  auto fail = [&](const char* what) {
    CONFLUX_THROW(DataError, "stats bytes are not valid CBOR ({} bytes): {} at byte {}", b.size(),
                  what, pos);
  };
  while (!stack.empty()) {
    Frame& f = stack.back();
    if (!f.indefinite && f.remaining == 0) {
      stack.pop_back();
      continue;
    }
    if (pos >= b.size()) fail("truncated");
    const uint8_t ib = b[pos++];
    if (ib == 0xff) {
      if (!f.indefinite) fail("unexpected break");
      stack.pop_back();
      continue;
    }
    if (!f.indefinite) --f.remaining;
    const int major = ib >> 5, info = ib & 31;
    uint64_t arg = 0;
    const bool indefinite = info == 31;
    if (info < 24) {
      arg = static_cast<uint64_t>(info);
    } else if (info <= 27) {
      const size_t n = size_t{1} << (info - 24);
      if (b.size() - pos < n) fail("truncated length");
      for (size_t k = 0; k < n; ++k) arg = (arg << 8) | b[pos++];
    } else if (!indefinite || major < 2 || major > 5) {
      fail("reserved additional information");
    }
    switch (major) {
      case 2:
      case 3:
        if (indefinite) stack.push_back({0, true});
        else if (arg > b.size() - pos) fail("string longer than the input");
        else pos += static_cast<size_t>(arg);
        break;
      case 4:
        stack.push_back({indefinite ? 0 : arg, indefinite});
        break;
      case 5:
        if (!indefinite && arg > (uint64_t{1} << 62)) fail("map too large");
        stack.push_back({indefinite ? 0 : 2 * arg, indefinite});
        break;
      case 6:
        stack.push_back({1, false});  // a tag applies to one item
        break;
      default:
        break;  // integers, simple values, floats (their bytes were read as the argument)
    }
    if (stack.size() > max_depth + 1) fail("nested too deeply");
  }
  if (pos != b.size()) fail("trailing bytes");
}

std::vector<uint8_t> Stats::to_bytes() const { return json::to_cbor(to_json()); }

Stats Stats::from_bytes(const std::vector<uint8_t>& bytes) {
  check_cbor_structure(bytes);
  json j;
  try {
    j = json::from_cbor(bytes);
  } catch (const json::exception& e) {
    CONFLUX_THROW(DataError, "stats bytes are not valid CBOR ({} bytes): {}", bytes.size(),
                  e.what());
  }
  return from_json(j);
}

bool Stats::operator==(const Stats& o) const {
  return metric == o.metric && config == o.config && counts == o.counts && sums == o.sums &&
         values == o.values && strings == o.strings && records == o.records &&
         children == o.children;
}

}  // namespace conflux::evaluator
