// Background multi-lane SHA-256 of buffers added over time (see lane_hasher.h).
#include "lane_hasher.h"

#include <algorithm>
#include <optional>

namespace conflux::dataplane {

namespace {
constexpr size_t kPiece = 1u << 20;  // bytes fed to a lane at a time
}

LaneHasher::LaneHasher(size_t expected) : expected_(expected) {
  kernel_ = kernel_for(std::max<size_t>(expected, 1), resolve_isa());
  lanes_ = kernel_lanes(kernel_);
  thread_ = std::thread([this] { loop(); });
}

LaneHasher::~LaneHasher() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    closing_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void LaneHasher::add(size_t slot, const void* data, size_t size) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (digests_.size() <= slot) {
      digests_.resize(slot + 1);
      hashed_.resize(slot + 1, false);
    }
    queue_.push_back(Job{slot, static_cast<const uint8_t*>(data), size});
    ++unfinished_;
  }
  cv_.notify_all();
}

bool LaneHasher::hashed(size_t slot) {
  std::lock_guard<std::mutex> lock(mu_);
  return slot < hashed_.size() && hashed_[slot];
}

void LaneHasher::wait_below(size_t n) {
  std::unique_lock<std::mutex> lock(mu_);
  if (unfinished_ < n || error_) {
    if (error_) std::rethrow_exception(error_);
    return;
  }
  ++waiters_;  // the hasher now runs with the lanes it has
  cv_.notify_all();
  cv_.wait(lock, [&] { return unfinished_ < n || error_; });
  --waiters_;
  if (error_) std::rethrow_exception(error_);
}

std::vector<Sha256Digest> LaneHasher::finish() {
  std::unique_lock<std::mutex> lock(mu_);
  ++waiters_;
  cv_.notify_all();
  cv_.wait(lock, [&] { return unfinished_ == 0 || error_; });
  --waiters_;
  if (error_) std::rethrow_exception(error_);
  return digests_;
}

void LaneHasher::loop() {
  try {
    MultiSha256 h(kernel_);
    std::vector<std::optional<Job>> lane(h.lanes());
    for (;;) {
      size_t active = 0;
      {
        std::unique_lock<std::mutex> lock(mu_);
        for (;;) {
          for (auto& l : lane)
            if (!l && !queue_.empty()) {
              l = queue_.front();
              queue_.pop_front();
              ++taken_;
            }
          active = static_cast<size_t>(std::count_if(lane.begin(), lane.end(), [](const auto& l) { return l.has_value(); }));
          // A round costs the same however many lanes are busy, so while more buffers are coming
          // and a lane is free, wait for them (unless the producer waits on us, or we close).
          const bool fill = active < lane.size() && taken_ < expected_;
          if (active > 0 && (!fill || waiters_ > 0 || closing_)) break;
          if (active == 0 && closing_) return;
          cv_.wait(lock, [&] { return closing_ || !queue_.empty() || (active > 0 && waiters_ > 0); });
        }
      }
      for (size_t i = 0; i < lane.size(); ++i) {
        if (!lane[i]) continue;
        Job& j = *lane[i];
        auto st = h.state(i);
        if (st == MultiSha256::Lane::Idle || st == MultiSha256::Lane::Done) {
          h.start(i);
          st = MultiSha256::Lane::NeedsData;
        }
        if (st != MultiSha256::Lane::NeedsData) continue;
        if (j.fed < j.size) {
          const size_t n = std::min(kPiece, j.size - j.fed);
          h.feed(i, j.data + j.fed, n);
          j.fed += n;
        } else {
          h.finish(i);
        }
      }
      h.run();
      bool finished_any = false;
      for (size_t i = 0; i < lane.size(); ++i) {
        if (!lane[i] || h.state(i) != MultiSha256::Lane::Done) continue;
        std::lock_guard<std::mutex> lock(mu_);
        digests_[lane[i]->slot] = h.digest(i);
        hashed_[lane[i]->slot] = true;
        h.reset(i);
        lane[i].reset();
        --unfinished_;
        finished_any = true;
      }
      if (finished_any) cv_.notify_all();
    }
  } catch (...) {
    std::lock_guard<std::mutex> lock(mu_);
    error_ = std::current_exception();
    cv_.notify_all();
  }
}

}  // namespace conflux::dataplane
