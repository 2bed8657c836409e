// `conflux partition`'s library (dataplane/partition.h): the plans (every row in exactly one
// part, balanced iid slices, whole groups, Dirichlet label skew that grows as alpha shrinks,
// determinism for a seed), option and data errors that name the flag, and the written parts
// (rows byte-identical to the input's, provenance, atomic replace, refusals that leave the
// output untouched).
#include "conflux/dataplane/partition.h"

#include "conflux/core/error.h"
#include "conflux/dataplane/dataset.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>
#include <numeric>
#include <set>

namespace conflux::dataplane {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

PartitionOptions options(const std::string& by, int64_t parts, uint64_t seed = 1) {
  PartitionOptions o;
  o.input = "fixture";
  o.by = by;
  o.parts = parts;
  o.seed = seed;
  o.field = by == "iid" ? "" : "label";
  return o;
}

// Every row of [0, n) exactly once, each part ascending and non-empty.
void expect_exact_cover(const PartitionResult& r, int64_t n) {
  std::vector<int> seen(static_cast<size_t>(n), 0);
  for (const auto& part : r.rows) {
    EXPECT_FALSE(part.empty());
    EXPECT_TRUE(std::is_sorted(part.begin(), part.end()));
    for (int64_t row : part) {
      ASSERT_GE(row, 0);
      ASSERT_LT(row, n);
      ++seen[static_cast<size_t>(row)];
    }
  }
  for (int64_t i = 0; i < n; ++i) EXPECT_EQ(seen[static_cast<size_t>(i)], 1) << "row " << i;
}

// Labels 0..classes-1, `per` rows each, interleaved (row i has label i % classes).
std::vector<int64_t> labels(int64_t classes, int64_t per) {
  std::vector<int64_t> v(static_cast<size_t>(classes * per));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<int64_t>(i) % classes;
  return v;
}

// Mean over values of the largest share of that value's rows held by one part (1: every value
// lives in a single part; 1/parts: spread evenly).
double mean_top_share(const PartitionResult& r, const std::vector<int64_t>& values) {
  std::map<int64_t, std::vector<int64_t>> per_value;  // value -> rows per part
  for (size_t p = 0; p < r.rows.size(); ++p)
    for (int64_t row : r.rows[p]) {
      auto& counts = per_value[values[row]];
      counts.resize(r.rows.size());
      ++counts[p];
    }
  double sum = 0;
  for (auto& [v, counts] : per_value)
    sum += static_cast<double>(*std::max_element(counts.begin(), counts.end())) /
           std::accumulate(counts.begin(), counts.end(), 0.0);
  return sum / static_cast<double>(per_value.size());
}

template <typename E>
std::string expect_error(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const E& e) {
    return e.message();
  }
  ADD_FAILURE() << "expected an error of the right kind";
  return "";
}

TEST(PartitionPlan, IidIsBalancedExactAndSeeded) {
  const auto a = plan_partition(options("iid", 4, 7), 103, {});
  expect_exact_cover(a, 103);
  for (const auto& part : a.rows) EXPECT_TRUE(part.size() == 25 || part.size() == 26) << part.size();
  EXPECT_EQ(plan_partition(options("iid", 4, 7), 103, {}).rows, a.rows);  // same seed, same parts
  EXPECT_NE(plan_partition(options("iid", 4, 8), 103, {}).rows, a.rows);
  // A shuffle, not slices of the input order.
  std::vector<int64_t> first_slice(a.rows[0].size());
  std::iota(first_slice.begin(), first_slice.end(), 0);
  EXPECT_NE(a.rows[0], first_slice);
  expect_exact_cover(plan_partition(options("iid", 1), 5, {}), 5);
  expect_exact_cover(plan_partition(options("iid", 5), 5, {}), 5);
}

