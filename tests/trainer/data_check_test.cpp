// check_token_dataset under mpirun (1 and 2 ranks): what training reads is verified before the
// first step. A flipped byte in a shard, or a token id outside the model's vocabulary, is a
// DataError naming the shard (and the row and id) on every rank, whichever rank checked the
// shard (shard s is checked by rank s % size, and the message is shared), and a clean dataset
// passes.
#include "mpi_main.h"
#include "scratch_dir.h"

#include "conflux/core/error.h"
#include "conflux/dataplane/dataset.h"
#include "conflux/dataplane/writer.h"
#include "conflux/trainer/data.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

namespace {

namespace dp = conflux::dataplane;
namespace tr = conflux::trainer;
using conflux::test::grid;

constexpr int64_t kShards = 4, kRowsPerShard = 10;

// Row r: 3 + r % 5 tokens, token k of it = (r * 7 + k) % 200; `bad` replaces token 1 of one row.
struct BadToken {
  int64_t row = -1;
  int32_t id = 0;
};

dp::Table rows(int64_t begin, int64_t end, BadToken bad) {
  dp::Table t(dp::Schema({{"tokens", dp::Role::Tokens, 0}}));
  for (int64_t r = begin; r < end; ++r) {
    std::vector<int32_t> toks(static_cast<size_t>(3 + r % 5));
    for (size_t k = 0; k < toks.size(); ++k) toks[k] = static_cast<int32_t>((r * 7 + static_cast<int64_t>(k)) % 200);
    if (r == bad.row) toks[1] = bad.id;
    t.append_row({{reinterpret_cast<const char*>(toks.data()), toks.size() * 4}});
  }
  return t;
}

// A 4-shard dataset in a directory every rank agrees on (rank 0 writes it; the others wait).
std::string make_dataset(const std::string& name, BadToken bad = {}) {
  int64_t pid = getpid();
  grid().world().broadcast(&pid, 1, conflux::DType::I64, 0);
  const std::string dir = (std::filesystem::temp_directory_path() /
                           ("conflux-datacheck-" + name + "-" + std::to_string(pid))).string();
  conflux::test::remove_at_exit(dir);
  if (grid().world_rank() == 0) {
    dp::DatasetWriter w(dir, dp::Schema({{"tokens", dp::Role::Tokens, 0}}));
    dp::Manifest m;
    m.schema = dp::Schema({{"tokens", dp::Role::Tokens, 0}});
    for (int64_t s = 0; s < kShards; ++s)
      m.shards.push_back(w.write_shard(s, rows(s * kRowsPerShard, (s + 1) * kRowsPerShard, bad)));
    w.commit(m);
  }
  grid().world().barrier();
  return dir;
}

// Flips one bit in the middle of shard `s` (rank 0), then every rank continues.
void flip_byte(const std::string& dir, int64_t s) {
  if (grid().world_rank() == 0) {
    const std::string path = dir + "/" + dp::shard_file_name(s);
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    const auto mid = static_cast<std::streamoff>(std::filesystem::file_size(path) / 2);
    char c = 0;
    f.seekg(mid);
    f.get(c);
    f.seekp(mid);
    f.put(static_cast<char>(c ^ 0x10));
  }
  grid().world().barrier();
}

// The DataError's message (without location), or "" (and a test failure) if none was thrown.
std::string check_error(const std::string& dir, tr::DataCheckOptions o) {
  try {
    tr::check_token_dataset(dir, o, grid().world());
  } catch (const conflux::DataError& e) {
    return e.message();
  }
  ADD_FAILURE() << "check_token_dataset accepted " << dir;
  return "";
}

TEST(DataCheck, CleanDatasetPasses) {
  const std::string dir = make_dataset("clean");
  EXPECT_NO_THROW(tr::check_token_dataset(dir, {true, 200}, grid().world()));
}

TEST(DataCheck, FlippedByteNamesTheShardOnEveryRank) {
  const std::string dir = make_dataset("flip");
  flip_byte(dir, 3);  // with 2 ranks, rank 1 hashes shard 3 and rank 0 hears of it
  const std::string msg = check_error(dir, {true, 200});
  EXPECT_EQ(msg.rfind(dir + "/part-00003.h5: checksum mismatch: sha256 is ", 0), 0u) << msg;
  EXPECT_NE(msg.find("(corrupt or modified shard)"), std::string::npos) << msg;
}

TEST(DataCheck, FirstFailingShardWins) {
  const std::string dir = make_dataset("flip2");
  flip_byte(dir, 2);
  flip_byte(dir, 1);
  const std::string msg = check_error(dir, {true, 200});
  EXPECT_EQ(msg.rfind(dir + "/part-00001.h5: checksum mismatch", 0), 0u) << msg;
}

TEST(DataCheck, OutOfVocabularyTokenNamesShardAndRow) {
  // Dataset row 27 = row 7 of shard 2 (10 rows per shard) holds token id 300 >= 256.
  const std::string dir = make_dataset("oov", {27, 300});
  const std::string msg = check_error(dir, {true, 256});
  EXPECT_EQ(msg, dir + "/part-00002.h5: token id 300 at row 7 of the shard (dataset row 27) is outside the "
                       "model's vocabulary [0, 256) (model.vocab_size); the dataset was tokenized for another "
                       "vocabulary or is corrupt")
      << msg;
  // The same data within a larger vocabulary is fine.
  EXPECT_NO_THROW(tr::check_token_dataset(dir, {true, 301}, grid().world()));
}

TEST(DataCheck, NegativeTokenIdIsOutOfVocabulary) {
  const std::string dir = make_dataset("negative", {13, -5});
  const std::string msg = check_error(dir, {false, 256});
  EXPECT_EQ(msg.rfind(dir + "/part-00001.h5: token id -5 at row 3 of the shard (dataset row 13) is outside", 0), 0u)
      << msg;
}

}  // namespace
