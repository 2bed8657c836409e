// Binding of prep.toml to PrepareConfig (every knob, its default, range and doc line).
#include "conflux/dataplane/prepare.h"

namespace conflux::dataplane {

PrepareConfig::PrepareConfig() {
  for (auto* op : augment_registry()) {
    Params& p = augment_params[op->name()];
    p["probability"] = 1.0;
    for (auto& s : op->params()) p[s.name] = s.default_value;
  }
  dp_labels.epsilon = 1.0;
}

void PrepareConfig::bind(ConfigBinder& b) {
  b.field("prepare.input", input, "input dataset directory").required();
  b.field("prepare.output", output, "output dataset directory (published atomically)").required();
  b.field("prepare.seed", seed, "seed for every random choice; makes DP noise reproducible and NOT private; "
          "-1 = secure noise").min(-1);
  b.field("prepare.rows_per_shard", rows_per_shard, "rows per output shard").min(1);
  b.field("prepare.plan", plan, "balance rank ranges by tokens or rows").one_of({"tokens", "rows"});
  b.field("prepare.verify_input", verify_input, "check the SHA-256 of every input shard");
  b.field("prepare.threads", threads, "threads per rank for shard checksums and shard writes "
          "(0 = hardware threads / ranks on the node)").min(0);
  b.field("prepare.require_fields", require_fields, "fields the input must have (schema conformance)");
  b.field("prepare.allow_empty", allow_empty, "write an empty dataset when every row is dropped (never over a "
          "dataset that has rows); otherwise that is an error and the output is left as it was");

  b.field("validate.enabled", validate, "run the validators");
  b.field("validate.nonfinite", checks.nonfinite, "NaN/Inf in features").one_of({"drop", "error", "allow"});
  b.field("validate.utf8", checks.utf8, "invalid UTF-8 text").one_of({"drop", "error", "allow"});
  b.field("validate.min_tokens", checks.min_tokens, "drop rows with fewer content tokens (0 = off)").min(0);
  b.field("validate.max_tokens", checks.max_tokens, "drop rows with more content tokens (0 = off)").min(0);
  b.field("validate.max_non_alnum_ratio", checks.max_non_alnum_ratio,
          "drop rows whose share of non-alphanumeric, non-space ASCII bytes is higher (1 = off)").range(0, 1);
  b.field("validate.max_repeated_line_ratio", checks.max_repeated_line_ratio,
          "drop rows whose share of repeated lines is higher (1 = off)").range(0, 1);
  b.field("validate.min_mean_word_length", checks.min_mean_word_length, "0 = off").min(0);
  b.field("validate.max_mean_word_length", checks.max_mean_word_length, "0 = off").min(0);
  b.field("validate.min_words", checks.min_words, "0 = off").min(0);
  b.field("validate.max_words", checks.max_words, "0 = off").min(0);

  b.field("dedup.exact", exact, "drop exact duplicates (128-bit content hash)");
  b.field("dedup.near", near, "drop near duplicates (MinHash-LSH, verified Jaccard)");
  b.field("dedup.field", dedup_field, "field compared (default: tokens, else text, else features)");
  b.field("dedup.bands", minhash.bands, "LSH bands b").range(1, 1024);
  b.field("dedup.rows", minhash.rows, "rows per band r (signature length b*r)").range(1, 1024);
  b.field("dedup.shingle", minhash.shingle, "shingle length in tokens").range(1, 1 << 20);
  b.field("dedup.threshold", minhash.threshold, "Jaccard threshold (0 = (1/b)^(1/r))").range(0, 1);
  b.field("dedup.max_bucket", minhash.max_bucket, "buckets up to this size are verified all-pairs").min(2);

  std::vector<std::string> names;
  for (auto* op : augment_registry()) names.push_back(op->name());
  b.field("augment.ops", augment_ops, "augmentation ops, applied in this order");
  b.field("augment.copies", copies, "augmented copies per record (0 = modify records in place)").range(0, 1000);
  b.field("augment.seed", augment_seed, "seed for augmentation when prepare.seed is not set").min(0);
  b.field("augment.token_field", token_field, "tokens field for token ops (default: first)");
  b.field("augment.feature_field", feature_field, "features field for feature ops (default: first)");
  for (auto* op : augment_registry()) {
    Params& p = augment_params[op->name()];
    std::string pre = std::string("augment.") + op->name() + ".";
    b.field(pre + "probability", p["probability"], std::string("probability that ") + op->name() +
            " is applied to a record").range(0, 1);
    for (auto& s : op->params()) b.field(pre + s.name, p[s.name], s.doc).range(s.min, s.max);
  }

  b.field("privacy.features.mechanism", dp_features.mechanism, "none | laplace | gaussian")
      .one_of({"none", "laplace", "gaussian"});
  b.field("privacy.features.field", dp_features.field, "features field (default: first)");
  b.field("privacy.features.epsilon", dp_features.epsilon, "epsilon per record").min(1e-9);
  b.field("privacy.features.delta", dp_features.delta, "delta (gaussian)").range(0, 1);
  b.field("privacy.features.clip", dp_features.clip, "clipping radius C (L1 laplace, L2 gaussian)").min(1e-12);
  b.field("privacy.features.calibration", dp_features.calibration, "gaussian calibration")
      .one_of({"analytic", "classic"});
  b.field("privacy.labels.mechanism", dp_labels.mechanism, "none | randomized_response")
      .one_of({"none", "randomized_response"});
  b.field("privacy.labels.field", dp_labels.field, "label field (default: first)");
  b.field("privacy.labels.epsilon", dp_labels.epsilon, "epsilon per label").min(1e-9);
  b.field("privacy.labels.classes", dp_labels.classes, "number of classes k (0 = max label + 1)").min(0);

  b.field("pca.components", pca_components, "project features onto this many components (0 = off)").min(0);
  b.field("pca.field", pca_field, "features field (default: first)");

  grid.bind_comm(b);
}

}  // namespace conflux::dataplane
