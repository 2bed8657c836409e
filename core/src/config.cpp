// TOML config binding: parse with toml++, apply --set overrides, bind typed fields, validate,
// report unknown keys with file:line, and print the effective config.
#include "conflux/core/config.h"

#include "conflux/core/utf8.h"

#include <nlohmann/json.hpp>
#include <toml++/toml.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cerrno>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace conflux {

class ConfigDocument {
 public:
  toml::table root;
  std::string name;
  std::set<std::string> overridden;  // paths set by --set
};

namespace {

// Splits "a.b[2].c" into {"a", "b", "[2]", "c"}. Paths come from --set too: an unclosed '['
// is a ConfigError (it used to restart the scan forever: `--set 'a[0=1'` hung).
std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  std::string cur;
  for (size_t i = 0; i < path.size(); ++i) {
    char c = path[i];
    if (c == '.') {
      if (!cur.empty()) parts.push_back(cur);
      cur.clear();
    } else if (c == '[') {
      if (!cur.empty()) parts.push_back(cur);
      cur.clear();
      size_t end = path.find(']', i);
      if (end == std::string::npos) CONFLUX_THROW(ConfigError, "key path '{}': '[' without ']'", path);
      parts.push_back(path.substr(i, end - i + 1));
      i = end;
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) parts.push_back(cur);
  return parts;
}

const toml::node* lookup(const toml::table& root, const std::string& path) {
  const toml::node* node = &root;
  for (auto& part : split_path(path)) {
    if (!node) return nullptr;
    if (part.front() == '[') {
      auto* arr = node->as_array();
      size_t idx = std::stoul(part.substr(1, part.size() - 2));
      if (!arr || idx >= arr->size()) return nullptr;
      node = arr->get(idx);
    } else {
      auto* tbl = node->as_table();
      if (!tbl) return nullptr;
      node = tbl->get(part);
    }
  }
  return node;
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    default: return "a date/time";
  }
}

std::string render_node(const toml::node& n) {
  std::ostringstream os;
  n.visit([&](auto&& v) { os << toml::toml_formatter{v}; });
  return os.str();
}

std::string quote_toml(const std::string& s) {
  std::ostringstream os;
  os << toml::toml_formatter{toml::value<std::string>(s)};
  return os.str();
}

std::string fmt_double(double v) {
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 1e15) return fmt::format("{:.1f}", v);
  return fmt::format("{}", v);
}

}  // namespace

std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_d = SIZE_MAX;
  for (const auto& k : candidates) {
    const size_t d = edit_distance(k, word);
    if (d < best_d) best_d = d, best = k;
  }
  return best_d <= std::max<size_t>(2, word.size() / 4) ? fmt::format(" (did you mean '{}'?)", best) : "";
}

struct ConfigBinder::Impl {
  std::shared_ptr<ConfigDocument> doc;
  std::deque<FieldSpec> specs;
  std::set<std::string> consumed;

  std::string where(const std::string& path, const toml::node* node) const {
    if (doc && doc->overridden.count(path)) return fmt::format("--set {}", path);
    if (node && node->source().begin.line > 0)
      return fmt::format("{}:{}", doc ? doc->name : "?", node->source().begin.line);
    return doc ? doc->name : "config";
  }
};

FieldSpec& FieldSpec::min(double v) {
  min_ = v;
  return *this;
}
FieldSpec& FieldSpec::max(double v) {
  max_ = v;
  return *this;
}
FieldSpec& FieldSpec::one_of(std::vector<std::string> choices) {
  choices_ = std::move(choices);
  return *this;
}
FieldSpec& FieldSpec::required() {
  required_ = true;
  return *this;
}

ConfigBinder::ConfigBinder(Mode mode, std::shared_ptr<ConfigDocument> doc)
    : impl_(std::make_unique<Impl>()), mode_(mode) {
  impl_->doc = std::move(doc);
  if (mode_ == Mode::Load && !impl_->doc) impl_->doc = std::make_shared<ConfigDocument>();
}
ConfigBinder::~ConfigBinder() = default;

const std::string& ConfigBinder::source_name() const {
  static const std::string none = "config";
  return impl_->doc ? impl_->doc->name : none;
}

