// The fast paths of the dataplane: the float Box-Muller kernel against long-double libm on the same
// random bits, row streams (bulk fill = sequential draws, keyed by row and copy), the ChaCha20
// private source, the masking kernel, run-wise Table::filter against a row-by-row rebuild, the
// in-memory shard image against its file (same bytes, same SHA-256) and parallel verification.
#include "conflux/core/error.h"
#include "conflux/dataplane/dataset.h"
#include "conflux/dataplane/manifest.h"
#include "conflux/dataplane/ops.h"
#include "conflux/dataplane/table.h"
#include "conflux/dataplane/writer.h"
#include "fast_random.h"
#include "stages.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <cstring>
#include <fstream>

namespace conflux::dataplane {
namespace {

// The kernel's documented map from one 64-bit word to u (rounded to float, capped below 1) and
// the angle v; the reference pair is then computed in long double from the same u and v.
void reference_pair(uint64_t w, long double* z0, long double* z1) {
  const uint32_t lo = static_cast<uint32_t>(w);
  const uint64_t k = w >> 24;  // top 40 bits
  float u = static_cast<float>((static_cast<double>(k) + 0.5) * 0x1p-40);  // double exact, one rounding
  u = std::min(u, 0x1.fffffep-1f);
  const long double v = static_cast<long double>(lo & 0xffffffu) * 0x1p-24L;
  const long double r = std::sqrt(-2.0L * std::log(static_cast<long double>(u)));
  const long double pi2 = 6.283185307179586476925286766559005768L;
  *z0 = r * std::cos(pi2 * v);
  *z1 = r * std::sin(pi2 * v);
}

std::vector<uint64_t> stream_bits(uint64_t seed, size_t n) {
  std::vector<uint64_t> bits(n);
  RowStream(stream_key(seed, "kernel test"), 0).fill(bits.data(), n);
  return bits;
}

TEST(Kernels, NormalKernelMatchesLongDoubleLibm) {
  const size_t pairs = 200000;
  std::vector<uint64_t> bits = stream_bits(3, pairs);
  // Extremes: u at its smallest (k = 0: r = 7.54) and largest (capped), angles at quarter turns
  // and their rounding boundaries, v just below 1.
  bits[0] = 0;
  bits[1] = ~uint64_t{0};
  bits[2] = uint64_t{1} << 22;             // v = 1/4
  bits[3] = (uint64_t{3} << 22) | (1ull << 40);  // v = 3/4
  bits[4] = (uint64_t{1} << 21);           // v = 1/8: rounds up to the first quarter
  bits[5] = (uint64_t{1} << 21) - 1;       // just below 1/8
  bits[6] = 0xffffffull | (uint64_t{12345} << 24);
  std::vector<float> z(2 * pairs, 0.0f);
  add_normal(z.data(), z.size(), bits.data(), 1.0f);  // 0 + 1 * z = z exactly
  double worst = 0, sum = 0, sq = 0;
  for (size_t j = 0; j < pairs; ++j) {
    long double r0, r1;
    reference_pair(bits[j], &r0, &r1);
    // Absolute error relative to the radius: float rounding is 6e-8; allow a few ulp.
    long double scale = std::max(1.0L, std::hypot(r0, r1));
    worst = std::max(worst, static_cast<double>(std::fabs(z[2 * j] - r0) / scale));
    worst = std::max(worst, static_cast<double>(std::fabs(z[2 * j + 1] - r1) / scale));
    sum += static_cast<double>(z[2 * j]) + z[2 * j + 1];
    sq += static_cast<double>(z[2 * j]) * z[2 * j] + static_cast<double>(z[2 * j + 1]) * z[2 * j + 1];
  }
  EXPECT_LT(worst, 5e-7);
  EXPECT_NEAR(z[0], std::sqrt(-2.0 * std::log(0x1p-41)), 2e-6);  // the largest |z|: 7.5398...
  EXPECT_EQ(z[1], 0.0f);
  const double n = 2.0 * pairs;
  EXPECT_NEAR(sum / n, 0.0, 5 * std::sqrt(1.0 / n));  // 5 standard errors
  EXPECT_NEAR(sq / n, 1.0, 5 * std::sqrt(2.0 / n));
}

// Odd lengths and every tail: each ISA level gives exactly the baseline's bits.
TEST(Kernels, FloatKernelsIdenticalOnEveryIsaLevel) {
  int levels = 1;
  for (size_t n : {size_t{1}, size_t{2}, size_t{15}, size_t{16}, size_t{17}, size_t{31}, size_t{33}, size_t{8197}}) {
    std::vector<uint64_t> bits = stream_bits(8 + n, (n + 1) / 2);
    std::vector<float> x0(n);
    for (size_t i = 0; i < n; ++i) x0[i] = static_cast<float>(std::sin(0.7 * i) * 5.0);
    std::vector<float> base = x0;
    ASSERT_TRUE(add_normal_isa(0, base.data(), n, bits.data(), 0.37f));
    double ss_base;
    ASSERT_TRUE(sum_squares_isa(0, x0.data(), n, &ss_base));
    std::vector<int32_t> t0(n);
    for (size_t i = 0; i < n; ++i) t0[i] = static_cast<int32_t>((i * 37) % 300) - 10;  // specials too
    StreamKey key = stream_key(n, "mask isa");
    std::vector<int32_t> tb = t0;
    RowStream rb(key, 5);
    ASSERT_TRUE(mask_stream_isa(0, tb.data(), n, rb, uint64_t{1} << 31, kMaskId));
    {  // the definition: ceil(n / 2) words of the stream, low half first, through mask_tokens
      std::vector<uint64_t> w((n + 1) / 2);
      RowStream(key, 5).fill(w.data(), w.size());
      std::vector<int32_t> want = t0;
      mask_tokens(want.data(), n, reinterpret_cast<const uint32_t*>(w.data()), uint64_t{1} << 31, kMaskId);
      EXPECT_EQ(tb, want) << "n " << n;
    }
    for (int isa : {1, 2}) {
      std::vector<float> other = x0;
      if (!add_normal_isa(isa, other.data(), n, bits.data(), 0.37f)) continue;
      levels = std::max(levels, isa + 1);
      EXPECT_EQ(0, std::memcmp(base.data(), other.data(), n * sizeof(float))) << "isa " << isa << " n " << n;
      double ss;
      ASSERT_TRUE(sum_squares_isa(isa, x0.data(), n, &ss));
      EXPECT_EQ(0, std::memcmp(&ss, &ss_base, sizeof ss)) << "isa " << isa << " n " << n;
      std::vector<int32_t> to = t0;
      RowStream ro(key, 5);
      ASSERT_TRUE(mask_stream_isa(isa, to.data(), n, ro, uint64_t{1} << 31, kMaskId));
      EXPECT_EQ(to, tb) << "isa " << isa << " n " << n;
      EXPECT_EQ(ro.next_u64(), RowStream(rb).next_u64());
    }
    std::vector<float> dispatched = x0;
    add_normal(dispatched.data(), n, bits.data(), 0.37f);
    EXPECT_EQ(0, std::memcmp(base.data(), dispatched.data(), n * sizeof(float)));
    // The fixed-order sum matches a plain double sum closely.
    double plain = 0;
    for (float v : x0) plain += static_cast<double>(v) * v;
    EXPECT_NEAR(ss_base, plain, 1e-12 * plain);
  }
  RecordProperty("isa_levels_compared", levels);
}

// Row-block kernels: clipping equals clip_l2 row by row and is identical on every ISA level;
// fill_rows equals the row streams; mask_records equals mask_stream per record on every level.
TEST(Kernels, RowBlockKernelsEqualPerRowAndIsaLevels) {
  for (size_t dim : {size_t{1}, size_t{3}, size_t{8}, size_t{32}, size_t{37}}) {
    const size_t rows = 203;
    std::vector<float> x(rows * dim);
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(std::sin(1.3 * i) * (i % 5));
    std::vector<float> want = x;
    for (size_t r = 0; r < rows; ++r) clip_l2(want.data() + r * dim, static_cast<int64_t>(dim), 1.5);
    for (int isa : {0, 1, 2}) {
      std::vector<float> got = x;
      if (!clip_l2_rows_isa(isa, got.data(), rows, dim, 1.5)) continue;
      EXPECT_EQ(0, std::memcmp(got.data(), want.data(), x.size() * 4)) << "isa " << isa << " dim " << dim;
    }
    std::vector<int64_t> ids(rows);
    for (size_t r = 0; r < rows; ++r) ids[r] = static_cast<int64_t>(r * r + 7);
    StreamKey key = stream_key(dim, "fill rows");
    std::vector<uint64_t> bulk(rows * dim);
    fill_rows(key, ids.data(), rows, dim, bulk.data());
    for (size_t r = 0; r < rows; ++r) {
      RowStream rs(key, static_cast<uint64_t>(ids[r]));
      for (size_t i = 0; i < dim; ++i) ASSERT_EQ(bulk[r * dim + i], rs.next_u64()) << r << " " << i;
    }
  }
  std::vector<int64_t> offsets = {0}, ids;
  std::vector<int32_t> tokens;
  for (int64_t r = 0; r < 300; ++r) {
    for (int64_t i = 0; i < (r * 31) % 97; ++i) tokens.push_back(static_cast<int32_t>((r * 7 + i) % 270));
    offsets.push_back(static_cast<int64_t>(tokens.size()));
    ids.push_back(r * 3 + 1);
  }
  StreamKey key = stream_key(2, "augment");
  std::vector<int32_t> want = tokens;
  for (size_t r = 0; r < 300; ++r) {
    RowStream rs(key, static_cast<uint64_t>(ids[r]));
    mask_stream_isa(0, want.data() + offsets[r], static_cast<size_t>(offsets[r + 1] - offsets[r]), rs, 1u << 30, kMaskId);
  }
  for (int isa : {0, 1, 2}) {
    std::vector<int32_t> got = tokens;
    if (!mask_records_isa(isa, got.data(), offsets.data(), 300, ids.data(), key, 1u << 30, kMaskId)) continue;
    EXPECT_EQ(got, want) << "isa " << isa;
  }
}

TEST(Kernels, GaussianRowsEqualPerRowMechanism) {
  for (int64_t dim : {1, 7, 32, 33}) {
    const int64_t rows = 9000;  // several blocks and tasks
    std::vector<float> a(static_cast<size_t>(rows * dim));
    for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<float>(std::sin(0.37 * i) * 3.0);
    auto b = a, c = a;
    std::vector<int64_t> ids(static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) ids[r] = 5 * r + 3;
    DpFieldConfig cfg;
    cfg.mechanism = "gaussian";
    cfg.epsilon = 1.0;
    cfg.clip = 2.0;
    const DpMechanism* m = find_dp("gaussian");
    Calibration cal = m->calibrate(cfg);
    StreamKey key = stream_key(9, "dp/features");
    gaussian_rows(a.data(), rows, dim, cfg.clip, cal.scale, ids.data(), &key, 1);
    gaussian_rows(c.data(), rows, dim, cfg.clip, cal.scale, ids.data(), &key, 3);
    for (int64_t r = 0; r < rows; ++r) {
      RowStream rng(key, static_cast<uint64_t>(ids[r]));
      m->apply_features(b.data() + r * dim, dim, cfg, cal, rng);
    }
    ASSERT_EQ(a, b) << "dim " << dim;
    ASSERT_EQ(a, c) << "dim " << dim;
  }
}

// Private noise: clipped, noised with the calibrated variance, and different every run.
TEST(Kernels, GaussianRowsSecureNoise) {
  const int64_t rows = 20000, dim = 16;
  std::vector<float> a(static_cast<size_t>(rows * dim), 0.0f), b = a;
  gaussian_rows(a.data(), rows, dim, 1.0, 0.5, nullptr, nullptr, 2);
  gaussian_rows(b.data(), rows, dim, 1.0, 0.5, nullptr, nullptr, 2);
  EXPECT_NE(a, b);
  double sq = 0;
  for (float v : a) sq += static_cast<double>(v) * v;
  const double n = static_cast<double>(a.size());
  EXPECT_NEAR(sq / n / 0.25, 1.0, 5 * std::sqrt(2.0 / n));
}

TEST(Kernels, RowStreamBulkEqualsSequentialAndIsKeyed) {
  StreamKey k = stream_key(42, "augment");
  RowStream a(k, 7, 0), b(k, 7, 0);
  std::vector<uint64_t> bulk(1000);
  a.fill(bulk.data(), 3);
  a.fill(bulk.data() + 3, bulk.size() - 3);
  for (size_t i = 0; i < bulk.size(); ++i) ASSERT_EQ(bulk[i], b.next_u64()) << i;
  EXPECT_EQ(a.next_u64(), b.next_u64());
  for (size_t n = 0; n <= 20; ++n) {  // every tail of the 8-word vector loop
    RowStream c(k, 9), d(k, 9);
    std::vector<uint64_t> v(n);
    c.fill(v.data(), n);
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(v[i], d.next_u64()) << n << " " << i;
    EXPECT_EQ(c.next_u64(), d.next_u64()) << n;
  }
  // Other row, other copy, other seed or purpose: other values.
  uint64_t first = RowStream(k, 7, 0).next_u64();
  EXPECT_NE(first, RowStream(k, 8, 0).next_u64());
  EXPECT_NE(first, RowStream(k, 7, 1).next_u64());
  EXPECT_NE(first, RowStream(stream_key(43, "augment"), 7, 0).next_u64());
  EXPECT_NE(first, RowStream(stream_key(42, "dp/features"), 7, 0).next_u64());
  EXPECT_FALSE(RowStream(k, 0).is_secure());
}

TEST(Kernels, ChaChaIsSecureFreshAndUniform) {
  ChaChaRandom a, b;
  EXPECT_TRUE(a.is_secure());
  EXPECT_NE(a.next_u64(), b.next_u64());  // independent keys (fails with probability 2^-64)
  std::vector<uint64_t> big(1 << 16);
  fill_u64(a, big.data(), big.size());
  double mean = 0;
  size_t ones = 0;
  for (uint64_t x : big) {
    mean += static_cast<double>(x >> 11) * 0x1p-53;
    ones += static_cast<size_t>(__builtin_popcountll(x));
  }
  mean /= big.size();
  EXPECT_NEAR(mean, 0.5, 5 * std::sqrt(1.0 / 12 / big.size()));
  const double bits = 64.0 * big.size();
  EXPECT_NEAR(static_cast<double>(ones) / bits, 0.5, 5 * 0.5 / std::sqrt(bits));
  // Bulk and per-call draws both advance: no output block repeats.
  std::vector<uint64_t> again(1 << 16);
  fill_u64(a, again.data(), again.size());
  EXPECT_NE(big, again);
}

TEST(Kernels, MaskTokensThresholds) {
  std::vector<int32_t> t = {0, 97, 255, 256, 257, -1, 1000, 65};
  std::vector<uint32_t> bits(t.size(), 0x80000000u);  // every draw = 2^31
  auto m = t;
  mask_tokens(m.data(), m.size(), bits.data(), uint64_t{1} << 31, kMaskId);  // 2^31 < 2^31: no
  EXPECT_EQ(m, t);
  mask_tokens(m.data(), m.size(), bits.data(), (uint64_t{1} << 31) + 1, kMaskId);  // all content
  EXPECT_EQ(m, (std::vector<int32_t>{kMaskId, kMaskId, kMaskId, 256, 257, -1, 1000, kMaskId}));
  std::vector<uint32_t> top(t.size(), 0xffffffffu);
  m = t;
  mask_tokens(m.data(), m.size(), top.data(), uint64_t{1} << 32, kMaskId);  // rate 1: always
  EXPECT_EQ(m[1], kMaskId);
  EXPECT_EQ(m[3], 256);
}

TEST(Kernels, MaskOpInPlaceEqualsVectorPath) {
  const AugmentOp* mask = find_augment("mask");
  ASSERT_NE(mask, nullptr);
  Params p{{"probability", 1.0}, {"rate", 0.3}};
  std::vector<int32_t> base(5000);
  for (size_t i = 0; i < base.size(); ++i) base[i] = static_cast<int32_t>(i % 300);  // some specials
  auto a = base, b = base;
  StreamKey k = stream_key(5, "augment");
  RowStream ra(k, 11), rb(k, 11);
  mask->apply_tokens(a, ra, p);
  mask->apply_tokens_in_place(b.data(), static_cast<int64_t>(b.size()), rb, p);
  EXPECT_EQ(a, b);
  int64_t content = 0, masked = 0;
  for (size_t i = 0; i < base.size(); ++i) {
    if (base[i] >= 256) {
      EXPECT_EQ(a[i], base[i]);
      continue;
    }
    ++content;
    masked += a[i] == kMaskId;
    if (a[i] != kMaskId) {
      EXPECT_EQ(a[i], base[i]);
    }
  }
  const double rate = static_cast<double>(masked) / content, se = std::sqrt(0.3 * 0.7 / content);
  EXPECT_NEAR(rate, 0.3, 5 * se);
}

TEST(Kernels, MaskRowsEqualPerRecordOp) {
  const AugmentOp* mask = find_augment("mask");
  Params p{{"probability", 1.0}, {"rate", 0.2}};
  std::vector<int64_t> offsets = {0};
  std::vector<int32_t> tokens;
  std::vector<int64_t> ids;
  for (int64_t r = 0; r < 400; ++r) {  // lengths 0 .. 3000 (records longer than one draw batch)
    int64_t n = (r * 977) % 3001;
    for (int64_t i = 0; i < n; ++i) tokens.push_back(static_cast<int32_t>((r + i) % 260));
    offsets.push_back(static_cast<int64_t>(tokens.size()));
    ids.push_back(1000 + 3 * r);
  }
  auto want = tokens;
  StreamKey key = stream_key(4, "augment");
  for (int64_t r = 0; r < 400; ++r) {
    RowStream rng(key, static_cast<uint64_t>(ids[r]));
    mask->apply_tokens_in_place(want.data() + offsets[r], offsets[r + 1] - offsets[r], rng, p);
  }
  auto threaded = tokens;
  mask_rows(tokens.data(), offsets.data(), 400, ids.data(), key, 0.2, 1);
  EXPECT_EQ(tokens, want);
  mask_rows(threaded.data(), offsets.data(), 400, ids.data(), key, 0.2, 3);
  EXPECT_EQ(threaded, want);
}

Table ragged_table(int64_t rows) {
  Table t(Schema({{"tokens", Role::Tokens, 0}, {"features", Role::Features, 3}, {"label", Role::Label, 0}}));
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<int32_t> tok(static_cast<size_t>(r % 7), static_cast<int32_t>(r));
    float f[3] = {static_cast<float>(r), 1.0f, 2.0f};
    int64_t y = r * 10;
    t.append_row({std::string_view(reinterpret_cast<const char*>(tok.data()), tok.size() * 4),
                  std::string_view(reinterpret_cast<const char*>(f), sizeof f),
                  std::string_view(reinterpret_cast<const char*>(&y), 8)});
  }
  return t;
}

TEST(Kernels, FilterByRunsEqualsRowByRowRebuild) {
  for (int pattern = 0; pattern < 4; ++pattern) {
    Table t = ragged_table(500);
    std::vector<uint8_t> keep(500);
    for (size_t i = 0; i < keep.size(); ++i)
      keep[i] = pattern == 0 ? 1 : pattern == 1 ? 0 : pattern == 2 ? (i % 3 != 1) : (i / 37) % 2 == (i % 5 == 0);
    Table want(t.schema());
    for (int64_t r = 0; r < t.rows(); ++r)
      if (keep[r]) want.append_row_from(t, r);
    t.filter(keep);
    ASSERT_EQ(t.rows(), want.rows()) << pattern;
    for (size_t f = 0; f < 3; ++f) {
      EXPECT_EQ(t.column(f).data, want.column(f).data) << pattern << " field " << f;
      EXPECT_EQ(t.column(f).offsets, want.column(f).offsets) << pattern << " field " << f;
    }
  }
}

TEST(Kernels, ShardImageIsTheFileAndItsChecksum) {
  test::TempDir tmp;
  Table t = ragged_table(1000);
  WriterOptions o;
  o.chunk_bytes = 4096;  // many chunks and a partial last one
  ShardImage img = shard_image(t, 100, 900, o, tmp / "x.h5");
  std::string path = tmp / "x.h5";
  std::string sha = write_file_synced(path, img.data.get(), img.size);
  EXPECT_EQ(sha, sha256_file(path));
  EXPECT_EQ(sha, sha256_hex(img.data.get(), img.size));
  EXPECT_EQ(static_cast<size_t>(std::filesystem::file_size(path)), img.size);
  // The same rows as a table of their own give the same bytes (slices need no copy).
  Table sub(t.schema());
  sub.append_range(t, 100, 900);
  ShardImage img2 = shard_image(sub, 0, sub.rows(), o, path);
  ASSERT_EQ(img2.size, img.size);
  EXPECT_EQ(0, std::memcmp(img.data.get(), img2.data.get(), img.size));
  // And the dataset reader reads them back.
  DatasetWriter w(tmp / "ds", t.schema());
  Manifest m;
  m.schema = t.schema();
  m.shards.push_back(w.write_image(0, 800, img));
  w.commit(m);
  Dataset ds = Dataset::open(tmp / "ds");
  Table back = ds.read(0, 800);
  EXPECT_EQ(back.column(0).data, sub.column(0).data);
  EXPECT_EQ(back.column(0).offsets, sub.column(0).offsets);
  EXPECT_EQ(back.column(1).data, sub.column(1).data);
  EXPECT_EQ(back.column(2).data, sub.column(2).data);
}

TEST(Kernels, ParallelVerifyReportsTheFirstCorruptShard) {
  test::TempDir tmp;
  std::string dir = tmp / "ds";
  Table t = ragged_table(400);
  DatasetWriter w(dir, t.schema());
  Manifest m;
  m.schema = t.schema();
  for (int64_t s = 0; s < 4; ++s) {
    Table part(t.schema());
    part.append_range(t, s * 100, (s + 1) * 100);
    m.shards.push_back(w.write_shard(s, part));
  }
  w.commit(m);
  Dataset ds = Dataset::open(dir);
  ds.verify_shards({0, 1, 2, 3}, 3);
  for (int64_t bad : {3, 1}) {  // flip one byte in the middle of shard `bad` (same size)
    std::string p = dir + "/" + shard_file_name(bad);
    std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(std::filesystem::file_size(p) / 2));
    char c;
    f.get(c);
    f.seekp(static_cast<std::streamoff>(std::filesystem::file_size(p) / 2));
    f.put(static_cast<char>(c ^ 0x40));
  }
  try {
    ds.verify_shards({0, 1, 2, 3}, 3);
    FAIL() << "corrupt shards were not detected";
  } catch (const DataError& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(shard_file_name(1)), std::string::npos) << msg;  // the first listed bad one
    EXPECT_NE(msg.find("checksum mismatch"), std::string::npos) << msg;
  }
  EXPECT_THROW(Dataset::open(dir), DataError);
}

}  // namespace
}  // namespace conflux::dataplane
