// write_file_atomic / publish_directory: exact contents and modes, no temp file left behind on
// success or failure, no-overwrite refusal, replacing an existing directory whole, and the
// leftover names a killed writer leaves (is_atomic_temp_name / remove_atomic_temps).
#include "conflux/core/atomic_file.h"
#include "conflux/core/error.h"
#include "scratch_dir.h"

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;
using namespace conflux;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> names(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

unsigned mode_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 0777;
}

TEST(AtomicFile, WritesPiecesReplacesAndLeavesNoTemp) {
  const std::string dir = test::make_scratch_dir("atomic-");
  const std::string path = dir + "/a.bin";
  const char head[] = {'\x01', '\x00', 'x'};
  write_file_atomic(path, {{head, 3}, {"tail", 4}, {nullptr, 0}});
  EXPECT_EQ(slurp(path), std::string("\x01\x00xtail", 7));
  EXPECT_EQ(mode_of(path), 0644u);
  write_file_atomic(path, "second");
  EXPECT_EQ(slurp(path), "second");
  EXPECT_EQ(names(dir), std::vector<std::string>{"a.bin"});
}

TEST(AtomicFile, ModeIsExactAndNoOverwriteRefuses) {
  const std::string dir = test::make_scratch_dir("atomic-");
  const std::string key = dir + "/k.key";
  const mode_t old = ::umask(077);
  write_file_atomic(key, "secret", AtomicWriteOptions{0640, false});
  ::umask(old);
  EXPECT_EQ(mode_of(key), 0640u);
  try {
    write_file_atomic(key, "other", AtomicWriteOptions{0600, false});
    FAIL() << "overwrote an existing file";
  } catch (const IoError& e) {
    EXPECT_EQ(e.message(), "'" + key + "' exists; refusing to overwrite it");
  }
  EXPECT_EQ(slurp(key), "secret");
  EXPECT_EQ(names(dir), std::vector<std::string>{"k.key"});
}

TEST(AtomicFile, MissingDirectoryIsIoErrorNamingIt) {
  const std::string dir = test::make_scratch_dir("atomic-");
  try {
    write_file_atomic(dir + "/no/such/x.json", "x");
    FAIL() << "wrote into a missing directory";
  } catch (const IoError& e) {
    EXPECT_NE(e.message().find(dir + "/no/such/.x.json.tmp-"), std::string::npos) << e.message();
  }
  EXPECT_TRUE(names(dir).empty());
}

TEST(AtomicFile, PublishDirectoryNewAndReplacing) {
  const std::string dir = test::make_scratch_dir("atomic-");
  const std::string target = dir + "/ds";
  fs::create_directories(dir + "/.s1/sub");
  write_file_atomic(dir + "/.s1/a", "one");
  write_file_atomic(dir + "/.s1/sub/b", "two");
  publish_directory(dir + "/.s1", target);
  EXPECT_EQ(slurp(target + "/sub/b"), "two");
  fs::create_directories(dir + "/.s2");
  write_file_atomic(dir + "/.s2/c", "three");
  publish_directory(dir + "/.s2", target, PublishOptions{false});
  EXPECT_EQ(names(target), std::vector<std::string>{"c"});  // replaced whole, old files gone
  EXPECT_EQ(names(dir), std::vector<std::string>{"ds"});    // both staging names gone
}

TEST(AtomicFile, LeftoverNamesAreRecognisedAndRemoved) {
  EXPECT_TRUE(is_atomic_temp_name(".report.json.tmp-123-0"));
  EXPECT_TRUE(is_atomic_temp_name(".a.tmp-1-77"));
  EXPECT_FALSE(is_atomic_temp_name("report.json"));
  EXPECT_FALSE(is_atomic_temp_name("report.json.tmp-1-2"));  // not hidden: not ours
  EXPECT_FALSE(is_atomic_temp_name(".report.json.tmp-12"));  // no counter
  EXPECT_FALSE(is_atomic_temp_name(".report.json.tmp-1x-2"));
  EXPECT_FALSE(is_atomic_temp_name(".tmp-step-00000020"));   // a checkpoint staging directory
  const std::string dir = test::make_scratch_dir("atomic-");
  write_file_atomic(dir + "/keep", "k");
  std::ofstream(dir + "/.keep.tmp-99999-3") << "torn";
  std::ofstream(dir + "/.hidden") << "h";
  EXPECT_EQ(remove_atomic_temps(dir), 1u);
  EXPECT_EQ(names(dir), (std::vector<std::string>{".hidden", "keep"}));
}

}  // namespace