namespace {

template <typename T>
bool convert(const toml::node& n, T& out);

template <>
bool convert(const toml::node& n, bool& out) {
  if (!n.is_boolean()) return false;
  out = n.as_boolean()->get();
  return true;
}
template <>
bool convert(const toml::node& n, int64_t& out) {
  if (!n.is_integer()) return false;
  out = n.as_integer()->get();
  return true;
}
template <>
bool convert(const toml::node& n, int& out) {
  if (!n.is_integer()) return false;
  int64_t v = n.as_integer()->get();
  if (v < INT32_MIN || v > INT32_MAX) return false;
  out = static_cast<int>(v);
  return true;
}
template <>
bool convert(const toml::node& n, double& out) {
  if (n.is_floating_point()) {
    out = n.as_floating_point()->get();
    return true;
  }
  if (n.is_integer()) {
    out = static_cast<double>(n.as_integer()->get());
    return true;
  }
  return false;
}
template <>
bool convert(const toml::node& n, std::string& out) {
  if (!n.is_string()) return false;
  out = n.as_string()->get();
  return true;
}
template <typename E>
bool convert_vec(const toml::node& n, std::vector<E>& out) {
  auto* arr = n.as_array();
  if (!arr) return false;
  std::vector<E> tmp;
  for (auto& el : *arr) {
    E e{};
    if (!convert(el, e)) return false;
    tmp.push_back(e);
  }
  out = std::move(tmp);
  return true;
}
template <>
bool convert(const toml::node& n, std::vector<std::string>& out) { return convert_vec(n, out); }
template <>
bool convert(const toml::node& n, std::vector<int64_t>& out) { return convert_vec(n, out); }
template <>
bool convert(const toml::node& n, std::vector<double>& out) { return convert_vec(n, out); }

template <typename T>
const char* expected_name() {
  if constexpr (std::is_same_v<T, bool>) return "a boolean";
  if constexpr (std::is_same_v<T, int> || std::is_same_v<T, int64_t>) return "an integer";
  if constexpr (std::is_same_v<T, double>) return "a number";
  if constexpr (std::is_same_v<T, std::string>) return "a string";
  if constexpr (std::is_same_v<T, std::vector<std::string>>) return "an array of strings";
  if constexpr (std::is_same_v<T, std::vector<int64_t>>) return "an array of integers";
  if constexpr (std::is_same_v<T, std::vector<double>>) return "an array of numbers";
  return "?";
}

template <typename T>
std::string to_toml_text(const T& v) {
  if constexpr (std::is_same_v<T, bool>) return v ? "true" : "false";
  if constexpr (std::is_same_v<T, int> || std::is_same_v<T, int64_t>) return std::to_string(v);
  if constexpr (std::is_same_v<T, double>) return fmt_double(v);
  if constexpr (std::is_same_v<T, std::string>) return quote_toml(v);
  if constexpr (std::is_same_v<T, std::vector<std::string>> || std::is_same_v<T, std::vector<int64_t>> ||
                std::is_same_v<T, std::vector<double>>) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + to_toml_text(v[i]);
    return s + "]";
  }
  return "";
}

template <typename T>
std::string to_json_text(const T& v) {
  return nlohmann::json(v).dump();
}

}  // namespace

#define CONFLUX_BIND_FIELD(T)                                                                  \
  FieldSpec& ConfigBinder::field(const std::string& path, T& v, const std::string& doc) {      \
    return bind_one<T>(path, v, doc);                                                          \
  }
CONFLUX_BIND_FIELD(bool)
CONFLUX_BIND_FIELD(int)
CONFLUX_BIND_FIELD(int64_t)
CONFLUX_BIND_FIELD(double)
CONFLUX_BIND_FIELD(std::string)
CONFLUX_BIND_FIELD(std::vector<std::string>)
CONFLUX_BIND_FIELD(std::vector<int64_t>)
CONFLUX_BIND_FIELD(std::vector<double>)
#undef CONFLUX_BIND_FIELD

