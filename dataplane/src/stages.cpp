// Validate, DP-noise and augment stages of the prepare pipeline.
#include "stages.h"

#include "conflux/core/error.h"
#include "conflux/core/log.h"
#include "conflux/core/progress.h"
#include "conflux/core/rng.h"
#include "conflux/dataplane/distributed.h"
#include "fast_random.h"
#include "parallel.h"
#include "validate/scan.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <mutex>

namespace conflux::dataplane {

void LocalRows::filter(const std::vector<uint8_t>& keep) {
  table.filter(keep);
  size_t o = 0;
  for (size_t i = 0; i < row_ids.size(); ++i)
    if (keep[i]) row_ids[o++] = row_ids[i];
  row_ids.resize(o);
}

size_t Counters::index(const std::string& name) {
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i] == name) return i;
  names.push_back(name);
  counts.push_back(0);
  return names.size() - 1;
}

// Rows are split into chunks validated on worker threads; each row's outcome is the index of its
// reason (or -1), counted afterwards in row order, so the counts and the kept rows do not depend on
// the thread count. In "error" modes the first failing row of the lowest failing chunk is
// reported, i.e. the first failing row, as a sequential pass would.
void run_validate(LocalRows& rows, const PrepareConfig& cfg, Counters& dropped, int rank,
                  std::vector<uint8_t>* keep_out) {
  if (keep_out) keep_out->clear();
  const Schema& s = rows.table.schema();
  const int tok = s.index_of_role(Role::Tokens), txt = s.index_of_role(Role::Text),
            feat = s.index_of_role(Role::Features);
  Validator::Kinds kinds;
  kinds.text = tok >= 0 || txt >= 0;
  kinds.tokens = tok >= 0;
  kinds.features = feat >= 0;
  std::vector<const Validator*> active;
  std::vector<std::vector<std::string>> reasons;
  std::vector<std::vector<size_t>> reason_idx;
  for (auto* v : validator_registry()) {
    if (!v->enabled(cfg.checks)) continue;
    // Every enabled check keeps its counter (0 where it cannot fire), as before.
    std::vector<std::string> rs = v->reasons();
    std::vector<size_t> idx;
    for (auto& r : rs) idx.push_back(dropped.index(r));
    if (!v->applies(kinds)) continue;
    active.push_back(v);
    reasons.push_back(std::move(rs));
    reason_idx.push_back(std::move(idx));
  }
  if (active.empty()) return;
  const int64_t n = rows.table.rows();
  // Content tokens are counted as far as the length bounds need (exactly when the tokens are
  // also the text; see RowView): with min_tokens 1 and no max, one cache line per record.
  const int64_t cap = txt < 0 || cfg.checks.max_tokens > 0 ? INT64_MAX : std::max<int64_t>(cfg.checks.min_tokens, 1);
  std::vector<int32_t> outcome(static_cast<size_t>(n), -1);
  ProgressOptions po;
  po.rank = rank;
  po.unit = "rows";
  Progress progress("validate", static_cast<uint64_t>(n), po);
  std::mutex progress_mutex;
  constexpr int64_t kChunk = 8192;
  const Table& table = rows.table;
  parallel_for(static_cast<size_t>((n + kChunk - 1) / kChunk), worker_threads(static_cast<int>(cfg.threads)),
               [&](size_t c) {
    std::string buf;
    const int64_t r1 = std::min(n, static_cast<int64_t>(c + 1) * kChunk);
    const int64_t r0 = static_cast<int64_t>(c) * kChunk;
    // One check applies: its bulk form, if it has one (same outcomes as row by row).
    if (active.size() == 1 &&
        active[0]->check_rows(table, r0, r1, cfg.checks, cfg.input.c_str(), rows.row_ids.data() + r0, &outcome[r0])) {
      for (int64_t r = r0; r < r1; ++r)
        if (outcome[r] >= 0) outcome[r] = static_cast<int32_t>(reason_idx[0].at(static_cast<size_t>(outcome[r])));
      std::lock_guard<std::mutex> lock(progress_mutex);
      progress.advance(static_cast<uint64_t>(r1 - r0));
      return;
    }
    for (int64_t r = r0; r < r1; ++r) {
      RowView v;
      v.source = cfg.input.c_str();
      v.row = rows.row_ids[r];
      if (tok >= 0) {
        int64_t cnt;
        const int32_t* t = table.row<int32_t>(static_cast<size_t>(tok), r, &cnt);
        v.content_tokens = count_content_tokens(t, static_cast<size_t>(cnt), cap);
        if (txt < 0) {
          buf.resize(static_cast<size_t>(v.content_tokens));
          size_t o = 0;
          for (int64_t i = 0; i < cnt; ++i)
            if (static_cast<uint32_t>(t[i]) < 256u) buf[o++] = static_cast<char>(t[i]);
          v.text = buf;
          v.has_text = true;
        }
      }
      if (txt >= 0) {
        v.text = table.row_bytes(static_cast<size_t>(txt), r);
        v.has_text = true;
      }
      if (feat >= 0) v.features = table.row<float>(static_cast<size_t>(feat), r, &v.dim);
      for (size_t a = 0; a < active.size(); ++a) {
        std::string reason = active[a]->check(v, cfg.checks);
        if (reason.empty()) continue;
        size_t k = 0;
        while (k < reasons[a].size() && reasons[a][k] != reason) ++k;
        if (k == reasons[a].size())
          CONFLUX_THROW(InternalError, "validator '{}' returned the undeclared reason '{}'", active[a]->name(), reason);
        outcome[r] = static_cast<int32_t>(reason_idx[a][k]);
        break;
      }
    }
    std::lock_guard<std::mutex> lock(progress_mutex);
    progress.advance(static_cast<uint64_t>(r1 - r0));
  });
  progress.finish();
  std::vector<uint8_t> keep(static_cast<size_t>(n), 1);
  bool any = false;
  for (int64_t r = 0; r < n; ++r) {
    if (outcome[r] < 0) continue;
    keep[r] = 0;
    any = true;
    ++dropped.counts[static_cast<size_t>(outcome[r])];
  }
  if (!any) return;
  if (keep_out) {
    *keep_out = std::move(keep);
  } else {
    rows.filter(keep);
  }
}

