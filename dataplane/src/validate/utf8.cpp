// Invalid UTF-8 (overlong forms, surrogates, code points above U+10FFFF, truncated sequences):
// a vectorised ASCII prefix of 64-byte blocks and 8-byte ASCII steps, then core's strict decoder
// (core/utf8.h) for each multi-byte sequence.
#include "conflux/core/error.h"
#include "conflux/core/utf8.h"
#include "conflux/dataplane/ops.h"
#include "scan.h"

#include <cstring>

namespace conflux::dataplane {

bool valid_utf8(std::string_view s) {
  size_t i = 0, n = s.size();
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  // ASCII fast path: whole 64-byte blocks (vectorised), then 8 bytes at a time; after a
  // multi-byte sequence the 8-byte path resumes.
  i = ascii_prefix64(p, n);
  while (i < n) {
    while (i + 8 <= n) {
      uint64_t w;
      std::memcpy(&w, p + i, 8);
      if (w & 0x8080808080808080ull) break;
      i += 8;
    }
    if (i >= n) break;
    const utf8::Decoded d = utf8::decode(s, i);
    if (!d.valid()) return false;
    i += d.len;
  }
  return true;
}

namespace {
class Utf8 final : public Validator {
 public:
  const char* name() const override { return "utf8"; }
  std::vector<std::string> reasons() const override { return {"invalid_utf8"}; }
  bool enabled(const ValidateConfig& c) const override { return c.utf8 != "allow"; }
  bool applies(const Kinds& k) const override { return k.text; }
  std::string check(const RowView& r, const ValidateConfig& c) const override {
    if (!r.has_text || valid_utf8(r.text)) return "";
    if (c.utf8 == "error")
      CONFLUX_THROW(DataError, "{}: row {}: text is not valid UTF-8 and validate.utf8 = \"error\"", r.source, r.row);
    return "invalid_utf8";
  }
};
}  // namespace
const Validator& utf8_validator() {
  static Utf8 v;
  return v;
}
}  // namespace conflux::dataplane
