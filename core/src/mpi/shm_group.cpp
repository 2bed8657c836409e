// Shared-memory window, arrival board and phase barriers for node-local collectives.
#include "shm_group.h"

#include "conflux/core/checks.h"
#include "conflux/core/error.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <thread>

namespace conflux::detail {
namespace {
constexpr size_t kControlBytes = 4096;
static_assert(sizeof(RankControl) <= kControlBytes, "control block too big");

void copy_tail(char* dst, size_t cap, const char* s) {
  size_t len = s ? std::strlen(s) : 0;
  const char* from = len >= cap ? s + (len - cap + 1) : s;
  size_t n = std::min(cap - 1, len);
  if (n) std::memcpy(dst, from, n);
  dst[n] = '\0';
}

OpDesc as_op(const BoardEntry& e) {
  return OpDesc{e.kind, static_cast<DType>(e.dtype), e.count, e.arg, CallSite{e.file, e.line}};
}
}  // namespace

namespace {
thread_local bool t_progress_thread = false;
}

void Backoff::mark_progress_thread() { t_progress_thread = true; }

void Backoff::pause() {
  ++n_;
  if (t_progress_thread) {
    if (n_ < 32) {
#if defined(__x86_64__)
      __builtin_ia32_pause();
#endif
    } else if (n_ < 64) {
      sched_yield();
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(sleep_us_));
      sleep_us_ = std::min<uint32_t>(sleep_us_ * 2, 500);
    }
    return;
  }
  if (n_ < 128) {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#endif
  } else if (n_ < 4096) {
    sched_yield();
  } else {
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

ShmGroup::ShmGroup(MPI_Comm node_comm, std::vector<int> group_ranks, size_t chunk_bytes, std::string comm_name)
    : chunk_bytes_((chunk_bytes + 4095) / 4096 * 4096), group_ranks_(std::move(group_ranks)), name_(std::move(comm_name)) {
  MPI_CHECK(MPI_Comm_dup(node_comm, &node_comm_));
  MPI_CHECK(MPI_Comm_rank(node_comm_, &local_rank_));
  MPI_CHECK(MPI_Comm_size(node_comm_, &local_size_));
  MPI_Aint bytes = static_cast<MPI_Aint>(kControlBytes + 2 * chunk_bytes_);
  void* base = nullptr;
  MPI_Info info;
  MPI_CHECK(MPI_Info_create(&info));
  MPI_CHECK(MPI_Info_set(info, "alloc_shared_noncontig", "true"));
  MPI_CHECK(MPI_Win_allocate_shared(bytes, 1, info, node_comm_, &base, &win_));
  MPI_Info_free(&info);
  ctls_.resize(local_size_);
  bufs_.resize(local_size_);
  for (int i = 0; i < local_size_; ++i) {
    MPI_Aint sz;
    int disp;
    void* ptr;
    MPI_CHECK(MPI_Win_shared_query(win_, i, &sz, &disp, &ptr));
    ctls_[i] = static_cast<RankControl*>(ptr);
    bufs_[i] = static_cast<uint8_t*>(ptr) + kControlBytes;
  }
  RankControl* mine = ctls_[local_rank_];
  new (mine) RankControl();
  mine->arrived.store(0, std::memory_order_release);
  mine->phase.store(0, std::memory_order_release);
  mine->heartbeat.store(0, std::memory_order_release);
  MPI_CHECK(MPI_Barrier(node_comm_));  // everyone initialised before anyone reads
}

std::unique_ptr<ShmRegion> ShmGroup::alloc_region(size_t bytes) {
  auto r = std::make_unique<ShmRegion>();
  r->bytes = bytes;
  void* base = nullptr;
  MPI_Info info;
  MPI_CHECK(MPI_Info_create(&info));
  MPI_CHECK(MPI_Info_set(info, "alloc_shared_noncontig", "true"));
  // 64 bytes spare: each part is used from its first cache-line boundary.
  const MPI_Aint sz = static_cast<MPI_Aint>(bytes + 64);
  const int rc = MPI_Win_allocate_shared(sz, 1, info, node_comm_, &base, &r->win);
  MPI_Info_free(&info);
  MPI_CHECK(rc);
  r->bases.resize(local_size_);
  for (int i = 0; i < local_size_; ++i) {
    MPI_Aint got;
    int disp;
    void* ptr;
    MPI_CHECK(MPI_Win_shared_query(r->win, i, &got, &disp, &ptr));
    const auto addr = reinterpret_cast<uintptr_t>(ptr);
    r->bases[i] = reinterpret_cast<uint8_t*>((addr + 63) / 64 * 64);
  }
  return r;
}

void ShmGroup::free_region(ShmRegion& r) {
  if (r.win != MPI_WIN_NULL) MPI_CHECK(MPI_Win_free(&r.win));
}

ShmGroup::~ShmGroup() {
  if (win_ != MPI_WIN_NULL) MPI_Win_free(&win_);
  if (node_comm_ != MPI_COMM_NULL) MPI_Comm_free(&node_comm_);
}

void ShmGroup::arrive(uint64_t seq, const OpDesc& op) {
  RankControl* mine = ctl(local_rank_);
  BoardEntry& e = mine->entries[seq % 4];
  e.seq = seq;
  e.sig = op.signature();
  e.count = op.count;
  e.arg = op.arg;
  e.line = op.site.line;
  e.dtype = static_cast<uint8_t>(op.dtype);
  copy_tail(e.kind, sizeof(e.kind), op.kind);
  copy_tail(e.file, sizeof(e.file), op.site.file);
  my_seq_ = seq;
  mine->arrived.store(seq, std::memory_order_release);
}

void ShmGroup::wait_arrivals(uint64_t seq, Clock::time_point deadline) {
  const BoardEntry& me = ctl(local_rank_)->entries[seq % 4];
  auto start = Clock::now();
  for (int j = 0; j < local_size_; ++j) {
    if (j == local_rank_) continue;
    Backoff backoff;
    uint32_t polls = 0;
    for (;;) {
      uint64_t a = ctl(j)->arrived.load(std::memory_order_acquire);
      if (a >= seq) {
        const BoardEntry& e = ctl(j)->entries[seq % 4];
        if (a == seq && e.seq == seq && e.sig != me.sig) {
          CONFLUX_THROW(CommError,
                        "collective #{} diverged in communicator '{}': rank {} called {} at {} but rank {} "
                        "called {} at {}. Every rank must issue the same collectives in the same order "
                        "with the same dtype, op and count",
                        seq, name_, group_ranks_[local_rank_], as_op(me).describe(), as_op(me).where(), group_ranks_[j],
                        as_op(e).describe(), as_op(e).where());
        }
        break;  // a > seq: the peer already verified this collective against us
      }
      if ((++polls & 63) == 0 && Clock::now() > deadline) missing(j, seq, start, false);
      beat();
      backoff.pause();
    }
  }
}

void ShmGroup::phase_barrier(Clock::time_point deadline) {
  ++phase_;
  ctl(local_rank_)->phase.store(phase_, std::memory_order_release);
  auto start = Clock::now();
  for (int j = 0; j < local_size_; ++j) {
    if (j == local_rank_) continue;
    Backoff backoff;
    uint32_t polls = 0;
    while (ctl(j)->phase.load(std::memory_order_acquire) < phase_) {
      if ((++polls & 63) == 0 && Clock::now() > deadline) missing(j, my_seq_, start, true);
      beat();
      backoff.pause();
    }
  }
}

std::string ShmGroup::stalled_peers(Clock::duration window) {
  std::vector<uint64_t> before(static_cast<size_t>(local_size_));
  for (int j = 0; j < local_size_; ++j) before[j] = ctl(j)->heartbeat.load(std::memory_order_relaxed);
  std::this_thread::sleep_for(window);
  std::string out;
  int n = 0;
  for (int j = 0; j < local_size_; ++j) {
    if (j == local_rank_ || ctl(j)->heartbeat.load(std::memory_order_relaxed) != before[j]) continue;
    out += (n++ ? ", " : "") + std::to_string(group_ranks_[j]);
  }
  return n == 0 ? "" : (n == 1 ? "rank " : "ranks ") + out;
}

void ShmGroup::missing(int local, uint64_t seq, Clock::time_point start, bool inside) const {
  uint64_t last = ctl(local)->arrived.load(std::memory_order_acquire);
  const BoardEntry& mine = ctl(local_rank_)->entries[seq % 4];
  std::string last_desc = "none yet";
  if (last > 0) {
    const BoardEntry& e = ctl(local)->entries[last % 4];
    if (e.seq == last) last_desc = fmt::format("#{} {} at {}", last, as_op(e).describe(), as_op(e).where());
  }
  double waited = std::chrono::duration<double>(Clock::now() - start).count();
  if (inside)
    CONFLUX_THROW(CommError, "rank {} of communicator '{}' stalled inside collective #{} ({} at {}) for {:.1f} s",
                  group_ranks_[local], name_, seq, as_op(mine).describe(), as_op(mine).where(), waited);
  CONFLUX_THROW(CommError,
                "rank {} of communicator '{}' did not arrive at collective #{} ({} at {}) within {:.1f} s "
                "(its last collective: {}). It may have died, hung, or skipped this call",
                group_ranks_[local], name_, seq, as_op(mine).describe(), as_op(mine).where(), waited, last_desc);
}

}  // namespace conflux::detail
