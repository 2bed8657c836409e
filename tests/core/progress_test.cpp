// Progress: rank 0 only; plain lines throttled when not a terminal; bar, rate and ETA.
#include "conflux/core/progress.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

using namespace conflux;
using namespace std::chrono;

namespace {
struct Capture {
  char* buf = nullptr;
  size_t len = 0;
  FILE* f = open_memstream(&buf, &len);
  std::string text() {
    std::fflush(f);
    return std::string(buf, len);
  }
  ~Capture() {
    std::fclose(f);
    std::free(buf);
  }
};

struct FakeClock {
  steady_clock::time_point t = steady_clock::time_point{} + hours(1);
  ProgressOptions options(FILE* f, int terminal, int rank = 0) {
    ProgressOptions o;
    o.out = f;
    o.terminal = terminal;
    o.rank = rank;
    o.clock = [this] { return t; };
    return o;
  }
};
}  // namespace

TEST(Progress, NonTerminalPrintsSparsePlainLines) {
  Capture cap;
  FakeClock clk;
  {
    Progress p("prepare", 100, clk.options(cap.f, 0));
    for (int i = 0; i < 100; ++i) {
      clk.t += seconds(1);
      p.advance(1);
    }
    p.finish("done");
  }
  std::string out = cap.text();
  // 100 s of work, one line per 30 s plus the final one.
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 4) << out;
  EXPECT_EQ(out.find('\r'), std::string::npos);
  EXPECT_NE(out.find("prepare  30% 30/100 1.0 it/s ETA 1:10"), std::string::npos) << out;
  EXPECT_NE(out.find("prepare 100% 100/100 1.0 it/s in 1:40 | done"), std::string::npos) << out;
}

TEST(Progress, TerminalRedrawsBar) {
  Capture cap;
  FakeClock clk;
  Progress p("train", 10, clk.options(cap.f, 1));
  clk.t += seconds(5);
  p.set(5, "loss 2.31");
  std::string out = cap.text();
  EXPECT_NE(out.find("\rtrain [###############...............]  50% 5/10 1.0 it/s ETA 0:05 | loss 2.31"),
            std::string::npos)
      << out;
  EXPECT_DOUBLE_EQ(p.eta_seconds(), 5.0);
}

TEST(Progress, OtherRanksPrintNothing) {
  Capture cap;
  FakeClock clk;
  {
    Progress p("x", 10, clk.options(cap.f, 0, /*rank=*/1));
    clk.t += seconds(100);
    p.advance(10);
  }
  EXPECT_TRUE(cap.text().empty());
}

TEST(Progress, DurationFormat) {
  EXPECT_EQ(Progress::format_duration(5), "0:05");
  EXPECT_EQ(Progress::format_duration(125), "2:05");
  EXPECT_EQ(Progress::format_duration(3723), "1:02:03");
  EXPECT_EQ(Progress::format_duration(-1), "?");
}
