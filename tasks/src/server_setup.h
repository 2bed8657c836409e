// The coordinator's server options from a job config's [server] keys, shared by the evaluation
// and federated jobs: CURVE keys from files unless insecure (a ConfigError naming the keys when
// they are missing), heartbeat timing, the job id.
#pragma once

#include <conflux/core/error.h>
#include <conflux/protocol/server.h>

#include <chrono>
#include <string>

namespace conflux::tasks {

inline protocol::ServerOptions make_server_options(const std::string& endpoint, bool insecure, const std::string& key,
                                                   const std::string& allow, int heartbeat_ms, int dead_after_ms,
                                                   const std::string& job_id) {
  protocol::ServerOptions so;
  so.bind = endpoint;
  so.insecure = insecure;
  so.job_id = job_id;
  so.heartbeat_interval = std::chrono::milliseconds(heartbeat_ms);
  so.dead_after = std::chrono::milliseconds(dead_after_ms);
  if (!insecure) {
    if (key.empty() || allow.empty())
      CONFLUX_THROW(ConfigError, "server.key and server.allow are required (or server.insecure = true)");
    protocol::load_server_keys(&so, key, allow);
  }
  return so;
}

}  // namespace conflux::tasks
