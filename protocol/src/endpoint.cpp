// check_endpoint (see endpoint.h): the one place user-given ZeroMQ endpoints are validated.
#include "conflux/protocol/endpoint.h"

#include "conflux/core/error.h"

#include <algorithm>
#include <cctype>
#include <string>

namespace conflux::protocol {

namespace {

// The reason `endpoint` is unusable, or "" if it is fine.
std::string problem(const std::string& endpoint, EndpointUse use) {
  const auto sep = endpoint.find("://");
  if (sep == std::string::npos) return "expected TRANSPORT://ADDRESS, e.g. tcp://127.0.0.1:5555";
  const std::string transport = endpoint.substr(0, sep), address = endpoint.substr(sep + 3);
  if (transport == "ipc" || transport == "inproc") return address.empty() ? "empty " + transport + " address" : "";
  if (transport != "tcp") return "unsupported transport '" + transport + "' (tcp, ipc or inproc)";
  const auto colon = address.rfind(':');
  if (colon == std::string::npos) return "no port: expected tcp://HOST:PORT";
  const std::string host = address.substr(0, colon), port = address.substr(colon + 1);
  if (host.empty()) return "no host: expected tcp://HOST:PORT";
  if (host == "*" && use == EndpointUse::Connect) return "cannot connect to host '*'; name the coordinator's host";
  if (port == "*") return use == EndpointUse::Bind ? "" : "cannot connect to port '*'; give the port number";
  const bool digits = !port.empty() && std::all_of(port.begin(), port.end(), [](unsigned char c) {
    return std::isdigit(c) != 0;
  });
  if (!digits) return "port '" + port + "' is not a number";
  // Compare as text length first: a port of many digits must not overflow stoul.
  if (port.size() > 5 || std::stoul(port) < 1 || std::stoul(port) > 65535)
    return "port " + port + " is outside 1-65535";
  return "";
}

}  // namespace

void check_endpoint(const std::string& endpoint, EndpointUse use, const std::string& what) {
  const std::string why = problem(endpoint, use);
  if (!why.empty()) CONFLUX_THROW(ConfigError, "{} '{}': {}", what, endpoint, why);
}

}  // namespace conflux::protocol
