// isa_level() against the kernel's own view: Linux lists a feature in /proc/cpuinfo only when the
// CPU has it and the kernel enabled its register state, which is what CPUID + XGETBV must find.
#include "conflux/core/cpu_features.h"

#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>

using namespace conflux;

TEST(CpuFeatures, LevelMatchesProcCpuinfo) {
  std::ifstream in("/proc/cpuinfo");
  if (!in) GTEST_SKIP() << "no /proc/cpuinfo";
  std::string line;
  std::set<std::string> flags;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream words(line.substr(line.find(':') + 1));
    for (std::string w; words >> w;) flags.insert(w);
    break;
  }
  if (flags.empty()) GTEST_SKIP() << "no x86 flags line";
  const bool avx512 = flags.count("avx512f") && flags.count("avx512dq") && flags.count("avx512bw") &&
                      flags.count("avx512vl");
  const IsaLevel want = avx512 ? IsaLevel::Avx512 : flags.count("avx2") ? IsaLevel::Avx2 : IsaLevel::Baseline;
  EXPECT_EQ(isa_name(isa_level()), std::string(isa_name(want)));
  EXPECT_TRUE(isa_usable(IsaLevel::Baseline));
  EXPECT_EQ(isa_usable(IsaLevel::Avx512), want == IsaLevel::Avx512);
}
