// `conflux partition DATASET --by iid|group|dirichlet --parts N --out-dir DIR`: one dataset per
// federated participant, for demos and experiments (dataplane/partition.h has the methods and
// the output's contract). One process; no MPI.
#include "conflux/cli/cli.h"
#include "conflux/dataplane/partition.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace {

namespace po = conflux::cli::po;
namespace dp = conflux::dataplane;

int run_partition(const conflux::cli::Args& args) {
  dp::PartitionOptions o;
  int64_t seed = 0;
  po::options_description opts("options");
  opts.add_options()
      ("dataset", po::value(&o.input)->required(), "input dataset directory")
      ("by", po::value(&o.by)->required(),
       "iid (seeded shuffle, equal slices) | group (whole groups of --field per part) | dirichlet (label skew: "
       "each value's rows split by proportions ~ Dir(alpha))")
      ("parts", conflux::cli::number(&o.parts, 1)->required(), "number of participants (output datasets)")
      ("alpha", conflux::cli::number(&o.alpha)->default_value(0.5),
       "dirichlet concentration (> 0): small values give each part few labels, large ones approach iid")
      ("field", po::value(&o.field),
       "group / dirichlet: label or group field to split by (default: the first label field, else the first "
       "group field)")
      ("seed", conflux::cli::number(&seed, 0)->default_value(0), "random seed (iid, dirichlet)")
      ("min-rows", conflux::cli::number(&o.min_rows, 1)->default_value(1),
       "dirichlet: redraw until every part has at least this many rows")
      ("rows-per-shard", conflux::cli::number(&o.rows_per_shard, 1)->default_value(65536), "rows per shard file")
      ("out-dir", po::value(&o.out_dir)->required(),
       "receives part-000, part-001, ... and partition.json (published atomically; replaces only an empty "
       "directory or an earlier partition)")
      ("json", "print partition.json's summary instead of text");
  po::positional_options_description pos;
  pos.add("dataset", 1);
  po::variables_map vm;
  if (!conflux::cli::parse(args, opts, &pos, vm,
                           {"partition", "DATASET --by iid|group|dirichlet --parts N [--alpha A] [--field F] "
                                         "[--seed S] --out-dir DIR [--json]",
                            "Splits a dataset into one dataset per federated participant (DIR/part-000, ...), "
                            "each with the input's schema and a provenance record of how it was cut. The same "
                            "seed gives the same parts.",
                            "conflux partition data/fortunes --by dirichlet --alpha 0.3 --parts 4 --seed 1 "
                            "--out-dir data/clients"}))
    return 0;
  o.seed = static_cast<uint64_t>(seed);
  o.command_line = "conflux partition";
  for (auto& a : args) o.command_line += " " + a;
  const auto r = dp::partition_dataset(o);
  std::string text = fmt::format("partitioned {} ({} rows) by {} into {} parts at {}:", o.input,
                                 r.summary["rows_in"].get<int64_t>(), o.by, o.parts, o.out_dir);
  for (const auto& p : r.summary["partition"]) {
    text += fmt::format("\n  {}: {} rows", p["dir"].get<std::string>(), p["rows"].get<int64_t>());
    if (p.contains("values")) text += fmt::format(", {} value(s) of {}", p["values"].size(), r.field);
  }
  conflux::cli::emit(vm.count("json") > 0, r.summary.dump(), text);
  return 0;
}

CONFLUX_VERB("partition", "split a dataset into one dataset per federated participant (iid, group, dirichlet)",
             run_partition);

}  // namespace
