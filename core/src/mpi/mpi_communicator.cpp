// MPI back end of Communicator: CPU buffers; all-reduce through node shared memory (one-phase
// for small buffers, reduce-scatter + all-gather in chunks for large ones, hierarchical across
// nodes, and zero-copy in place on buffers from alloc_buffer), every other collective through
// non-blocking MPI polled against the deadline.
#include "conflux/core/checks.h"
#include "conflux/core/log.h"
#include "conflux/core/process_grid.h"

#include "../comm_base.h"
#include "reduce_kernels.h"
#include "shm_group.h"

#include <algorithm>
#include <climits>
#include <exception>
#include <mutex>
#include <cstdint>
#include <cstring>
#include <vector>

namespace conflux {
namespace detail {

std::string mpi_error_string(int code) {
  char buf[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(code, buf, &len) != MPI_SUCCESS) return fmt::format("MPI error {}", code);
  return std::string(buf, len);
}

namespace {

MPI_Datatype mpi_type(DType t) {
  switch (t) {
    case DType::F32: return MPI_FLOAT;
    case DType::F64: return MPI_DOUBLE;
    case DType::I32: return MPI_INT32_T;
    case DType::I64: return MPI_INT64_T;
    case DType::U8: return MPI_UINT8_T;
    case DType::BF16:
    case DType::F16: return MPI_UINT16_T;  // moved as bits; reductions go through float32
  }
  return MPI_BYTE;
}

MPI_Op mpi_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::Max: return MPI_MAX;
    case ReduceOp::Min: return MPI_MIN;
    default: return MPI_SUM;
  }
}

bool is_half(DType t) { return t == DType::BF16 || t == DType::F16; }

std::vector<float> to_float(const void* data, size_t n, DType t) {
  std::vector<float> out(n);
  auto p = static_cast<const uint16_t*>(data);
  for (size_t i = 0; i < n; ++i) out[i] = t == DType::BF16 ? bf16_to_float(p[i]) : f16_to_float(p[i]);
  return out;
}

// Open MPI's vectorised uint8 MPI_SUM saturates; Conflux's contract is C's modular arithmetic, so
// uint8 sums travel as int32 and are narrowed afterwards.
bool widen_u8(DType t, ReduceOp op) { return t == DType::U8 && (op == ReduceOp::Sum || op == ReduceOp::Avg); }

std::vector<int32_t> to_i32(const void* data, size_t n) {
  auto p = static_cast<const uint8_t*>(data);
  return std::vector<int32_t>(p, p + n);
}

void from_i32(const int32_t* in, void* data, size_t n) {
  auto p = static_cast<uint8_t*>(data);
  for (size_t i = 0; i < n; ++i) p[i] = static_cast<uint8_t>(in[i] & 0xff);
}

void from_float(const float* in, void* data, size_t n, DType t) {
  auto p = static_cast<uint16_t*>(data);
  for (size_t i = 0; i < n; ++i) p[i] = t == DType::BF16 ? float_to_bf16(in[i]) : float_to_f16(in[i]);
}

// Input pointers of a reduction: on the stack for up to 64 ranks.
class InputList {
 public:
  explicit InputList(int n) : ptr_(few_) {
    if (n > 64) {
      many_.resize(static_cast<size_t>(n));
      ptr_ = many_.data();
    }
  }
  const void*& operator[](int j) { return ptr_[j]; }
  const void* const* data() const { return ptr_; }

 private:
  const void* few_[64];
  std::vector<const void*> many_;
  const void** ptr_;
};

// alloc_buffer memory: up to this size the one-phase (staged) algorithm, above it zero-copy.
constexpr size_t kSharedOnePhaseMaxBytes = 4096;
// shared_allreduce works in chunks this size, reduced and then written to every peer from cache.
constexpr size_t kSharedChunkBytes = 32 * 1024;

int checked_int(size_t v, const char* what) {
  if (v > static_cast<size_t>(INT_MAX))
    CONFLUX_THROW(CommError, "{} = {} exceeds MPI's int count limit; split the transfer", what, v);
  return static_cast<int>(v);
}

}  // namespace

