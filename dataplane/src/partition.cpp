// One dataset per federated participant: the plan (which rows go to which part; pure) and the
// atomic write of all parts (partition.h has the contract).
#include "conflux/dataplane/partition.h"

#include "conflux/core/atomic_file.h"
#include "conflux/core/build_config.h"
#include "conflux/core/error.h"
#include "conflux/core/log.h"
#include "conflux/core/rng.h"
#include "conflux/dataplane/dataset.h"
#include "conflux/dataplane/ops.h"
#include "conflux/dataplane/writer.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <map>
#include <numeric>

namespace conflux::dataplane {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kSummaryFile = "partition.json";

void check_options(const PartitionOptions& o) {
  if (o.by != "iid" && o.by != "group" && o.by != "dirichlet")
    CONFLUX_THROW(UsageError, "partition: --by must be iid, group or dirichlet (got '{}')", o.by);
  if (o.parts < 1) CONFLUX_THROW(UsageError, "partition: --parts must be at least 1 (got {})", o.parts);
  if (o.by == "dirichlet" && !(std::isfinite(o.alpha) && o.alpha > 0))
    CONFLUX_THROW(UsageError, "partition: --alpha must be a finite number > 0 (got {})", o.alpha);
  if (o.min_rows < 1) CONFLUX_THROW(UsageError, "partition: --min-rows must be at least 1 (got {})", o.min_rows);
  if (o.rows_per_shard < 1)
    CONFLUX_THROW(UsageError, "partition: --rows-per-shard must be at least 1 (got {})", o.rows_per_shard);
}

// Fisher-Yates with the seeded stream: v is permuted in place.
void shuffle(std::vector<int64_t>& v, RandomSource& rng) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng.below(i)]);
}

std::vector<std::vector<int64_t>> plan_iid(const PartitionOptions& o, int64_t n) {
  std::vector<int64_t> perm(static_cast<size_t>(n));
  std::iota(perm.begin(), perm.end(), 0);
  Stream rng(o.seed, "partition-iid");
  shuffle(perm, rng);
  std::vector<std::vector<int64_t>> parts(static_cast<size_t>(o.parts));
  for (int64_t p = 0; p < o.parts; ++p) {
    const int64_t b = p * n / o.parts, e = (p + 1) * n / o.parts;
    parts[p].assign(perm.begin() + b, perm.begin() + e);
  }
  return parts;
}

// Rows of each distinct value, values ascending, rows ascending.
std::map<int64_t, std::vector<int64_t>> rows_by_value(const std::vector<int64_t>& values) {
  std::map<int64_t, std::vector<int64_t>> by;
  for (size_t r = 0; r < values.size(); ++r) by[values[r]].push_back(static_cast<int64_t>(r));
  return by;
}

std::vector<std::vector<int64_t>> plan_group(const PartitionOptions& o, const std::vector<int64_t>& values) {
  const auto by = rows_by_value(values);
  if (static_cast<int64_t>(by.size()) < o.parts)
    CONFLUX_THROW(DataError, "partition --by group: field '{}' of '{}' has {} distinct value(s), fewer than "
                  "--parts {} (each part needs at least one whole group)", o.field, o.input, by.size(), o.parts);
  std::vector<const std::pair<const int64_t, std::vector<int64_t>>*> groups;
  for (const auto& g : by) groups.push_back(&g);
  std::stable_sort(groups.begin(), groups.end(),
                   [](const auto* a, const auto* b) { return a->second.size() > b->second.size(); });
  std::vector<std::vector<int64_t>> parts(static_cast<size_t>(o.parts));
  for (const auto* g : groups) {
    size_t best = 0;
    for (size_t p = 1; p < parts.size(); ++p)
      if (parts[p].size() < parts[best].size()) best = p;
    parts[best].insert(parts[best].end(), g->second.begin(), g->second.end());
  }
  return parts;
}

// Dir(alpha, ..., alpha) over k parts from Gamma(alpha) draws. If every draw underflows to 0
// (alpha far below 1), the limit of the distribution: all mass on one uniformly chosen part.
std::vector<double> sample_dirichlet(RandomSource& rng, double alpha, size_t k) {
  std::vector<double> p(k);
  double total = 0;
  for (double& x : p) total += (x = sample_gamma(rng, alpha));
  if (!(total > 0)) {
    std::fill(p.begin(), p.end(), 0.0);
    p[rng.below(k)] = 1.0;
    return p;
  }
  for (double& x : p) x /= total;
  return p;
}

