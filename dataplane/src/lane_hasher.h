// Internal: SHA-256 of buffers that become ready one after another (shard images as they are
// built), hashed on one background thread, several at once in the SIMD lanes of MultiSha256.
// A round of the kernel costs the same however many of its lanes are busy, so the thread waits
// until the lanes are full (or every expected buffer has come, or the producer waits for room or
// for the digests) and then hashes them together; buffers join free lanes between 1 MiB pieces.
// Hashing thus takes a fraction of one core while the next buffers are built, instead of running
// a nearly empty kernel on a core the builder needs.
// Digests are standard SHA-256 (what sha256sum prints).
// Thread safety: add() and wait_*() from one producer thread; the buffers must stay valid and
// unchanged until done(slot) is true or finish() returned.
#pragma once

#include "sha256_mb.h"

#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace conflux::dataplane {

class LaneHasher {
 public:
  // `expected`: how many buffers will be added (chooses the kernel: lanes for that many).
  explicit LaneHasher(size_t expected);
  ~LaneHasher();  // joins the thread (pending buffers are still hashed)
  LaneHasher(const LaneHasher&) = delete;
  LaneHasher& operator=(const LaneHasher&) = delete;

  size_t lanes() const { return lanes_; }
  // Queues buffer number `slot` (slots 0, 1, 2, ... in any order, each once).
  void add(size_t slot, const void* data, size_t size);
  // Whether buffer `slot` is hashed (its memory may then be released).
  bool hashed(size_t slot);
  // Blocks until fewer than `n` added buffers are unfinished (the hasher then runs with the
  // lanes it has rather than wait for more).
  void wait_below(size_t n);
  // Blocks until every added buffer is hashed; returns the digests by slot (rethrows a failure).
  std::vector<Sha256Digest> finish();

 private:
  struct Job {
    size_t slot;
    const uint8_t* data;
    size_t size, fed = 0;
  };
  void loop();

  Sha256Kernel kernel_;
  size_t lanes_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  std::vector<Sha256Digest> digests_;
  std::vector<bool> hashed_;
  size_t unfinished_ = 0;
  size_t expected_ = 0, taken_ = 0;  // buffers announced, and moved into lanes so far
  int waiters_ = 0;                  // producer calls blocked in wait_below() or finish()
  bool closing_ = false;
  std::exception_ptr error_;
  std::thread thread_;
};

}  // namespace conflux::dataplane
