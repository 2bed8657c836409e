// WorkerPool and Clock: the two seams between the job layer (dispatcher.h) and the outside
// world. The Server (server.h) is the real WorkerPool over ZeroMQ; tests drive the dispatcher's
// policies through a scripted pool and a manual clock, without sockets or sleeps.
//
// Contract: a WorkerPool is used from one thread (the dispatcher's). poll() may return early
// when events are ready; a scripted pool may return at once whatever the timeout.
#pragma once

#include <conflux/protocol/message.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace conflux::protocol {

// A registered worker session as the coordinator knows it.
struct WorkerInfo {
  std::string identity;   // authenticated (ZAP user id), or the hello's sender when insecure
  std::string peer;       // current routing id
  uint64_t instance = 0;  // the worker process's instance id
  wire::Hello hello;      // capabilities: task kinds, slots, chunk size, shared cache, data
  std::chrono::steady_clock::time_point last_seen;
};

// Session-level happenings that the job layer reacts to.
struct ServerEvent {
  // Reconnected: the same worker process on a new connection; messages sent to the old one
  // may have been lost, so the job layer sends its unfinished attempts again.
  enum Kind { Joined, Left, Died, Result, TaskError, Reconnected } kind = Joined;
  std::string worker;  // identity
  Message message;     // Result: the result; TaskError: the ERROR; Left: the BYE
  std::string reason;
};

class WorkerPool {
 public:
  virtual ~WorkerPool() = default;
  // Waits up to `timeout` for session events (joins, deaths, results, task errors).
  virtual std::vector<ServerEvent> poll(std::chrono::milliseconds timeout) = 0;
  // Sends to a registered worker (the pool fills job_id). False if unknown or unreachable.
  virtual bool send(const std::string& worker, Message msg) = 0;
  virtual const std::map<std::string, WorkerInfo>& workers() const = 0;
  virtual const std::string& job_id() const = 0;
};

// Monotonic time for deadlines. The default is std::chrono::steady_clock.
class Clock {
 public:
  using time_point = std::chrono::steady_clock::time_point;
  virtual ~Clock() = default;
  virtual time_point now() const = 0;
  static const Clock& steady();
};

}  // namespace conflux::protocol
