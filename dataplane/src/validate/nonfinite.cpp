// NaN / Inf in features: drop the row, fail the run ("error"), or allow.
#include "conflux/core/error.h"
#include "conflux/dataplane/ops.h"
#include "conflux/dataplane/table.h"
#include "scan.h"

#include <cmath>
#include <vector>

namespace conflux::dataplane {
namespace {
class NonFinite final : public Validator {
 public:
  const char* name() const override { return "nonfinite"; }
  std::vector<std::string> reasons() const override { return {"nonfinite_features"}; }
  bool enabled(const ValidateConfig& c) const override { return c.nonfinite != "allow"; }
  bool applies(const Kinds& k) const override { return k.features; }
  // One vectorised pass over the contiguous feature rows.
  bool check_rows(const Table& t, int64_t r0, int64_t r1, const ValidateConfig& c, const char* source,
                  const int64_t* row_ids, int32_t* reason) const override {
    const int f = t.schema().index_of_role(Role::Features);
    if (f < 0 || r1 <= r0) return true;
    int64_t dim = 0;
    const float* x = t.row<float>(static_cast<size_t>(f), r0, &dim);
    std::vector<uint8_t> bad(static_cast<size_t>(r1 - r0));
    rows_nonfinite(x, bad.size(), static_cast<size_t>(dim), bad.data());
    for (size_t i = 0; i < bad.size(); ++i) {
      if (!bad[i]) continue;
      if (c.nonfinite == "error") {
        const float* row = x + i * static_cast<size_t>(dim);
        const size_t k = first_nonfinite(row, static_cast<size_t>(dim));
        CONFLUX_THROW(DataError, "{}: row {}: feature {} is {} and validate.nonfinite = \"error\" forbids NaN/Inf",
                      source, row_ids[i], k, row[k]);
      }
      reason[i] = 0;
    }
    return true;
  }
  std::string check(const RowView& r, const ValidateConfig& c) const override {
    if (!r.features) return "";
    const size_t i = first_nonfinite(r.features, static_cast<size_t>(r.dim));  // vectorised
    if (i == static_cast<size_t>(r.dim)) return "";
    if (c.nonfinite == "error")
      CONFLUX_THROW(DataError, "{}: row {}: feature {} is {} and validate.nonfinite = \"error\" forbids NaN/Inf",
                    r.source, r.row, i, r.features[i]);
    return "nonfinite_features";
  }
};
}  // namespace
const Validator& nonfinite_validator() {
  static NonFinite v;
  return v;
}
}  // namespace conflux::dataplane