namespace {

size_t field_for(const Schema& s, const std::string& name, Role role, const char* what) {
  int i = name.empty() ? s.index_of_role(role) : s.index_of(name);
  if (i < 0)
    CONFLUX_THROW(ConfigError, "{}: the dataset has no {} field{} (schema: {})", what, role_name(role),
                  name.empty() ? "" : " named '" + name + "'", s.describe());
  if (s[static_cast<size_t>(i)].role != role)
    CONFLUX_THROW(ConfigError, "{}: field '{}' has role {}, expected {}", what, name,
                  role_name(s[static_cast<size_t>(i)].role), role_name(role));
  return static_cast<size_t>(i);
}


}  // namespace

std::vector<nlohmann::json> run_noise(Communicator& comm, LocalRows& rows, const PrepareConfig& cfg,
                                      nlohmann::json* summary) {
  std::vector<nlohmann::json> entries;
  const bool secure = cfg.seed < 0;
  ChaChaRandom sec;  // private runs: ChaCha20 keystream under a fresh OS-random key
  const StreamKey feat_key = stream_key(static_cast<uint64_t>(cfg.seed), "dp/features");
  const StreamKey label_key = stream_key(static_cast<uint64_t>(cfg.seed), "dp/labels");
  const Schema& s = rows.table.schema();
  if (cfg.dp_features.mechanism != "none") {
    DpFieldConfig fc = cfg.dp_features;
    size_t f = field_for(s, fc.field, Role::Features, "privacy.features");
    fc.field = s[f].name;
    const DpMechanism* m = find_dp(fc.mechanism);
    Calibration cal = m->calibrate(fc);
    float* x0 = reinterpret_cast<float*>(rows.table.column(f).data.data());
    if (fc.mechanism == "gaussian") {
      gaussian_rows(x0, rows.table.rows(), s[f].dim, fc.clip, cal.scale, rows.row_ids.data(),
                    secure ? nullptr : &feat_key, worker_threads(static_cast<int>(cfg.threads)));
    } else {
      for (int64_t r = 0; r < rows.table.rows(); ++r) {
        int64_t d;
        float* x = rows.table.row_mut<float>(f, r, &d);
        if (secure) {
          m->apply_features(x, d, fc, cal, sec);
        } else {
          RowStream rng(feat_key, static_cast<uint64_t>(rows.row_ids[r]));
          m->apply_features(x, d, fc, cal, rng);
        }
      }
    }
    entries.push_back(ledger_entry(fc, cal, secure));
    log::info("noise: {} on '{}' eps {} clip {} -> scale {}", fc.mechanism, fc.field, fc.epsilon, fc.clip, cal.scale);
  }
  if (cfg.dp_labels.mechanism != "none") {
    DpFieldConfig lc = cfg.dp_labels;
    size_t f = field_for(s, lc.field, Role::Label, "privacy.labels");
    lc.field = s[f].name;
    if (lc.classes == 0) {
      int64_t mx = -1;
      for (int64_t r = 0; r < rows.table.rows(); ++r) {
        int64_t n;
        mx = std::max(mx, *rows.table.row<int64_t>(f, r, &n));
      }
      comm.allreduce(&mx, 1, DType::I64, ReduceOp::Max);
      lc.classes = mx + 1;
      log::warn("privacy.labels.classes not set: using max label + 1 = {} (this reads the data; set it in "
                "the config for a strict guarantee)", lc.classes);
    }
    const DpMechanism* m = find_dp(lc.mechanism);
    Calibration cal = m->calibrate(lc);
    for (int64_t r = 0; r < rows.table.rows(); ++r) {
      int64_t n;
      int64_t* y = rows.table.row_mut<int64_t>(f, r, &n);
      if (secure) {
        m->apply_label(y, cal, sec);
      } else {
        RowStream rng(label_key, static_cast<uint64_t>(rows.row_ids[r]));
        m->apply_label(y, cal, rng);
      }
    }
    entries.push_back(ledger_entry(lc, cal, secure));
  }
  *summary = {{"source", entries.empty() ? "none" : secure ? "secure" : "seeded: not private"},
              {"fields", entries.size()}};
  return entries;
}

