// Single-process tests of the dataplane building blocks: ingest parsing, validators, MinHash,
// augmentation ops, DP mechanisms (noise statistics with fixed seeds), the ledger, PCA's eigen
// solver and the planner.
#include "conflux/core/error.h"
#include "conflux/core/privacy.h"
#include "conflux/core/rng.h"
#include "conflux/dataplane/dedup.h"
#include "conflux/dataplane/distributed.h"
#include "conflux/dataplane/ingest.h"
#include "conflux/dataplane/manifest.h"
#include "conflux/dataplane/ops.h"
#include "conflux/dataplane/pca.h"
#include "conflux/dataplane/privacy_ops.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <numeric>

namespace conflux::dataplane {
namespace {

const Validator* validator(const std::string& name) {
  for (auto* v : validator_registry())
    if (name == v->name()) return v;
  return nullptr;
}

RowView text_row(const std::string& text) {
  RowView r;
  r.text = text;
  r.has_text = true;
  return r;
}

TEST(Ingest, SplitFortunesAndLines) {
  EXPECT_EQ(split_fortunes("a\n%\nb\nc\n%\n%\n  \n%\nd"), (std::vector<std::string>{"a", "b\nc", "d"}));
  EXPECT_EQ(split_lines("x\r\n\n y \nz"), (std::vector<std::string>{"x", " y ", "z"}));
  EXPECT_EQ(byte_tokens("A\xc3\xa9", true), (std::vector<int32_t>{65, 0xc3, 0xa9, kEosId}));
  EXPECT_EQ(byte_tokens("", false), std::vector<int32_t>{});
}

// The message of the DataError that parsing `text` as `format` throws ("" and a failure if none).
std::string ingest_error(const std::string& format, const std::string& text, const std::string& label_column = "") {
  IngestOptions o;
  o.format = format;
  o.label_column = label_column;
  std::vector<IngestRecord> out;
  try {
    parse_ingest_text("in.txt", text, o, out);
  } catch (const DataError& e) {
    return e.message();
  }
  ADD_FAILURE() << "expected a DataError for " << format << ": " << text;
  return "";
}

TEST(Ingest, ParseIngestTextRecords) {
  IngestOptions o;
  o.label_field = "l";
  std::vector<IngestRecord> out;
  parse_ingest_text("in.jsonl", "{\"text\": \"hi\", \"l\": \"x\"}\n\n{\"text\": \"\", \"l\": 7}\n", o, out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].text, "hi");
  EXPECT_EQ(out[0].label, "x");
  EXPECT_TRUE(out[0].label_is_string);
  EXPECT_EQ(out[1].label, "7");
  EXPECT_FALSE(out[1].label_is_string);
  o.format = "csv";
  o.label_column = "y";
  out.clear();
  parse_ingest_text("in.csv", "a,y\n1.5,3\n-2,4\n", o, out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].features, std::vector<float>{-2.0f});
  EXPECT_EQ(out[1].label, "4");
}

// Found by fuzz/ingest_fuzz.cpp: a JSON number beyond double escaped as a json::out_of_range
// (exit 4), and csv values beyond float32 / labels beyond int64 were undefined conversions.
TEST(Ingest, OutOfRangeNumbersAreDataErrors) {
  EXPECT_NE(ingest_error("jsonl", "{\"text\": \"a\", \"n\": 1e400}").find("in.txt:1: not valid JSON"),
            std::string::npos);
  EXPECT_EQ(ingest_error("csv", "1,1e300\n"), "in.txt: row 1 column 1: '1e300' is outside the float32 range");
  EXPECT_EQ(ingest_error("csv", "1e30,2\n", "0"), "in.txt: row 1: label '1e30' is not an integer");
}

TEST(Ingest, ExpandInputsSkipsExcludedHiddenAndAliases) {
  test::TempDir tmp;
  test::write_file(tmp / "b", "x");
  test::write_file(tmp / "a", "x");
  test::write_file(tmp / "a.dat", "x");
  test::write_file(tmp / ".hidden", "x");
  std::filesystem::create_symlink(tmp / "a", tmp / "a.u8");
  auto files = expand_inputs({tmp.path()}, {".dat"});
  EXPECT_EQ(files, (std::vector<std::string>{tmp / "a", tmp / "b"}));
  EXPECT_THROW(expand_inputs({tmp / "missing"}, {}), DataError);
}

