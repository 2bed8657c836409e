// Verb registry and option parsing shared by all verbs.
#include "conflux/cli/cli.h"

#include "conflux/core/error.h"

#include <dlfcn.h>

#include <fmt/format.h>

#include <cmath>
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

void check_number(double v, double lo, double hi, const std::string& token) {
  std::string want;
  if (!std::isfinite(v)) {
    want = "a finite number";
  } else if (v < lo || v > hi) {
    auto bound = [](double b) { return fmt::format("{}", b); };
    if (hi == kNoBound) want = fmt::format("at least {}", bound(lo));
    else if (lo == -kNoBound) want = fmt::format("at most {}", bound(hi));
    else want = fmt::format("in [{}, {}]", bound(lo), bound(hi));
  } else {
    return;
  }
  po::validation_error e(po::validation_error::invalid_option_value);
  // boost fills in the option's name; %value% is what the user typed.
  e.m_error_template = "option '%canonical_option%' = %value% must be " + want;
  e.set_substitute("value", token);
  throw e;
}

namespace {
// The backstop for flags declared with a plain po::value<double>: no double flag is ever non-finite.
void refuse_non_finite(const po::variables_map& vm) {
  for (const auto& [name, value] : vm) {
    if (value.defaulted() || value.value().type() != typeid(double)) continue;
    const double v = boost::any_cast<double>(value.value());
    try {
      check_number(v, -kNoBound, kNoBound, fmt::format("{}", v));
    } catch (po::error_with_option_name& e) {
      e.add_context(name, "", po::command_line_style::allow_long);
      throw;
    }
  }
}
}  // namespace

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
    refuse_non_finite(vm);
  } catch (const po::error& e) {
    CONFLUX_THROW(UsageError, "conflux {}: {} (usage: conflux {} {})", help.verb, e.what(), help.verb,
                  help.usage);
  }
  return true;
}

std::vector<std::string> overrides(const po::variables_map& vm) {
  std::vector<std::string> out;
  if (vm.count("set")) out = vm["set"].as<std::vector<std::string>>();
  if (vm.count("metrics-listen")) {
    // A TOML string, so that "9464" stays a string and not an integer.
    std::string v;
    for (char c : vm["metrics-listen"].as<std::string>()) {
      if (c == '"' || c == '\\') v += '\\';
      v += c;
    }
    out.push_back("metrics.listen=\"" + v + "\"");
  }
  return out;
}

void add_metrics_listen_option(po::options_description& options) {
  options.add_options()("metrics-listen", po::value<std::string>(),
                        "serve Prometheus metrics on HOST:PORT (GET /metrics; overrides metrics.listen; "
                        "loopback unless a host is given)");
}

std::string metrics_listen_key(const po::variables_map& vm) {
  return vm.count("metrics-listen") ? "--metrics-listen" : "metrics.listen";
}

void check_metrics_listen(const metrics::MetricsConfig& config, const po::variables_map& vm) {
  if (!config.listen.empty()) metrics::parse_listen_address(config.listen, metrics_listen_key(vm));
}

MetricsEndpoint start_metrics(const metrics::MetricsConfig& config, const po::variables_map& vm,
                              const std::string& role, bool serve) {
  MetricsEndpoint e;
  if (!serve || config.listen.empty()) return e;
  e.registry = std::make_shared<metrics::Registry>();
  metrics::register_process_metrics(*e.registry, role);
  e.exporter = metrics::Exporter::start(e.registry, config.listen, metrics_listen_key(vm));
  return e;
}

void emit(bool json, const std::string& json_text, const std::string& text) {
  std::cout << (json ? json_text : text);
  if (!(json ? json_text : text).empty() && (json ? json_text : text).back() != '\n') std::cout << '\n';
  std::cout.flush();
}

}  // namespace conflux::cli
