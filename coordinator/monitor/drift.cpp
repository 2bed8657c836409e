// conflux monitor, part 1: profile the serving checkpoint's training dataset and the new batch
// (token distribution and per-document features) and compare them with the evaluator's drift
// math; drift.json and metrics.prom. See conflux/cli/monitor.h.
#include "conflux/cli/monitor.h"

#include "conflux/core/error.h"
#include "conflux/core/metrics_registry.h"
#include "conflux/dataplane/dataset.h"
#include "conflux/dataplane/manifest.h"
#include "conflux/trainer/checkpoint_meta.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>

namespace conflux::monitor {
namespace {

namespace fs = std::filesystem;
namespace ev = conflux::evaluator;
namespace dp = conflux::dataplane;

// One Multiset per feature; "token_id" is categorical, the rest numeric (one value per row).
struct Profile {
  std::map<std::string, ev::Multiset> features;
  int64_t rows = 0, tokens = 0;
};

// Byte-level features of one document (token ids < 256 are bytes; specials are skipped).
void add_byte_features(const int32_t* t, int64_t n, Profile* p) {
  int64_t bytes = 0, alnum = 0, upper = 0, digit = 0, space = 0, words = 0, word_bytes = 0;
  bool in_word = false;
  for (int64_t i = 0; i < n; ++i) {
    if (t[i] < 0 || t[i] > 255) continue;
    const auto ch = static_cast<unsigned char>(t[i]);
    ++bytes;
    const bool is_space = std::isspace(ch) != 0;
    alnum += std::isalnum(ch) != 0;
    upper += std::isupper(ch) != 0;
    digit += std::isdigit(ch) != 0;
    space += is_space;
    if (!is_space) {
      ++word_bytes;
      if (!in_word) ++words;
    }
    in_word = !is_space;
  }
  const auto share = [&](int64_t k) { return bytes ? static_cast<double>(k) / static_cast<double>(bytes) : 0.0; };
  p->features["mean_word_length"][words ? static_cast<double>(word_bytes) / static_cast<double>(words) : 0.0] += 1;
  p->features["non_alnum_share"][share(bytes - alnum - space)] += 1;
  p->features["upper_share"][share(upper)] += 1;
  p->features["digit_share"][share(digit)] += 1;
}

Profile profile(const dp::Dataset& ds, int64_t chunk_rows) {
  Profile p;
  const bool bytes = ds.manifest().tokenizer.value("kind", "") == "bytes";
  auto& token_id = p.features["token_id"];
  auto& length = p.features["length"];
  p.rows = ds.num_rows();
  for (int64_t b = 0; b < p.rows; b += chunk_rows) {
    const auto t = ds.read_tokens(b, std::min(p.rows, b + chunk_rows));
    for (int32_t v : t.values) token_id[static_cast<double>(v)] += 1;
    for (int64_t r = 0; r < t.rows(); ++r) {
      const int64_t n = t.offsets[r + 1] - t.offsets[r];
      length[static_cast<double>(n)] += 1;
      if (bytes) add_byte_features(t.values.data() + t.offsets[r], n, &p);
    }
    p.tokens += static_cast<int64_t>(t.values.size());
  }
  return p;
}

DatasetInfo info(const dp::Dataset& ds, const Profile& p) {
  return {fs::absolute(ds.dir()).lexically_normal().string(), dp::sha256_file(ds.dir() + "/manifest.json"),
          p.rows, p.tokens};
}

}  // namespace

DriftOutcome measure_drift(const MonitorConfig& c) {
  DriftOutcome out;
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(c.current, ec)))
    CONFLUX_THROW(ConfigError, "monitor.current: '{}' does not exist (a link to the serving checkpoint's "
                  "step directory)", c.current);
  if (c.retrain && !fs::is_symlink(fs::symlink_status(c.current, ec)))
    CONFLUX_THROW(ConfigError, "monitor.current: '{}' is not a symbolic link, so a promotion could not "
                  "swap it atomically; point it at the step directory with ln -s", c.current);
  if (!fs::exists(c.data + "/manifest.json"))
    CONFLUX_THROW(ConfigError, "monitor.data: '{}' is not a Conflux dataset (no manifest.json)", c.data);
  out.checkpoint = fs::canonical(c.current, ec).string();
  if (ec)
    CONFLUX_THROW(ConfigError, "monitor.current: '{}' is a dangling link ({})", c.current, ec.message());
  if (!fs::exists(out.checkpoint + "/lineage.json"))
    CONFLUX_THROW(DataError, "monitor.current: {} has no lineage.json, so the training data is unknown "
                  "(is it a step directory, not the checkpoint root?)", out.checkpoint);
  const trainer::Lineage lineage = trainer::load_lineage(out.checkpoint);
  if (lineage.dataset_dir.empty())
    CONFLUX_THROW(DataError, "{}/lineage.json: dataset.dir is empty", out.checkpoint);
  if (!fs::exists(lineage.dataset_dir + "/manifest.json"))
    CONFLUX_THROW(DataError, "{}/lineage.json: dataset.dir '{}' has no manifest.json; the training "
                  "dataset must stay readable to measure drift against it", out.checkpoint, lineage.dataset_dir);
  const dp::Dataset ref_ds = dp::Dataset::open(lineage.dataset_dir);
  const dp::Dataset cur_ds = dp::Dataset::open(c.data);
  const Profile ref = profile(ref_ds, c.chunk_rows);
  const Profile cur = profile(cur_ds, c.chunk_rows);
  out.reference = info(ref_ds, ref);
  out.current = info(cur_ds, cur);
  if (out.reference.manifest_sha256 != lineage.manifest_sha256)
    CONFLUX_THROW(DataError, "{}/lineage.json: dataset.manifest_sha256 is {}, but {}/manifest.json now has "
                  "SHA-256 {}: the training dataset changed since the checkpoint was trained",
                  out.checkpoint, lineage.manifest_sha256, lineage.dataset_dir, out.reference.manifest_sha256);
  for (const auto& [name, ref_values] : ref.features) {
    auto it = cur.features.find(name);
    if (it == cur.features.end()) continue;  // byte features when only one side is byte-level
    ev::FeatureDrift f = ev::feature_drift(name, ref_values, it->second, name == "token_id");
    if (f.psi >= c.psi_threshold)
      out.triggers.push_back(fmt::format("{}: PSI {:.4f} >= {}", name, f.psi, c.psi_threshold));
    if (f.ks >= c.ks_threshold)
      out.triggers.push_back(fmt::format("{}: KS {:.4f} >= {}", name, f.ks, c.ks_threshold));
    out.features.push_back(std::move(f));
  }
  return out;
}

