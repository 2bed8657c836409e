// Error hierarchy: kinds, exit codes, call sites, context and the user paragraph.
#include "conflux/core/error.h"

#include <gtest/gtest.h>

using namespace conflux;

TEST(Errors, ThrowRecordsKindMessageAndSite) {
  try {
    CONFLUX_THROW(DataError, "shard {} missing", "part-00001.h5");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Data);
    EXPECT_EQ(e.message(), "shard part-00001.h5 missing");
    EXPECT_NE(std::string(e.what()).find("tests/core/error_test.cpp:"), std::string::npos) << e.what();
    EXPECT_GT(e.line(), 0);
  }
}

TEST(Errors, ExitCodesFollowTheDocumentedTable) {
  EXPECT_EQ(exit_code(ErrorKind::Config), 1);
  EXPECT_EQ(exit_code(ErrorKind::Data), 1);
  EXPECT_EQ(exit_code(ErrorKind::Io), 1);
  EXPECT_EQ(exit_code(ErrorKind::Privacy), 1);
  EXPECT_EQ(exit_code(ErrorKind::Usage), 2);
  EXPECT_EQ(exit_code(ErrorKind::Communication), 3);
  EXPECT_EQ(exit_code(ErrorKind::Protocol), 3);
  EXPECT_EQ(exit_code(ErrorKind::Internal), 4);
  EXPECT_EQ(kExitPreempted, 75);
}

TEST(Errors, ContextNamesRankAndHost) {
  set_error_context(3, "node07");
  CommError e("peer vanished", __FILE__, __LINE__);
  EXPECT_NE(std::string(e.what()).find("[rank 3 on node07]"), std::string::npos) << e.what();
  std::string user = describe_for_user(e);
  EXPECT_EQ(user.rfind("conflux: communication error: peer vanished", 0), 0u) << user;
}

TEST(Errors, CheckMacroThrowsInternalWithCondition) {
  try {
    int x = 1;
    CONFLUX_CHECK(x == 2, "x was {}", x);
    FAIL();
  } catch (const InternalError& e) {
    EXPECT_NE(e.message().find("x == 2"), std::string::npos);
    EXPECT_NE(e.message().find("x was 1"), std::string::npos);
  }
}