TEST(Validators, Utf8) {
  auto* v = validator("utf8");
  ValidateConfig c;
  EXPECT_EQ(v->check(text_row("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), c), "");
  EXPECT_EQ(v->check(text_row("bad \xc3"), c), "invalid_utf8");          // truncated
  EXPECT_EQ(v->check(text_row("\xc0\xaf"), c), "invalid_utf8");          // overlong
  EXPECT_EQ(v->check(text_row("\xed\xa0\x80"), c), "invalid_utf8");      // surrogate
  EXPECT_EQ(v->check(text_row("\xf4\x90\x80\x80"), c), "invalid_utf8");  // > U+10FFFF
  c.utf8 = "error";
  EXPECT_THROW(v->check(text_row("\xff"), c), DataError);
}

TEST(Validators, QualityHeuristics) {
  ValidateConfig c;
  c.max_non_alnum_ratio = 0.25;
  EXPECT_EQ(validator("non_alnum")->check(text_row("hello world"), c), "");
  EXPECT_EQ(validator("non_alnum")->check(text_row("#### ** !!"), c), "non_alnum_ratio");  // 8/10
  c.max_repeated_line_ratio = 0.3;
  EXPECT_EQ(validator("repeated_lines")->check(text_row("a\nb\nc\na"), c), "");      // 1/4
  EXPECT_EQ(validator("repeated_lines")->check(text_row("a\na\na\nb"), c), "repeated_lines");  // 2/4
  c.min_words = 3;
  c.max_words = 5;
  EXPECT_EQ(validator("word_count")->check(text_row("one two"), c), "too_few_words");
  EXPECT_EQ(validator("word_count")->check(text_row("one two three"), c), "");
  EXPECT_EQ(validator("word_count")->check(text_row("1 2 3 4 5 6"), c), "too_many_words");
  c.min_mean_word_length = 2;
  c.max_mean_word_length = 10;
  EXPECT_EQ(validator("word_length")->check(text_row("a b c d"), c), "mean_word_length");
  EXPECT_EQ(validator("word_length")->check(text_row("ab cd"), c), "");
  EXPECT_EQ(validator("word_length")->check(text_row("abcdefghijklmnop"), c), "mean_word_length");
}

TEST(Validators, LengthAndNonFinite) {
  ValidateConfig c;
  c.min_tokens = 3;
  c.max_tokens = 5;
  RowView r;
  for (auto [n, want] : std::vector<std::pair<int64_t, std::string>>{
           {0, "empty"}, {2, "too_short"}, {3, ""}, {5, ""}, {6, "too_long"}}) {
    r.content_tokens = n;
    EXPECT_EQ(validator("length")->check(r, c), want) << n;
  }
  float x[3] = {1, NAN, 2};
  RowView f;
  f.features = x;
  f.dim = 3;
  EXPECT_EQ(validator("nonfinite")->check(f, c), "nonfinite_features");
  c.nonfinite = "error";
  EXPECT_THROW(validator("nonfinite")->check(f, c), DataError);
  x[1] = INFINITY;
  c.nonfinite = "drop";
  EXPECT_EQ(validator("nonfinite")->check(f, c), "nonfinite_features");
}

TEST(MinHash, JaccardAndSignatureAgreement) {
  std::vector<uint64_t> a = {1, 2, 3, 4}, b = {3, 4, 5, 6, 7, 8};
  EXPECT_DOUBLE_EQ(jaccard(a, b), 2.0 / 8.0);
  EXPECT_DOUBLE_EQ(jaccard(a, a), 1.0);
  MinHashParams p;
  EXPECT_NEAR(p.effective_threshold(), std::pow(1.0 / 8, 1.0 / 8), 1e-12);  // 0.7711
  // Signature agreement estimates Jaccard: 512 hashes, standard error <= 0.022; bound 0.1.
  p.bands = 64;
  std::vector<uint64_t> x(1000), y;
  std::iota(x.begin(), x.end(), 0);
  // Shingles are XXH3 hashes in practice: use hashed values.
  for (uint64_t i = 300; i < 1300; ++i) y.push_back(hash64(&i, 8));
  for (auto& v : x) v = hash64(&v, 8);
  std::sort(x.begin(), x.end());
  std::sort(y.begin(), y.end());
  double j = jaccard(x, y);  // 700 / 1300
  EXPECT_NEAR(j, 700.0 / 1300.0, 1e-12);
  std::vector<uint32_t> sx(512), sy(512);
  minhash_signature(x, p, sx.data());
  minhash_signature(y, p, sy.data());
  int agree = 0;
  for (int i = 0; i < 512; ++i) agree += sx[i] == sy[i];
  EXPECT_NEAR(agree / 512.0, j, 0.1);
  // Shingles: windows of k tokens; a short record is a single shingle.
  std::vector<int32_t> t = {1, 2, 3, 1, 2, 3};
  EXPECT_EQ(shingle_set(t.data(), 6, 3).size(), 3u);  // 123, 231, 312
  EXPECT_EQ(shingle_set(t.data(), 2, 3).size(), 1u);
}

Params params_of(const AugmentOp* op) {
  Params p{{"probability", 1.0}};
  for (auto& s : op->params()) p[s.name] = s.default_value;
  return p;
}

TEST(Augment, TokenOps) {
  std::vector<int32_t> base(100000, 'a');
  base.push_back(kEosId);
  Stream rng(7, "test");
  auto* mask = find_augment("mask");
  ASSERT_NE(mask, nullptr);
  auto t = base;
  mask->apply_tokens(t, rng, params_of(mask));
  double masked = std::count(t.begin(), t.end(), kMaskId) / 100000.0;
  EXPECT_NEAR(masked, 0.15, 0.01);  // se 0.0011
  EXPECT_EQ(t.back(), kEosId);

  auto* drop = find_augment("dropout");
  t = base;
  drop->apply_tokens(t, rng, params_of(drop));
  EXPECT_NEAR(1.0 - (t.size() - 1) / 100000.0, 0.10, 0.01);
  EXPECT_EQ(t.back(), kEosId);

  auto* crop = find_augment("crop");
  std::vector<int32_t> seq(1000);
  std::iota(seq.begin(), seq.end(), 0);
  t = seq;
  crop->apply_tokens(t, rng, params_of(crop));
  ASSERT_EQ(t.size(), 128u);
  for (size_t i = 1; i < t.size(); ++i) EXPECT_EQ(t[i], t[i - 1] + 1);  // a contiguous window
  t = {1, 2, 3};
  crop->apply_tokens(t, rng, params_of(crop));
  EXPECT_EQ(t, (std::vector<int32_t>{1, 2, 3}));

  auto* span = find_augment("span");
  t = base;
  span->apply_tokens(t, rng, params_of(span));
  int64_t spans = std::count(t.begin(), t.end(), kMaskId);
  int64_t corrupted = 100000 - (static_cast<int64_t>(t.size()) - 1 - spans);
  // Expected corrupted share ~ rate / (1 + rate * (1 - 1/L))... bounded loosely around 0.15.
  EXPECT_GT(corrupted, 10000);
  EXPECT_LT(corrupted, 20000);
  EXPECT_NEAR(static_cast<double>(corrupted) / spans, 3.0, 0.2);  // mean span length L = 3
  EXPECT_EQ(t.back(), kEosId);
}

TEST(Augment, FeatureOps) {
  Stream rng(11, "test");
  auto* jitter = find_augment("jitter");
  std::vector<float> x(100000, 1.0f);
  FeatureRecord r;
  r.x = x.data();
  r.dim = static_cast<int64_t>(x.size());
  Params p = params_of(jitter);
  p["sigma"] = 0.5;
  jitter->apply_features(r, rng, p);
  double m = 0, v = 0;
  for (float f : x) m += f;
  m /= x.size();
  for (float f : x) v += (f - m) * (f - m);
  v /= x.size() - 1;
  EXPECT_NEAR(m, 1.0, 0.01);
  EXPECT_NEAR(v, 0.25, 0.25 * 0.03);  // se of variance 0.45%

  auto* scale = find_augment("scale");
  std::vector<float> y = {1, 2, 3};
  r.x = y.data();
  r.dim = 3;
  scale->apply_features(r, rng, params_of(scale));
  double f = y[0];
  EXPECT_GE(f, 0.9 - 1e-6);
  EXPECT_LE(f, 1.1 + 1e-6);
  EXPECT_NEAR(y[1], 2 * f, 1e-5);
  EXPECT_NEAR(y[2], 3 * f, 1e-5);

  auto* mixup = find_augment("mixup");
  std::vector<float> partner = {10, 20, 30};
  int64_t label = 1;
  for (int k = 0; k < 100; ++k) {
    std::vector<float> z = {0, 0, 0};
    label = 1;
    r.x = z.data();
    r.label = &label;
    r.partner = partner.data();
    r.partner_label = 7;
    mixup->apply_features(r, rng, params_of(mixup));
    double lam = 1.0 - z[0] / 10.0;
    EXPECT_GE(lam, -1e-6);
    EXPECT_LE(lam, 1 + 1e-6);
    EXPECT_NEAR(z[1], 20 * (1 - lam), 1e-4);
    EXPECT_EQ(label, lam < 0.5 ? 7 : 1);
  }
}

// Noise statistics: 200k draws with fixed seeds. Bounds are about ten standard errors of the
// sample variance (Laplace: sd(s^2)/s^2 = sqrt(5/n) = 0.5%; Gaussian: sqrt(2/n) = 0.32%).
double noise_variance(const char* mech, const DpFieldConfig& cfg, Calibration* cal_out) {
  const DpMechanism* m = find_dp(mech);
  Calibration cal = m->calibrate(cfg);
  *cal_out = cal;
  Stream rng(2024, mech);
  const int64_t dim = 100, n = 2000;
  double sum = 0, sq = 0;
  std::vector<float> x(dim);
  for (int64_t r = 0; r < n; ++r) {
    std::fill(x.begin(), x.end(), 0.0f);
    m->apply_features(x.data(), dim, cfg, cal, rng);
    for (float v : x) {
      sum += v;
      sq += static_cast<double>(v) * v;
    }
  }
  double cnt = static_cast<double>(dim * n), mean = sum / cnt;
  return sq / cnt - mean * mean;
}

TEST(Privacy, LaplaceVarianceMatchesScale) {
  DpFieldConfig c;
  c.mechanism = "laplace";
  c.epsilon = 1.0;
  c.clip = 1.0;
  Calibration cal;
  double var = noise_variance("laplace", c, &cal);
  EXPECT_DOUBLE_EQ(cal.scale, privacy::laplace_scale(1.0, 2.0));
  EXPECT_DOUBLE_EQ(cal.scale, 2.0);
  EXPECT_NEAR(var / (2 * cal.scale * cal.scale), 1.0, 0.05);
}

TEST(Privacy, GaussianVarianceMatchesSigma) {
  DpFieldConfig c;
  c.mechanism = "gaussian";
  c.epsilon = 0.5;
  c.delta = 1e-5;
  c.clip = 1.0;
  for (const char* calib : {"analytic", "classic"}) {
    c.calibration = calib;
    Calibration cal;
    double var = noise_variance("gaussian", c, &cal);
    double want = std::string(calib) == "analytic" ? privacy::gaussian_sigma_analytic(0.5, 1e-5, 2.0)
                                                   : privacy::gaussian_sigma_classic(0.5, 1e-5, 2.0);
    EXPECT_DOUBLE_EQ(cal.scale, want);
    EXPECT_NEAR(var / (cal.scale * cal.scale), 1.0, 0.03) << calib;
  }
  c.epsilon = 2.0;
  c.calibration = "classic";
  EXPECT_THROW(find_dp("gaussian")->calibrate(c), PrivacyError);
}

TEST(Privacy, ClippingBounds) {
  std::vector<float> x = {3, 4};
  clip_l2(x.data(), 2, 1.0);
  EXPECT_NEAR(std::hypot(x[0], x[1]), 1.0, 1e-6);
  std::vector<float> y = {3, -1};
  clip_l1(y.data(), 2, 2.0);
  EXPECT_NEAR(std::fabs(y[0]) + std::fabs(y[1]), 2.0, 1e-6);
  std::vector<float> z = {0.1f, 0.1f};
  clip_l2(z.data(), 2, 1.0);
  EXPECT_EQ(z[0], 0.1f);
}

TEST(Privacy, RandomizedResponseFlipRate) {
  DpFieldConfig c;
  c.mechanism = "randomized_response";
  c.epsilon = 1.0;
  c.classes = 4;
  const DpMechanism* m = find_dp("randomized_response");
  Calibration cal = m->calibrate(c);
  const double keep = std::exp(1.0) / (std::exp(1.0) + 3);
  EXPECT_NEAR(cal.keep_probability, keep, 1e-12);
  Stream rng(99, "rr");
  const int n = 200000;
  std::vector<int> hist(4, 0);
  for (int i = 0; i < n; ++i) {
    int64_t y = 2;
    m->apply_label(&y, cal, rng);
    ASSERT_GE(y, 0);
    ASSERT_LT(y, 4);
    ++hist[y];
  }
  // Standard error sqrt(p(1-p)/n) ~ 0.0011; bound 0.01.
  EXPECT_NEAR(hist[2] / double(n), keep, 0.01);
  for (int k : {0, 1, 3}) EXPECT_NEAR(hist[k] / double(n), (1 - keep) / 3, 0.01);
  int64_t bad = 4;
  EXPECT_THROW(m->apply_label(&bad, cal, rng), DataError);
}

TEST(Privacy, LedgerComposition) {
  DpFieldConfig g;
  g.field = "x";
  g.mechanism = "gaussian";
  g.epsilon = 0.5;
  g.delta = 1e-6;
  g.clip = 1.0;
  Calibration cal = find_dp("gaussian")->calibrate(g);
  auto e1 = ledger_entry(g, cal, true);
  auto first = compose_ledger(nlohmann::json::object(), {e1});
  EXPECT_DOUBLE_EQ(first["total"]["basic"]["epsilon"].get<double>(), 0.5);
  EXPECT_TRUE(first["total"]["private"].get<bool>());
  EXPECT_FALSE(first["total"].contains("gaussian_rdp"));
  DpFieldConfig l;
  l.field = "label";
  l.mechanism = "randomized_response";
  l.epsilon = 1.0;
  l.classes = 3;
  auto e2 = ledger_entry(l, find_dp("randomized_response")->calibrate(l), false);
  auto second = compose_ledger(first, {e1, e2});  // the parent's entry plus two new ones
  ASSERT_EQ(second["entries"].size(), 3u);
  EXPECT_DOUBLE_EQ(second["total"]["basic"]["epsilon"].get<double>(), 2.0);
  EXPECT_DOUBLE_EQ(second["total"]["basic"]["delta"].get<double>(), 2e-6);
  EXPECT_FALSE(second["total"]["private"].get<bool>());
  double z = cal.scale / cal.sensitivity;
  double rdp = privacy::compose_gaussian_rdp(z, 2, 2e-6).epsilon;
  EXPECT_DOUBLE_EQ(second["total"]["gaussian_rdp"]["epsilon"].get<double>(), std::min(rdp, 1.0));
  EXPECT_EQ(e2["noise"], "seeded: not private");
}

TEST(Pca, JacobiEigen) {
  std::vector<double> a = {2, 1, 0, 1, 2, 0, 0, 0, 5};
  std::vector<double> vals, vecs;
  symmetric_eigen(a, 3, &vals, &vecs);
  EXPECT_NEAR(vals[0], 5, 1e-12);
  EXPECT_NEAR(vals[1], 3, 1e-12);
  EXPECT_NEAR(vals[2], 1, 1e-12);
  EXPECT_NEAR(vecs[2], 1, 1e-12);                 // (0,0,1)
  EXPECT_NEAR(vecs[3], std::sqrt(0.5), 1e-12);    // (1,1,0)/sqrt2, sign fixed positive
  EXPECT_NEAR(vecs[4], std::sqrt(0.5), 1e-12);
}

TEST(Plan, BalancedBoundaries) {
  std::vector<int64_t> cum(1001);
  std::iota(cum.begin(), cum.end(), 0);
  EXPECT_EQ(balanced_boundaries(cum, 4, 256), (std::vector<int64_t>{0, 256, 512, 768, 1000}));
  EXPECT_EQ(balanced_boundaries(cum, 1, 256), (std::vector<int64_t>{0, 1000}));
  EXPECT_EQ(balanced_boundaries(cum, 3, 1), (std::vector<int64_t>{0, 333, 667, 1000}));
  // Weighted: the first 100 rows carry 90% of the weight.
  std::vector<int64_t> w(1001, 0);
  for (int i = 1; i <= 1000; ++i) w[i] = w[i - 1] + (i <= 100 ? 90 : 1);
  auto b = balanced_boundaries(w, 2, 1);
  EXPECT_EQ(b[1], 55);  // 9000 + 900 = 9900 total; half = 4950 = prefix of 55 rows
  std::vector<int64_t> tiny = {0, 1, 2};
  EXPECT_EQ(balanced_boundaries(tiny, 4, 256), (std::vector<int64_t>{0, 0, 0, 2, 2}));
}

}  // namespace
}  // namespace conflux::dataplane