TEST(PartitionPlan, GroupKeepsGroupsWholeAndBalances) {
  // Group sizes 40, 30, 20, 10, 10, 5 (values 6..1): LPT gives parts of 40, 30+5, 20+10+10 -> 40/35/40.
  std::vector<int64_t> values;
  for (auto [v, n] : std::vector<std::pair<int64_t, int>>{{6, 40}, {5, 30}, {4, 20}, {3, 10}, {2, 10}, {1, 5}})
    values.insert(values.end(), static_cast<size_t>(n), v);
  std::reverse(values.begin(), values.end());
  const auto r = plan_partition(options("group", 3), static_cast<int64_t>(values.size()), values);
  expect_exact_cover(r, static_cast<int64_t>(values.size()));
  std::map<int64_t, std::set<size_t>> parts_of_value;
  for (size_t p = 0; p < r.rows.size(); ++p)
    for (int64_t row : r.rows[p]) parts_of_value[values[row]].insert(p);
  for (auto& [v, parts] : parts_of_value) EXPECT_EQ(parts.size(), 1u) << "value " << v << " split";
  std::vector<size_t> sizes;
  for (const auto& part : r.rows) sizes.push_back(part.size());
  std::sort(sizes.begin(), sizes.end());
  EXPECT_EQ(sizes, (std::vector<size_t>{35, 40, 40}));
  EXPECT_EQ(r.summary["partition"][0]["values"].size() + r.summary["partition"][1]["values"].size() +
                r.summary["partition"][2]["values"].size(),
            6u);
  // Fewer distinct values than parts.
  const auto msg = expect_error<DataError>([&] { plan_partition(options("group", 7), 115, values); });
  EXPECT_NE(msg.find("6 distinct value(s), fewer than --parts 7"), std::string::npos) << msg;
}

TEST(PartitionPlan, DirichletSkewGrowsAsAlphaShrinks) {
  const auto values = labels(10, 100);
  auto o = options("dirichlet", 5, 3);
  o.alpha = 0.05;
  const auto skewed = plan_partition(o, 1000, values);
  expect_exact_cover(skewed, 1000);
  EXPECT_EQ(plan_partition(o, 1000, values).rows, skewed.rows);  // deterministic for the seed
  o.alpha = 1000;
  const auto even = plan_partition(o, 1000, values);
  expect_exact_cover(even, 1000);
  // With alpha 0.05 nearly every label lives in one part; with alpha 1000 each label is spread
  // (about 1/5 per part). Properties of these seeds' draws, not of timing.
  const double top_skewed = mean_top_share(skewed, values), top_even = mean_top_share(even, values);
  EXPECT_GT(top_skewed, 0.7);  // 0.872 for this seed
  EXPECT_LT(top_even, 0.3);    // 0.208
  EXPECT_EQ(skewed.summary["alpha"], 0.05);
  o.seed = 4;
  EXPECT_NE(plan_partition(o, 1000, values).rows, even.rows);
}

TEST(PartitionPlan, DirichletRedrawsUntilMinRows) {
  const auto values = labels(3, 20);  // 60 rows, 3 labels
  auto o = options("dirichlet", 4, 11);
  o.alpha = 0.5;
  o.min_rows = 8;
  const auto r = plan_partition(o, 60, values);
  expect_exact_cover(r, 60);
  for (const auto& part : r.rows) EXPECT_GE(part.size(), 8u);
  EXPECT_GE(r.attempts, 1);
  EXPECT_EQ(r.summary["attempts"], r.attempts);
  // Impossible: more rows than exist, and a single label that Dir(0.001) never spreads over 4 parts.
  o.min_rows = 16;
  EXPECT_NE(expect_error<DataError>([&] { plan_partition(o, 60, values); }).find("fewer than --parts 4 x --min-rows 16"),
            std::string::npos);
  o.min_rows = 5;
  o.alpha = 0.001;
  const auto msg = expect_error<DataError>([&] { plan_partition(o, 60, std::vector<int64_t>(60, 0)); });
  EXPECT_NE(msg.find("--min-rows 5"), std::string::npos) << msg;
}