class MpiCommunicator final : public CommBase {
 public:
  MpiCommunicator(MPI_Comm comm, std::string name, CommOptions options) : CommBase(options), name_(std::move(name)) {
    MPI_CHECK(MPI_Comm_dup(comm, &comm_));
    MPI_CHECK(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
    MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
    MPI_CHECK(MPI_Comm_size(comm_, &size_));
    if (size_ == 1) return;
    MPI_Comm node;
    if (options_.emulate_node_size > 0) {
      MPI_CHECK(MPI_Comm_split(comm_, rank_ / options_.emulate_node_size, rank_, &node));
    } else {
      MPI_CHECK(MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node));
    }
    int local_rank, local_size;
    MPI_CHECK(MPI_Comm_rank(node, &local_rank));
    MPI_CHECK(MPI_Comm_size(node, &local_size));
    std::vector<int> group_ranks(local_size);
    MPI_CHECK(MPI_Allgather(&rank_, 1, MPI_INT, group_ranks.data(), 1, MPI_INT, node));
    int mm[2] = {local_size, -local_size}, red[2];
    MPI_CHECK(MPI_Allreduce(mm, red, 2, MPI_INT, MPI_MAX, comm_));
    single_node_ = local_size == size_;
    uniform_nodes_ = red[0] == -red[1];
    shm_ = std::make_unique<ShmGroup>(node, group_ranks, options_.shm_chunk_bytes, name_);
    if (!single_node_ && uniform_nodes_) MPI_CHECK(MPI_Comm_split(comm_, local_rank, rank_, &cross_));
    MPI_Comm_free(&node);
    log::debug("communicator '{}': {} ranks, {} per node, shared-memory all-reduce {}", name_, size_, local_size,
               !options_.enable_shm ? "disabled"
               : single_node_       ? "on"
               : uniform_nodes_     ? "hierarchical"
                                    : "off (uneven nodes)");
  }

