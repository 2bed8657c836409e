// Partitioning a dataset into one dataset per federated participant (`conflux partition`).
//
//   PartitionOptions o;
//   o.input = "data/fortunes"; o.out_dir = "data/clients"; o.by = "dirichlet"; o.parts = 4;
//   o.alpha = 0.3; o.seed = 1;
//   auto r = partition_dataset(o);   // data/clients/part-000 ... part-003, partition.json
//
// Methods (each row goes to exactly one part; rows keep their input order inside a part):
//   iid        a seeded Fisher-Yates shuffle of the rows, cut into `parts` contiguous slices
//              whose sizes differ by at most one.
//   group      rows grouped by the value of a label or group field; whole groups go to parts,
//              largest group first to the part with the fewest rows so far (ties: lower part
//              index, then lower value). No randomness: the seed is not used. Needs at least
//              `parts` distinct values.
//   dirichlet  label skew, the standard non-IID recipe (Hsu et al. 2019; NIID-Bench, Li et al.
//              2021): for each value c of the field (ascending), its rows are shuffled and split
//              by proportions p_c ~ Dir(alpha, ..., alpha) over the parts at the cut points
//              floor(cumsum(p_c) * n_c). The whole draw is repeated (attempt 1, 2, ... each from
//              its own seeded stream) until every part has at least `min_rows` rows, at most
//              kMaxDirichletDraws times. Small alpha: each value lands mostly in one part.
// The field for group and dirichlet: `field`, or else the dataset's first label field, or else
// its first group field; it must have role label or group (int64 per row). A dataset with
// neither is refused (DataError naming --field), as is a field of another role.
//
// Output: out_dir/part-000, part-001, ... (three digits, more when parts > 1000), each a normal
// Conflux dataset with the input's schema, tokenizer and privacy ledger, and a provenance chain
// that is the input's plus one record {"stage": "partition", "params": {by, parts, alpha, seed,
// field, min_rows}, "index", "parent", "parent_sha256", "rows_in", "rows_out", ...}; plus
// out_dir/partition.json, a summary (rows per part, values per part). The whole out_dir is
// built in a staging directory next to it and published with one rename, so readers see all
// parts or none. An existing out_dir is replaced only if it is empty or holds a previous
// partition (a partition.json); anything else is refused (IoError), so a typo cannot delete a
// directory.
// Deterministic: the same input, options and seed give the same rows in every part (the shard
// bytes are identical; manifests differ only in the recorded time and command).
// Memory: the whole input is read into memory once (this is a tool for demos and experiments).
// Errors: UsageError for bad options (parts < 1, alpha <= 0, unknown method), DataError for data
// that cannot be partitioned as asked (unknown or wrong-role field, fewer rows or groups than
// parts, min_rows not reachable), each naming the flag, the field and the dataset.
// Thread safety: call from one thread (HDF5).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace conflux::dataplane {

inline constexpr int kMaxDirichletDraws = 1000;

struct PartitionOptions {
  std::string input;            // dataset directory
  std::string out_dir;          // receives part-NNN/ and partition.json
  std::string by = "iid";       // iid | group | dirichlet
  int64_t parts = 0;            // >= 1
  double alpha = 0.5;           // dirichlet concentration, > 0
  std::string field;            // group / dirichlet: label or group field ("" = first label, else group)
  uint64_t seed = 0;
  int64_t min_rows = 1;         // dirichlet: redraw until every part has this many rows (>= 1)
  int64_t rows_per_shard = 65536;
  std::string command_line;     // recorded in provenance
};

struct PartitionResult {
  std::vector<std::vector<int64_t>> rows;  // per part: input row indices, ascending
  std::string field;                       // the field used ("" for iid)
  int attempts = 1;                        // dirichlet draws used
  nlohmann::json summary;                  // what partition.json holds
};

// Which part each row goes to, from the per-row values of the field (ignored for iid; `rows`
// gives the row count). Pure; validates the options (UsageError / DataError as above).
PartitionResult plan_partition(const PartitionOptions& options, int64_t rows,
                               const std::vector<int64_t>& values);

// Reads options.input, plans, writes out_dir atomically (see above) and returns the plan.
PartitionResult partition_dataset(const PartitionOptions& options);

// "part-007" (three digits, or as many as `parts - 1` needs).
std::string partition_dir_name(int64_t index, int64_t parts);

}  // namespace conflux::dataplane