template <typename T>
FieldSpec& ConfigBinder::bind_one(const std::string& path, T& v, const std::string& doc) {
  FieldSpec& spec = impl_->specs.emplace_back();
  spec.path_ = path;
  spec.doc_ = doc;
  spec.type_ = expected_name<T>();
  spec.render_ = [&v] { return to_toml_text(v); };
  spec.json_ = [&v] { return to_json_text(v); };
  if constexpr (std::is_arithmetic_v<T> && !std::is_same_v<T, bool>) spec.number_ = [&v] { return static_cast<double>(v); };
  if constexpr (std::is_same_v<T, std::string>) spec.text_ = [&v] { return v; };
  if constexpr (std::is_same_v<T, double>) spec.finite_ = [&v] { return std::isfinite(v); };
  if constexpr (std::is_same_v<T, std::vector<double>>)
    spec.finite_ = [&v] { return std::all_of(v.begin(), v.end(), [](double x) { return std::isfinite(x); }); };
  if (mode_ == Mode::Load) {
    const toml::node* node = lookup(impl_->doc->root, path);
    impl_->consumed.insert(path);
    if (node) {
      spec.present_ = true;
      spec.where_ = impl_->where(path, node);
      if (!convert(*node, v))
        CONFLUX_THROW(ConfigError, "{}: key '{}' must be {}, got {} ({})", spec.where_, path, expected_name<T>(),
                      type_name(*node), render_node(*node));
    }
  }
  return spec;
}

std::vector<std::string> ConfigBinder::table_keys(const std::string& path) const {
  std::vector<std::string> keys;
  if (mode_ != Mode::Load) return keys;
  const toml::node* node = lookup(impl_->doc->root, path);
  if (!node) return keys;
  auto* tbl = node->as_table();
  if (!tbl)
    CONFLUX_THROW(ConfigError, "{}: key '{}' must be a table, got {}", impl_->where(path, node), path,
                  type_name(*node));
  for (auto& [k, v] : *tbl) {
    // The key becomes part of a field path ("fields.NAME.p"), where '.', '[' and ']' separate.
    if (k.str().find_first_of(".[]") != std::string_view::npos)
      CONFLUX_THROW(ConfigError, "{}: key '{}' under '{}' cannot contain '.', '[' or ']'", impl_->where(path, &v),
                    k.str(), path);
    keys.emplace_back(k.str());
  }
  return keys;
}

size_t ConfigBinder::array_length(const std::string& path) const {
  if (mode_ != Mode::Load) return 0;
  const toml::node* node = lookup(impl_->doc->root, path);
  if (!node) return 0;
  auto* arr = node->as_array();
  if (!arr)
    CONFLUX_THROW(ConfigError, "{}: key '{}' must be an array, got {}", impl_->where(path, node), path,
                  type_name(*node));
  return arr->size();
}

bool ConfigBinder::has(const std::string& path) const {
  return mode_ == Mode::Load && lookup(impl_->doc->root, path) != nullptr;
}