TEST(PartitionPlan, BadOptionsNameTheFlag) {
  auto o = options("iid", 0);
  EXPECT_NE(expect_error<UsageError>([&] { plan_partition(o, 10, {}); }).find("--parts"), std::string::npos);
  o = options("dirichlet", 2);
  for (double a : {0.0, -1.0, std::nan("")}) {
    o.alpha = a;
    EXPECT_NE(expect_error<UsageError>([&] { plan_partition(o, 10, labels(2, 5)); }).find("--alpha"),
              std::string::npos);
  }
  o = options("stripes", 2);
  EXPECT_NE(expect_error<UsageError>([&] { plan_partition(o, 10, {}); }).find("--by must be iid, group or dirichlet"),
            std::string::npos);
  o = options("iid", 11);
  EXPECT_NE(expect_error<DataError>([&] { plan_partition(o, 10, {}); }).find("fewer than --parts 11"),
            std::string::npos);
}

// The written parts: rows byte-identical to the input's, provenance, partition.json.
TEST(PartitionWrite, PartsHoldExactlyTheInputRows) {
  TempDir tmp;
  test::write_dataset(tmp / "ds", 47, 10);
  PartitionOptions o;
  o.input = tmp / "ds";
  o.out_dir = tmp / "clients";
  o.by = "group";  // no --field: the first label field ("label", 3 values)
  o.parts = 3;
  o.rows_per_shard = 6;
  o.command_line = "test";
  const auto r = partition_dataset(o);
  EXPECT_EQ(r.field, "label");
  const auto input = Dataset::open(tmp / "ds");
  const Table all = input.read(0, input.num_rows());
  std::set<std::vector<std::string>> want, got;
  for (int64_t i = 0; i < all.rows(); ++i) {
    std::vector<std::string> row;
    for (size_t f = 0; f < all.schema().size(); ++f) row.emplace_back(all.row_bytes(f, i));
    want.insert(row);
  }
  int64_t total = 0;
  for (int64_t p = 0; p < 3; ++p) {
    const auto part = Dataset::open(o.out_dir + "/" + partition_dir_name(p, 3));
    EXPECT_EQ(part.schema(), input.schema());
    EXPECT_EQ(part.num_rows(), static_cast<int64_t>(r.rows[p].size()));
    EXPECT_EQ(part.num_shards(), (part.num_rows() + 5) / 6);
    const Table t = part.read(0, part.num_rows());
    for (int64_t i = 0; i < t.rows(); ++i) {
      std::vector<std::string> row;
      for (size_t f = 0; f < t.schema().size(); ++f) row.emplace_back(t.row_bytes(f, i));
      EXPECT_TRUE(got.insert(row).second) << "row appears twice";
      EXPECT_EQ(row, [&] {  // the plan's row, in order
        std::vector<std::string> in;
        for (size_t f = 0; f < all.schema().size(); ++f) in.emplace_back(all.row_bytes(f, r.rows[p][i]));
        return in;
      }());
    }
    total += t.rows();
    const auto& stage = part.manifest().provenance.back();
    EXPECT_EQ(stage["stage"], "partition");
    EXPECT_EQ(stage["index"], p);
    EXPECT_EQ(stage["params"]["by"], "group");
    EXPECT_EQ(stage["params"]["parts"], 3);
    EXPECT_EQ(stage["params"]["field"], "label");
    EXPECT_EQ(stage["parent_sha256"], sha256_file(tmp / "ds/manifest.json"));
    EXPECT_EQ(stage["rows_in"], 47);
    EXPECT_EQ(stage["rows_out"], part.num_rows());
  }
  EXPECT_EQ(total, 47);
  EXPECT_EQ(got, want);
  const auto summary = nlohmann::json::parse(test::read_file(o.out_dir + "/partition.json"));
  EXPECT_EQ(summary["by"], "group");
  EXPECT_EQ(summary["partition"].size(), 3u);
  // No staging directory is left behind.
  for (const auto& e : fs::directory_iterator(tmp.path()))
    EXPECT_EQ(e.path().filename().string().find(".staging"), std::string::npos) << e.path();
}

