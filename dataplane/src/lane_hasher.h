// Internal: SHA-256 of buffers that become ready one after another (shard images as they are
// built), hashed on one background thread, several at once in the SIMD lanes of MultiSha256.
// A buffer starts in a free lane as soon as it is added, next to the ones already in flight (the
// lanes are fed 1 MiB at a time, so a new buffer joins within about a millisecond), so hashing
// overlaps the building of the next buffers and takes one core instead of one per buffer.
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
  // Blocks until fewer than `n` added buffers are unfinished.
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
  bool closing_ = false;
  std::exception_ptr error_;
  std::thread thread_;
};

}  // namespace conflux::dataplane
