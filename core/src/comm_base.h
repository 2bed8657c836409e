// CommBase: what the MPI and NCCL communicators share: the FIFO progress thread for async
// collectives, sequence numbers, call signatures, and the "broken" state after a failure.
//
// Protocol for every collective (sync or async):
//   a) the call is described (kind, dtype, count, op/root, call site) and hashed to a signature;
//   b) it runs, in program order, either inline (sync, after earlier async work drained) or on
//      the progress thread (async); the back end assigns the next sequence number and checks
//      the arrival board before touching data;
//   c) a failure marks the communicator broken, and with it every communicator sharing its
//      CommFailure (the rest of its process grid): later calls fail at once naming the first
//      error, since peers are now out of step and any further collective could hang.
#pragma once

#include "conflux/core/communicator.h"

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace conflux::detail {

struct OpDesc {
  const char* kind;   // "allreduce", ...
  DType dtype;
  size_t count;
  int arg;            // ReduceOp for reductions, root for broadcast, -1 otherwise
  CallSite site;
  uint64_t signature() const;
  std::string describe() const;  // "allreduce(float32 x 1024, sum)"
  std::string where() const;     // "tests/mpi/comm_test.cpp:42"
};

class CommBase : public Communicator {
 public:
  ~CommBase() override;

 protected:
  using Fn = std::function<void()>;
  explicit CommBase(CommOptions options);
  WorkHandle submit(const OpDesc& desc, Fn fn);  // async: FIFO on the progress thread
  void run(const OpDesc& desc, Fn fn);           // sync: inline after draining async work
  // Stops the progress thread (idempotent). Back ends call it first in their destructor.
  void shutdown();
  // True once a collective of this communicator or of one sharing its CommFailure failed (every
  // later call throws).
  bool broken() const { return options_.failure->failed(); }
  // Destructors skip collective teardown (freeing windows and communicators) when this is true:
  // after a failure, or while an exception unwinds (a failing rank must not wait for peers that
  // are still inside a collective waiting for it).
  bool abandon_teardown() const;

 private:
  struct Item;
  void loop();
  void execute(const OpDesc& desc, const Fn& fn);
  std::mutex mu_;
  std::condition_variable cv_, drained_cv_;
  std::deque<std::shared_ptr<Item>> queue_;
  size_t in_flight_ = 0;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace conflux::detail
