// The prepare pipeline: plan, read, validate, dedup, noise, augment, PCA, write (see prepare.h).
#include "conflux/dataplane/prepare.h"

#include "conflux/core/build_config.h"
#include "conflux/core/error.h"
#include "conflux/core/log.h"
#include "conflux/dataplane/dataset.h"
#include "conflux/dataplane/distributed.h"
#include "conflux/dataplane/pca.h"
#include "parallel.h"
#include "stages.h"

#include <chrono>
#include <ctime>
#include <filesystem>
#include <future>

namespace conflux::dataplane {

namespace {

using nlohmann::json;

// Rank 0 plans; everyone receives the boundaries.
std::vector<int64_t> make_plan(Communicator& comm, const Dataset& ds, const PrepareConfig& cfg) {
  std::vector<int64_t> bounds;
  if (comm.rank() == 0) {
    int64_t n = ds.num_rows();
    std::vector<int64_t> cum;
    if (cfg.plan == "tokens" && ds.schema().index_of_role(Role::Tokens) >= 0 && n > 0) {
      cum = ds.token_offsets(0, n);
      for (int64_t i = 0; i <= n; ++i) cum[i] += i;  // +1 per row: empty rows still cost
    } else {
      cum.resize(static_cast<size_t>(n) + 1);
      for (int64_t i = 0; i <= n; ++i) cum[i] = i;
    }
    bounds = balanced_boundaries(cum, comm.size(), kPlanBlock);
  }
  return broadcast_boundaries(comm, bounds);
}

std::vector<std::string_view> content_of(const Table& t, size_t f) {
  std::vector<std::string_view> out(static_cast<size_t>(t.rows()));
  for (int64_t r = 0; r < t.rows(); ++r) out[r] = t.row_bytes(f, r);
  return out;
}

size_t dedup_field(const Schema& s, const PrepareConfig& cfg) {
  if (!cfg.dedup_field.empty()) return s.require(cfg.dedup_field);
  for (Role r : {Role::Tokens, Role::Text, Role::Features}) {
    int i = s.index_of_role(r);
    if (i >= 0) return static_cast<size_t>(i);
  }
  CONFLUX_THROW(ConfigError, "dedup: the dataset has no tokens, text or features field ({})", s.describe());
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

PrepareResult prepare(Communicator& comm, const PrepareConfig& cfg, const json& effective_config,
                      const std::string& command_line) {
  namespace fs = std::filesystem;
  PrepareResult res;
  const auto t0 = std::chrono::steady_clock::now();
  if (fs::weakly_canonical(cfg.input) == fs::weakly_canonical(cfg.output))
    CONFLUX_THROW(ConfigError, "prepare.output must differ from prepare.input ('{}')", cfg.input);
  OpenOptions oo;
  oo.verify_checksums = false;
  Dataset ds;
  collective_try(comm, "opening the input", [&] {
    ds = Dataset::open(cfg.input, oo);
    for (auto& f : cfg.require_fields)
      if (ds.schema().index_of(f) < 0)
        CONFLUX_THROW(DataError, "{}: required field '{}' is missing (schema: {})", cfg.input, f,
                      ds.schema().describe());
  });

  // 1. Plan and read my range (verifying the shards it touches).
  auto bounds = make_plan(comm, ds, cfg);
  const int64_t begin = bounds[comm.rank()], end = bounds[comm.rank() + 1];
  auto t = std::chrono::steady_clock::now();
  LocalRows rows;
  // Checksums of my shards run on worker threads while this thread reads and runs the stages;
  // the write waits for them. A mismatch wins over any error that the corrupt bytes caused.
  const int threads = worker_threads(static_cast<int>(cfg.threads));
  std::future<void> verified;
  if (cfg.verify_input) {
    std::vector<int64_t> my_shards;
    const auto& starts = ds.shard_row_starts();
    for (int64_t s = 0; s < ds.num_shards(); ++s) {
      bool mine = starts[s] < end && starts[s + 1] > begin;
      if (mine || (comm.rank() == 0 && starts[s] == starts[s + 1])) my_shards.push_back(s);
    }
    verified = std::async(std::launch::async, [&ds, my_shards, threads] { ds.verify_shards(my_shards, threads); });
  }
  auto checksum_first = [&] {  // in an error path: report a checksum mismatch if there is one
    if (verified.valid()) verified.get();
  };
  auto stages = [&]() -> PrepareResult {
    collective_try(comm, "reading the input", [&] { rows.table = ds.read(begin, end); });
    rows.row_ids.resize(static_cast<size_t>(end - begin));
    for (int64_t i = begin; i < end; ++i) rows.row_ids[i - begin] = i;
    res.rows_in = ds.num_rows();
    log::info("plan: {} rows over {} ranks; rank 0 reads [{}, {})", res.rows_in, comm.size(), begin, end);
    json timings = json::object();
    auto lap = [&](const char* name, std::chrono::steady_clock::time_point& t) {
      timings[name] = seconds_since(t);
      t = std::chrono::steady_clock::now();
    };
    lap("read", t);

    // 2. Validate.
    Counters dropped;
    for (auto* v : validator_registry())
      if (cfg.validate && v->enabled(cfg.checks))
        for (auto& r : v->reasons()) dropped.index(r);
    // With exact dedup on, the rows validation drops are removed together with the duplicates
    // (one compaction of the columns instead of two); dedup sees only the valid rows.
    std::vector<uint8_t> valid;
    if (cfg.validate)
      collective_try(comm, "validation", [&] { run_validate(rows, cfg, dropped, comm.rank(), cfg.exact ? &valid : nullptr); });
    lap("validate", t);

    // 3. Exact dedup.
    size_t dedup_f = 0;
    collective_try(comm, "dedup setup", [&] {
      if (cfg.exact || cfg.near) dedup_f = dedup_field(rows.table.schema(), cfg);
      if (cfg.near && !rows.table.schema()[dedup_f].ragged())
        CONFLUX_THROW(ConfigError, "dedup.near needs a tokens or text field; '{}' is {}",
                      rows.table.schema()[dedup_f].name, role_name(rows.table.schema()[dedup_f].role));
    });
    size_t exact_i = dropped.index("exact_duplicate");
    size_t near_i = dropped.index("near_duplicate");
    if (cfg.exact) {
      size_t f = dedup_f;
      // Dedup sees the rows validation kept (all rows when it dropped none); then one compaction
      // removes both.
      if (valid.empty()) valid.assign(rows.row_ids.size(), 1);
      std::vector<std::string_view> content = content_of(rows.table, f);
      std::vector<int64_t> ids;
      ids.reserve(valid.size());
      for (size_t r = 0; r < valid.size(); ++r)
        if (valid[r]) {
          content[ids.size()] = content[r];
          ids.push_back(rows.row_ids[r]);
        }
      content.resize(ids.size());
      auto keep = exact_dedup(comm, ids, content, bounds, static_cast<int>(cfg.threads));
      for (size_t r = 0, j = 0; r < valid.size(); ++r)
        if (valid[r]) {
          valid[r] = keep[j++];
          dropped.counts[exact_i] += valid[r] ? 0 : 1;
        }
      rows.filter(valid);
    }
    lap("exact_dedup", t);

    // 4. Near dedup.
    if (cfg.near) {
      size_t f = dedup_f;
      const Field& fd = rows.table.schema()[f];
      DedupRecords recs;
      std::vector<std::vector<int32_t>> widened;  // text bytes as int32 tokens
      recs.row_ids = rows.row_ids;
      for (int64_t r = 0; r < rows.table.rows(); ++r) {
        int64_t n;
        if (fd.role == Role::Tokens) {
          recs.data.push_back(rows.table.row<int32_t>(f, r, &n));
        } else {
          const uint8_t* b = rows.table.row<uint8_t>(f, r, &n);
          widened.emplace_back(b, b + n);
          recs.data.push_back(widened.back().data());
        }
        recs.sizes.push_back(n);
      }
      if (fd.role != Role::Tokens)  // emplace_back may have moved earlier vectors
        for (size_t i = 0; i < widened.size(); ++i) recs.data[i] = widened[i].data();
      auto keep = near_dedup(comm, recs, cfg.minhash, bounds, &res.near);
      for (auto k : keep) dropped.counts[near_i] += k ? 0 : 1;
      rows.filter(keep);
    }
    lap("near_dedup", t);

    // 5. DP noise, 6. augmentation, 7. PCA.
    json noise_summary, augment_summary, pca_summary;
    std::vector<json> entries;
    collective_try(comm, "privacy noise", [&] { entries = run_noise(comm, rows, cfg, &noise_summary); });
    lap("noise", t);
    int64_t kept_rows = rows.table.rows();
    collective_try(comm, "augmentation", [&] { run_augment(rows, cfg, &augment_summary); });
    lap("augment", t);
    if (cfg.pca_components > 0) {
      const Schema& s = rows.table.schema();
      size_t f = cfg.pca_field.empty() ? s.require_role(Role::Features) : s.require(cfg.pca_field);
      if (s[f].role != Role::Features) CONFLUX_THROW(ConfigError, "pca.field '{}' is not a features field", s[f].name);
      std::vector<int64_t> blocks(rows.row_ids.size());
      for (size_t i = 0; i < blocks.size(); ++i) blocks[i] = rows.row_ids[i] / kPlanBlock;
      const float* x = reinterpret_cast<const float*>(rows.table.column(f).data.data());
      auto pca = distributed_pca(comm, x, rows.table.rows(), s[f].dim, cfg.pca_components, blocks);
      auto y = pca_project(pca, x, rows.table.rows());
      std::vector<Field> fields = s.fields();
      fields[f].dim = pca.k;
      Table projected{Schema(fields)};
      for (size_t g = 0; g < fields.size(); ++g) projected.column(g) = rows.table.column(g);
      projected.column(f).data.assign(reinterpret_cast<const uint8_t*>(y.data()),
                                      reinterpret_cast<const uint8_t*>(y.data() + y.size()));
      projected.set_rows(rows.table.rows());
      rows.table = std::move(projected);
      pca_summary = {{"field", fields[f].name}, {"input_dim", pca.dim}, {"components", pca.k},
                     {"explained_variance_ratio", pca.explained_ratio}, {"eigenvalues", pca.eigenvalues},
                     {"rows", pca.count}};
    }
    lap("pca", t);

    // Global counts.
    std::vector<int64_t> counts = dropped.counts;
    counts.push_back(kept_rows);
    counts.push_back(rows.table.rows());
    allreduce_sum(comm, counts);
    json dropped_j = json::object();
    for (size_t i = 0; i < dropped.names.size(); ++i) {
      res.dropped[dropped.names[i]] = counts[i];
      dropped_j[dropped.names[i]] = counts[i];
    }
    int64_t kept_total = counts[dropped.names.size()];
    res.rows_out = counts[dropped.names.size() + 1];
    res.copies = res.rows_out - kept_total;

    // 8. Manifest and write.
    const Manifest& parent = ds.manifest();
    Manifest m;
    m.schema = rows.table.schema();
    m.tokenizer = parent.tokenizer;
    json stage = {{"stage", "prepare"},
                  {"tool", std::string("conflux ") + CONFLUX_VERSION},
                  {"time", static_cast<int64_t>(std::time(nullptr))},
                  {"command", command_line},
                  {"parent", cfg.input},
                  {"parent_sha256", sha256_file(cfg.input + "/" + kManifestFile)},
                  {"seed", cfg.seed >= 0 ? json(cfg.seed) : json("secure")},
                  {"config", effective_config},
                  {"rows_in", res.rows_in},
                  {"rows_kept", kept_total},
                  {"rows_out", res.rows_out},
                  {"augmented_copies", res.copies},
                  {"dropped", dropped_j},
                  {"noise", noise_summary}};
    if (cfg.near)
      stage["near_dedup"] = {{"bands", cfg.minhash.bands}, {"rows", cfg.minhash.rows}, {"shingle", cfg.minhash.shingle},
                             {"threshold", cfg.minhash.effective_threshold()}, {"candidate_pairs", res.near.candidates},
                             {"verified_pairs", res.near.verified}, {"clusters", res.near.clusters}};
    if (!augment_summary.is_null()) stage["augment"] = augment_summary;
    if (!pca_summary.is_null()) stage["pca"] = pca_summary;
    m.provenance = parent.provenance;
    m.provenance.push_back(stage);
    m.privacy = compose_ledger(parent.privacy, entries);
    lap("plan_manifest", t);
    collective_try(comm, "verifying the input checksums", [&] { checksum_first(); });
    lap("verify_wait", t);
    WriterOptions wo;
    wo.threads = threads;
    wo.allow_empty = cfg.allow_empty;
    std::string why;
    for (auto& [name, n] : res.dropped) why += fmt::format("{}{}={}", why.empty() ? "" : ", ", name, n);
    wo.empty_reason = fmt::format("every one of the {} input rows was dropped ({})", res.rows_in, why);
    wo.allow_empty_how = "prepare.allow_empty = true";
    m = write_distributed(comm, cfg.output, rows.table, cfg.rows_per_shard, m, wo);
    lap("write", t);
    timings["total"] = seconds_since(t0);
    stage["timings_rank0"] = timings;
    res.stage = stage;
    if (comm.rank() == 0) res.manifest = m;
    log::info("prepare: {} rows in, {} kept, {} written ({} augmented copies) in {:.2f} s", res.rows_in, kept_total,
              res.rows_out, res.copies, seconds_since(t0));
    return res;
  };
  try {
    return stages();
  } catch (...) {
    checksum_first();
    throw;
  }
}

}  // namespace conflux::dataplane
