// Parsing PIPELINE.toml and chaining the stages (contract in pipeline.h).
#include "conflux/core/config.h"
#include "conflux/core/error.h"
#include "conflux/dataplane/builtin_configs.h"
#include "conflux/pipeline/pipeline.h"

#include <toml++/toml.h>

#include <fmt/format.h>

#include <filesystem>
#include <set>
#include <sstream>

namespace fs = std::filesystem;

namespace conflux::pipeline {
namespace {

const std::vector<std::string> kStageOrder = {"ingest", "prepare", "train", "federate", "evaluate"};

std::string where(const std::string& file, const toml::node& n) {
  return fmt::format("{}:{}", file, n.source().begin.line);
}

std::string absolute(const std::string& base, const std::string& path) {
  if (path.empty()) return path;
  return fs::path(path).is_absolute() ? fs::path(path).lexically_normal().string()
                                      : (fs::path(base) / path).lexically_normal().string();
}

const toml::node* lookup(const toml::table& t, const std::string& dotted) {
  const toml::node* n = &t;
  std::stringstream ss(dotted);
  for (std::string part; std::getline(ss, part, '.');) {
    const auto* tbl = n->as_table();
    if (!tbl) return nullptr;
    n = tbl->get(part);
    if (!n) return nullptr;
  }
  return n;
}

void assign(toml::table& t, const std::string& dotted, const std::string& value) {
  toml::table* cur = &t;
  std::stringstream ss(dotted);
  std::vector<std::string> parts;
  for (std::string part; std::getline(ss, part, '.');) parts.push_back(part);
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    auto* next = cur->get(parts[i]);
    if (!next || !next->is_table()) {
      cur->insert_or_assign(parts[i], toml::table{});
      next = cur->get(parts[i]);
    }
    cur = next->as_table();
  }
  cur->insert_or_assign(parts.back(), value);
}

// Deep merge: tables merge key by key, everything else is replaced.
void merge(toml::table& into, const toml::table& from) {
  for (const auto& [k, v] : from) {
    auto* mine = into.get(k);
    if (mine && mine->is_table() && v.is_table()) {
      merge(*mine->as_table(), *v.as_table());
    } else {
      into.insert_or_assign(k, v);
    }
  }
}

std::string to_text(const toml::table& t) {
  std::ostringstream os;
  os << toml::toml_formatter{t};
  return os.str();
}

std::string string_of(const std::string& file, const toml::node& n, const std::string& key) {
  if (auto s = n.value<std::string>()) return *s;
  CONFLUX_THROW(ConfigError, "{}: '{}' must be a string", where(file, n), key);
}

int64_t int_of(const std::string& file, const toml::node& n, const std::string& key, int64_t lo) {
  auto v = n.value<int64_t>();
  if (!v || !n.is_integer()) CONFLUX_THROW(ConfigError, "{}: '{}' must be an integer", where(file, n), key);
  if (*v < lo) CONFLUX_THROW(ConfigError, "{}: '{}' = {} must be at least {}", where(file, n), key, *v, lo);
  return *v;
}

std::vector<std::string> strings_of(const std::string& file, const toml::node& n, const std::string& key) {
  std::vector<std::string> out;
  if (auto s = n.value<std::string>()) return {*s};
  const auto* arr = n.as_array();
  if (!arr) CONFLUX_THROW(ConfigError, "{}: '{}' must be a string or an array of strings", where(file, n), key);
  for (const auto& e : *arr) {
    auto s = e.value<std::string>();
    if (!s) CONFLUX_THROW(ConfigError, "{}: '{}' must hold strings only", where(file, e), key);
    out.push_back(*s);
  }
  return out;
}

Resources parse_resources(const std::string& file, const toml::table& t, const std::string& prefix) {
  Resources r;
  for (const auto& [k, v] : t) {
    const std::string key(k.str()), full = prefix + "." + key;
    if (key == "ranks") r.ranks = static_cast<int>(int_of(file, v, full, 1));
    else if (key == "nodes") r.nodes = static_cast<int>(int_of(file, v, full, 1));
    else if (key == "cpus_per_task") r.cpus_per_task = static_cast<int>(int_of(file, v, full, 1));
    else if (key == "time_limit") r.time_limit = string_of(file, v, full);
    else if (key == "partition") r.partition = string_of(file, v, full);
    else if (key == "gres") r.gres = string_of(file, v, full);
    else
      CONFLUX_THROW(ConfigError, "{}: unknown key '{}'{}", where(file, v), full,
                    did_you_mean(key, {"ranks", "nodes", "cpus_per_task", "time_limit", "partition", "gres"}));
  }
  return r;
}

// The keys `set` overrides ("a.b=c" -> "a.b") and their values (quotes removed).
std::string set_value(const std::vector<std::string>& set, const std::string& key, bool* found) {
  *found = false;
  std::string value;
  for (const auto& s : set) {
    const auto eq = s.find('=');
    if (eq == std::string::npos || s.substr(0, eq) != key) continue;
    value = s.substr(eq + 1);
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') && value.back() == value.front())
      value = value.substr(1, value.size() - 2);
    *found = true;
  }
  return value;
}

// Sets `key` to `chained` unless the stage gives it inline or in `set`; returns the value in effect.
std::string chain(toml::table& config, const toml::table& inline_config, const std::vector<std::string>& set,
                  const std::string& key, const std::string& chained, const std::string& base) {
  bool in_set = false;
  const std::string from_set = set_value(set, key, &in_set);
  if (in_set) return absolute(base, from_set);
  if (const auto* n = lookup(inline_config, key)) {
    if (auto s = n->value<std::string>()) return absolute(base, *s);
  }
  assign(config, key, chained);
  return chained;
}

toml::table parse_toml_file(const std::string& path) {
  try {
    return toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    CONFLUX_THROW(ConfigError, "{}:{}: {}", path, e.source().begin.line, std::string(e.description()));
  }
}

}  // namespace

