// NaN / Inf in features: drop the row, fail the run ("error"), or allow.
#include "conflux/core/error.h"
#include "conflux/dataplane/ops.h"
#include "scan.h"

#include <cmath>

namespace conflux::dataplane {
namespace {
class NonFinite final : public Validator {
 public:
  const char* name() const override { return "nonfinite"; }
  std::vector<std::string> reasons() const override { return {"nonfinite_features"}; }
  bool enabled(const ValidateConfig& c) const override { return c.nonfinite != "allow"; }
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
