// `conflux config show FILE`: the effective configuration with every default filled in.
#include "conflux/cli/cli.h"
#include "conflux/core/config.h"
#include "conflux/core/error.h"
#include "conflux/core/process_grid.h"

#include <iostream>

namespace conflux::cli {
namespace {

int config_show(const Args& args) {
  po::options_description opts("options");
  std::string file, kind;
  opts.add_options()("file", po::value(&file)->required(), "config file (TOML)")(
      "kind", po::value(&kind), "config kind: grid, prepare, train, evaluate (every verb that reads a config "
      "registers its kind); inferred from the file if omitted")(
      "set", po::value<std::vector<std::string>>()->composing(), "override a key: --set a.b=c (repeatable)");
  po::positional_options_description pos;
  pos.add("file", 1);
  po::variables_map vm;
  if (!parse(args, opts, &pos, vm,
             {"config show", "FILE [--kind KIND] [--set a.b=c ...]",
              "Validates FILE and prints the effective configuration, defaults filled in, with a comment on each "
              "key. Errors name file:line and the key path.",
              "conflux config show prep.toml --set dedup.near.threshold=0.8"}))
    return 0;
  load_plugins();  // the libtorch verbs' config kinds (evaluate, ...) register there
  const std::vector<std::string> sets = overrides(vm);
  auto show = [&](const ConfigSchema& s, const std::shared_ptr<ConfigDocument>& d) {
    if (!s.show_file) return s.show(d);
    if (!sets.empty()) CONFLUX_THROW(UsageError, "--set does not apply to a {} file; put the setting in it", s.kind);
    return s.show_file(file);
  };
  auto doc = parse_config_file(file, sets);
  auto& schemas = config_schemas();
  if (schemas.empty()) CONFLUX_THROW(InternalError, "no config kinds are registered in this build");
  std::vector<const ConfigSchema*> candidates;
  if (!kind.empty()) {
    for (auto& s : schemas)
      if (s.kind == kind) candidates.push_back(&s);
    if (candidates.empty()) {
      std::string kinds;
      for (auto& s : schemas) kinds += (kinds.empty() ? "" : ", ") + s.kind;
      CONFLUX_THROW(UsageError, "unknown config kind '{}' (known: {})", kind, kinds);
    }
    std::cout << show(*candidates[0], doc);
    return 0;
  }
  // Infer: the kinds under which the file validates.
  std::vector<std::pair<const ConfigSchema*, std::string>> ok;
  std::string first_error;
  for (auto& s : schemas) {
    try {
      ok.emplace_back(&s, show(s, doc));
    } catch (const ConfigError& e) {
      if (first_error.empty()) first_error = fmt::format("as '{}': {}", s.kind, e.message());
    }
  }
  if (ok.size() == 1) {
    std::cout << "# kind: " << ok[0].first->kind << "\n" << ok[0].second;
    return 0;
  }
  std::string kinds;
  for (auto& s : schemas) kinds += (kinds.empty() ? "" : ", ") + s.kind;
  if (ok.empty()) CONFLUX_THROW(ConfigError, "{} is not a valid config of any kind ({}); {}", file, kinds, first_error);
  CONFLUX_THROW(UsageError, "{} is valid as several kinds; choose one with --kind ({})", file, kinds);
}

CONFLUX_CONFIG_SCHEMA("grid", "process grid and collectives ([parallel], [comm]) shared by MPI stages", GridConfig);
CONFLUX_VERB("config show", "validate a config file and print the effective configuration", config_show);

}  // namespace
}  // namespace conflux::cli
