// Validation of ZeroMQ endpoints given by users (config keys, command-line flags).
//
// ZeroMQ takes a TCP port modulo 65536 without a word: "tcp://127.0.0.1:99999" binds port 34463
// (issue 17). Every endpoint a user gives goes through check_endpoint() before it reaches a
// socket, so a bad one is a ConfigError naming where it came from and the value:
//   tcp://HOST:PORT   PORT a decimal in 1-65535 ("*" = any free port, only to bind); HOST not
//                     empty ("*" = every interface, only to bind); IPv6 hosts in [brackets]
//   ipc://PATH, inproc://NAME   a non-empty path or name
// Thread safety: pure function.
#pragma once

#include <string>

namespace conflux::protocol {

enum class EndpointUse { Bind, Connect };

// Throws ConfigError "<what> 'ENDPOINT': <reason>" if `endpoint` is not usable for `use`;
// `what` names where it came from ("--connect", "server bind endpoint").
void check_endpoint(const std::string& endpoint, EndpointUse use, const std::string& what);

}  // namespace conflux::protocol