std::vector<std::vector<int64_t>> plan_dirichlet(const PartitionOptions& o, const std::vector<int64_t>& values,
                                                  int* attempts) {
  const int64_t n = static_cast<int64_t>(values.size());
  if (o.min_rows * o.parts > n)
    CONFLUX_THROW(DataError, "partition --by dirichlet: '{}' has {} rows, fewer than --parts {} x --min-rows {}",
                  o.input, n, o.parts, o.min_rows);
  const auto by = rows_by_value(values);
  for (int attempt = 1; attempt <= kMaxDirichletDraws; ++attempt) {
    Stream rng(o.seed, "partition-dirichlet", 0, static_cast<uint64_t>(attempt));
    std::vector<std::vector<int64_t>> parts(static_cast<size_t>(o.parts));
    for (const auto& [value, rows_of_value] : by) {
      std::vector<int64_t> rows = rows_of_value;
      shuffle(rows, rng);
      const auto p = sample_dirichlet(rng, o.alpha, parts.size());
      const double count = static_cast<double>(rows.size());
      double cum = 0;
      size_t begin = 0;
      for (size_t k = 0; k < parts.size(); ++k) {
        cum += p[k];
        // numpy's (cumsum(p) * n).astype(int) cut points; the last part takes the rest.
        size_t end = k + 1 == parts.size() ? rows.size()
                                           : std::min(rows.size(), static_cast<size_t>(std::floor(cum * count)));
        end = std::max(end, begin);
        parts[k].insert(parts[k].end(), rows.begin() + static_cast<std::ptrdiff_t>(begin),
                        rows.begin() + static_cast<std::ptrdiff_t>(end));
        begin = end;
      }
    }
    const bool ok = std::all_of(parts.begin(), parts.end(),
                                [&](const auto& part) { return static_cast<int64_t>(part.size()) >= o.min_rows; });
    if (ok) {
      *attempts = attempt;
      return parts;
    }
  }
  CONFLUX_THROW(DataError, "partition --by dirichlet: no draw in {} gave every one of the {} parts at least "
                "--min-rows {} rows of '{}' (field '{}', {} values, alpha {}); use a larger --alpha, fewer --parts "
                "or a smaller --min-rows", kMaxDirichletDraws, o.parts, o.min_rows, o.input, o.field, by.size(),
                o.alpha);
}

// The field for group / dirichlet (partition.h): named, or the first label, or the first group.
std::string resolve_field(const PartitionOptions& o, const Schema& schema) {
  if (!o.field.empty()) {
    const int i = schema.index_of(o.field);
    if (i < 0)
      CONFLUX_THROW(DataError, "partition --field '{}': no such field in '{}' (fields: {})", o.field, o.input,
                    schema.describe());
    const Role role = schema[static_cast<size_t>(i)].role;
    if (role != Role::Label && role != Role::Group)
      CONFLUX_THROW(DataError, "partition --field '{}' of '{}' has role {}; --by {} needs a label or group field "
                    "(fields: {})", o.field, o.input, role_name(role), o.by, schema.describe());
    return o.field;
  }
  for (Role role : {Role::Label, Role::Group}) {
    const int i = schema.index_of_role(role);
    if (i >= 0) return schema[static_cast<size_t>(i)].name;
  }
  CONFLUX_THROW(DataError, "partition --by {}: '{}' has no label or group field to split by (fields: {}); "
                "ingest one (--label-field, --group-field, --group-by-file), name one with --field, or use --by iid",
                o.by, o.input, schema.describe());
}

// Removes the staging directory unless the publish happened.
struct StagingGuard {
  std::string out_dir;
  bool published = false;
  ~StagingGuard() {
    if (!published) remove_staging(out_dir);
  }
};

}  // namespace

std::string partition_dir_name(int64_t index, int64_t parts) {
  const int digits = std::max<int>(3, static_cast<int>(std::to_string(std::max<int64_t>(parts - 1, 0)).size()));
  return fmt::format("part-{:0{}d}", index, digits);
}

