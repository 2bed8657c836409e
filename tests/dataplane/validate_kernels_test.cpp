// The validation stage's fast paths: UTF-8 validation around the 64-byte blocks of the ASCII scan,
// the vectorised scans (content tokens with a cap, first NaN/Inf, ASCII prefix) on every ISA
// level, and run_validate on worker threads (same rows and counts for any thread count, the first
// failing row reported in "error" mode), and the bulk NaN/Inf check of feature rows (the same rows
// as row by row; the keep mask handed back instead of compacting).
#include "conflux/core/error.h"
#include "conflux/dataplane/ops.h"
#include "conflux/dataplane/table.h"
#include "stages.h"
#include "validate/scan.h"

#include <gtest/gtest.h>

#include <cmath>
#include <initializer_list>
#include <limits>
#include <string>
#include <vector>

namespace conflux::dataplane {
namespace {

// UTF-8 validation around the 64-byte blocks of the ASCII fast path: every invalid form is still
// rejected wherever it starts (inside, at the end of, or straddling a block), valid multi-byte
// characters are accepted there, and the scans agree on every ISA level.
TEST(Kernels, Utf8AtBlockBoundaries) {
  const Validator* utf8 = nullptr;
  for (auto* v : validator_registry())
    if (std::string(v->name()) == "utf8") utf8 = v;
  ASSERT_NE(utf8, nullptr);
  ValidateConfig c;
  auto check = [&](const std::string& text) {
    RowView r;
    r.text = text;
    r.has_text = true;
    return utf8->check(r, c);
  };
  const std::vector<std::string> bad = {"\xc3",         "\xe2\x82",     "\xf0\x9f\x98", "\xc0\xaf",
                                        "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xff",
                                        "\x80",         "\xc3\x28",     "\xf8\x88\x80\x80\x80"};
  const std::vector<std::string> good = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf",
                                         "\xed\x9f\xbf"};
  for (size_t pre : {0, 1, 7, 8, 56, 61, 62, 63, 64, 65, 127, 128, 129}) {
    for (size_t post : {0, 1, 63, 70}) {
      const std::string a(pre, 'a'), b(post, 'b');
      for (auto& x : bad) EXPECT_EQ(check(a + x + b), "invalid_utf8") << pre << " " << post << " " << x.size();
      for (auto& x : good) EXPECT_EQ(check(a + x + b), "") << pre << " " << post << " " << x.size();
      // A truncated sequence right at the end (post = 0 above) and valid ones in a row.
      EXPECT_EQ(check(a + good[1] + good[0] + b), "") << pre << " " << post;
    }
  }
  // Blocks that differ only in a high bit, for the scan at every level.
  std::string blocks(64 * 5 + 9, 'x');
  for (size_t hi : {size_t{0}, size_t{63}, size_t{64}, size_t{200}, size_t{319}, size_t{320}, size_t{328}}) {
    std::string t = blocks;
    t[hi] = static_cast<char>(0x80 | t[hi]);
    const auto* p = reinterpret_cast<const unsigned char*>(t.data());
    const size_t want = hi / 64 * 64 > 320 ? 320 : hi / 64 * 64;
    for (int isa : {0, 1, 2}) {
      size_t got;
      if (!ascii_prefix64_isa(isa, p, t.size(), &got)) continue;
      EXPECT_EQ(got, want) << "isa " << isa << " high bit at " << hi;
    }
  }
}

TEST(Kernels, ValidatorScansOnEveryIsaLevel) {
  for (size_t n : {size_t{0}, size_t{1}, size_t{15}, size_t{63}, size_t{64}, size_t{65}, size_t{200}}) {
    std::vector<int32_t> t(n);
    int64_t want = 0;
    for (size_t i = 0; i < n; ++i) {
      t[i] = static_cast<int32_t>((i * 53) % 300) - 20;
      want += t[i] >= 0 && t[i] < 256;
    }
    for (size_t bad = 0; bad <= n; ++bad) {  // bad == n: all finite
      std::vector<float> x(n, 1.5f);
      if (bad < n) x[bad] = bad % 3 == 0 ? NAN : bad % 3 == 1 ? INFINITY : -INFINITY;
      if (bad + 5 < n) x[bad + 5] = NAN;  // a later one does not matter
      for (int isa : {0, 1, 2}) {
        size_t got;
        if (!first_nonfinite_isa(isa, x.data(), n, &got)) continue;
        EXPECT_EQ(got, bad) << "isa " << isa << " n " << n;
      }
    }
    for (int isa : {0, 1, 2}) {
      for (int64_t cap : {int64_t{1}, int64_t{17}, want, want + 1, INT64_MAX}) {
        int64_t got;
        if (!count_content_tokens_isa(isa, t.data(), n, cap, &got)) continue;
        EXPECT_EQ(got, std::min(want, cap)) << "isa " << isa << " n " << n << " cap " << cap;
      }
    }
  }
}

// In an "error" mode, run_validate throws a DataError naming the first failing row, whatever the
// thread count.
template <typename MakeRows>
void expect_first_error(MakeRows make_rows, PrepareConfig cfg, std::initializer_list<int> thread_counts,
                        const std::string& want) {
  for (int threads : thread_counts) {
    cfg.threads = threads;
    LocalRows lr = make_rows();
    Counters dropped;
    try {
      run_validate(lr, cfg, dropped, 0);
      ADD_FAILURE() << "no error with " << threads << " threads; expected one containing '" << want << "'";
    } catch (const DataError& e) {
      EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
    }
  }
}

// Validation on worker threads: the same kept rows and per-reason counts for any thread count,
// and in "error" mode the first failing row is the one reported (not one from a later chunk).
TEST(Kernels, ThreadedValidationIsOrderedAndExact) {
  const int64_t rows = 30000;  // several chunks of 8192
  auto make_rows = [&] {
    LocalRows lr;
    lr.table = Table(Schema({{"tokens", Role::Tokens, 0}, {"text", Role::Text, 0}}));
    for (int64_t r = 0; r < rows; ++r) {
      std::string text = "row " + std::to_string(r) + std::string(static_cast<size_t>(r % 90), 'x');
      if (r == 9001 || r == 20002) text += "\xc3";                      // truncated: invalid UTF-8
      std::vector<int32_t> tok(text.begin(), text.end());
      if (r % 1000 == 7) tok.assign(3, 257);                             // no content: empty
      lr.table.append_row({std::string_view(reinterpret_cast<const char*>(tok.data()), tok.size() * 4), text});
      lr.row_ids.push_back(r * 2 + 1);
    }
    return lr;
  };
  PrepareConfig cfg;
  cfg.input = "test-input";
  std::vector<int64_t> want_ids;
  std::vector<int64_t> want_counts;
  for (int threads : {1, 3}) {
    cfg.threads = threads;
    LocalRows lr = make_rows();
    Counters dropped;
    run_validate(lr, cfg, dropped, 0);
    EXPECT_EQ(dropped.counts[dropped.index("invalid_utf8")], 2);
    EXPECT_EQ(dropped.counts[dropped.index("empty")], 30);
    EXPECT_EQ(lr.table.rows(), rows - 32);
    if (threads == 1) {
      want_ids = lr.row_ids;
      want_counts = dropped.counts;
    } else {
      EXPECT_EQ(lr.row_ids, want_ids);
      EXPECT_EQ(dropped.counts, want_counts);
    }
  }
  cfg.checks.utf8 = "error";
  expect_first_error(make_rows, cfg, {1, 3}, "row 18003:");  // id of row 9001
}

// Feature rows: the row-wise NaN/Inf kernel on every ISA level, and run_validate's bulk path for
// a features-only dataset (the only check that applies) against the per-row check.
TEST(Kernels, FeatureRowsNonFinite) {
  const size_t rows = 20000, dim = 37;  // odd width: rows straddle vector lanes
  std::vector<float> x(rows * dim);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 101) * 0.25f - 12.0f;
  std::vector<uint8_t> want(rows, 0);
  for (size_t r : {size_t{0}, size_t{5}, size_t{8191}, size_t{8192}, size_t{12345}, size_t{19999}}) {
    const size_t k = (r * 7) % dim;
    x[r * dim + k] = r % 2 ? std::numeric_limits<float>::infinity() : std::nanf("");
    want[r] = 1;
  }
  x[77 * dim + 3] = -std::numeric_limits<float>::infinity();
  want[77] = 1;
  x[78 * dim] = std::numeric_limits<float>::max();  // finite
  for (int isa : {0, 1, 2}) {
    std::vector<uint8_t> got(rows, 9);
    if (!rows_nonfinite_isa(isa, x.data(), rows, dim, got.data())) continue;
    EXPECT_EQ(got, want) << "isa " << isa;
  }
  const Validator* nonfinite = nullptr;
  for (auto* v : validator_registry())
    if (std::string(v->name()) == "nonfinite") nonfinite = v;
  ASSERT_NE(nonfinite, nullptr);
  auto make_rows = [&] {
    LocalRows lr;
    lr.table = Table(Schema({{"features", Role::Features, static_cast<int64_t>(dim)}}));
    for (size_t r = 0; r < rows; ++r) {
      lr.table.append_row({std::string_view(reinterpret_cast<const char*>(&x[r * dim]), dim * 4)});
      lr.row_ids.push_back(static_cast<int64_t>(r) + 1000);
    }
    return lr;
  };
  PrepareConfig cfg;
  cfg.input = "feature-input";
  for (int threads : {1, 2}) {
    cfg.threads = threads;
    LocalRows lr = make_rows();
    Counters dropped;
    std::vector<uint8_t> keep;
    run_validate(lr, cfg, dropped, 0, &keep);  // mask handed back, rows left in place
    EXPECT_EQ(lr.table.rows(), static_cast<int64_t>(rows));
    ASSERT_EQ(keep.size(), rows);
    for (size_t r = 0; r < rows; ++r) {
      EXPECT_EQ(keep[r], want[r] ? 0 : 1) << r;
      RowView v;  // the per-row check agrees
      v.features = &x[r * dim];
      v.dim = static_cast<int64_t>(dim);
      EXPECT_EQ(nonfinite->check(v, cfg.checks), want[r] ? "nonfinite_features" : "") << r;
    }
    EXPECT_EQ(dropped.counts[dropped.index("nonfinite_features")], 7);
    EXPECT_EQ(dropped.counts[dropped.index("invalid_utf8")], 0);  // enabled, cannot fire here
    LocalRows compacted = make_rows();
    Counters d2;
    run_validate(compacted, cfg, d2, 0);
    EXPECT_EQ(compacted.table.rows(), static_cast<int64_t>(rows) - 7);
    EXPECT_EQ(compacted.row_ids[4], 1000 + 6);  // rows 0 and 5 are gone
    EXPECT_EQ(compacted.row_ids[5], 1000 + 7);
  }
  cfg.checks.nonfinite = "error";
  expect_first_error(make_rows, cfg, {1, 2}, "feature-input: row 1000: feature 0 is nan");
}

}  // namespace
}  // namespace conflux::dataplane
