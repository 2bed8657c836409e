// `conflux inspect DATASET`: schema, row counts, shard sizes, provenance chain and privacy spent.
#include "conflux/cli/cli.h"
#include "conflux/core/error.h"
#include "conflux/dataplane/dataset.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <ctime>

namespace {

namespace po = conflux::cli::po;
namespace dp = conflux::dataplane;

std::string human_bytes(int64_t b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", b) : fmt::format("{:.1f} {}", v, units[u]);
}

std::string text_report(const dp::Dataset& ds) {
  const dp::Manifest& m = ds.manifest();
  std::string s = fmt::format("dataset {}\n  format {} v{}, {} rows, {} shards", ds.dir(), dp::kFormatName,
                              m.format_version, ds.num_rows(), ds.num_shards());
  int64_t bytes = 0;
  for (auto& sh : m.shards) bytes += sh.bytes;
  s += fmt::format(", {}\n", human_bytes(bytes));
  s += "schema:\n";
  for (auto& f : m.schema.fields())
    s += fmt::format("  {:<14} {:<9} {:<8} shape {}\n", f.name, dp::role_name(f.role),
                     conflux::dtype_name(f.dtype()), nlohmann::json(f.shape()).dump());
  if (m.schema.index_of_role(dp::Role::Tokens) >= 0)
    s += fmt::format("tokens: {} total, tokenizer {}\n", ds.num_tokens(), m.tokenizer.dump());
  s += "shards:\n";
  size_t shown = 0;
  for (auto& sh : m.shards) {
    if (shown++ == 8 && m.shards.size() > 10) {
      s += fmt::format("  ... {} more\n", m.shards.size() - 9);
      continue;
    }
    if (shown > 9 && shown < m.shards.size()) continue;
    s += fmt::format("  {}  {:>9} rows  {:>10}  sha256 {}...\n", sh.file, sh.rows, human_bytes(sh.bytes),
                     sh.sha256.substr(0, 16));
  }
  s += "provenance:\n";
  for (auto& st : m.provenance) {
    std::string when;
    if (st.contains("time") && st["time"].is_number_integer()) {
      std::time_t t = st["time"].get<int64_t>();
      char buf[32];
      std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", std::gmtime(&t));
      when = buf;
    }
    s += fmt::format("  - {} ({}, {})\n", st.value("stage", "?"), st.value("tool", "?"), when);
    if (st.contains("rows_in")) s += fmt::format("      rows in {} -> out {}\n", st["rows_in"].dump(), st.value("rows_out", nlohmann::json()).dump());
    if (st.contains("dropped")) s += fmt::format("      dropped: {}\n", st["dropped"].dump());
    if (st.contains("noise")) s += fmt::format("      noise: {}\n", st["noise"].dump());
    if (st.contains("parent_sha256")) s += fmt::format("      parent manifest sha256 {}\n", st["parent_sha256"].get<std::string>());
  }
  s += "privacy:\n";
  if (!m.privacy.contains("entries") || m.privacy["entries"].empty()) {
    s += "  no differential-privacy release recorded\n";
  } else {
    for (auto& e : m.privacy["entries"]) s += "  - " + e.dump() + "\n";
    s += "  total: " + m.privacy.value("total", nlohmann::json::object()).dump() + "\n";
  }
  return s;
}

int run_inspect(const conflux::cli::Args& args) {
  std::string dir;
  po::options_description opts("options");
  opts.add_options()("dataset", po::value(&dir)->required(), "dataset directory")
      ("no-verify", "skip the SHA-256 check of every shard")
      ("json", "print the manifest plus counts as JSON");
  po::positional_options_description pos;
  pos.add("dataset", 1);
  po::variables_map vm;
  if (!conflux::cli::parse(args, opts, &pos, vm,
                           {"inspect", "DATASET [--json] [--no-verify]",
                            "Validates a dataset (manifest, shard checksums, HDF5 structure) and prints its "
                            "schema, row counts, shard sizes, provenance chain and privacy spent.",
                            "conflux inspect data/fortunes --json"}))
    return 0;
  dp::OpenOptions oo;
  oo.verify_checksums = !vm.count("no-verify");
  auto ds = dp::Dataset::open(dir, oo);
  nlohmann::json j = nlohmann::json::parse(ds.manifest().to_json_text());
  j["verified_checksums"] = oo.verify_checksums;
  if (ds.schema().index_of_role(dp::Role::Tokens) >= 0) j["num_tokens"] = ds.num_tokens();
  conflux::cli::emit(vm.count("json") > 0, j.dump(2), text_report(ds));
  return 0;
}

CONFLUX_VERB("inspect", "validate a dataset and show schema, shards, provenance, privacy", run_inspect);

}  // namespace
