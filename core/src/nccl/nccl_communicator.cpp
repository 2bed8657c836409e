// NCCL back end of Communicator: CUDA device buffers, one dedicated stream per communicator.
//
// Bootstrap: rank 0 creates the ncclUniqueId and broadcasts it over the MPI communicator of the
// same ranks. Every collective waits for work queued on the legacy default stream (where
// libtorch runs unless told otherwise), is enqueued on the communicator's stream, and is then
// polled (cudaStreamQuery + ncclCommGetAsyncError) against the deadline; on an NCCL error or a
// timeout the communicator is aborted (ncclCommAbort) before the CommError is thrown, as a hung
// NCCL kernel would otherwise block the device forever. The node-local arrival board catches
// divergent calls before anything is enqueued.
#include "conflux/core/checks.h"
#include "conflux/core/log.h"
#include "conflux/core/process_grid.h"

#include "../comm_base.h"
#include "../mpi/shm_group.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#define CUDA_CHECK(call)                                                                      \
  do {                                                                                        \
    cudaError_t conflux_cuda_rc_ = (call);                                                    \
    if (conflux_cuda_rc_ != cudaSuccess)                                                      \
      CONFLUX_THROW(CommError, "{} failed: {} ({})", #call, cudaGetErrorString(conflux_cuda_rc_), \
                    cudaGetErrorName(conflux_cuda_rc_));                                      \
  } while (0)

