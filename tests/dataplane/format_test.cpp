// Dataset format: write shards + manifest, read global row ranges across shards, and reject bad
// datasets (missing shard, wrong checksum, truncated/corrupt HDF5, schema mismatch, offsets not
// monotone) with errors that name the file and the dataset.
#include "conflux/dataplane/dataset.h"
#include "conflux/dataplane/writer.h"
#include "test_util.h"

#include "conflux/core/error.h"

#include <gtest/gtest.h>
#include <hdf5.h>

#include <filesystem>

namespace conflux::dataplane {
namespace {

using test::TempDir;
using test::write_dataset;

std::string expect_data_error(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const conflux::DataError& e) {
    return e.message();
  }
  ADD_FAILURE() << "expected a conflux::DataError";
  return "";
}

TEST(Format, RoundTripAcrossShards) {
  TempDir tmp;
  std::string out = tmp / "ds";
  write_dataset(out, 23, 5);
  auto ds = Dataset::open(out);
  EXPECT_EQ(ds.num_rows(), 23);
  EXPECT_EQ(ds.num_shards(), 5);
  EXPECT_EQ(ds.schema(), test::full_schema());
  auto ref = test::make_rows(0, 23);
  for (auto [b, e] : std::vector<std::pair<int64_t, int64_t>>{{0, 23}, {3, 12}, {5, 10}, {22, 23}, {7, 7}}) {
    Table t = ds.read(b, e);
    ASSERT_EQ(t.rows(), e - b);
    for (int64_t r = b; r < e; ++r)
      for (size_t f = 0; f < ref.schema().size(); ++f)
        EXPECT_EQ(t.row_bytes(f, r - b), ref.row_bytes(f, r)) << "row " << r << " field " << f;
  }
  auto tok = ds.read_tokens(4, 11);
  ASSERT_EQ(tok.rows(), 7);
  auto text = ds.read_text(4, 11);
  for (int r = 0; r < 7; ++r) {
    std::string from_tokens(tok.values.begin() + tok.offsets[r], tok.values.begin() + tok.offsets[r + 1]);
    EXPECT_EQ(from_tokens, text[r]);
  }
  auto x = ds.read_features(9, 11);
  EXPECT_EQ(x.dim, 3);
  EXPECT_EQ(x.values, (std::vector<float>{9, 18, -9, 10, 20, -10}));
  EXPECT_EQ(ds.read_labels(9, 12), (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(ds.read_groups(9, 12), (std::vector<int64_t>{4, 0, 1}));

  // Token stream: concatenation of all rows' tokens.
  auto all = ds.read_tokens(0, 23);
  EXPECT_EQ(ds.num_tokens(), static_cast<int64_t>(all.values.size()));
  auto win = ds.read_token_stream(37, 100);
  EXPECT_EQ(win, std::vector<int32_t>(all.values.begin() + 37, all.values.begin() + 137));
  auto offs = ds.token_offsets(4, 17);
  EXPECT_EQ(offs, std::vector<int64_t>(all.offsets.begin() + 4, all.offsets.begin() + 18));
  EXPECT_EQ(ds.token_offsets(23, 23), std::vector<int64_t>{all.offsets.back()});
}

TEST(Format, ShardsAreByteReproducible) {
  TempDir tmp;
  write_dataset(tmp / "a", 40, 16);
  write_dataset(tmp / "b", 40, 16);
  for (int s = 0; s < 3; ++s)
    EXPECT_EQ(test::read_file(tmp / ("a/" + shard_file_name(s))), test::read_file(tmp / ("b/" + shard_file_name(s))));
  EXPECT_EQ(test::read_file(tmp / "a/manifest.json"), test::read_file(tmp / "b/manifest.json"));
}

TEST(Format, CommitReplacesAtomicallyAndAbortLeavesNothing) {
  TempDir tmp;
  std::string out = tmp / "ds";
  write_dataset(out, 10, 4);
  write_dataset(out, 6, 4);  // replace
  EXPECT_EQ(Dataset::open(out).num_rows(), 6);
  {
    DatasetWriter w(out, test::full_schema());
    w.write_shard(0, test::make_rows(0, 3));
    // destroyed without commit: the staging directory goes, the old dataset stays
  }
  EXPECT_FALSE(std::filesystem::exists(staging_dir_for(out)));
  EXPECT_EQ(Dataset::open(out).num_rows(), 6);
  std::filesystem::create_directory(tmp / "notds");
  test::write_file(tmp / "notds/important.txt", "x");
  EXPECT_THROW(DatasetWriter(tmp / "notds", test::full_schema()), conflux::IoError);
}

TEST(Format, MissingShardNamesFile) {
  TempDir tmp;
  write_dataset(tmp / "ds", 10, 4);
  std::filesystem::remove(tmp / "ds/part-00001.h5");
  auto msg = expect_data_error([&] { Dataset::open(tmp / "ds"); });
  EXPECT_NE(msg.find("part-00001.h5"), std::string::npos) << msg;
  EXPECT_NE(msg.find("missing"), std::string::npos) << msg;
}

TEST(Format, WrongChecksumNamesFile) {
  TempDir tmp;
  write_dataset(tmp / "ds", 10, 4);
  std::string p = tmp / "ds/part-00002.h5";
  std::string bytes = test::read_file(p);
  bytes[bytes.size() - 3] ^= 0x5a;  // flip bits in the data area
  test::write_file(p, bytes);
  auto msg = expect_data_error([&] { Dataset::open(tmp / "ds"); });
  EXPECT_NE(msg.find("part-00002.h5"), std::string::npos) << msg;
  EXPECT_NE(msg.find("checksum"), std::string::npos) << msg;
}

TEST(Format, TruncatedOrCorruptHdf5) {
  TempDir tmp;
  write_dataset(tmp / "ds", 10, 4);
  std::string p = tmp / "ds/part-00000.h5";
  std::string bytes = test::read_file(p);
  test::write_file(p, bytes.substr(0, bytes.size() / 2));
  auto msg = expect_data_error([&] { Dataset::open(tmp / "ds"); });
  EXPECT_NE(msg.find("part-00000.h5"), std::string::npos) << msg;
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
  // Same size, garbage header, checksums off: HDF5 itself must reject it.
  std::string junk(bytes.size(), 'x');
  test::write_file(p, junk);
  OpenOptions no_sum;
  no_sum.verify_checksums = false;
  msg = expect_data_error([&] { Dataset::open(tmp / "ds", no_sum); });
  EXPECT_NE(msg.find("part-00000.h5"), std::string::npos) << msg;
  EXPECT_NE(msg.find("HDF5"), std::string::npos) << msg;
}

// Rewrites one shard with a different schema (or broken offsets) and fixes its manifest entry,
// so only the structural check can catch it.
void replace_shard(const std::string& dir, int64_t index, const Table& t, bool break_offsets = false) {
  std::string p = dir + "/" + shard_file_name(index);
  write_shard_file(p, t, {});
  if (break_offsets) {
    hid_t f = H5Fopen(p.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, "offsets", H5P_DEFAULT);
    std::vector<int64_t> off(t.column(0).offsets);
    std::swap(off[1], off[2]);
    H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, off.data());
    H5Dclose(d);
    H5Fclose(f);
  }
  auto m = Manifest::load(dir);
  m.shards[index].bytes = static_cast<int64_t>(std::filesystem::file_size(p));
  m.shards[index].sha256 = sha256_file(p);
  m.shards[index].rows = t.rows();
  test::write_file(dir + "/manifest.json", m.to_json_text());
}

TEST(Format, SchemaMismatchBetweenShards) {
  TempDir tmp;
  write_dataset(tmp / "ds", 10, 4);
  Table other(Schema({{"tokens", Role::Tokens, 0}, {"text", Role::Text, 0}, {"x", Role::Features, 2},
                      {"label", Role::Label, 0}, {"group", Role::Group, 0}}));
  float x[2] = {1, 2};
  int64_t v = 0;
  int32_t tok = 5;
  other.append_row({{reinterpret_cast<char*>(&tok), 4}, "a", {reinterpret_cast<char*>(x), 8},
                    {reinterpret_cast<char*>(&v), 8}, {reinterpret_cast<char*>(&v), 8}});
  replace_shard(tmp / "ds", 1, other);
  auto msg = expect_data_error([&] { Dataset::open(tmp / "ds"); });
  EXPECT_NE(msg.find("part-00001.h5: dataset /x"), std::string::npos) << msg;
  EXPECT_NE(msg.find("schema mismatch"), std::string::npos) << msg;

  Table missing(Schema({{"tokens", Role::Tokens, 0}}));
  missing.append_row({{reinterpret_cast<char*>(&tok), 4}});
  replace_shard(tmp / "ds", 1, missing);
  msg = expect_data_error([&] { Dataset::open(tmp / "ds"); });
  EXPECT_NE(msg.find("part-00001.h5: dataset /text is missing"), std::string::npos) << msg;
}

TEST(Format, NonMonotoneOffsets) {
  TempDir tmp;
  write_dataset(tmp / "ds", 10, 4);
  replace_shard(tmp / "ds", 0, test::make_rows(0, 4), /*break_offsets=*/true);
  auto ds = Dataset::open(tmp / "ds");  // first/last offsets are fine
  auto msg = expect_data_error([&] { ds.read_tokens(0, 4); });
  EXPECT_NE(msg.find("part-00000.h5: dataset /offsets"), std::string::npos) << msg;
  EXPECT_NE(msg.find("not monotone"), std::string::npos) << msg;
}

TEST(Format, BadManifestAndDirectory) {
  TempDir tmp;
  auto msg = expect_data_error([&] { Dataset::open(tmp / "nope"); });
  EXPECT_NE(msg.find("nope"), std::string::npos);
  write_dataset(tmp / "ds", 3, 4);
  test::write_file(tmp / "ds/manifest.json", "{\"format\": \"conflux-dataset\", \"format_version\": 1}");
  msg = expect_data_error([&] { Dataset::open(tmp / "ds"); });
  EXPECT_NE(msg.find("manifest.json: missing 'schema'"), std::string::npos) << msg;
}

// Found by fuzz/manifest_fuzz.cpp: a non-string "format" and a number beyond double escaped as
// JSON exceptions, and shard row counts summing past 2^63 overflowed num_rows().
TEST(Format, ManifestWrongTypesAndRowOverflowAreDataErrors) {
  auto msg = expect_data_error([] { Manifest::parse("{\"format\": 1}", "m.json"); });
  EXPECT_EQ(msg, "m.json: 'format' must be \"conflux-dataset\" (is this a Conflux dataset?)");
  const std::string sha(64, 'a');
  const std::string text = "{\"format\": \"conflux-dataset\", \"format_version\": 1, \"schema\": [], \"shards\": ["
                           "{\"file\": \"a.h5\", \"rows\": 9223372036854775807, \"bytes\": 1, \"sha256\": \"" + sha +
                           "\"}, {\"file\": \"b.h5\", \"rows\": 1, \"bytes\": 1, \"sha256\": \"" + sha + "\"}]}";
  msg = expect_data_error([&] { Manifest::parse(text, "m.json"); });
  EXPECT_EQ(msg, "m.json: shards[1] ('b.h5'): the row counts add up past 2^63");
  msg = expect_data_error([] { Manifest::parse("{\"format\": \"conflux-dataset\", \"rows\": 1e400}", "m.json"); });
  EXPECT_EQ(msg.rfind("m.json: not valid JSON: ", 0), 0u) << msg;
}

TEST(Format, TableSerializeRoundTrip) {
  auto t = test::make_rows(0, 9);
  Table u(t.schema());
  auto a = t.serialize(0, 4), b = t.serialize(4, 9);
  u.append_serialized(a.data(), a.size());
  u.append_serialized(b.data(), b.size());
  ASSERT_EQ(u.rows(), 9);
  for (int64_t r = 0; r < 9; ++r)
    for (size_t f = 0; f < t.schema().size(); ++f) EXPECT_EQ(u.row_bytes(f, r), t.row_bytes(f, r));
  std::vector<uint8_t> keep = {1, 0, 1, 1, 0, 0, 1, 0, 1};
  u.filter(keep);
  ASSERT_EQ(u.rows(), 5);
  EXPECT_EQ(u.row_bytes(1, 1), t.row_bytes(1, 2));
  EXPECT_EQ(u.row_bytes(2, 4), t.row_bytes(2, 8));
  u.check();
}

}  // namespace
}  // namespace conflux::dataplane
