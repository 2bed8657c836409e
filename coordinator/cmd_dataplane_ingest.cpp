// `conflux ingest`: raw JSONL / text / fortune / CSV files -> a Conflux dataset (MPI-aware:
// files are spread over ranks; the output does not depend on the number of ranks).
#include "conflux/cli/cli.h"
#include "conflux/core/error.h"
#include "conflux/core/process_grid.h"
#include "conflux/dataplane/ingest.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace {

namespace po = conflux::cli::po;
namespace dp = conflux::dataplane;

int run_ingest(const conflux::cli::Args& args) {
  dp::IngestOptions o;
  po::options_description opts("options");
  opts.add_options()
      ("input,i", po::value(&o.inputs)->multitoken()->required(), "input files or directories (repeatable)")
      ("output,o", po::value(&o.output)->required(), "output dataset directory (replaced atomically; never by an empty one)")
      ("format,f", po::value(&o.format)->default_value("jsonl"), "jsonl | text | lines | fortune | csv")
      ("text-field", po::value(&o.text_field)->default_value("text"), "jsonl: the field holding the document")
      ("label-field", po::value(&o.label_field), "jsonl: field with an integer or string label")
      ("group-field", po::value(&o.group_field), "jsonl: field with an integer or string group")
      ("label-column", po::value(&o.label_column), "csv: label column (header name or 0-based index)")
      ("group-by-file", po::bool_switch(&o.group_by_file), "group = index of the source file")
      ("keep-text", po::bool_switch(&o.keep_text), "also store the original UTF-8 text in a `text` field")
      ("no-eos", "do not end each document with the eos token (257)")
      ("keep-empty", "keep documents that are empty or whitespace only")
      ("allow-empty", po::bool_switch(&o.allow_empty),
       "write a dataset of zero rows when no document is found (never over a dataset that has rows)")
      ("exclude", po::value(&o.exclude_suffixes)->multitoken(),
       "skip files with this suffix when expanding directories (default for fortune: .dat)")
      ("rows-per-shard", conflux::cli::number(&o.rows_per_shard, 1)->default_value(65536), "rows per part-NNNNN.h5 shard")
      ("json", "print a JSON summary");
  po::positional_options_description pos;
  po::variables_map vm;
  if (!conflux::cli::parse(args, opts, nullptr, vm,
                           {"ingest", "-i INPUT... -o DATASET [--format F] [options]",
                            "Reads raw files into a Conflux dataset: byte-level tokens (0-255, pad 256, eos 257, "
                            "mask 258; vocabulary 259), optional original text, labels and groups. Run under "
                            "mpirun to spread the files over ranks.",
                            "conflux ingest -i /usr/share/games/fortunes -f fortune --keep-text --group-by-file "
                            "-o data/fortunes-raw"}))
    return 0;
  o.add_eos = !vm.count("no-eos");
  o.skip_empty = !vm.count("keep-empty");
  o.command_line = "conflux ingest";
  for (auto& a : args) o.command_line += " " + a;
  conflux::ProcessGrid grid;
  auto res = dp::ingest(grid.world(), o);
  if (grid.world_rank() == 0) {
    nlohmann::json j = {{"output", o.output}, {"rows", res.rows}, {"files", res.files},
                        {"bytes_in", res.bytes_in}, {"skipped_empty", res.skipped_empty},
                        {"shards", res.manifest.shards.size()}, {"ranks", grid.world_size()}};
    conflux::cli::emit(vm.count("json") > 0, j.dump(),
                       fmt::format("ingested {} files ({} bytes) into {} rows in {} shards at {} ({} empty skipped)",
                                   res.files, res.bytes_in, res.rows, res.manifest.shards.size(), o.output,
                                   res.skipped_empty));
  }
  return 0;
}

CONFLUX_VERB("ingest", "raw JSONL/text/fortune/CSV files -> a sharded HDF5 dataset", run_ingest);

}  // namespace