  ~MpiCommunicator() override {
    shutdown();
    if (abandon_teardown()) {
      // MPI_Win_free synchronises the node's ranks and MPI_Comm_free may too: with a stalled or
      // out-of-step peer they would never return. Leak the window and communicators; the job is
      // being aborted (main's error handler) and the OS reclaims them.
      (void)shm_.release();
      return;
    }
    shm_.reset();
    if (cross_ != MPI_COMM_NULL) MPI_Comm_free(&cross_);
    if (comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  Backend backend() const override { return Backend::Mpi; }
  std::string name() const override { return name_; }

  // ---- all-reduce -------------------------------------------------------------------------
  // On a range of an alloc_buffer region the call is "allreduce/shared": the kind is part of the
  // signature, so ranks that disagree about it fail as a divergence instead of taking different
  // algorithms.
  void allreduce(void* data, size_t count, DType dtype, ReduceOp op, CallSite site) override {
    size_t off = 0;
    const ShmRegion* region = find_region(data, count * dtype_size(dtype), &off);
    OpDesc d{region ? kSharedKind : "allreduce", dtype, count, static_cast<int>(op), site};
    run(d, [=] { do_allreduce(d, data, count, dtype, op, region, off); });
  }
  WorkHandle allreduce_async(void* data, size_t count, DType dtype, ReduceOp op, CallSite site) override {
    size_t off = 0;
    const ShmRegion* region = find_region(data, count * dtype_size(dtype), &off);
    OpDesc d{region ? kSharedKind : "allreduce", dtype, count, static_cast<int>(op), site};
    return submit(d, [=] { do_allreduce(d, data, count, dtype, op, region, off); });
  }

  std::unique_ptr<SharedBuffer> alloc_buffer(size_t bytes, CallSite site) override {
    if (size_ == 1 || !shm_ || !single_node_ || !options_.enable_shm) return Communicator::alloc_buffer(bytes, site);
    OpDesc d{"alloc_buffer", DType::U8, bytes, -1, site};
    std::shared_ptr<ShmRegion> region;
    run(d, [&] {
      enter(d, deadline());
      region = shm_->alloc_region(bytes);
    });
    {
      std::lock_guard<std::mutex> lock(regions_mu_);
      regions_.push_back(region);
    }
    return std::make_unique<Buffer>(this, region);
  }

  void broadcast(void* data, size_t count, DType dtype, int root, CallSite site) override {
    OpDesc d{"broadcast", dtype, count, root, site};
    run(d, [=] { do_broadcast(d, data, count, dtype, root); });
  }
  WorkHandle broadcast_async(void* data, size_t count, DType dtype, int root, CallSite site) override {
    OpDesc d{"broadcast", dtype, count, root, site};
    return submit(d, [=] { do_broadcast(d, data, count, dtype, root); });
  }

  void allgather(const void* send, void* recv, size_t count, DType dtype, CallSite site) override {
    OpDesc d{"allgather", dtype, count, -1, site};
    run(d, [=] { do_allgather(d, send, recv, count, dtype); });
  }
  WorkHandle allgather_async(const void* send, void* recv, size_t count, DType dtype, CallSite site) override {
    OpDesc d{"allgather", dtype, count, -1, site};
    return submit(d, [=] { do_allgather(d, send, recv, count, dtype); });
  }

  void reduce_scatter(const void* send, void* recv, size_t count, DType dtype, ReduceOp op, CallSite site) override {
    OpDesc d{"reduce_scatter", dtype, count, static_cast<int>(op), site};
    run(d, [=] { do_reduce_scatter(d, send, recv, count, dtype, op); });
  }
  WorkHandle reduce_scatter_async(const void* send, void* recv, size_t count, DType dtype, ReduceOp op,
                                  CallSite site) override {
    OpDesc d{"reduce_scatter", dtype, count, static_cast<int>(op), site};
    return submit(d, [=] { do_reduce_scatter(d, send, recv, count, dtype, op); });
  }

  void alltoallv(const void* send, const std::vector<size_t>& sc, const std::vector<size_t>& sd, void* recv,
                 const std::vector<size_t>& rc, const std::vector<size_t>& rd, DType dtype, CallSite site) override {
    // The signature covers dtype only: counts legitimately differ between ranks.
    OpDesc d{"alltoallv", dtype, 0, -1, site};
    run(d, [=] { do_alltoallv(d, send, sc, sd, recv, rc, rd, dtype); });
  }
  WorkHandle alltoallv_async(const void* send, const std::vector<size_t>& sc, const std::vector<size_t>& sd,
                             void* recv, const std::vector<size_t>& rc, const std::vector<size_t>& rd, DType dtype,
                             CallSite site) override {
    OpDesc d{"alltoallv", dtype, 0, -1, site};
    return submit(d, [=] { do_alltoallv(d, send, sc, sd, recv, rc, rd, dtype); });
  }

  void barrier(CallSite site) override {
    OpDesc d{"barrier", DType::U8, 0, -1, site};
    run(d, [=] { do_barrier(d); });
  }
  WorkHandle barrier_async(CallSite site) override {
    OpDesc d{"barrier", DType::U8, 0, -1, site};
    return submit(d, [=] { do_barrier(d); });
  }

 private:
  Clock::time_point deadline() const { return Clock::now() + options_.timeout; }

  // Arrival board check: every node-local peer is at this collective with the same signature.
  uint64_t enter(const OpDesc& d, Clock::time_point dl, bool publish = true) {
    uint64_t seq = ++seq_;
    if (shm_ && publish) {
      shm_->arrive(seq, d);
      shm_->wait_arrivals(seq, dl);
    }
    return seq;
  }

  void wait_request(MPI_Request* req, const OpDesc& d, Clock::time_point dl) {
    Backoff backoff;
    uint32_t polls = 0;
    for (;;) {
      int flag = 0;
      MPI_CHECK(MPI_Test(req, &flag, MPI_STATUS_IGNORE));
      if (flag) return;
      if (shm_) shm_->beat();
      if ((++polls & 63) == 0 && Clock::now() > dl) {
        // Every local peer passed the arrival check; one that stopped making progress since is
        // the stalled one (a peer that merely waits beats on every poll).
        const std::string who = shm_ ? shm_->stalled_peers(std::chrono::milliseconds(500)) : "";
        if (!who.empty())
          CONFLUX_THROW(CommError,
                        "{} of communicator '{}' stalled inside collective #{} ({} at {}) for {:.1f} s (arrived, then "
                        "stopped making progress)",
                        who, name_, seq_, d.describe(), d.where(),
                        std::chrono::duration<double>(options_.timeout).count());
        CONFLUX_THROW(CommError,
                      "collective #{} {} at {} in communicator '{}' did not complete within {:.1f} s; a rank on "
                      "another node is missing or stalled",
                      seq_, d.describe(), d.where(), name_,
                      std::chrono::duration<double>(options_.timeout).count());
      }
      backoff.pause();
    }
  }

  class Buffer final : public SharedBuffer {
   public:
    Buffer(MpiCommunicator* comm, std::shared_ptr<ShmRegion> r) : comm_(comm), region_(std::move(r)) {}
    ~Buffer() override { comm_->release(region_); }
    void* data() const override { return region_->bases[comm_->shm_->local_rank()]; }
    size_t bytes() const override { return region_->bytes; }

   private:
    MpiCommunicator* comm_;
    std::shared_ptr<ShmRegion> region_;
  };

  static constexpr const char* kSharedKind = "allreduce/shared";

  // The alloc_buffer region holding [p, p + bytes) on this rank, and the offset of p in it
  // (null for ordinary memory).
  const ShmRegion* find_region(const void* p, size_t bytes, size_t* offset) {
    if (!shm_ || bytes == 0) return nullptr;
    std::lock_guard<std::mutex> lock(regions_mu_);
    const auto* b = static_cast<const uint8_t*>(p);
    for (const auto& r : regions_) {
      const uint8_t* mine = r->bases[shm_->local_rank()];
      if (b >= mine && b + bytes <= mine + r->bytes) {
        *offset = static_cast<size_t>(b - mine);
        return r.get();
      }
    }
    return nullptr;
  }


  void release(const std::shared_ptr<ShmRegion>& r) {
    {
      std::lock_guard<std::mutex> lock(regions_mu_);
      regions_.erase(std::remove(regions_.begin(), regions_.end(), r), regions_.end());
    }
    // Freeing is collective: skip it (leak the window) while unwinding or after a failure, so a
    // failing rank never waits for peers that may never come.
    if (abandon_teardown()) return;
    OpDesc d{"free_buffer", DType::U8, r->bytes, -1, CallSite::here()};
    run(d, [&] {
      enter(d, deadline());
      shm_->free_region(*r);
    });
  }

  // In place on alloc_buffer memory (every rank arrived, so every buffer holds its input): each
  // rank reduces its segment from all peers' buffers, a cache-sized chunk at a time, and writes
  // each reduced chunk into every rank's buffer while it is still in cache. Only the owner reads or
  // writes a segment, so one barrier at the end suffices (after it, every buffer holds the result
  // and no peer touches it any more). Per rank that is one read and one write of the data, against
  // two reads and two writes for reduce-then-copy. Same reduction order as the chunked path, so
  // the same bits.
  void shared_allreduce(const ShmRegion& r, size_t off, size_t count, DType dtype, ReduceOp op,
                        Clock::time_point dl) {
    const int p = shm_->local_size(), me = shm_->local_rank();
    const size_t es = dtype_size(dtype);
    const size_t align = std::max<size_t>(1, 64 / es);  // segments start on cache lines
    const size_t seg = ((count + p - 1) / p + align - 1) / align * align;
    auto at = [&](int j, size_t e) { return r.bases[j] + off + e * es; };
    const size_t s0 = std::min(count, seg * me), s1 = std::min(count, s0 + seg);
    const size_t chunk = std::max<size_t>(align, kSharedChunkBytes / es / align * align);
    InputList in(p);
    for (size_t c0 = s0; c0 < s1; c0 += chunk) {
      const size_t n = std::min(chunk, s1 - c0);
      for (int j = 0; j < p; ++j) in[j] = at(j, c0);
      reduce_rows(at(me, c0), in.data(), p, n, dtype, op, size_);
      for (int j = 0; j < p; ++j)
        if (j != me) std::memcpy(at(j, c0), at(me, c0), n * es);
    }
    shm_->phase_barrier(dl);
  }

  // `region`/`off`: where `data` lies in alloc_buffer memory (null: ordinary memory).
  void do_allreduce(const OpDesc& d, void* data, size_t count, DType dtype, ReduceOp op,
                    const ShmRegion* region, size_t off) {
    auto dl = deadline();
    size_t bytes = count * dtype_size(dtype);
    if (size_ == 1) {
      ++seq_;
      return;  // sum/max/min/avg of one contribution is itself
    }
    bool shm_ok = shm_ && options_.enable_shm && (single_node_ || uniform_nodes_);
    if (shm_ok && single_node_ && region && bytes > kSharedOnePhaseMaxBytes) {
      enter(d, dl);
      return shared_allreduce(*region, off, count, dtype, op, dl);
    }
    if (shm_ok && single_node_ && bytes <= std::min(options_.shm_small_bytes, shm_->chunk_bytes())) {
      // One phase: stage, publish, then every rank reduces all slots (same order on every rank).
      uint64_t seq = ++seq_;
      int buf = static_cast<int>(seq % 2);
      std::memcpy(shm_->buffer(shm_->local_rank(), buf), data, bytes);
      shm_->arrive(seq, d);
      shm_->wait_arrivals(seq, dl);
      InputList in(size_);
      for (int j = 0; j < size_; ++j) in[j] = shm_->buffer(j, buf);
      reduce_rows(data, in.data(), size_, count, dtype, op, size_);
      return;
    }
    enter(d, dl);
    if (shm_ok && (bytes >= options_.shm_large_bytes || !single_node_))
      return shm_allreduce(d, static_cast<uint8_t*>(data), count, dtype, op, dl);
    mpi_allreduce(d, data, count, dtype, op, comm_, dl);
    if (op == ReduceOp::Avg) divide_in_place(data, count, dtype, size_);
  }

  // Reduce-scatter + all-gather through the staging slots, chunk by chunk, double-buffered.
  void shm_allreduce(const OpDesc& d, uint8_t* data, size_t count, DType dtype, ReduceOp op, Clock::time_point dl) {
    const int p = shm_->local_size(), me = shm_->local_rank();
    const size_t es = dtype_size(dtype);
    const size_t align = 64 / es * static_cast<size_t>(p);
    size_t chunk_elems = shm_->chunk_bytes() / es / align * align;
    const ReduceOp local_op = (!single_node_ && op == ReduceOp::Avg) ? ReduceOp::Sum : op;
    std::vector<const void*> in(p);
    size_t c = 0;
    for (size_t off = 0; off < count; off += chunk_elems, ++c) {
      const size_t m = std::min(chunk_elems, count - off);
      const int b = static_cast<int>(c % 2);
      const size_t seg = (m + p - 1) / p;
      const size_t s0 = std::min(m, seg * me), s1 = std::min(m, s0 + seg);
      // Stage every segment but our own: only we read our own segment, straight from `data`.
      if (s0 > 0) std::memcpy(shm_->buffer(me, b), data + off * es, s0 * es);
      if (m > s1) std::memcpy(shm_->buffer(me, b) + s1 * es, data + (off + s1) * es, (m - s1) * es);
      shm_->phase_barrier(dl);
      if (s1 > s0) {
        for (int j = 0; j < p; ++j) in[j] = j == me ? data + (off + s0) * es : shm_->buffer(j, b) + s0 * es;
        void* out = shm_->buffer(me, b) + s0 * es;
        reduce_rows(out, in.data(), p, s1 - s0, dtype, local_op, size_);
        if (!single_node_) {
          mpi_allreduce(d, out, s1 - s0, dtype, local_op, cross_, dl);
          if (op == ReduceOp::Avg) divide_in_place(out, s1 - s0, dtype, size_);
        }
      }
      shm_->phase_barrier(dl);
      for (int j = 0; j < p; ++j) {
        const size_t a0 = std::min(m, seg * j), a1 = std::min(m, a0 + seg);
        if (a1 > a0) std::memcpy(data + (off + a0) * es, shm_->buffer(j, b) + a0 * es, (a1 - a0) * es);
      }
    }
    shm_->phase_barrier(dl);  // nobody reuses a slot while a peer still gathers from it
  }

  // All-reduce through MPI: non-blocking, polled against the deadline. Never the blocking
  // MPI_Allreduce, even among node-local peers that passed the arrival check: a peer can stall
  // after arriving (SIGSTOP, a hung device or file system), and a blocking call would then wait
  // forever instead of naming it (tests/mpi/stall_test.sh, comm.shm = false).
  void mpi_allreduce(const OpDesc& d, void* data, size_t count, DType dtype, ReduceOp op, MPI_Comm comm,
                     Clock::time_point dl) {
    const int n = checked_int(count, "count");
    auto reduce = [&](void* buf, MPI_Datatype t, MPI_Op o) {
      MPI_Request req;
      MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, buf, n, t, o, comm, &req));
      wait_request(&req, d, dl);
    };
    if (is_half(dtype)) {
      auto tmp = to_float(data, count, dtype);
      reduce(tmp.data(), MPI_FLOAT, mpi_op(op));
      from_float(tmp.data(), data, count, dtype);
    } else if (widen_u8(dtype, op)) {
      auto tmp = to_i32(data, count);
      reduce(tmp.data(), MPI_INT32_T, MPI_SUM);
      from_i32(tmp.data(), data, count);
    } else {
      reduce(data, mpi_type(dtype), mpi_op(op));
    }
  }