void ConfigBinder::finish() {
  if (mode_ != Mode::Load) return;
  const std::string& name = impl_->doc->name;
  for (auto& s : impl_->specs) {
    std::string where = s.present_ ? s.where_ : name;
    if (s.required_ && !s.present_)
      CONFLUX_THROW(ConfigError, "{}: required key '{}' is missing ({})", name, s.path_, s.doc_);
    if (!s.present_) continue;
    // NaN passes every comparison below (it compares false), so non-finite values are refused first.
    if (s.finite_ && !s.finite_())
      CONFLUX_THROW(ConfigError, "{}: key '{}' = {} is not a finite number ({})", where, s.path_, s.render_(),
                    s.doc_);
    if (s.number_) {
      double v = s.number_();
      if ((s.min_ && v < *s.min_) || (s.max_ && v > *s.max_)) {
        std::string lo = s.min_ ? fmt_double(*s.min_) : "-inf", hi = s.max_ ? fmt_double(*s.max_) : "inf";
        CONFLUX_THROW(ConfigError, "{}: key '{}' = {} is out of range [{}, {}] ({})", where, s.path_,
                      s.render_(), lo, hi, s.doc_);
      }
    }
    if (s.text_ && !s.choices_.empty()) {
      auto v = s.text_();
      if (std::find(s.choices_.begin(), s.choices_.end(), v) == s.choices_.end())
        CONFLUX_THROW(ConfigError, "{}: key '{}' = \"{}\" is not one of: {}", where, s.path_, v,
                      fmt::join(s.choices_, ", "));
    }
  }
  // Unknown keys: every leaf (and every table no field lives under) must have been consumed.
  std::vector<std::string> known(impl_->consumed.begin(), impl_->consumed.end());
  std::function<void(const toml::node&, const std::string&)> walk = [&](const toml::node& n,
                                                                      const std::string& path) {
    if (!path.empty() && impl_->consumed.count(path)) return;
    if (auto* tbl = n.as_table()) {
      for (auto& [k, v] : *tbl) walk(v, path.empty() ? std::string(k.str()) : path + "." + std::string(k.str()));
      return;
    }
    if (auto* arr = n.as_array(); arr && !arr->empty() && arr->get(0)->is_table()) {
      for (size_t i = 0; i < arr->size(); ++i) walk(*arr->get(i), fmt::format("{}[{}]", path, i));
      return;
    }
    CONFLUX_THROW(ConfigError, "{}: unknown key '{}'{}", impl_->where(path, &n), path,
                  did_you_mean(path, known));
  };
  walk(impl_->doc->root, "");
}

std::string ConfigBinder::to_toml() const {
  // Group fields by their table ("a.b" for "a.b.c"), keeping declaration order.
  std::vector<std::string> order;
  std::map<std::string, std::vector<const FieldSpec*>> groups;
  for (auto& s : impl_->specs) {
    auto pos = s.path_.rfind('.');
    std::string table = pos == std::string::npos ? "" : s.path_.substr(0, pos);
    if (!groups.count(table)) order.push_back(table);
    groups[table].push_back(&s);
  }
  std::string out;
  for (auto& table : order) {
    if (!table.empty()) out += fmt::format("{}[{}]\n", out.empty() ? "" : "\n", table);
    for (auto* s : groups[table]) {
      auto pos = s->path_.rfind('.');
      std::string key = pos == std::string::npos ? s->path_ : s->path_.substr(pos + 1);
      out += fmt::format("{} = {}", key, s->render_());
      if (!s->doc_.empty()) out += "  # " + s->doc_;
      out += "\n";
    }
  }
  return out;
}

std::string ConfigBinder::to_json() const {
  nlohmann::json root = nlohmann::json::object();
  for (auto& s : impl_->specs) {
    nlohmann::json* cur = &root;
    for (auto& part : split_path(s.path_)) {
      if (part.front() == '[') {
        size_t idx = std::stoul(part.substr(1, part.size() - 2));
        if (!cur->is_array()) *cur = nlohmann::json::array();
        while (cur->size() <= idx) cur->push_back(nlohmann::json::object());
        cur = &(*cur)[idx];
      } else {
        cur = &(*cur)[part];
      }
    }
    *cur = nlohmann::json::parse(s.json_());
  }
  return root.dump(2);
}

namespace {
// TOML files are UTF-8 (toml++ checks while parsing); --set text is not parsed as a whole, and
// invalid UTF-8 in a key or bare-word value reached the JSON of the effective config as an
// internal error (found by fuzz/config_fuzz.cpp): checked with the one strict decoder.
void apply_override(ConfigDocument& doc, const std::string& ov) {
  if (!utf8::valid(ov)) CONFLUX_THROW(ConfigError, "--set '{}': not valid UTF-8", ov);
  auto eq = ov.find('=');
  if (eq == std::string::npos || eq == 0)
    CONFLUX_THROW(ConfigError, "--set '{}': expected KEY=VALUE, e.g. --set train.steps=100", ov);
  std::string path = ov.substr(0, eq), text = ov.substr(eq + 1);
  toml::table parsed;
  try {
    parsed = toml::parse("v = " + text);
  } catch (const toml::parse_error&) {
    parsed = toml::table{};
    parsed.insert("v", text);  // a bare word is taken as a string
  }
  auto parts = split_path(path);
  toml::table* tbl = &doc.root;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    if (parts[i].front() == '[')
      CONFLUX_THROW(ConfigError, "--set '{}': array elements cannot be overridden; edit the file", ov);
    toml::node* next = tbl->get(parts[i]);
    if (!next) {
      tbl->insert(parts[i], toml::table{});
      next = tbl->get(parts[i]);
    }
    if (!next->is_table())
      CONFLUX_THROW(ConfigError, "--set '{}': '{}' is not a table", ov, parts[i]);
    tbl = next->as_table();
  }
  if (parts.empty() || parts.back().front() == '[')
    CONFLUX_THROW(ConfigError, "--set '{}': bad key path", ov);
  tbl->insert_or_assign(parts.back(), std::move(*parsed.get("v")));
  doc.overridden.insert(path);
}

