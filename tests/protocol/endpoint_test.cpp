// check_endpoint: the one validation of user-given ZeroMQ endpoints (issue 17: ZeroMQ took
// "tcp://127.0.0.1:99999" as port 34463), and the Server refusing a bad bind endpoint through it.
#include "conflux/protocol/endpoint.h"
#include "conflux/protocol/server.h"

#include <conflux/core/error.h>

#include <gtest/gtest.h>

using namespace conflux;
using namespace conflux::protocol;

namespace {
std::string error_of(const std::string& endpoint, EndpointUse use) {
  try {
    check_endpoint(endpoint, use, "server.bind");
  } catch (const ConfigError& e) {
    return e.message();
  }
  return "";
}
}  // namespace

TEST(Endpoint, AcceptsWhatZeroMqAccepts) {
  for (const char* ok : {"tcp://127.0.0.1:5555", "tcp://127.0.0.1:1", "tcp://localhost:65535", "tcp://[::1]:80",
                         "ipc:///tmp/conflux.sock", "inproc://mon"}) {
    EXPECT_EQ(error_of(ok, EndpointUse::Bind), "") << ok;
    EXPECT_EQ(error_of(ok, EndpointUse::Connect), "") << ok;
  }
  EXPECT_EQ(error_of("tcp://127.0.0.1:*", EndpointUse::Bind), "");
  EXPECT_EQ(error_of("tcp://*:5555", EndpointUse::Bind), "");
}

TEST(Endpoint, RefusesPortsOutsideTheTcpRangeNamingTheValue) {
  EXPECT_EQ(error_of("tcp://127.0.0.1:99999", EndpointUse::Bind),
            "server.bind 'tcp://127.0.0.1:99999': port 99999 is outside 1-65535");
  EXPECT_EQ(error_of("tcp://127.0.0.1:65536", EndpointUse::Connect),
            "server.bind 'tcp://127.0.0.1:65536': port 65536 is outside 1-65535");
  EXPECT_EQ(error_of("tcp://127.0.0.1:0", EndpointUse::Bind),
            "server.bind 'tcp://127.0.0.1:0': port 0 is outside 1-65535");
  EXPECT_EQ(error_of("tcp://127.0.0.1:99999999999999999999999", EndpointUse::Bind),
            "server.bind 'tcp://127.0.0.1:99999999999999999999999': port 99999999999999999999999 is outside 1-65535");
  EXPECT_EQ(error_of("tcp://127.0.0.1:-1", EndpointUse::Bind),
            "server.bind 'tcp://127.0.0.1:-1': port '-1' is not a number");
}

TEST(Endpoint, RefusesMalformedEndpoints) {
  EXPECT_EQ(error_of("127.0.0.1:5555", EndpointUse::Connect),
            "server.bind '127.0.0.1:5555': expected TRANSPORT://ADDRESS, e.g. tcp://127.0.0.1:5555");
  EXPECT_EQ(error_of("udp://127.0.0.1:5555", EndpointUse::Connect),
            "server.bind 'udp://127.0.0.1:5555': unsupported transport 'udp' (tcp, ipc or inproc)");
  EXPECT_EQ(error_of("tcp://127.0.0.1", EndpointUse::Connect),
            "server.bind 'tcp://127.0.0.1': no port: expected tcp://HOST:PORT");
  EXPECT_EQ(error_of("tcp://:5555", EndpointUse::Connect), "server.bind 'tcp://:5555': no host: expected tcp://HOST:PORT");
  EXPECT_EQ(error_of("tcp://127.0.0.1:*", EndpointUse::Connect),
            "server.bind 'tcp://127.0.0.1:*': cannot connect to port '*'; give the port number");
  EXPECT_EQ(error_of("ipc://", EndpointUse::Bind), "server.bind 'ipc://': empty ipc address");
}

TEST(Endpoint, ServerRefusesABadBindEndpointBeforeBinding) {
  ServerOptions o;
  o.insecure = true;
  o.bind = "tcp://127.0.0.1:99999";
  try {
    Server s(o);
    FAIL() << "bound " << s.endpoint();
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.message(), "server bind endpoint 'tcp://127.0.0.1:99999': port 99999 is outside 1-65535");
  }
}