  void do_broadcast(const OpDesc& d, void* data, size_t count, DType dtype, int root) {
    if (root < 0 || root >= size_)
      CONFLUX_THROW(CommError, "broadcast root {} out of range for communicator '{}' of size {} (at {})", root, name_,
                    size_, d.where());
    auto dl = deadline();
    enter(d, dl);
    if (size_ == 1) return;
    MPI_Request req;
    MPI_CHECK(MPI_Ibcast(data, checked_int(count, "count"), mpi_type(dtype), root, comm_, &req));
    wait_request(&req, d, dl);
  }

  void do_allgather(const OpDesc& d, const void* send, void* recv, size_t count, DType dtype) {
    auto dl = deadline();
    enter(d, dl);
    if (size_ == 1) {
      if (send != recv) std::memcpy(recv, send, count * dtype_size(dtype));
      return;
    }
    MPI_Request req;
    int n = checked_int(count, "count");
    MPI_CHECK(MPI_Iallgather(send, n, mpi_type(dtype), recv, n, mpi_type(dtype), comm_, &req));
    wait_request(&req, d, dl);
  }

  void do_reduce_scatter(const OpDesc& d, const void* send, void* recv, size_t count, DType dtype, ReduceOp op) {
    auto dl = deadline();
    enter(d, dl);
    if (size_ == 1) {
      if (send != recv) std::memcpy(recv, send, count * dtype_size(dtype));
      return;
    }
    MPI_Request req;
    int n = checked_int(count, "count");
    checked_int(count * size_, "count * ranks");
    if (is_half(dtype)) {
      auto in = to_float(send, count * size_, dtype);
      std::vector<float> out(count);
      MPI_CHECK(MPI_Ireduce_scatter_block(in.data(), out.data(), n, MPI_FLOAT, mpi_op(op), comm_, &req));
      wait_request(&req, d, dl);
      if (op == ReduceOp::Avg)
        for (auto& v : out) v /= static_cast<float>(size_);
      from_float(out.data(), recv, count, dtype);
      return;
    }
    if (widen_u8(dtype, op)) {
      auto in = to_i32(send, count * size_);
      std::vector<int32_t> out(count);
      MPI_CHECK(MPI_Ireduce_scatter_block(in.data(), out.data(), n, MPI_INT32_T, MPI_SUM, comm_, &req));
      wait_request(&req, d, dl);
      from_i32(out.data(), recv, count);
    } else {
      MPI_CHECK(MPI_Ireduce_scatter_block(send, recv, n, mpi_type(dtype), mpi_op(op), comm_, &req));
      wait_request(&req, d, dl);
    }
    if (op == ReduceOp::Avg) divide_in_place(recv, count, dtype, size_);
  }