void run_augment(LocalRows& rows, const PrepareConfig& cfg, nlohmann::json* summary) {
  if (cfg.augment_ops.empty()) return;
  std::vector<const AugmentOp*> ops;
  std::vector<int> op_bit;
  for (auto& name : cfg.augment_ops) {
    const AugmentOp* op = find_augment(name);
    if (!op) {
      std::string known;
      for (auto* o : augment_registry()) known += std::string(known.empty() ? "" : ", ") + o->name();
      CONFLUX_THROW(ConfigError, "augment.ops: unknown op '{}' (known: {})", name, known);
    }
    ops.push_back(op);
    const auto& reg = augment_registry();
    op_bit.push_back(static_cast<int>(std::find(reg.begin(), reg.end(), op) - reg.begin()));
  }
  const Schema& s = rows.table.schema();
  bool need_tok = false, need_feat = false;
  for (auto* op : ops) (op->role() == Role::Tokens ? need_tok : need_feat) = true;
  size_t tf = need_tok ? field_for(s, cfg.token_field, Role::Tokens, "augment") : 0;
  size_t ff = need_feat ? field_for(s, cfg.feature_field, Role::Features, "augment") : 0;
  int lf = s.index_of_role(Role::Label);
  const uint64_t seed = static_cast<uint64_t>(cfg.seed >= 0 ? cfg.seed : cfg.augment_seed);
  const StreamKey aug_key = stream_key(seed, "augment");
  std::vector<const Params*> op_params;
  for (auto* op : ops) op_params.push_back(&cfg.augment_params.at(op->name()));
  std::vector<double> op_prob;
  for (auto* p : op_params) op_prob.push_back(p->at("probability"));
  nlohmann::json op_ids = nlohmann::json::object();
  for (size_t k = 0; k < ops.size(); ++k) op_ids[ops[k]->name()] = int64_t{1} << op_bit[k];
  const int64_t n = rows.table.rows();
  const bool mark = cfg.copies > 0;
  bool in_place = !mark;
  for (auto* op : ops) in_place = in_place && op->length_preserving();
  if (in_place && !need_feat) {  // token ops only: each record transformed where it lies
    const int threads = worker_threads(static_cast<int>(cfg.threads));
    Column& c = rows.table.column(tf);
    if (ops.size() == 1 && std::string(ops[0]->name()) == "mask" && op_prob[0] >= 1.0) {
      // Masking alone: the same draws as the per-record op, fused into one pass per task.
      mask_rows(reinterpret_cast<int32_t*>(c.data.data()), c.offsets.data(), n, rows.row_ids.data(), aug_key,
                op_params[0]->at("rate"), threads);
    } else {
      constexpr int64_t kChunk = 4096;  // records per task
      parallel_for(static_cast<size_t>((n + kChunk - 1) / kChunk), threads, [&](size_t ch) {
        const int64_t r1 = std::min(n, static_cast<int64_t>(ch + 1) * kChunk);
        for (int64_t r = static_cast<int64_t>(ch) * kChunk; r < r1; ++r) {
          RowStream rng(aug_key, static_cast<uint64_t>(rows.row_ids[r]), 0);
          int32_t* t = reinterpret_cast<int32_t*>(c.data.data()) + c.offsets[r];
          const int64_t cnt = c.offsets[r + 1] - c.offsets[r];
          for (size_t k = 0; k < ops.size(); ++k) {
            if (op_prob[k] < 1.0 && !rng.bernoulli(op_prob[k])) continue;
            ops[k]->apply_tokens_in_place(t, cnt, rng, *op_params[k]);
          }
        }
      });
    }
    *summary = {{"ops", cfg.augment_ops}, {"copies", 0}, {"aug_op_bits", op_ids}};
    return;
  }

  // Output schema: copies are marked with their source row and the ops applied.
  std::vector<Field> fields = s.fields();
  if (mark) {
    if (s.index_of("aug_source") >= 0 || s.index_of("aug_op") >= 0)
      CONFLUX_THROW(ConfigError, "augment.copies: the input already has augmented copies (aug_source/aug_op)");
    fields.push_back({"aug_source", Role::Meta, 0});
    fields.push_back({"aug_op", Role::Meta, 0});
  }
  Table out{Schema(fields)};
  std::vector<int64_t> out_ids;
  out.reserve_rows(n * (cfg.copies + 1));
  for (size_t f = 0; f < s.size(); ++f)
    if (s[f].ragged()) out.column(f).data.reserve(rows.table.column(f).data.size() * (cfg.copies + 1));
  out_ids.reserve(static_cast<size_t>(n * (cfg.copies + 1)));
  // Block index ranges for mixup partners (rows of one aligned block are contiguous here).
  std::vector<int64_t> block_start(static_cast<size_t>(n)), block_end(static_cast<size_t>(n));
  for (int64_t r = 0, b = 0; r < n; r = b) {
    b = r;
    while (b < n && rows.row_ids[b] / kPlanBlock == rows.row_ids[r] / kPlanBlock) ++b;
    for (int64_t i = r; i < b; ++i) {
      block_start[i] = r;
      block_end[i] = b;
    }
  }
  std::vector<int32_t> toks;
  std::vector<float> feat;
  std::vector<std::string_view> parts;
  int64_t applied_total = 0;
  int64_t label = 0;  // the current record's (possibly mixed) label; rows point into it
  auto make = [&](int64_t r, int64_t copy, int64_t* mask) {
    RowStream rng(aug_key, static_cast<uint64_t>(rows.row_ids[r]), static_cast<uint64_t>(copy));
    int64_t cnt;
    if (need_tok) {
      const int32_t* t = rows.table.row<int32_t>(tf, r, &cnt);
      toks.assign(t, t + cnt);
    }
    label = 0;
    if (lf >= 0) label = *rows.table.row<int64_t>(static_cast<size_t>(lf), r, &cnt);
    if (need_feat) {
      const float* x = rows.table.row<float>(ff, r, &cnt);
      feat.assign(x, x + cnt);
    }
    *mask = 0;
    for (size_t k = 0; k < ops.size(); ++k) {
      const Params& p = *op_params[k];
      if (op_prob[k] < 1.0 && !rng.bernoulli(op_prob[k])) continue;
      *mask |= int64_t{1} << op_bit[k];
      if (ops[k]->role() == Role::Tokens) {
        ops[k]->apply_tokens(toks, rng, p);
      } else {
        FeatureRecord fr;
        fr.x = feat.data();
        fr.dim = static_cast<int64_t>(feat.size());
        fr.label = lf >= 0 ? &label : nullptr;
        int64_t bs = block_start[r], be = block_end[r];
        if (be - bs >= 2) {
          int64_t j = bs + static_cast<int64_t>(rng.below(static_cast<uint64_t>(be - bs - 1)));
          if (j >= r) ++j;  // any other row of the block
          fr.partner = rows.table.row<float>(ff, j, &cnt);
          if (lf >= 0) fr.partner_label = *rows.table.row<int64_t>(static_cast<size_t>(lf), j, &cnt);
        }
        ops[k]->apply_features(fr, rng, p);
      }
    }
    parts.clear();
    for (size_t f = 0; f < s.size(); ++f) {
      if (need_tok && f == tf)
        parts.emplace_back(reinterpret_cast<const char*>(toks.data()), toks.size() * 4);
      else if (need_feat && f == ff)
        parts.emplace_back(reinterpret_cast<const char*>(feat.data()), feat.size() * 4);
      else if (lf >= 0 && f == static_cast<size_t>(lf))
        parts.emplace_back(reinterpret_cast<const char*>(&label), 8);
      else
        parts.push_back(rows.table.row_bytes(f, r));
    }
    return &parts;
  };
  static const int64_t kOriginal = -1, kNoOp = 0;
  if (in_place) {  // same shapes: write results back into the table, no rebuild
    for (int64_t r = 0; r < n; ++r) {
      int64_t mask, cnt;
      make(r, 0, &mask);
      if (need_tok) std::memcpy(rows.table.row_mut<int32_t>(tf, r, &cnt), toks.data(), toks.size() * 4);
      if (need_feat) std::memcpy(rows.table.row_mut<float>(ff, r, &cnt), feat.data(), feat.size() * 4);
      if (lf >= 0) *rows.table.row_mut<int64_t>(static_cast<size_t>(lf), r, &cnt) = label;
    }
    *summary = {{"ops", cfg.augment_ops}, {"copies", 0}, {"aug_op_bits", op_ids}};
    return;
  }
  for (int64_t r = 0; r < n; ++r) {
    if (!mark) {
      int64_t mask;
      out.append_row(*make(r, 0, &mask));
      applied_total += mask != 0;
      out_ids.push_back(rows.row_ids[r]);
      continue;
    }
    parts.clear();
    for (size_t f = 0; f < s.size(); ++f) parts.push_back(rows.table.row_bytes(f, r));
    parts.emplace_back(reinterpret_cast<const char*>(&kOriginal), 8);
    parts.emplace_back(reinterpret_cast<const char*>(&kNoOp), 8);
    out.append_row(parts);
    out_ids.push_back(rows.row_ids[r]);
    for (int64_t c = 1; c <= cfg.copies; ++c) {
      int64_t mask;
      auto* cp = make(r, c, &mask);
      int64_t src = rows.row_ids[r];
      cp->emplace_back(reinterpret_cast<const char*>(&src), 8);
      cp->emplace_back(reinterpret_cast<const char*>(&mask), 8);
      out.append_row(*cp);
      out_ids.push_back(rows.row_ids[r]);
      applied_total += mask != 0;
    }
  }
  *summary = {{"ops", cfg.augment_ops}, {"copies", cfg.copies}, {"aug_op_bits", op_ids}};
  rows.table = std::move(out);
  rows.row_ids = std::move(out_ids);
}

}  // namespace conflux::dataplane
