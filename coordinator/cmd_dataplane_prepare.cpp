// `conflux prepare prep.toml`: validate, dedup, noise, augment, reduce and rewrite a dataset on
// any number of MPI ranks (output identical for any rank count).
#include "conflux/cli/cli.h"
#include "conflux/core/config.h"
#include "conflux/core/error.h"
#include "conflux/core/process_grid.h"
#include "conflux/dataplane/builtin_configs.h"
#include "conflux/dataplane/prepare.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <iostream>

namespace {

namespace po = conflux::cli::po;
namespace dp = conflux::dataplane;

int run_prepare(const conflux::cli::Args& args) {
  std::string config, builtin;
  std::vector<std::string> sets;
  po::options_description opts("options");
  opts.add_options()("config", po::value(&config), "prep.toml")
      ("builtin", po::value(&builtin), "use an embedded config instead of a file (fortunes)")
      ("set", po::value(&sets)->multitoken(), "override a config key: --set dedup.near=true (repeatable)")
      ("print-config", "print the effective config (TOML, with every knob and its doc) and exit")
      ("json", "print a JSON summary");
  po::positional_options_description pos;
  pos.add("config", 1);
  po::variables_map vm;
  if (!conflux::cli::parse(args, opts, &pos, vm,
                           {"prepare", "PREP.toml | --builtin NAME [--set key=value]... [--json]",
                            "Runs the dataset pipeline: plan, validate/clean, exact and MinHash-LSH near dedup, "
                            "differential-privacy noise, augmentation, PCA, and an atomic write with provenance "
                            "and privacy ledger. Run under mpirun for several ranks; the output is identical "
                            "for any number of ranks.",
                            "mpirun -np 2 conflux prepare --builtin fortunes --set prepare.output=data/fortunes"}))
    return 0;
  std::shared_ptr<conflux::ConfigDocument> doc;
  if (!builtin.empty()) {
    auto it = dp::builtin_configs().find(builtin);
    if (it == dp::builtin_configs().end()) {
      std::string names;
      for (auto& kv : dp::builtin_configs()) names += " " + kv.first;
      CONFLUX_THROW(UsageError, "conflux prepare: no built-in config '{}' (available:{})", builtin, names);
    }
    doc = conflux::parse_config_text(it->second, "builtin:" + builtin, sets);
  } else if (!config.empty()) {
    doc = conflux::parse_config_file(config, sets);
  } else {
    CONFLUX_THROW(UsageError, "conflux prepare: give a config file or --builtin NAME");
  }
  std::string toml, json_text;
  auto cfg = conflux::bind_config<dp::PrepareConfig>(doc, &toml, &json_text);
  if (vm.count("print-config")) {
    std::cout << toml;
    return 0;
  }
  std::string command = "conflux prepare";
  for (auto& a : args) command += " " + a;
  conflux::ProcessGrid grid(cfg.grid.options());
  auto res = dp::prepare(grid.world(), cfg, nlohmann::json::parse(json_text), command);
  if (grid.world_rank() == 0) {
    nlohmann::json j = {{"output", cfg.output}, {"rows_in", res.rows_in}, {"rows_out", res.rows_out},
                        {"augmented_copies", res.copies}, {"dropped", res.dropped},
                        {"near_dedup", {{"candidate_pairs", res.near.candidates}, {"verified_pairs", res.near.verified},
                                        {"clusters", res.near.clusters}}},
                        {"privacy", res.manifest.privacy}, {"timings_rank0", res.stage["timings_rank0"]},
                        {"ranks", grid.world_size()}};
    std::string text = fmt::format("prepared {}: {} rows in, {} out ({} augmented copies)\ndropped:", cfg.output,
                                   res.rows_in, res.rows_out, res.copies);
    for (auto& kv : res.dropped) text += fmt::format(" {}={}", kv.first, kv.second);
    conflux::cli::emit(vm.count("json") > 0, j.dump(), text);
  }
  return 0;
}

CONFLUX_CONFIG_SCHEMA("prepare", "dataset pipeline (conflux prepare)", dp::PrepareConfig);
CONFLUX_VERB("prepare", "validate, dedup, DP-noise, augment and rewrite a dataset (MPI)", run_prepare);

}  // namespace
