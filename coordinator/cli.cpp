// Verb registry and option parsing shared by all verbs.
#include "conflux/cli/cli.h"

#include "conflux/core/error.h"

#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <sstream>

namespace conflux::cli {

std::vector<Verb>& registry() {
  static std::vector<Verb> verbs;
  return verbs;
}

Registrar::Registrar(std::string name, std::string summary, VerbFn fn) {
  registry().push_back(Verb{std::move(name), std::move(summary), std::move(fn)});
}

void load_plugins() {
  static bool done = false;
  if (done) return;
  done = true;
  namespace fs = std::filesystem;
  const char* file = "libconflux_torch_verbs.so";
  std::vector<fs::path> dirs;
  if (const char* env = std::getenv("CONFLUX_PLUGIN_DIR"); env && *env) dirs.emplace_back(env);
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    std::stringstream rel(CONFLUX_PLUGIN_DIRS);
    for (std::string d; std::getline(rel, d, ':');) dirs.push_back(exe.parent_path() / d);
  }
  for (const auto& d : dirs) {
    const fs::path p = d / file;
    if (!fs::exists(p, ec)) continue;
    if (!::dlopen(p.c_str(), RTLD_NOW | RTLD_GLOBAL)) {
      const char* why = ::dlerror();
      CONFLUX_THROW(IoError, "cannot load the verb plugin {}: {} (a broken or partial installation?)", p.string(),
                    why ? why : "unknown error");
    }
    return;
  }
}

std::vector<ConfigSchema>& config_schemas() {
  static std::vector<ConfigSchema> schemas;
  return schemas;
}

ConfigSchemaRegistrar::ConfigSchemaRegistrar(ConfigSchema schema) { config_schemas().push_back(std::move(schema)); }

bool parse(const Args& args, po::options_description& options,
           const po::positional_options_description* positional, po::variables_map& vm,
           const VerbHelp& help) {
  options.add_options()("help,h", "show this help and an example");
  try {
    po::command_line_parser parser(args);
    parser.options(options);
    if (positional) parser.positional(*positional);
    po::store(parser.run(), vm);
    if (vm.count("help")) {
      std::cout << "usage: conflux " << help.verb << " " << help.usage << "\n\n"
                << help.summary << "\n\n"
                << options << "\nExample:\n  " << help.example << "\n";
      return false;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    CONFLUX_THROW(UsageError, "conflux {}: {} (usage: conflux {} {})", help.verb, e.what(), help.verb,
                  help.usage);
  }
  return true;
}

std::vector<std::string> overrides(const po::variables_map& vm) {
  if (!vm.count("set")) return {};
  return vm["set"].as<std::vector<std::string>>();
}

void emit(bool json, const std::string& json_text, const std::string& text) {
  std::cout << (json ? json_text : text);
  if (!(json ? json_text : text).empty() && (json ? json_text : text).back() != '\n') std::cout << '\n';
  std::cout.flush();
}

}  // namespace conflux::cli
