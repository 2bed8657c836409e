// ExactSum: an exact, order-independent accumulator of float64 values.
//
// Why: metric statistics must merge exactly, so that a value computed across K workers (in any
// grouping and order) equals the single-process value bit for bit. Plain float64 addition is not
// associative, so instead every finite double is added *exactly* into a wide fixed-point integer
// (a Kulisch-style accumulator: 68 limbs of 32 bits, weight of limb i = 2^(32 i - 1074), covering
// every finite double and 2^64 additions of DBL_MAX). The integer sum does not depend on the order
// of additions; value() rounds it once, correctly (round to nearest, ties to even), so the result
// equals Python's math.fsum of the same values.
// Serialised form: "[-]0x<hex digits>" meaning the integer M with value = ±M * 2^-1074.
// Thread safety: none; an ExactSum is a value type.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace conflux::evaluator {

class ExactSum {
 public:
  ExactSum() = default;
  explicit ExactSum(double x) { add(x); }

  // Adds a finite value exactly; throws DataError for NaN or infinity.
  void add(double x);
  void add(const ExactSum& other);
  ExactSum& operator+=(double x) { add(x); return *this; }
  ExactSum& operator+=(const ExactSum& o) { add(o); return *this; }

  // The exact sum rounded once to the nearest double (ties to even); +-inf if it overflows.
  double value() const;
  bool is_zero() const;

  std::string to_string() const;
  static ExactSum from_string(std::string_view text);  // throws DataError on malformed text

  bool operator==(const ExactSum& other) const;
  bool operator!=(const ExactSum& other) const { return !(*this == other); }

 private:
  static constexpr int kLimbs = 68;
  static constexpr int kLimbBits = 32;
  void normalize() const;  // carries so limbs 0..66 lie in [0, 2^32); limb 67 holds the sign
  mutable std::array<int64_t, kLimbs> limb_{};
  mutable int64_t pending_ = 0;  // additions since the last normalize()
};

}  // namespace conflux::evaluator