const Stage* Pipeline::find(const std::string& stage_name) const {
  for (const auto& s : stages)
    if (s.name == stage_name) return &s;
  return nullptr;
}

Pipeline load_pipeline(const std::string& file_arg) {
  std::error_code ec;
  if (!fs::exists(file_arg, ec)) CONFLUX_THROW(ConfigError, "pipeline file '{}' does not exist", file_arg);
  if (fs::is_directory(file_arg, ec))
    CONFLUX_THROW(ConfigError, "pipeline file '{}' is a directory, not a TOML file", file_arg);
  Pipeline p;
  p.file = fs::absolute(file_arg).lexically_normal().string();
  p.base = fs::path(p.file).parent_path().string();
  const toml::table root = parse_toml_file(p.file);
  const std::string& file = p.file;

  p.name = fs::path(p.file).stem().string();
  std::string dir = "runs/" + p.name;
  for (const auto& [k, v] : root) {
    const std::string key(k.str());
    if (key == "pipeline") {
      const auto* t = v.as_table();
      if (!t) CONFLUX_THROW(ConfigError, "{}: 'pipeline' must be a table", where(file, v));
      for (const auto& [pk, pv] : *t) {
        const std::string pkey(pk.str());
        if (pkey == "name") p.name = string_of(file, pv, "pipeline.name");
        else if (pkey == "dir") dir = string_of(file, pv, "pipeline.dir");
        else
          CONFLUX_THROW(ConfigError, "{}: unknown key 'pipeline.{}'{}", where(file, pv), pkey,
                        did_you_mean(pkey, {"name", "dir"}));
      }
    } else if (key != "stages") {
      CONFLUX_THROW(ConfigError, "{}: unknown table '{}' (a pipeline file has [pipeline] and [stages.NAME])",
                    where(file, v), key);
    }
  }
  if (p.name.empty() || p.name.find_first_of("/ \t\n") != std::string::npos)
    CONFLUX_THROW(ConfigError, "{}: pipeline.name '{}' must be non-empty, without '/' or spaces", file, p.name);
  p.dir = absolute(p.base, dir);

  const auto* stages = root.get_as<toml::table>("stages");
  if (!stages || stages->empty())
    CONFLUX_THROW(ConfigError, "{}: no stages: add at least one of [stages.ingest], [stages.prepare], "
                  "[stages.train], [stages.federate], [stages.evaluate]", file);
  for (const auto& [k, v] : *stages) {
    const std::string key(k.str());
    if (std::find(kStageOrder.begin(), kStageOrder.end(), key) == kStageOrder.end())
      CONFLUX_THROW(ConfigError, "{}: unknown stage 'stages.{}'{} (stages: ingest, prepare, train, federate, evaluate)",
                    where(file, v), key, did_you_mean(key, kStageOrder));
    if (!v.is_table()) CONFLUX_THROW(ConfigError, "{}: 'stages.{}' must be a table", where(file, v), key);
  }

  std::string dataset;      // the newest dataset produced so far (absolute)
  std::string checkpoints;  // the checkpoint root train (then federate) writes
  const toml::node* train_model = nullptr;  // train's [model] table (federate inherits it)
  toml::table train_config;                 // keeps train_model alive
  bool federated = false;                   // `checkpoints` are federate's
  for (const auto& name : kStageOrder) {
    const auto* t = stages->get_as<toml::table>(name);
    if (!t) continue;
    Stage s;
    s.name = name;
    s.where = where(file, *t);
    const std::string prefix = "stages." + name;
    std::string config_file, builtin;
    toml::table inline_config;
    for (const auto& [k, v] : *t) {
      const std::string key(k.str()), full = prefix + "." + key;
      if (key == "resources") {
        const auto* rt = v.as_table();
        if (!rt) CONFLUX_THROW(ConfigError, "{}: '{}' must be a table", where(file, v), full);
        s.resources = parse_resources(file, *rt, full);
      } else if (key == "set" && name != "ingest") {
        s.set = strings_of(file, v, full);
        for (const auto& o : s.set)
          if (o.find('=') == std::string::npos || o.front() == '=')
            CONFLUX_THROW(ConfigError, "{}: '{}' entry '{}' must look like a.b=value", where(file, v), full, o);
      } else if (key == "config" && name != "ingest") {
        config_file = absolute(p.base, string_of(file, v, full));
      } else if (key == "builtin" && name == "prepare") {
        builtin = string_of(file, v, full);
      } else if (key == "participants" && name == "federate") {
        for (const auto& d : strings_of(file, v, full)) s.participants.push_back(absolute(p.base, d));
        if (s.participants.empty()) CONFLUX_THROW(ConfigError, "{}: '{}' is empty", where(file, v), full);
      } else if (key == "partition" && name == "federate") {
        const auto* pt = v.as_table();
        if (!pt) CONFLUX_THROW(ConfigError, "{}: '{}' must be a table of `conflux partition` flags", where(file, v), full);
        for (const auto& [pk, pv] : *pt) {
          const std::string pkey(pk.str());
          static const std::vector<std::string> known = {"parts", "by", "alpha", "field", "seed", "min_rows"};
          if (std::find(known.begin(), known.end(), pkey) == known.end())
            CONFLUX_THROW(ConfigError, "{}: unknown key '{}.{}'{}", where(file, pv), full, pkey, did_you_mean(pkey, known));
          std::ostringstream os;
          if (pv.is_string()) os << *pv.value<std::string>();
          else if (pv.is_integer()) os << *pv.value<int64_t>();
          else if (pv.is_floating_point()) os << *pv.value<double>();
          else CONFLUX_THROW(ConfigError, "{}: '{}.{}' must be a string or a number", where(file, pv), full, pkey);
          std::string flag = "--" + pkey;
          std::replace(flag.begin(), flag.end(), '_', '-');
          s.partition_args.insert(s.partition_args.end(), {flag, os.str()});
          if (pkey == "parts") {
            const int64_t n = int_of(file, pv, full + ".parts", 1);
            s.participants.assign(static_cast<size_t>(n), "");
          }
        }
        if (s.participants.empty())
          CONFLUX_THROW(ConfigError, "{}: '{}' needs parts (the number of participants)", where(file, v), full);
      } else {
        inline_config.insert_or_assign(k, v);
      }
    }
    if (!config_file.empty() && !builtin.empty())
      CONFLUX_THROW(ConfigError, "{}: {} has both 'config' and 'builtin'; give one", s.where, prefix);

    if (name == "ingest") {
      // Every other key is a `conflux ingest` flag: inputs -> -i, output -> -o, key -> --key.
      std::string output = p.dir + "/data/raw";
      bool have_inputs = false;
      for (const auto& [k, v] : inline_config) {
        const std::string key(k.str()), full = prefix + "." + key;
        if (key == "inputs" || key == "input") {
          for (const auto& in : strings_of(file, v, full)) {
            s.raw_inputs.push_back(absolute(p.base, in));
            s.ingest_args.insert(s.ingest_args.end(), {"-i", s.raw_inputs.back()});
          }
          have_inputs = !s.raw_inputs.empty();
        } else if (key == "output") {
          output = absolute(p.base, string_of(file, v, full));
        } else {
          std::string flag = "--" + key;
          std::replace(flag.begin(), flag.end(), '_', '-');
          if (auto b = v.value<bool>(); b && v.is_boolean()) {
            if (*b) s.ingest_args.push_back(flag);
          } else if (v.is_array()) {
            for (const auto& e : strings_of(file, v, full)) s.ingest_args.insert(s.ingest_args.end(), {flag, e});
          } else if (v.is_string() || v.is_integer()) {
            std::ostringstream os;
            if (v.is_string()) os << *v.value<std::string>();
            else os << *v.value<int64_t>();
            s.ingest_args.insert(s.ingest_args.end(), {flag, os.str()});
          } else {
            CONFLUX_THROW(ConfigError, "{}: '{}' must be a string, integer, boolean or array of strings "
                          "(a `conflux ingest` flag)", where(file, v), full);
          }
        }
      }
      if (!have_inputs)
        CONFLUX_THROW(ConfigError, "{}: {} needs 'inputs' (files or directories to ingest)", s.where, prefix);
      s.output = output;
      dataset = output;
      p.stages.push_back(std::move(s));
      continue;
    }

    toml::table config;
    if (!config_file.empty()) {
      if (!fs::is_regular_file(config_file, ec))
        CONFLUX_THROW(ConfigError, "{}: {}.config: '{}' is not a file", s.where, prefix, config_file);
      config = parse_toml_file(config_file);
    } else if (!builtin.empty()) {
      const auto& builtins = dataplane::builtin_configs();
      auto it = builtins.find(builtin);
      if (it == builtins.end()) {
        std::vector<std::string> names;
        for (const auto& kv : builtins) names.push_back(kv.first);
        CONFLUX_THROW(ConfigError, "{}: {}.builtin: no built-in config '{}'{}", s.where, prefix, builtin,
                      did_you_mean(builtin, names));
      }
      try {
        config = toml::parse(it->second);
      } catch (const toml::parse_error& e) {
        CONFLUX_THROW(InternalError, "built-in config '{}' does not parse: {}", builtin, std::string(e.description()));
      }
    }
    merge(config, inline_config);

    if (name == "prepare") {
      if (dataset.empty()) {
        const auto* n = lookup(config, "prepare.input");
        bool in_set = false;
        const std::string v = set_value(s.set, "prepare.input", &in_set);
        if (!in_set && (!n || !n->value<std::string>()))
          CONFLUX_THROW(ConfigError, "{}: {} has no input: add [stages.ingest] or set prepare.input", s.where, prefix);
        s.input = absolute(p.base, in_set ? v : *n->value<std::string>());
      } else {
        s.input = chain(config, inline_config, s.set, "prepare.input", dataset, p.base);
      }
      s.output = chain(config, inline_config, s.set, "prepare.output", p.dir + "/data/prepared", p.base);
      dataset = s.output;
    } else if (name == "train") {
      if (dataset.empty()) {
        bool in_set = false;
        const std::string v = set_value(s.set, "data.dataset", &in_set);
        const auto* n = lookup(config, "data.dataset");
        if (!in_set && (!n || !n->value<std::string>()))
          CONFLUX_THROW(ConfigError, "{}: {} has no dataset: add [stages.prepare] or set data.dataset", s.where, prefix);
        s.input = absolute(p.base, in_set ? v : *n->value<std::string>());
      } else {
        s.input = chain(config, inline_config, s.set, "data.dataset", dataset, p.base);
      }
      s.output = chain(config, inline_config, s.set, "checkpoint.dir", p.dir + "/checkpoints", p.base);
      s.output_dir = chain(config, inline_config, s.set, "output.dir", p.dir + "/train", p.base);
      dataset = s.input;
      checkpoints = s.output;
      train_config = config;
      train_model = train_config.get("model");
    } else if (name == "federate") {
      if (s.participants.empty())
        CONFLUX_THROW(ConfigError, "{}: {} needs participants (their datasets) or a [{}.partition] table", s.where,
                      prefix, prefix);
      if (!s.partition_args.empty()) {
        if (std::any_of(s.participants.begin(), s.participants.end(), [](const std::string& d) { return !d.empty(); }))
          CONFLUX_THROW(ConfigError, "{}: {} has both participants and partition; give one", s.where, prefix);
        if (dataset.empty())
          CONFLUX_THROW(ConfigError, "{}: {}.partition cuts the previous stage's dataset, and there is none", s.where,
                        prefix);
        s.input = dataset;
        for (size_t i = 0; i < s.participants.size(); ++i)
          s.participants[i] = fmt::format("{}/data/participants/part-{:03d}", p.dir, i);
      }
      if (!checkpoints.empty()) {
        s.init_from = chain(config, inline_config, s.set, "model.init_from", checkpoints, p.base);
        // The model's shape is training's unless the stage gives its own.
        if (const auto* tm = train_model ? train_model->as_table() : nullptr) {
          for (const auto& [mk, mv] : *tm) {
            const std::string mkey = "model." + std::string(mk.str());
            bool in_set = false;
            set_value(s.set, mkey, &in_set);
            if (mk.str() != "init_from" && !in_set && !lookup(inline_config, mkey)) {
              auto* model = config.get("model");
              if (!model || !model->is_table()) {
                config.insert_or_assign("model", toml::table{});
                model = config.get("model");
              }
              model->as_table()->insert_or_assign(mk, mv);
            }
          }
        }
      } else {
        bool in_set = false;
        const std::string v = set_value(s.set, "model.init_from", &in_set);
        const auto* n = lookup(config, "model.init_from");
        s.init_from = in_set ? absolute(p.base, v) : n && n->value<std::string>() ? absolute(p.base, *n->value<std::string>()) : "";
      }
      s.output = chain(config, inline_config, s.set, "checkpoint.dir", p.dir + "/fl-checkpoints", p.base);
      s.output_dir = chain(config, inline_config, s.set, "output.dir", p.dir + "/federate", p.base);
      checkpoints = s.output;
      federated = true;
    } else if (name == "evaluate") {
      auto given = [&](const std::string& key) -> std::string {
        bool in_set = false;
        const std::string v = set_value(s.set, key, &in_set);
        if (in_set) return absolute(p.base, v);
        const auto* n = lookup(config, key);
        return n && n->value<std::string>() ? absolute(p.base, *n->value<std::string>()) : "";
      };
      s.input = checkpoints.empty() ? given("evaluate.checkpoint")
                                    : chain(config, inline_config, s.set, "evaluate.checkpoint", checkpoints, p.base);
      s.input_dataset = dataset.empty() ? given("evaluate.dataset")
                                        : chain(config, inline_config, s.set, "evaluate.dataset", dataset, p.base);
      if (s.input.empty() || s.input_dataset.empty())
        CONFLUX_THROW(ConfigError, "{}: {} needs a checkpoint and a dataset: add [stages.train] or set "
                      "evaluate.checkpoint and evaluate.dataset", s.where, prefix);
      s.output = chain(config, inline_config, s.set, "output.dir", p.dir + "/eval", p.base);
      // A federated model was trained on no one dataset, so there is no held-out split of it to
      // take: evaluate every row unless the stage says otherwise (the rounds' own federated
      // evaluation in rounds.jsonl is on the participants' held-out windows).
      bool split_set = false;
      set_value(s.set, "evaluate.split", &split_set);
      if (federated && !split_set && !lookup(inline_config, "evaluate.split")) assign(config, "evaluate.split", "all");
    }
    s.config_text = to_text(config);
    p.stages.push_back(std::move(s));
  }
  return p;
}

}  // namespace conflux::pipeline