nlohmann::json DriftOutcome::to_json(const MonitorConfig& c) const {
  auto dataset = [](const DatasetInfo& d) {
    return nlohmann::json{{"dir", d.dir}, {"manifest_sha256", d.manifest_sha256}, {"rows", d.rows},
                          {"tokens", d.tokens}};
  };
  nlohmann::json features = nlohmann::json::array();
  for (const auto& f : this->features)
    features.push_back({{"feature", f.name},
                        {"kind", f.categorical ? "categorical" : "numeric"},
                        {"psi", f.psi},
                        {"ks", f.ks},
                        {"shift", f.level},
                        {"over_threshold", f.psi >= c.psi_threshold || f.ks >= c.ks_threshold},
                        {"reference_count", f.reference_rows},
                        {"current_count", f.current_rows}});
  return {{"checkpoint", checkpoint},
          {"reference", dataset(reference)},
          {"current", dataset(current)},
          {"thresholds", {{"psi", c.psi_threshold}, {"ks", c.ks_threshold}}},
          {"features", features},
          {"detected", detected()},
          {"triggers", triggers}};
}

std::string prometheus_text(const MonitorConfig& c, const DriftOutcome& drift, const RetrainOutcome* retrain) {
  metrics::Registry reg;
  auto& psi = reg.gauge_family("conflux_monitor_psi", "population stability index of the new batch against "
                               "the training data, per feature", {"feature"});
  auto& ks = reg.gauge_family("conflux_monitor_ks", "two-sample Kolmogorov-Smirnov statistic of the new "
                              "batch against the training data, per feature", {"feature"});
  for (const auto& f : drift.features) {
    psi.labels({f.name}).set(f.psi);
    ks.labels({f.name}).set(f.ks);
  }
  reg.gauge("conflux_monitor_psi_threshold", "drift.psi_threshold").set(c.psi_threshold);
  reg.gauge("conflux_monitor_ks_threshold", "drift.ks_threshold").set(c.ks_threshold);
  reg.gauge("conflux_monitor_drift_detected", "1 if some feature is over a threshold")
      .set(drift.detected() ? 1 : 0);
  reg.gauge("conflux_monitor_current_rows", "rows of the new batch").set(static_cast<double>(drift.current.rows));
  if (retrain) {
    reg.gauge("conflux_monitor_promoted", "1 if the fine-tuned checkpoint replaced the serving one")
        .set(retrain->promoted ? 1 : 0);
    auto& score = reg.gauge_family("conflux_monitor_score", "promote.metric on the fine-tuning run's "
                                   "validation rows", {"checkpoint", "metric"});
    score.labels({"serving", c.metric}).set(retrain->old_score);
    score.labels({"candidate", c.metric}).set(retrain->new_score);
  }
  return reg.render(metrics::Format::Prometheus);
}

}  // namespace conflux::monitor