PartitionResult plan_partition(const PartitionOptions& o, int64_t rows, const std::vector<int64_t>& values) {
  check_options(o);
  if (rows < o.parts)
    CONFLUX_THROW(DataError, "partition: '{}' has {} row(s), fewer than --parts {} (every part needs a row)",
                  o.input, rows, o.parts);
  if (o.by != "iid" && static_cast<int64_t>(values.size()) != rows)
    CONFLUX_THROW(InternalError, "partition: {} field values for {} rows", values.size(), rows);
  PartitionResult r;
  r.field = o.by == "iid" ? "" : o.field;
  if (o.by == "iid") r.rows = plan_iid(o, rows);
  else if (o.by == "group") r.rows = plan_group(o, values);
  else r.rows = plan_dirichlet(o, values, &r.attempts);
  for (auto& part : r.rows) std::sort(part.begin(), part.end());

  json parts = json::array();
  for (size_t p = 0; p < r.rows.size(); ++p) {
    json entry = {{"dir", partition_dir_name(static_cast<int64_t>(p), o.parts)},
                  {"rows", r.rows[p].size()}};
    if (o.by != "iid") {
      std::map<int64_t, int64_t> counts;
      for (int64_t row : r.rows[p]) ++counts[values[row]];
      json c = json::object();
      for (auto& [v, n] : counts) c[std::to_string(v)] = n;
      entry["values"] = c;  // rows per field value
    }
    parts.push_back(entry);
  }
  r.summary = {{"by", o.by}, {"parts", o.parts}, {"rows_in", rows}, {"field", r.field.empty() ? json() : json(r.field)},
               {"alpha", o.by == "dirichlet" ? json(o.alpha) : json()},
               {"seed", o.by == "group" ? json() : json(o.seed)},
               {"min_rows", o.by == "dirichlet" ? json(o.min_rows) : json()},
               {"attempts", o.by == "dirichlet" ? json(r.attempts) : json()}, {"partition", parts}};
  return r;
}

PartitionResult partition_dataset(const PartitionOptions& o) {
  check_options(o);
  if (o.out_dir.empty()) CONFLUX_THROW(UsageError, "partition: --out-dir is required");
  Dataset ds = Dataset::open(o.input);
  const Manifest& parent = ds.manifest();
  const Schema& schema = ds.schema();
  PartitionOptions opts = o;
  if (o.by != "iid") opts.field = resolve_field(o, schema);
  // The staging directory first: it refuses an out_dir that is neither empty nor a partition.
  StagingGuard guard{o.out_dir};
  const std::string staging = prepare_staging(o.out_dir, kSummaryFile, "a partition output");

  const int64_t n = ds.num_rows();
  const Table all = ds.read(0, n);
  std::vector<int64_t> values;
  if (o.by != "iid") {
    size_t count = 0;
    const int64_t* v = all.values<int64_t>(schema.require(opts.field), &count);
    values.assign(v, v + count);
  }
  PartitionResult r = plan_partition(opts, n, values);
  r.summary["input"] = o.input;
  const std::string parent_sha = sha256_file(o.input + "/" + kManifestFile);
  r.summary["parent_sha256"] = parent_sha;

  const json params = {{"by", o.by}, {"parts", o.parts}, {"alpha", r.summary["alpha"]}, {"seed", r.summary["seed"]},
                       {"field", r.summary["field"]}, {"min_rows", r.summary["min_rows"]}};
  WriterOptions wo;
  for (size_t p = 0; p < r.rows.size(); ++p) {
    Table part(schema);
    part.reserve_rows(static_cast<int64_t>(r.rows[p].size()));
    for (int64_t row : r.rows[p]) part.append_row_from(all, row);
    const std::string dir = staging + "/" + partition_dir_name(static_cast<int64_t>(p), o.parts);
    DatasetWriter writer(dir, schema, /*create_staging=*/true, wo);
    Manifest m;
    m.schema = schema;
    m.tokenizer = parent.tokenizer;
    m.privacy = parent.privacy;
    m.provenance = parent.provenance;
    json stage = {{"stage", "partition"},
                  {"tool", std::string("conflux ") + CONFLUX_VERSION},
                  {"time", static_cast<int64_t>(std::time(nullptr))},
                  {"command", o.command_line},
                  {"parent", o.input},
                  {"parent_sha256", parent_sha},
                  {"params", params},
                  {"index", p},
                  {"rows_in", n},
                  {"rows_out", part.rows()}};
    if (o.by == "dirichlet") stage["attempts"] = r.attempts;
    m.provenance.push_back(stage);
    for (int64_t b = 0, s = 0; b < part.rows(); b += o.rows_per_shard, ++s) {
      const int64_t e = std::min(part.rows(), b + o.rows_per_shard);
      m.shards.push_back(writer.write_image(
          s, e - b, shard_image(part, b, e, wo, writer.staging() + "/" + shard_file_name(s))));
    }
    writer.commit(m);
  }
  write_file_atomic(staging + "/" + kSummaryFile, r.summary.dump(2) + "\n");
  publish_directory(staging, o.out_dir, PublishOptions{/*sync_files=*/false});
  guard.published = true;
  log::info("partition: {} rows of '{}' into {} parts at '{}' (by {})", n, o.input, o.parts, o.out_dir, o.by);
  return r;
}

}  // namespace conflux::dataplane
