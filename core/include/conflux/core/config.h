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
// wrong types, out-of-range values, missing required keys, malformed overrides.
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
struct ConfigValue;
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
  std::function<void()> check_;
  std::optional<double> min_, max_;
  std::vector<std::string> choices_;
  bool required_ = false;
  ConfigBinder* binder_ = nullptr;
  size_t index_ = 0;
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

  // A table whose keys are free (e.g. per-field options). Each entry is bound with `bind_entry`.
  void dynamic_table(const std::string& path,
                     const std::function<void(const std::string& key, ConfigBinder&)>& bind_entry,
                     const std::string& doc);

  // After bind(): validates ranges/choices/required and reports unknown keys. Throws ConfigError.
  void finish();
  // The effective config as TOML text (Dump mode), defaults filled in, with doc comments.
  std::string to_toml() const;
  // The effective config as a JSON string, for manifests and checkpoint lineage.
  std::string to_json() const;
  Mode mode() const { return mode_; }
  const std::string& source_name() const;

 private:
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
