// GPU check of the NCCL back end (scripts/gpu-check.sh; ctest label "gpu"). Under mpirun with any
// number of ranks, one CUDA device per local rank: every collective x every dtype on device
// buffers against a reference computed on the host, async handles in FIFO order, then (two
// or more ranks) the all-reduce bandwidth from 1 MiB to 256 MiB (nccl-tests' busbw). Exits 77 (ctest: skipped) when
// the build has NCCL but no device is visible, 1 on any mismatch.
#include "conflux/core/communicator.h"
#include "conflux/core/dtype.h"
#include "conflux/core/error.h"
#include "conflux/core/process_grid.h"

#include <cuda_runtime.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

using namespace conflux;

namespace {

int g_failures = 0;
int g_checks = 0;

#define CHECK_CUDA(call)                                                                     \
  do {                                                                                       \
    cudaError_t rc_ = (call);                                                                \
    if (rc_ != cudaSuccess) {                                                                \
      std::fprintf(stderr, "%s failed: %s\n", #call, cudaGetErrorString(rc_));              \
      std::exit(1);                                                                          \
    }                                                                                        \
  } while (0)

// Per-(rank, index) values exact in every dtype (multiples of 1/4 within bf16's mantissa);
// integers small enough that sums over a few ranks never overflow (u8 stays below 128).
double value_at(int rank, size_t i) {
  return static_cast<double>(static_cast<int>((i * 7 + rank * 13) % 61) - 30) / 4.0;
}

double stored(DType dt, double v) {
  switch (dt) {
    case DType::I32:
    case DType::I64: return v * 4;
    case DType::U8: return static_cast<double>(static_cast<int>(v * 4 + 120) & 0x7f);
    default: return v;
  }
}

void put(DType dt, void* p, size_t i, double v) {
  switch (dt) {
    case DType::F32: static_cast<float*>(p)[i] = static_cast<float>(v); break;
    case DType::F64: static_cast<double*>(p)[i] = v; break;
    case DType::BF16: static_cast<uint16_t*>(p)[i] = float_to_bf16(static_cast<float>(v)); break;
    case DType::F16: static_cast<uint16_t*>(p)[i] = float_to_f16(static_cast<float>(v)); break;
    case DType::I32: static_cast<int32_t*>(p)[i] = static_cast<int32_t>(v); break;
    case DType::I64: static_cast<int64_t*>(p)[i] = static_cast<int64_t>(v); break;
    case DType::U8: static_cast<uint8_t*>(p)[i] = static_cast<uint8_t>(v); break;
  }
}

double get(DType dt, const void* p, size_t i) {
  switch (dt) {
    case DType::F32: return static_cast<const float*>(p)[i];
    case DType::F64: return static_cast<const double*>(p)[i];
    case DType::BF16: return bf16_to_float(static_cast<const uint16_t*>(p)[i]);
    case DType::F16: return f16_to_float(static_cast<const uint16_t*>(p)[i]);
    case DType::I32: return static_cast<const int32_t*>(p)[i];
    case DType::I64: return static_cast<double>(static_cast<const int64_t*>(p)[i]);
    case DType::U8: return static_cast<const uint8_t*>(p)[i];
  }
  return 0;
}

bool integral(DType dt) { return dt == DType::I32 || dt == DType::I64 || dt == DType::U8; }

double reduce_ref(DType dt, ReduceOp op, int size, size_t i, size_t offset = 0) {
  double acc = stored(dt, value_at(0, i + offset));
  for (int r = 1; r < size; ++r) {
    double v = stored(dt, value_at(r, i + offset));
    acc = op == ReduceOp::Max ? std::max(acc, v) : op == ReduceOp::Min ? std::min(acc, v) : acc + v;
  }
  if (op == ReduceOp::Avg) acc = integral(dt) ? std::trunc(acc / size) : acc / size;
  return acc;
}

// Device buffer with a host mirror.
struct DevBuf {
  DType dt;
  size_t n;
  void* dev = nullptr;
  std::vector<uint8_t> host;
  DevBuf(DType d, size_t count) : dt(d), n(count), host(count * dtype_size(d)) {
    CHECK_CUDA(cudaMalloc(&dev, host.size() ? host.size() : 1));
  }
  ~DevBuf() { cudaFree(dev); }
  void upload() { CHECK_CUDA(cudaMemcpy(dev, host.data(), host.size(), cudaMemcpyHostToDevice)); }
  void download() { CHECK_CUDA(cudaMemcpy(host.data(), dev, host.size(), cudaMemcpyDeviceToHost)); }
  void fill(int rank, size_t offset = 0) {
    for (size_t i = 0; i < n; ++i) put(dt, host.data(), i, stored(dt, value_at(rank, i + offset)));
    upload();
  }
};

void expect(bool ok, const std::string& what) {
  ++g_checks;
  if (!ok) {
    ++g_failures;
    std::fprintf(stderr, "FAIL: %s\n", what.c_str());
  }
}

// Tolerance: exact for integers and for f32/f64 sums of quarter-integers; bf16/f16 sums are
// rounded once (relative 2^-8 / 2^-11), and Avg divides in the dtype.
double tol(DType dt, double ref) {
  if (dt == DType::BF16) return std::abs(ref) * 1.0 / 128 + 1e-3;
  if (dt == DType::F16) return std::abs(ref) * 1.0 / 1024 + 1e-3;
  if (dt == DType::F32) return std::abs(ref) * 1e-6;
  return 0;
}

void check_all(Communicator& c) {
  const int rank = c.rank(), size = c.size();
  const DType dtypes[] = {DType::F32, DType::F64, DType::BF16, DType::F16, DType::I32, DType::I64, DType::U8};
  const ReduceOp ops[] = {ReduceOp::Sum, ReduceOp::Avg, ReduceOp::Max, ReduceOp::Min};
  const char* op_names[] = {"sum", "avg", "max", "min"};
  const size_t counts[] = {1, 1000, (1u << 20) + 3};
  for (DType dt : dtypes) {
    const std::string dn(dtype_name(dt));
    for (size_t n : counts) {
      for (int k = 0; k < 4; ++k) {
        DevBuf b(dt, n);
        b.fill(rank);
        c.allreduce(b.dev, n, dt, ops[k]);
        b.download();
        size_t bad = 0;
        for (size_t i = 0; i < n; ++i) {
          double ref = reduce_ref(dt, ops[k], size, i);
          if (std::abs(get(dt, b.host.data(), i) - ref) > tol(dt, ref)) ++bad;
        }
        expect(bad == 0, "allreduce " + std::string(op_names[k]) + " " + dn + " n=" + std::to_string(n) +
                             ": " + std::to_string(bad) + " wrong elements");
      }
      // broadcast from the last rank
      {
        DevBuf b(dt, n);
        b.fill(rank);
        c.broadcast(b.dev, n, dt, size - 1);
        b.download();
        size_t bad = 0;
        for (size_t i = 0; i < n; ++i) bad += get(dt, b.host.data(), i) != stored(dt, value_at(size - 1, i));
        expect(bad == 0, "broadcast " + dn + " n=" + std::to_string(n));
      }
      // all-gather: rank r's block at r * n
      {
        DevBuf s(dt, n), r(dt, n * size);
        s.fill(rank);
        c.allgather(s.dev, r.dev, n, dt);
        r.download();
        size_t bad = 0;
        for (int q = 0; q < size; ++q)
          for (size_t i = 0; i < n; ++i) bad += get(dt, r.host.data(), q * n + i) != stored(dt, value_at(q, i));
        expect(bad == 0, "allgather " + dn + " n=" + std::to_string(n));
      }
      // reduce-scatter (sum): this rank gets block `rank` of the element-wise sum
      {
        DevBuf s(dt, n * size), r(dt, n);
        s.fill(rank);
        c.reduce_scatter(s.dev, r.dev, n, dt, ReduceOp::Sum);
        r.download();
        size_t bad = 0;
        for (size_t i = 0; i < n; ++i) {
          double ref = reduce_ref(dt, ReduceOp::Sum, size, i, rank * n);
          bad += std::abs(get(dt, r.host.data(), i) - ref) > tol(dt, ref);
        }
        expect(bad == 0, "reduce_scatter " + dn + " n=" + std::to_string(n));
      }
    }
    // all-to-all-v: rank p sends (q + 1) * (p + 1) elements to rank q, values tagged by source.
    {
      std::vector<size_t> sc(size), sd(size), rc(size), rd(size);
      size_t st = 0, rt = 0;
      for (int q = 0; q < size; ++q) {
        sc[q] = static_cast<size_t>((q + 1) * (rank + 1)), sd[q] = st, st += sc[q];
        rc[q] = static_cast<size_t>((rank + 1) * (q + 1)), rd[q] = rt, rt += rc[q];
      }
      DevBuf s(dt, st), r(dt, rt);
      for (int q = 0; q < size; ++q)
        for (size_t i = 0; i < sc[q]; ++i) put(dt, s.host.data(), sd[q] + i, stored(dt, value_at(rank, 100 * q + i)));
      s.upload();
      c.alltoallv(s.dev, sc, sd, r.dev, rc, rd, dt);
      r.download();
      size_t bad = 0;
      for (int q = 0; q < size; ++q)
        for (size_t i = 0; i < rc[q]; ++i)
          bad += get(dt, r.host.data(), rd[q] + i) != stored(dt, value_at(q, 100 * rank + i));
      expect(bad == 0, "alltoallv " + dn);
    }
  }
  // Async: three all-reduces queued, waited in reverse order, each correct; then a barrier.
  {
    const size_t n = 4096;
    std::vector<std::unique_ptr<DevBuf>> bufs;
    std::vector<WorkHandle> work;
    for (int k = 0; k < 3; ++k) {
      bufs.push_back(std::make_unique<DevBuf>(DType::F32, n));
      bufs.back()->fill(rank, static_cast<size_t>(k));
      work.push_back(c.allreduce_async(bufs.back()->dev, n, DType::F32, ReduceOp::Sum));
    }
    for (int k = 2; k >= 0; --k) work[k]->wait();
    for (int k = 0; k < 3; ++k) {
      bufs[k]->download();
      size_t bad = 0;
      for (size_t i = 0; i < n; ++i)
        bad += get(DType::F32, bufs[k]->host.data(), i) != reduce_ref(DType::F32, ReduceOp::Sum, size, i, k);
      expect(bad == 0, "allreduce_async #" + std::to_string(k));
    }
    c.barrier_async()->wait();
    c.barrier();
  }
}

void bandwidth(Communicator& c) {
  const int size = c.size();
  if (size == 1) {
    std::printf("bandwidth table skipped: with one rank NCCL's in-place all-reduce moves no data\n");
    return;
  }
  if (c.rank() == 0)
    std::printf("%12s %12s %10s %10s %10s\n", "size(B)", "count", "time(us)", "algbw", "busbw");
  for (size_t bytes = 1u << 20; bytes <= (256u << 20); bytes <<= 2) {
    const size_t n = bytes / 4;
    DevBuf b(DType::F32, n);
    CHECK_CUDA(cudaMemset(b.dev, 0, bytes));
    for (int w = 0; w < 3; ++w) c.allreduce(b.dev, n, DType::F32, ReduceOp::Sum);
    const int iters = 20;
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < iters; ++i) c.allreduce(b.dev, n, DType::F32, ReduceOp::Sum);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / iters;
    const double algbw = bytes / s / 1e9;
    const double busbw = algbw * (size > 1 ? 2.0 * (size - 1) / size : 1.0);
    if (c.rank() == 0)
      std::printf("%12zu %12zu %10.1f %10.2f %10.2f\n", bytes, n, s * 1e6, algbw, busbw);
  }
}

}  // namespace

int main() {
  int rc = 0;
  try {
    ProcessGrid grid;
    std::string why;
    const int devices = cuda_device_count(&why);
    if (devices == 0) {
      if (grid.world_rank() == 0) std::printf("no CUDA device (%s): NCCL check skipped\n", why.c_str());
      rc = 77;
    } else {
      const int device = grid.launch().local_rank % devices;
      cudaDeviceProp prop{};
      CHECK_CUDA(cudaGetDeviceProperties(&prop, device));
      Communicator& nccl = grid.nccl("world", device);
      if (grid.world_rank() == 0)
        std::printf("NCCL communicator: %d rank(s), device %d (%s)\n", nccl.size(), device, prop.name);
      auto t0 = std::chrono::steady_clock::now();
      check_all(nccl);
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::printf("rank %d: %d checks, %d failed (%.1f s)\n", grid.world_rank(), g_checks, g_failures, secs);
      if (g_failures == 0) bandwidth(nccl);
      rc = g_failures ? 1 : 0;
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "gpu_nccl_check: %s\n", e.what());
    rc = 1;
  }
  return rc;
}
