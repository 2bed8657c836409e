// Pluggable record operations: validators, augmentation ops and DP mechanisms. Each one is a
// small file under dataplane/src/{validate,augment,privacy}/ and is listed once in that folder's
// registry.cpp (the nccl-tests "fill a table" idiom).
//
// Contracts
// - Validator::check sees one row (text, content-token count, features) and returns "" to keep
//   it or the reason it fails (the reason names count drops in the manifest).
// - AugmentOp::apply transforms one record in place using only `rng`; the pipeline seeds `rng`
//   from (seed, global row id, copy index) (a row stream, one per record, shared by the ops in
//   order), so results never depend on the number of ranks. Params are declared with defaults
//   and bound from `augment.<op>.<param>` in the config.
// Thread safety: ops are stateless; the registries are immutable after static initialisation.
#pragma once

#include "conflux/core/rng.h"
#include "conflux/dataplane/schema.h"

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace conflux::dataplane {

class Table;

// ---- validators ----------------------------------------------------------------------------
struct ValidateConfig {
  std::string nonfinite = "drop";  // features NaN/Inf: drop | error | allow
  std::string utf8 = "drop";       // invalid UTF-8 text: drop | error | allow
  int64_t min_tokens = 1;          // content tokens (ids < 256); 0 disables
  int64_t max_tokens = 0;          // 0 disables
  double max_non_alnum_ratio = 1.0;      // share of non-alphanumeric, non-space bytes; 1 disables
  double max_repeated_line_ratio = 1.0;  // share of lines that repeat an earlier line; 1 disables
  double min_mean_word_length = 0.0;     // 0 disables
  double max_mean_word_length = 0.0;     // 0 disables
  int64_t min_words = 0;                 // 0 disables
  int64_t max_words = 0;                 // 0 disables
};

struct RowView {
  std::string_view text;          // UTF-8 text (text field, or the bytes of the tokens)
  bool has_text = false;
  int64_t content_tokens = -1;    // tokens with id < 256, counted up to max(min_tokens, 1) when
                                  // max_tokens is 0 (all the length check needs); -1: no tokens
  const float* features = nullptr;
  int64_t dim = 0;
  const char* source = "";        // dataset directory, for error messages
  int64_t row = -1;               // global row id, for error messages
};

class Validator {
 public:
  virtual ~Validator() = default;
  virtual const char* name() const = 0;
  // Reasons this validator can report, in a fixed order (for the per-reason counters).
  virtual std::vector<std::string> reasons() const = 0;
  virtual bool enabled(const ValidateConfig& cfg) const = 0;
  // Whether the check can fire on rows of a dataset with these kinds of field (a text check on a
  // features-only dataset cannot): validators that cannot are skipped for the whole dataset.
  struct Kinds {
    bool text = false;      // a text field, or tokens (whose bytes are the text)
    bool tokens = false;
    bool features = false;
  };
  virtual bool applies(const Kinds& kinds) const {
    (void)kinds;
    return true;
  }
  // Optional bulk form, used when this is the only check that applies to the dataset: for rows
  // [r0, r1) of `table`, sets reason[r - r0] to the index in reasons() of the reason row r fails
  // with (leaves -1 where it passes). Returns false if not supported (check() is then called per
  // row). In "error" modes it throws for the first failing row, as check() would.
  virtual bool check_rows(const Table& table, int64_t r0, int64_t r1, const ValidateConfig& cfg,
                          const char* source, const int64_t* row_ids, int32_t* reason) const {
    (void)table, (void)r0, (void)r1, (void)cfg, (void)source, (void)row_ids, (void)reason;
    return false;
  }
  // "" keeps the row; otherwise one of reasons(). May throw DataError in "error" modes.
  virtual std::string check(const RowView& row, const ValidateConfig& cfg) const = 0;
};
const std::vector<const Validator*>& validator_registry();

// ---- augmentation -------------------------------------------------------------------------
struct ParamSpec {
  std::string name;
  double default_value;
  double min, max;
  std::string doc;
};
using Params = std::map<std::string, double>;

struct FeatureRecord {
  float* x = nullptr;                  // dim values, modified in place
  int64_t dim = 0;
  int64_t* label = nullptr;            // may be null
  const float* partner = nullptr;      // another record of the same block (mixup); may be null
  int64_t partner_label = 0;
};

class AugmentOp {
 public:
  virtual ~AugmentOp() = default;
  virtual const char* name() const = 0;  // config name: "mask", "span", ...
  virtual Role role() const = 0;         // Tokens or Features
  virtual std::string summary() const = 0;
  virtual std::vector<ParamSpec> params() const = 0;  // "probability" is added by the pipeline
  // True when apply_* never changes the number of tokens (lets in-place runs skip a table copy).
  virtual bool length_preserving() const { return role() == Role::Features; }
  virtual void apply_tokens(std::vector<int32_t>& tokens, RandomSource& rng, const Params& p) const {}
  // Length-preserving token ops: the same transformation on n tokens in place (same draws from
  // rng, same result as apply_tokens). The default copies through apply_tokens.
  virtual void apply_tokens_in_place(int32_t* tokens, int64_t n, RandomSource& rng, const Params& p) const;
  virtual void apply_features(FeatureRecord& rec, RandomSource& rng, const Params& p) const {}
};
const std::vector<const AugmentOp*>& augment_registry();
const AugmentOp* find_augment(const std::string& name);

// Samples used by several ops.
double sample_gamma(RandomSource& rng, double shape);  // Marsaglia-Tsang
double sample_beta(RandomSource& rng, double a, double b);

}  // namespace conflux::dataplane
