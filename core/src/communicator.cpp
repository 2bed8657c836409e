// Back-end independent helpers on top of the Communicator interface.
#include "conflux/core/communicator.h"

#include "conflux/core/error.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>

namespace conflux {

bool CommFailure::set(const std::string& what) {
  std::lock_guard<std::mutex> lock(mu_);
  if (failed_.load(std::memory_order_relaxed)) return false;
  what_ = what;
  failed_.store(true, std::memory_order_release);
  return true;
}

std::string CommFailure::what() const {
  std::lock_guard<std::mutex> lock(mu_);
  return what_;
}

namespace {
class HeapBuffer final : public SharedBuffer {
 public:
  explicit HeapBuffer(size_t bytes) : bytes_(bytes) {
    data_ = std::aligned_alloc(64, std::max<size_t>(64, (bytes + 63) / 64 * 64));
    if (!data_) CONFLUX_THROW(CommError, "cannot allocate a collective buffer of {} bytes", bytes);
  }
  ~HeapBuffer() override { std::free(data_); }
  void* data() const override { return data_; }
  size_t bytes() const override { return bytes_; }

 private:
  void* data_ = nullptr;
  size_t bytes_;
};
}  // namespace

std::unique_ptr<SharedBuffer> Communicator::alloc_buffer(size_t bytes, CallSite) {
  return std::make_unique<HeapBuffer>(bytes);
}

std::vector<uint8_t> Communicator::alltoallv_bytes(const std::vector<std::vector<uint8_t>>& per_rank,
                                                   std::vector<size_t>* recv_counts, CallSite site) {
  const int n = size();
  if (per_rank.size() != static_cast<size_t>(n))
    CONFLUX_THROW(CommError, "alltoallv_bytes: need one buffer per rank ({}), got {}", n, per_rank.size());
  std::vector<int64_t> send_counts(n), recv_c(n);
  std::vector<size_t> sc(n), sd(n), rc(n), rd(n);
  size_t total_send = 0;
  for (int r = 0; r < n; ++r) {
    send_counts[r] = static_cast<int64_t>(per_rank[r].size());
    sc[r] = per_rank[r].size();
    sd[r] = total_send;
    total_send += sc[r];
  }
  // Exchange counts: every rank tells every other how much it will send (an all-to-all of one
  // int64 each, expressed as an all-gather of the full count row).
  std::vector<int64_t> all(static_cast<size_t>(n) * n);
  allgather(send_counts.data(), all.data(), n, DType::I64, site);
  size_t total_recv = 0;
  for (int r = 0; r < n; ++r) {
    rc[r] = static_cast<size_t>(all[static_cast<size_t>(r) * n + rank()]);
    rd[r] = total_recv;
    total_recv += rc[r];
  }
  std::vector<uint8_t> send(total_send), recv(total_recv);
  for (int r = 0; r < n; ++r)
    if (sc[r]) std::copy(per_rank[r].begin(), per_rank[r].end(), send.begin() + static_cast<ptrdiff_t>(sd[r]));
  alltoallv(send.data(), sc, sd, recv.data(), rc, rd, DType::U8, site);
  if (recv_counts) *recv_counts = rc;
  return recv;
}

}  // namespace conflux