std::shared_ptr<ConfigDocument> finish_doc(std::shared_ptr<ConfigDocument> doc,
                                           const std::vector<std::string>& overrides) {
  for (auto& ov : overrides) apply_override(*doc, ov);
  return doc;
}
}  // namespace

std::shared_ptr<ConfigDocument> parse_config_text(const std::string& text, const std::string& name,
                                                  const std::vector<std::string>& overrides) {
  auto doc = std::make_shared<ConfigDocument>();
  doc->name = name;
  try {
    doc->root = toml::parse(text, name);
  } catch (const toml::parse_error& e) {
    CONFLUX_THROW(ConfigError, "{}:{}:{}: invalid TOML: {}", name, e.source().begin.line, e.source().begin.column,
                  e.description());
  }
  return finish_doc(doc, overrides);
}

namespace {
// JSON -> TOML nodes for parse_config_json: objects become tables, arrays arrays; null has no
// TOML form and is refused naming the key.
toml::table json_table(const nlohmann::json& j, const std::string& name, const std::string& path);
toml::array json_array(const nlohmann::json& j, const std::string& name, const std::string& path);
template <typename Insert>
void json_value(const nlohmann::json& v, const std::string& name, const std::string& path, Insert insert) {
  if (v.is_object()) insert(json_table(v, name, path));
  else if (v.is_array()) insert(json_array(v, name, path));
  else if (v.is_boolean()) insert(v.get<bool>());
  else if (v.is_number_integer()) insert(v.get<int64_t>());
  else if (v.is_number_float()) insert(v.get<double>());
  else if (v.is_string()) insert(v.get<std::string>());
  else CONFLUX_THROW(ConfigError, "{}: key '{}' is null", name, path);
}
toml::table json_table(const nlohmann::json& j, const std::string& name, const std::string& path) {
  toml::table t;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string key = path.empty() ? it.key() : path + "." + it.key();
    json_value(*it, name, key, [&](auto&& v) { t.insert(it.key(), std::forward<decltype(v)>(v)); });
  }
  return t;
}
toml::array json_array(const nlohmann::json& j, const std::string& name, const std::string& path) {
  toml::array a;
  for (size_t i = 0; i < j.size(); ++i) {
    json_value(j[i], name, path + "[" + std::to_string(i) + "]",
               [&](auto&& v) { a.push_back(std::forward<decltype(v)>(v)); });
  }
  return a;
}
}  // namespace

std::shared_ptr<ConfigDocument> parse_config_json(const std::string& text, const std::string& name) {
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) CONFLUX_THROW(ConfigError, "{}: not valid JSON", name);
  if (!j.is_object()) CONFLUX_THROW(ConfigError, "{}: expected a JSON object", name);
  auto doc = std::make_shared<ConfigDocument>();
  doc->name = name;
  doc->root = json_table(j, name, "");
  return finish_doc(doc, {});
}

std::shared_ptr<ConfigDocument> parse_config_file(const std::string& path,
                                                  const std::vector<std::string>& overrides) {
  // An ifstream opens a directory and reads nothing, which would bind as an empty config.
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    CONFLUX_THROW(ConfigError, "config file '{}' is a directory, not a TOML file", path);
  std::ifstream in(path);
  if (!in) CONFLUX_THROW(ConfigError, "cannot read config file '{}': {}", path, std::strerror(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_config_text(ss.str(), path, overrides);
}

}  // namespace conflux