  void do_alltoallv(const OpDesc& d, const void* send, const std::vector<size_t>& sc, const std::vector<size_t>& sd,
                    void* recv, const std::vector<size_t>& rc, const std::vector<size_t>& rd, DType dtype) {
    for (auto* v : {&sc, &sd, &rc, &rd})
      if (v->size() != static_cast<size_t>(size_))
        CONFLUX_THROW(CommError, "alltoallv at {}: counts/displacements need {} entries (one per rank), got {}",
                      d.where(), size_, v->size());
    auto dl = deadline();
    enter(d, dl);
    auto ints = [&](const std::vector<size_t>& v, const char* what) {
      std::vector<int> out(v.size());
      for (size_t i = 0; i < v.size(); ++i) out[i] = checked_int(v[i], what);
      return out;
    };
    auto isc = ints(sc, "send count"), isd = ints(sd, "send displacement"), irc = ints(rc, "receive count"),
         ird = ints(rd, "receive displacement");
    MPI_Request req;
    MPI_CHECK(MPI_Ialltoallv(send, isc.data(), isd.data(), mpi_type(dtype), recv, irc.data(), ird.data(),
                             mpi_type(dtype), comm_, &req));
    wait_request(&req, d, dl);
  }

  void do_barrier(const OpDesc& d) {
    auto dl = deadline();
    enter(d, dl);
    if (size_ == 1 || single_node_) return;  // the arrival wait was the barrier
    MPI_Request req;
    MPI_CHECK(MPI_Ibarrier(comm_, &req));
    wait_request(&req, d, dl);
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  MPI_Comm cross_ = MPI_COMM_NULL;
  std::string name_;
  int rank_ = 0, size_ = 1;
  bool single_node_ = true, uniform_nodes_ = true;
  std::unique_ptr<ShmGroup> shm_;
  std::mutex regions_mu_;
  std::vector<std::shared_ptr<ShmRegion>> regions_;  // live alloc_buffer windows
  uint64_t seq_ = 0;
};

}  // namespace detail

std::unique_ptr<Communicator> make_mpi_communicator(intptr_t mpi_comm, std::string name, CommOptions options) {
  return std::make_unique<detail::MpiCommunicator>(reinterpret_cast<MPI_Comm>(mpi_comm), std::move(name), options);
}

}  // namespace conflux
