// Stats arrive from peers: random bytes, truncations, bit flips and deep nesting must give a
// DataError (never a crash, hang or huge allocation).
#include "conflux/core/error.h"
#include "conflux/evaluator/metric.h"
#include "conflux/evaluator/metric_set.h"
#include "reference_data.h"

#include <gtest/gtest.h>

#include <random>

namespace conflux::evaluator {
namespace {

// Decoding either succeeds (the bytes happened to be valid) or throws a conflux Error.
void decode_or_error(const std::vector<uint8_t>& bytes) {
  try {
    const Stats s = Stats::from_bytes(bytes);
    make_metric("bleu")->finalize(s);
  } catch (const Error&) {
  }
}

TEST(HostileStats, RandomTruncatedAndFlippedBytes) {
  const auto& pairs = test::reference().at("rouge").at("pairs");
  auto m = make_metric("fairness", {{"metric", "bleu"}});
  Batch b = test::text_batch(pairs, 0, 20);
  for (size_t i = 0; i < 20; ++i) b.groups.push_back(i % 2 ? "a" : "b");
  const std::vector<uint8_t> valid = m->partial(b).to_bytes();
  std::mt19937_64 gen(1);
  for (size_t cut = 0; cut < valid.size(); cut += 7)
    EXPECT_THROW(Stats::from_bytes(std::vector<uint8_t>(valid.begin(), valid.begin() + cut)), DataError);
  for (int t = 0; t < 2000; ++t) {
    std::vector<uint8_t> v = valid;
    for (int k = 0; k < 1 + t % 4; ++k) v[gen() % v.size()] ^= static_cast<uint8_t>(1u << (gen() % 8));
    decode_or_error(v);
    std::vector<uint8_t> r(gen() % 64);
    for (auto& x : r) x = static_cast<uint8_t>(gen());
    decode_or_error(r);
  }
}

TEST(HostileStats, DeepNestingAndHugeLengthsAreRefused) {
  std::vector<uint8_t> deep(1000000, 0x81);  // a million nested one-element arrays
  deep.push_back(0x00);
  EXPECT_THROW(Stats::from_bytes(deep), DataError);
  EXPECT_THROW(MetricSet::from_bytes(deep), DataError);
  // an array claiming 2^64-1 elements, a string claiming 2^32 bytes
  EXPECT_THROW(Stats::from_bytes({0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}), DataError);
  EXPECT_THROW(Stats::from_bytes({0x7a, 0xff, 0xff, 0xff, 0xff, 0x61}), DataError);
  std::vector<uint8_t> indefinite(100000, 0x9f);  // nested indefinite arrays
  EXPECT_THROW(Stats::from_bytes(indefinite), DataError);
  EXPECT_THROW(check_cbor_structure({0x01, 0x02}), DataError);  // trailing bytes
  check_cbor_structure({0x82, 0x01, 0x9f, 0x02, 0xff});          // [1, [_ 2]] is fine
}

}  // namespace
}  // namespace conflux::evaluator
