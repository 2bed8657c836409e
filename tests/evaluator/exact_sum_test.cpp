// ExactSum against Python's math.fsum (correctly rounded exact sums), bit for bit, in any order.
#include "conflux/core/error.h"
#include "conflux/evaluator/exact_sum.h"
#include "reference_data.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

namespace conflux::evaluator {
namespace {

TEST(ExactSum, MatchesFsumBitwise) {
  for (const auto& c : test::reference().at("exact_sum")) {
    const auto values = c.at("values").get<std::vector<double>>();
    ExactSum s;
    for (double v : values) s.add(v);
    EXPECT_EQ(s.value(), c.at("fsum").get<double>());
  }
}

TEST(ExactSum, IndependentOfOrderAndGrouping) {
  std::mt19937_64 gen(99);
  for (const auto& c : test::reference().at("exact_sum")) {
    auto values = c.at("values").get<std::vector<double>>();
    ExactSum whole;
    for (double v : values) whole.add(v);
    for (int trial = 0; trial < 3; ++trial) {
      std::shuffle(values.begin(), values.end(), gen);
      const size_t parts = 1 + trial * 3;
      std::vector<ExactSum> partial(parts);
      for (size_t i = 0; i < values.size(); ++i) partial[i % parts].add(values[i]);
      ExactSum merged;
      for (size_t p = parts; p-- > 0;) merged.add(partial[p]);
      EXPECT_TRUE(merged == whole);
      EXPECT_EQ(merged.value(), whole.value());
      EXPECT_EQ(merged.to_string(), whole.to_string());
    }
  }
}

TEST(ExactSum, StringRoundTrip) {
  for (const auto& c : test::reference().at("exact_sum")) {
    ExactSum s;
    for (const auto& v : c.at("values")) s.add(v.get<double>());
    const ExactSum back = ExactSum::from_string(s.to_string());
    EXPECT_TRUE(back == s);
    EXPECT_EQ(back.value(), s.value());
  }
  ExactSum neg(-0.75);
  EXPECT_EQ(ExactSum::from_string(neg.to_string()).value(), -0.75);
  EXPECT_EQ(ExactSum().to_string(), "0x0");
}

TEST(ExactSum, SmallCases) {
  ExactSum s;
  for (int i = 0; i < 10; ++i) s += 0.1;
  EXPECT_EQ(s.value(), 1.0);  // math.fsum([0.1] * 10) == 1.0, while naive summation is not
  ExactSum t(1e308);
  t += 1e308;
  EXPECT_TRUE(std::isinf(t.value()));
  t += -1e308;
  EXPECT_EQ(t.value(), 1e308);  // exact despite the intermediate overflow
  ExactSum u(5e-324);
  u += 5e-324;
  EXPECT_EQ(u.value(), 1e-323);
  ExactSum half(1.0);  // ties to even: 1 + 2^-53 rounds to 1
  half += std::ldexp(1.0, -53);
  EXPECT_EQ(half.value(), 1.0);
  half += std::ldexp(1.0, -80);  // sticky bit breaks the tie upwards
  EXPECT_EQ(half.value(), 1.0 + std::ldexp(1.0, -52));
}

TEST(ExactSum, RejectsNonFinite) {
  ExactSum s;
  EXPECT_THROW(s.add(std::nan("")), DataError);
  EXPECT_THROW(s.add(INFINITY), DataError);
  EXPECT_THROW(ExactSum::from_string("0xzz"), DataError);
  EXPECT_THROW(ExactSum::from_string("12"), DataError);
}

}  // namespace
}  // namespace conflux::evaluator
