// Typed configuration from one TOML file plus `--set a.b=c` overrides.
//
// A config struct describes its fields once, in a `void bind(ConfigBinder&)` member; the same
// description parses, validates, fills defaults and prints the effective config:
//
//   struct TrainSection {
//     int64_t steps = 100; double lr = 3e-4; std::string dataset;
//     void bind(ConfigBinder& b) {
//       b.field("train.steps", steps, "optimizer steps").min(1);
//       b.field("train.lr", lr, "peak learning rate").range(0, 1);
//       b.field("train.dataset", dataset, "dataset directory").required();
//     }
//   };
//   auto cfg = load_config<TrainSection>("run.toml", {"train.steps=10"});
//
// Errors (ConfigError) name file:line and the key path: unknown keys (with a "did you mean"),
// wrong types, out-of-range values, missing required keys, malformed overrides. Every float
// setting (double and arrays of doubles) must be finite: TOML's nan and +-inf are refused in
// finish(), the one place ranges are checked, whatever range (if any) the field declares.
// Thread safety: none needed; configs are loaded once at start-up.
#pragma once

#include "conflux/core/error.h"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace conflux {

// One parsed value with where it came from.
class ConfigDocument;  // parsed TOML with source positions (opaque)

class ConfigBinder;

class FieldSpec {
 public:
  FieldSpec& min(double v);
  FieldSpec& max(double v);
  FieldSpec& range(double lo, double hi) { return min(lo).max(hi); }
  FieldSpec& one_of(std::vector<std::string> choices);
  FieldSpec& required();

 private:
  friend class ConfigBinder;
  std::string path_;
  std::string doc_;
  std::string type_;                       // "integer", "float", "string", ...
  std::function<double()> number_;         // set for numeric fields
  std::function<bool()> finite_;           // set for float fields: false if a value is NaN or +-inf
  std::function<std::string()> text_;      // set for string fields
  std::function<std::string()> render_;    // the value as TOML text
  std::function<std::string()> json_;      // the value as JSON text
  std::optional<double> min_, max_;
  std::vector<std::string> choices_;
  bool required_ = false;
  bool present_ = false;                   // given in the document (Load mode)
  std::string where_;                      // "file:line" or "--set path"
};

class ConfigBinder {
 public:
  enum class Mode { Load, Dump };
  ConfigBinder(Mode mode, std::shared_ptr<ConfigDocument> doc);
  ~ConfigBinder();

  FieldSpec& field(const std::string& path, bool& v, const std::string& doc);
  FieldSpec& field(const std::string& path, int& v, const std::string& doc);
  FieldSpec& field(const std::string& path, int64_t& v, const std::string& doc);
  FieldSpec& field(const std::string& path, double& v, const std::string& doc);
  FieldSpec& field(const std::string& path, std::string& v, const std::string& doc);
  FieldSpec& field(const std::string& path, std::vector<std::string>& v, const std::string& doc);
  FieldSpec& field(const std::string& path, std::vector<int64_t>& v, const std::string& doc);
  FieldSpec& field(const std::string& path, std::vector<double>& v, const std::string& doc);

  // Free-form tables and arrays of tables (Load mode reads them from the document; in Dump mode
  // they return empty/0 and the struct binds what it holds). Paths may index arrays: "ops[2].p".
  //   if (b.mode() == ConfigBinder::Mode::Load) for (auto& k : b.table_keys("fields")) fields[k];
  //   for (auto& [k, f] : fields) f.bind(b, "fields." + k);
  std::vector<std::string> table_keys(const std::string& path) const;
  size_t array_length(const std::string& path) const;
  bool has(const std::string& path) const;

  // After bind(): validates ranges/choices/required and reports unknown keys. Throws ConfigError.
  void finish();
  // The effective config as TOML text (Dump mode), defaults filled in, with doc comments.
  std::string to_toml() const;
  // The effective config as a JSON string, for manifests and checkpoint lineage.
  std::string to_json() const;
  Mode mode() const { return mode_; }
  const std::string& source_name() const;

 private:
  template <typename T>
  FieldSpec& bind_one(const std::string& path, T& v, const std::string& doc);
  struct Impl;
  std::unique_ptr<Impl> impl_;
  Mode mode_;
  friend class FieldSpec;
};

// Parses a TOML file (or text, for tests) and applies overrides "a.b=c" (c is a TOML value;
// bare words are taken as strings).
std::shared_ptr<ConfigDocument> parse_config_file(const std::string& path,
                                                  const std::vector<std::string>& overrides);
std::shared_ptr<ConfigDocument> parse_config_text(const std::string& text, const std::string& name,
                                                  const std::vector<std::string>& overrides);

// The same binding rules for a JSON object (task parameters on the wire): objects are tables.
// Errors name `name` and the key path; there are no line numbers.
std::shared_ptr<ConfigDocument> parse_config_json(const std::string& text, const std::string& name);

// " (did you mean 'x'?)" for the candidate closest to `word` when it is close enough, else "".
std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates);

template <typename T>
T bind_config(std::shared_ptr<ConfigDocument> doc, std::string* effective_toml = nullptr,
              std::string* effective_json = nullptr) {
  T cfg{};
  ConfigBinder load(ConfigBinder::Mode::Load, doc);
  cfg.bind(load);
  load.finish();
  if (effective_toml || effective_json) {
    ConfigBinder dump(ConfigBinder::Mode::Dump, nullptr);
    cfg.bind(dump);
    if (effective_toml) *effective_toml = dump.to_toml();
    if (effective_json) *effective_json = dump.to_json();
  }
  return cfg;
}

template <typename T>
T load_config(const std::string& path, const std::vector<std::string>& overrides = {},
              std::string* effective_toml = nullptr, std::string* effective_json = nullptr) {
  return bind_config<T>(parse_config_file(path, overrides), effective_toml, effective_json);
}

}  // namespace conflux