// Aborts the communicator before throwing, so no rank is left with a kernel that never ends.
#define NCCL_CHECK(comm, call)                                                                \
  do {                                                                                        \
    ncclResult_t conflux_nccl_rc_ = (call);                                                   \
    if (conflux_nccl_rc_ != ncclSuccess && conflux_nccl_rc_ != ncclInProgress) {              \
      if ((comm) != nullptr) ncclCommAbort(comm);                                             \
      (comm) = nullptr;                                                                       \
      CONFLUX_THROW(CommError, "{} failed: {}", #call, ncclGetErrorString(conflux_nccl_rc_)); \
    }                                                                                         \
  } while (0)

namespace conflux {
namespace detail {
namespace {

ncclDataType_t nccl_type(DType t) {
  switch (t) {
    case DType::F32: return ncclFloat32;
    case DType::F64: return ncclFloat64;
    case DType::BF16: return ncclBfloat16;
    case DType::F16: return ncclFloat16;
    case DType::I32: return ncclInt32;
    case DType::I64: return ncclInt64;
    case DType::U8: return ncclUint8;
  }
  return ncclUint8;
}

ncclRedOp_t nccl_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum: return ncclSum;
    case ReduceOp::Avg: return ncclAvg;
    case ReduceOp::Max: return ncclMax;
    case ReduceOp::Min: return ncclMin;
  }
  return ncclSum;
}

}  // namespace

class NcclCommunicator final : public CommBase {
 public:
  NcclCommunicator(MPI_Comm comm, std::string name, int device, CommOptions options)
      : CommBase(options), name_(std::move(name)), device_(device) {
    MPI_CHECK(MPI_Comm_dup(comm, &mpi_));
    MPI_CHECK(MPI_Comm_rank(mpi_, &rank_));
    MPI_CHECK(MPI_Comm_size(mpi_, &size_));
    CUDA_CHECK(cudaSetDevice(device_));
    ncclUniqueId id;
    if (rank_ == 0) NCCL_CHECK(comm_, ncclGetUniqueId(&id));
    MPI_CHECK(MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, mpi_));
    NCCL_CHECK(comm_, ncclCommInitRank(&comm_, size_, id, rank_));
    CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    CUDA_CHECK(cudaEventCreateWithFlags(&ready_, cudaEventDisableTiming));
    CUDA_CHECK(cudaMalloc(&scratch_, 64));
    if (size_ > 1) {
      MPI_Comm node;
      MPI_CHECK(MPI_Comm_split_type(mpi_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node));
      int local_size;
      MPI_CHECK(MPI_Comm_size(node, &local_size));
      std::vector<int> ranks(local_size);
      MPI_CHECK(MPI_Allgather(&rank_, 1, MPI_INT, ranks.data(), 1, MPI_INT, node));
      board_ = std::make_unique<ShmGroup>(node, ranks, 4096, name_);
      MPI_Comm_free(&node);
    }
    log::debug("NCCL communicator '{}' ready: {} ranks, device {}", name_, size_, device_);
  }

  ~NcclCommunicator() override {
    shutdown();
    if (abandon_teardown()) {
      // As the MPI back end: no collective teardown with a stalled or out-of-step peer. Abort
      // the NCCL communicator (local, never waits) and leak the arrival board's window.
      if (comm_) ncclCommAbort(comm_);
      (void)board_.release();
      return;
    }
    if (scratch_) cudaFree(scratch_);
    if (ready_) cudaEventDestroy(ready_);
    if (stream_) cudaStreamDestroy(stream_);
    if (comm_) ncclCommDestroy(comm_);
    board_.reset();
    if (mpi_ != MPI_COMM_NULL) MPI_Comm_free(&mpi_);
  }

  // Device memory on this communicator's device (NCCL reads user buffers in place already).
  std::unique_ptr<SharedBuffer> alloc_buffer(size_t bytes, CallSite) override {
    class DeviceBuffer final : public SharedBuffer {
     public:
      DeviceBuffer(int device, size_t bytes) : bytes_(bytes) {
        CUDA_CHECK(cudaSetDevice(device));
        CUDA_CHECK(cudaMalloc(&data_, std::max<size_t>(bytes, 1)));
      }
      ~DeviceBuffer() override { cudaFree(data_); }
      void* data() const override { return data_; }
      size_t bytes() const override { return bytes_; }

     private:
      void* data_ = nullptr;
      size_t bytes_;
    };
    return std::make_unique<DeviceBuffer>(device_, bytes);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  Backend backend() const override { return Backend::Nccl; }
  std::string name() const override { return name_; }

  void allreduce(void* data, size_t count, DType dt, ReduceOp op, CallSite site) override {
    OpDesc d{"allreduce", dt, count, static_cast<int>(op), site};
    run(d, allreduce_fn(d, data, count, dt, op));
  }
  WorkHandle allreduce_async(void* data, size_t count, DType dt, ReduceOp op, CallSite site) override {
    OpDesc d{"allreduce", dt, count, static_cast<int>(op), site};
    return submit(d, allreduce_fn(d, data, count, dt, op));
  }
  void broadcast(void* data, size_t count, DType dt, int root, CallSite site) override {
    OpDesc d{"broadcast", dt, count, root, site};
    run(d, broadcast_fn(d, data, count, dt, root));
  }
  WorkHandle broadcast_async(void* data, size_t count, DType dt, int root, CallSite site) override {
    OpDesc d{"broadcast", dt, count, root, site};
    return submit(d, broadcast_fn(d, data, count, dt, root));
  }
  void allgather(const void* send, void* recv, size_t count, DType dt, CallSite site) override {
    OpDesc d{"allgather", dt, count, -1, site};
    run(d, allgather_fn(d, send, recv, count, dt));
  }
  WorkHandle allgather_async(const void* send, void* recv, size_t count, DType dt, CallSite site) override {
    OpDesc d{"allgather", dt, count, -1, site};
    return submit(d, allgather_fn(d, send, recv, count, dt));
  }
  void reduce_scatter(const void* send, void* recv, size_t count, DType dt, ReduceOp op, CallSite site) override {
    OpDesc d{"reduce_scatter", dt, count, static_cast<int>(op), site};
    run(d, reduce_scatter_fn(d, send, recv, count, dt, op));
  }
  WorkHandle reduce_scatter_async(const void* send, void* recv, size_t count, DType dt, ReduceOp op,
                                  CallSite site) override {
    OpDesc d{"reduce_scatter", dt, count, static_cast<int>(op), site};
    return submit(d, reduce_scatter_fn(d, send, recv, count, dt, op));
  }
  void alltoallv(const void* send, const std::vector<size_t>& sc, const std::vector<size_t>& sd, void* recv,
                 const std::vector<size_t>& rc, const std::vector<size_t>& rd, DType dt, CallSite site) override {
    OpDesc d{"alltoallv", dt, 0, -1, site};
    run(d, alltoallv_fn(d, send, sc, sd, recv, rc, rd, dt));
  }
  WorkHandle alltoallv_async(const void* send, const std::vector<size_t>& sc, const std::vector<size_t>& sd,
                             void* recv, const std::vector<size_t>& rc, const std::vector<size_t>& rd, DType dt,
                             CallSite site) override {
    OpDesc d{"alltoallv", dt, 0, -1, site};
    return submit(d, alltoallv_fn(d, send, sc, sd, recv, rc, rd, dt));
  }
  void barrier(CallSite site) override {
    OpDesc d{"barrier", DType::U8, 0, -1, site};
    run(d, barrier_fn(d));
  }
  WorkHandle barrier_async(CallSite site) override {
    OpDesc d{"barrier", DType::U8, 0, -1, site};
    return submit(d, barrier_fn(d));
  }

 private:
  // Runs `enqueue` on the stream after the default stream's work, then polls to completion.
  template <typename F>
  void launch(const OpDesc& d, F enqueue) {
    if (!comm_) CONFLUX_THROW(CommError, "NCCL communicator '{}' was aborted by an earlier error", name_);
    auto dl = Clock::now() + options_.timeout;
    uint64_t seq = ++seq_;
    if (board_) {
      board_->arrive(seq, d);
      board_->wait_arrivals(seq, dl);
    }
    CUDA_CHECK(cudaSetDevice(device_));
    CUDA_CHECK(cudaEventRecord(ready_, cudaStreamLegacy));
    CUDA_CHECK(cudaStreamWaitEvent(stream_, ready_, 0));
    enqueue();
    Backoff backoff;
    for (;;) {
      cudaError_t q = cudaStreamQuery(stream_);
      if (q == cudaSuccess) return;
      if (q != cudaErrorNotReady) {
        ncclCommAbort(comm_);
        comm_ = nullptr;
        CUDA_CHECK(q);
      }
      ncclResult_t async_err = ncclSuccess;
      NCCL_CHECK(comm_, ncclCommGetAsyncError(comm_, &async_err));
      NCCL_CHECK(comm_, async_err);
      if (Clock::now() > dl) {
        ncclCommAbort(comm_);
        comm_ = nullptr;
        CONFLUX_THROW(CommError, "NCCL collective #{} {} at {} in '{}' did not complete within {:.1f} s; communicator aborted",
                      seq, d.describe(), d.where(), name_, std::chrono::duration<double>(options_.timeout).count());
      }
      backoff.pause();
    }
  }

  Fn allreduce_fn(const OpDesc& d, void* data, size_t count, DType dt, ReduceOp op) {
    return [=] { launch(d, [&] { NCCL_CHECK(comm_, ncclAllReduce(data, data, count, nccl_type(dt), nccl_op(op), comm_, stream_)); }); };
  }
  Fn broadcast_fn(const OpDesc& d, void* data, size_t count, DType dt, int root) {
    return [=] { launch(d, [&] { NCCL_CHECK(comm_, ncclBroadcast(data, data, count, nccl_type(dt), root, comm_, stream_)); }); };
  }
  Fn allgather_fn(const OpDesc& d, const void* send, void* recv, size_t count, DType dt) {
    return [=] { launch(d, [&] { NCCL_CHECK(comm_, ncclAllGather(send, recv, count, nccl_type(dt), comm_, stream_)); }); };
  }
  Fn reduce_scatter_fn(const OpDesc& d, const void* send, void* recv, size_t count, DType dt, ReduceOp op) {
    return [=] {
      launch(d, [&] { NCCL_CHECK(comm_, ncclReduceScatter(send, recv, count, nccl_type(dt), nccl_op(op), comm_, stream_)); });
    };
  }
  Fn alltoallv_fn(const OpDesc& d, const void* send, std::vector<size_t> sc, std::vector<size_t> sd, void* recv,
                  std::vector<size_t> rc, std::vector<size_t> rd, DType dt) {
    return [=] {
      launch(d, [&] {
        const size_t es = dtype_size(dt);
        NCCL_CHECK(comm_, ncclGroupStart());
        for (int r = 0; r < size_; ++r) {
          if (sc[r]) NCCL_CHECK(comm_, ncclSend(static_cast<const char*>(send) + sd[r] * es, sc[r], nccl_type(dt), r, comm_, stream_));
          if (rc[r]) NCCL_CHECK(comm_, ncclRecv(static_cast<char*>(recv) + rd[r] * es, rc[r], nccl_type(dt), r, comm_, stream_));
        }
        NCCL_CHECK(comm_, ncclGroupEnd());
      });
    };
  }
  Fn barrier_fn(const OpDesc& d) {
    return [=] { launch(d, [&] { NCCL_CHECK(comm_, ncclAllReduce(scratch_, scratch_, 1, ncclInt32, ncclSum, comm_, stream_)); }); };
  }

  std::string name_;
  int device_ = 0, rank_ = 0, size_ = 1;
  MPI_Comm mpi_ = MPI_COMM_NULL;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t ready_ = nullptr;
  void* scratch_ = nullptr;
  std::unique_ptr<ShmGroup> board_;
  uint64_t seq_ = 0;
};

}  // namespace detail

int cuda_device_count(std::string* why) {
  int n = 0;
  cudaError_t rc = cudaGetDeviceCount(&n);
  if (rc != cudaSuccess) {
    if (why) *why = fmt::format("{} ({})", cudaGetErrorString(rc), cudaGetErrorName(rc));
    return 0;
  }
  if (why) *why = "";
  return n;
}

std::unique_ptr<Communicator> make_nccl_communicator(intptr_t mpi_comm, std::string name, int device,
                                                     CommOptions options) {
  return std::make_unique<detail::NcclCommunicator>(reinterpret_cast<MPI_Comm>(mpi_comm), std::move(name), device,
                                                    options);
}

}  // namespace conflux
