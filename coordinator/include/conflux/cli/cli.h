// The `conflux` command line: a registry of verbs, each in its own cmd_*.cpp file.
//
// A verb registers itself with CONFLUX_VERB("name", "one-line summary", fn) where fn takes the
// arguments after the verb and returns an exit code. Two-word verbs ("eval bleu", "privacy
// gaussian") are matched before one-word ones. Verbs throw conflux::Error for failures; main()
// maps them to exit codes (0 ok, 1 user, 2 usage, 3 communication, 4 internal, 75 preempted) and,
// in an MPI job of several ranks, aborts the job so no rank waits forever.
#pragma once

#include "conflux/core/config.h"
#include "conflux/core/metrics_exporter.h"

#include <boost/program_options.hpp>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

namespace conflux::cli {

using Args = std::vector<std::string>;
using VerbFn = std::function<int(const Args& args)>;

struct Verb {
  std::string name;
  std::string summary;
  VerbFn run;
};

std::vector<Verb>& registry();

// Loads the plugin with the verbs that need libtorch (train, generate, evaluate, doctor) once, so
// that they register themselves; other verbs start without libtorch. Looked for next to the
// binary (../lib/conflux, ../<libdir>/conflux) or in $CONFLUX_PLUGIN_DIR. A build without it
// loads nothing; a plugin that fails to load throws IoError with the loader's message.
void load_plugins();

struct Registrar {
  Registrar(std::string name, std::string summary, VerbFn fn);
};

#define CONFLUX_VERB_CAT2(a, b) a##b
#define CONFLUX_VERB_CAT(a, b) CONFLUX_VERB_CAT2(a, b)
#define CONFLUX_VERB(name, summary, fn) \
  static ::conflux::cli::Registrar CONFLUX_VERB_CAT(conflux_verb_, __LINE__)(name, summary, fn)

namespace po = boost::program_options;

// Parses `args` against `options` (plus --help) and optional positionals. On --help prints
// "usage: conflux <verb> <usage>\n<summary>\n\n<options>\nExample:\n  <example>" to stdout and
// returns false (caller returns 0). A parse error throws UsageError naming the bad option.
struct VerbHelp {
  std::string verb;      // "eval bleu"
  std::string usage;     // "--hyp FILE --ref FILE [--ref FILE...] [--json]"
  std::string summary;   // one paragraph
  std::string example;   // a complete command line
};
bool parse(const Args& args, po::options_description& options,
           const po::positional_options_description* positional, po::variables_map& vm,
           const VerbHelp& help);

// Numeric flags: every verb declares a numeric flag with number(&v, lo, hi) instead of
// po::value(&v). The parsed value must lie in [lo, hi], and a floating-point one must be finite
// (boost reads "nan" and "inf" as doubles, and NaN compares false with every bound). A violation
// is a usage error naming the flag, the value and what was expected:
//   ("max-tokens", cli::number(&so.max_tokens, 1)->default_value(64), "tokens to sample")
//   ("temperature", cli::number(&t, 0.0), "softmax temperature (0: greedy)")
// As a backstop, parse() refuses a non-finite value of any double flag, number() or not.
// Usable outside the `conflux` verbs (conflux-worker) with plain po::store.
constexpr double kNoBound = std::numeric_limits<double>::infinity();
// Throws a po::validation_error naming the flag (boost adds the name) if `v` is out of [lo, hi]
// or not finite; `token` is the text the user typed.
void check_number(double v, double lo, double hi, const std::string& token);
template <typename T>
class NumberValue : public po::typed_value<T> {
 public:
  NumberValue(T* store, double lo, double hi) : po::typed_value<T>(store), lo_(lo), hi_(hi) {}
  void xparse(boost::any& out, const std::vector<std::string>& tokens) const override {
    po::typed_value<T>::xparse(out, tokens);
    check_number(static_cast<double>(boost::any_cast<T>(out)), lo_, hi_, tokens.empty() ? "" : tokens.front());
  }

 private:
  double lo_, hi_;
};
template <typename T>
NumberValue<T>* number(T* store, double lo = -kNoBound, double hi = kNoBound) {
  static_assert(std::is_arithmetic_v<T> && !std::is_same_v<T, bool>, "number() is for numeric flags");
  return new NumberValue<T>(store, lo, hi);
}

// Reads `--set a.b=c` values (repeatable) from a parsed variables_map, if the verb declared them,
// plus metrics.listen="..." when the verb declared --metrics-listen and it was given.
std::vector<std::string> overrides(const po::variables_map& vm);

// --metrics-listen HOST:PORT, for verbs whose config has a [metrics] section (train, evaluate):
// the flag overrides metrics.listen (through overrides(), so the effective config records it).
void add_metrics_listen_option(po::options_description& options);
// The setting the metrics address came from, for error messages: "--metrics-listen" if the flag
// was given, else "metrics.listen".
std::string metrics_listen_key(const po::variables_map& vm);

// A stage's metrics endpoint: the registry its components update and the exporter serving it.
// Both are null when metrics.listen is "" or this process does not serve (MPI ranks > 0).
struct MetricsEndpoint {
  std::shared_ptr<metrics::Registry> registry;
  std::unique_ptr<metrics::Exporter> exporter;
  metrics::Registry* get() const { return registry.get(); }
  // At the end of a run: waits for one scrape of the final values (metrics.final_scrape_timeout_s).
  void final_scrape(const metrics::MetricsConfig& config) const {
    if (exporter) exporter->final_scrape(config);
  }
};
// Checks the address (every rank: a ConfigError naming --metrics-listen or metrics.listen).
void check_metrics_listen(const metrics::MetricsConfig& config, const po::variables_map& vm);
// With `serve` and an address: a registry with conflux_info{role} and an exporter bound to it
// (ConfigError naming the key if the port is taken). Declare it after the ProcessGrid, so that
// the exporter's thread is joined before MPI finalizes.
//   auto endpoint = cli::start_metrics(cfg.metrics, vm, "train", grid.world_rank() == 0);
MetricsEndpoint start_metrics(const metrics::MetricsConfig& config, const po::variables_map& vm,
                              const std::string& role, bool serve = true);

// Config kinds for `conflux config show FILE`: each verb that reads a config file registers its
// schema (a struct with bind(ConfigBinder&)) under a kind name ("train", "prepare", ...):
//   CONFLUX_CONFIG_SCHEMA("train", "training run (conflux train)", TrainConfig);
struct ConfigSchema {
  std::string kind;
  std::string summary;
  // Binds the document and returns the effective config as TOML (throws ConfigError).
  std::function<std::string(std::shared_ptr<ConfigDocument>)> show;
  // Kinds that are more than one document (a pipeline file names stage configs by path) are
  // shown from the file itself; `show` is then unused.
  std::function<std::string(const std::string& file)> show_file;
};
std::vector<ConfigSchema>& config_schemas();
struct ConfigSchemaRegistrar {
  ConfigSchemaRegistrar(ConfigSchema schema);
};
#define CONFLUX_CONFIG_SCHEMA(kind, summary, Type)                                                     \
  static ::conflux::cli::ConfigSchemaRegistrar CONFLUX_VERB_CAT(conflux_schema_, __LINE__)(            \
      {kind, summary, [](std::shared_ptr<::conflux::ConfigDocument> doc) {                             \
         std::string text;                                                                             \
         ::conflux::bind_config<Type>(doc, &text);                                                     \
         return text;                                                                                  \
       }, nullptr})

// Prints `json` (already serialised) or `text` on stdout depending on --json.
void emit(bool json, const std::string& json_text, const std::string& text);

}  // namespace conflux::cli
