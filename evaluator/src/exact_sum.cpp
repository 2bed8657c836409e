// ExactSum: exact fixed-point accumulation of doubles (see exact_sum.h for the why).
//
// A finite double is m * 2^(p - 1074) with m < 2^53 and 0 <= p <= 2045; it is added as three
// 32-bit chunks into limbs q, q+1, q+2 (q = p / 32). Limbs are int64, so up to 2^30 additions are
// absorbed before a carry pass is needed. normalize() makes the representation canonical, which
// makes operator== and to_string() independent of the history of additions.
#include "conflux/evaluator/exact_sum.h"

#include "conflux/core/error.h"

#include <cmath>
#include <cstring>

namespace conflux::evaluator {
namespace {
constexpr int64_t kNormalizeEvery = int64_t{1} << 30;
constexpr int kBias = 1074;  // limb 0, bit 0 has weight 2^-1074
}  // namespace

void ExactSum::add(double x) {
  if (!std::isfinite(x)) CONFLUX_THROW(DataError, "cannot sum a non-finite value ({})", x);
  if (x == 0.0) return;
  int e = 0;
  double m = std::frexp(std::fabs(x), &e);  // |x| = m * 2^e, 0.5 <= m < 1
  uint64_t mant = static_cast<uint64_t>(std::ldexp(m, 53));  // exact: 53 significant bits
  int p = e - 53 + kBias;
  if (p < 0) {  // subnormal: the low bits shifted out are zero
    mant >>= -p;
    p = 0;
  }
  const int q = p / kLimbBits;
  const int s = p % kLimbBits;
  const unsigned __int128 v = static_cast<unsigned __int128>(mant) << s;
  const int64_t sign = x < 0 ? -1 : 1;
  limb_[q] += sign * static_cast<int64_t>(static_cast<uint64_t>(v) & 0xffffffffu);
  limb_[q + 1] += sign * static_cast<int64_t>(static_cast<uint64_t>(v >> 32) & 0xffffffffu);
  limb_[q + 2] += sign * static_cast<int64_t>(static_cast<uint64_t>(v >> 64));
  if (++pending_ >= kNormalizeEvery) normalize();
}

void ExactSum::add(const ExactSum& other) {
  normalize();
  other.normalize();
  for (int i = 0; i < kLimbs; ++i) limb_[i] += other.limb_[i];
  normalize();
}

void ExactSum::normalize() const {
  for (int i = 0; i + 1 < kLimbs; ++i) {
    const int64_t carry = limb_[i] >> kLimbBits;  // arithmetic shift: floor division
    limb_[i] -= carry * (int64_t{1} << kLimbBits);
    limb_[i + 1] += carry;
  }
  pending_ = 0;
}

bool ExactSum::is_zero() const {
  normalize();
  for (int64_t l : limb_)
    if (l != 0) return false;
  return true;
}

bool ExactSum::operator==(const ExactSum& other) const {
  normalize();
  other.normalize();
  return limb_ == other.limb_;
}

namespace {
// Magnitude of a normalized accumulator as limbs in [0, 2^32), and its sign.
std::array<int64_t, 68> magnitude(const std::array<int64_t, 68>& limbs, bool* negative) {
  std::array<int64_t, 68> mag = limbs;
  *negative = mag[67] < 0;
  if (*negative) {
    for (auto& l : mag) l = -l;
    for (int i = 0; i + 1 < 68; ++i) {
      const int64_t carry = mag[i] >> 32;
      mag[i] -= carry * (int64_t{1} << 32);
      mag[i + 1] += carry;
    }
  }
  return mag;
}

bool bit_at(const std::array<int64_t, 68>& mag, int pos) {
  if (pos < 0) return false;
  return (static_cast<uint64_t>(mag[pos / 32]) >> (pos % 32)) & 1u;
}
// Whether any bit at a position < pos is set.
bool any_bit_below(const std::array<int64_t, 68>& mag, int pos) {
  if (pos <= 0) return false;
  const int limb = pos / 32;
  const uint64_t low_mask = (uint64_t{1} << (pos % 32)) - 1;
  if (static_cast<uint64_t>(mag[limb]) & low_mask) return true;
  for (int i = 0; i < limb; ++i)
    if (mag[i] != 0) return true;
  return false;
}
}  // namespace

double ExactSum::value() const {
  normalize();
  bool negative = false;
  const auto mag = magnitude(limb_, &negative);
  int top = -1;  // index of the highest set bit
  for (int i = kLimbs - 1; i >= 0 && top < 0; --i) {
    if (mag[i] != 0) top = i * 32 + (63 - __builtin_clzll(static_cast<uint64_t>(mag[i])));
  }
  if (top < 0) return 0.0;
  // 53 significant bits [top-52, top], then round to nearest even using the rest.
  uint64_t mant = 0;
  for (int b = top; b >= top - 52; --b) mant = (mant << 1) | (bit_at(mag, b) ? 1u : 0u);
  const int lsb = top - 52;  // bit position of mant's lowest bit
  if (lsb > 0) {
    const bool half = bit_at(mag, lsb - 1);
    const bool sticky = any_bit_below(mag, lsb - 1);
    if (half && (sticky || (mant & 1u))) ++mant;  // may carry to 2^53: still exact in a double
  }
  const double r = std::ldexp(static_cast<double>(mant), lsb - kBias);
  return negative ? -r : r;
}

std::string ExactSum::to_string() const {
  normalize();
  bool negative = false;
  const auto mag = magnitude(limb_, &negative);
  std::string hex;
  static const char* kDigits = "0123456789abcdef";
  bool started = false;
  for (int i = kLimbs - 1; i >= 0; --i) {
    for (int nib = 7; nib >= 0; --nib) {
      const unsigned d = (static_cast<uint64_t>(mag[i]) >> (nib * 4)) & 0xfu;
      if (d != 0) started = true;
      if (started) hex.push_back(kDigits[d]);
    }
  }
  if (!started) return "0x0";
  return (negative ? "-0x" : "0x") + hex;
}

ExactSum ExactSum::from_string(std::string_view text) {
  std::string_view t = text;
  bool negative = false;
  if (!t.empty() && t[0] == '-') {
    negative = true;
    t.remove_prefix(1);
  }
  if (t.size() < 3 || t[0] != '0' || t[1] != 'x')
    CONFLUX_THROW(DataError, "exact sum '{}' is not of the form [-]0x<hex>", text);
  t.remove_prefix(2);
  if (t.size() > static_cast<size_t>(kLimbs - 1) * 8)
    CONFLUX_THROW(DataError, "exact sum '{}' has too many digits", text);
  ExactSum s;
  int pos = 0;  // nibble position from the least significant end
  for (auto it = t.rbegin(); it != t.rend(); ++it, ++pos) {
    const char c = *it;
    int d = 0;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else CONFLUX_THROW(DataError, "exact sum '{}' has a non-hex digit '{}'", text, c);
    s.limb_[pos / 8] |= static_cast<int64_t>(d) << ((pos % 8) * 4);
  }
  if (negative) {
    for (auto& l : s.limb_) l = -l;
    s.normalize();
  }
  return s;
}

}  // namespace conflux::evaluator
