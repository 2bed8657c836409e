// libFuzzer target for the TOML config reader: arbitrary text (and --set overrides) goes through
// parse_config_text and bind_config exactly as a config file and `--set` flags would, bound to
// the real grid schema and to a schema with every field kind (arrays, arrays of tables, free
// tables, ranges, choices, required keys). Every rejection must be a ConfigError: any other
// exception escaping (an internal error, std::out_of_range from a key path, ...) is a bug, as
// are crashes, hangs and ASan/UBSan reports.
// Input layout: the TOML text, then optionally a NUL byte and `--set` overrides, one a line.
#include <conflux/core/config.h>
#include <conflux/core/error.h>
#include <conflux/core/process_grid.h>

#include <map>
#include <string>
#include <vector>

namespace {

struct Item {
  std::string name;
  double weight = 0.5;
  std::vector<double> values;
  void bind(conflux::ConfigBinder& b, const std::string& at) {
    b.field(at + ".name", name, "item name").required().one_of({"a", "b"});
    b.field(at + ".weight", weight, "weight").range(0, 1);
    b.field(at + ".values", values, "values");
  }
};

struct Everything {
  bool flag = false;
  int small = 1;
  int64_t big = 2;
  double ratio = 0.1;
  std::string text = "x";
  std::vector<std::string> words;
  std::vector<int64_t> dims;
  std::vector<double> floats;
  std::vector<Item> items;
  std::map<std::string, double> free;
  void bind(conflux::ConfigBinder& b) {
    b.field("a.flag", flag, "a boolean");
    b.field("a.small", small, "an int").min(0);
    b.field("a.big", big, "an int64").range(-5, 5);
    b.field("a.ratio", ratio, "a double").range(0, 1);
    b.field("b.text", text, "a string").one_of({"x", "y"});
    b.field("b.words", words, "strings");
    b.field("b.dims", dims, "integers");
    b.field("b.floats", floats, "doubles");
    if (b.mode() == conflux::ConfigBinder::Mode::Load) {
      items.resize(b.array_length("items"));
      for (auto& k : b.table_keys("free")) free[k];
    }
    for (size_t i = 0; i < items.size(); ++i) items[i].bind(b, "items[" + std::to_string(i) + "]");
    for (auto& [k, v] : free) b.field("free." + k, v, "free-form number");
  }
};

template <typename T>
void bind_expecting_config_errors(const std::string& text, const std::vector<std::string>& overrides) {
  try {
    std::string toml, json;
    conflux::bind_config<T>(conflux::parse_config_text(text, "fuzz.toml", overrides), &toml, &json);
    // The effective config must parse back.
    conflux::bind_config<T>(conflux::parse_config_text(toml, "effective.toml", {}));
  } catch (const conflux::ConfigError&) {
    // a named rejection: fine
  } catch (...) {
    __builtin_trap();  // anything else is a bug
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const size_t nul = input.find('\0');
  const std::string text = input.substr(0, nul);
  std::vector<std::string> overrides;
  if (nul != std::string::npos) {
    std::string rest = input.substr(nul + 1), line;
    for (char c : rest) {
      if (c == '\n') {
        overrides.push_back(line);
        line.clear();
      } else {
        line += c;
      }
    }
    if (!line.empty()) overrides.push_back(line);
  }
  bind_expecting_config_errors<conflux::GridConfig>(text, overrides);
  bind_expecting_config_errors<Everything>(text, overrides);
  return 0;
}