TEST(PartitionWrite, DeterministicAndReplacesOnlyAPartition) {
  TempDir tmp;
  test::write_dataset(tmp / "ds", 30, 30);
  PartitionOptions o;
  o.input = tmp / "ds";
  o.by = "dirichlet";
  o.field = "group";
  o.alpha = 0.3;
  o.parts = 2;
  o.seed = 5;
  o.out_dir = tmp / "a";
  partition_dataset(o);
  o.out_dir = tmp / "b";
  partition_dataset(o);
  for (const char* part : {"part-000", "part-001"})
    EXPECT_EQ(test::read_file(tmp / "a/" + part + "/part-00000.h5"), test::read_file(tmp / "b/" + part + "/part-00000.h5"))
        << part;
  // Re-running over an earlier partition replaces it (fewer parts: part-002 of a 3-way split goes).
  o.parts = 3;
  partition_dataset(o);
  EXPECT_TRUE(fs::exists(tmp / "b/part-002"));
  o.parts = 2;
  partition_dataset(o);
  EXPECT_FALSE(fs::exists(tmp / "b/part-002"));
  // A directory that is not a partition is refused and left alone.
  fs::create_directories(tmp / "precious");
  test::write_file(tmp / "precious/notes.txt", "keep me");
  o.out_dir = tmp / "precious";
  const auto msg = expect_error<IoError>([&] { partition_dataset(o); });
  EXPECT_NE(msg.find("is not a partition output (no partition.json)"), std::string::npos) << msg;
  EXPECT_EQ(test::read_file(tmp / "precious/notes.txt"), "keep me");
  EXPECT_FALSE(fs::exists(tmp / ".precious.staging"));
}

TEST(PartitionWrite, BadFieldAndMissingDatasetAreNamed) {
  TempDir tmp;
  test::write_dataset(tmp / "ds", 12, 12);
  PartitionOptions o;
  o.input = tmp / "ds";
  o.out_dir = tmp / "out";
  o.by = "group";
  o.parts = 2;
  o.field = "nope";
  auto msg = expect_error<DataError>([&] { partition_dataset(o); });
  EXPECT_NE(msg.find("--field 'nope': no such field"), std::string::npos) << msg;
  o.field = "text";
  msg = expect_error<DataError>([&] { partition_dataset(o); });
  EXPECT_NE(msg.find("has role text; --by group needs a label or group field"), std::string::npos) << msg;
  o.field = "";
  o.input = tmp / "missing";
  msg = expect_error<DataError>([&] { partition_dataset(o); });
  EXPECT_NE(msg.find("missing"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(tmp / "out"));
}

TEST(PartitionWrite, DatasetWithoutLabelsRefusesDirichlet) {
  TempDir tmp;
  const Schema schema({{"tokens", Role::Tokens, 0}});
  {
    DatasetWriter w(tmp / "ds", schema);
    Table t(schema);
    for (int i = 0; i < 6; ++i) {
      const int32_t tok[2] = {i, 257};
      t.append_row({{reinterpret_cast<const char*>(tok), sizeof tok}});
    }
    Manifest m;
    m.schema = schema;
    m.shards.push_back(w.write_shard(0, t));
    w.commit(m);
  }
  PartitionOptions o;
  o.input = tmp / "ds";
  o.out_dir = tmp / "out";
  o.by = "dirichlet";
  o.parts = 2;
  const auto msg = expect_error<DataError>([&] { partition_dataset(o); });
  EXPECT_NE(msg.find("has no label or group field to split by"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--by iid"), std::string::npos) << msg;
  o.by = "iid";
  EXPECT_EQ(partition_dataset(o).rows.size(), 2u);
}

}  // namespace
}  // namespace conflux::dataplane
