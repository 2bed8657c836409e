// Every collective x every dtype against a reference computed locally from the same per-rank
// inputs, on the shared-memory paths (one-phase, chunked, hierarchical) and on raw MPI.
#include "mpi_main.h"

#include "conflux/core/communicator.h"
#include "conflux/core/dtype.h"
#include "conflux/core/error.h"
#include "conflux/core/rng.h"

#include <gtest/gtest.h>
#include <mpi.h>

#include <cmath>
#include <cstring>
#include <vector>

using namespace conflux;

namespace {

// Deterministic per-(rank, index) values; integers small enough that sums never overflow and
// floats that are exact in every dtype (multiples of 1/4 within bf16's 8-bit mantissa).
double value_at(int rank, size_t i) { return static_cast<double>(static_cast<int>((i * 7 + rank * 13) % 61) - 30) / 4.0; }

template <typename T>
T from_double(double v, DType dt) {
  if constexpr (std::is_same_v<T, uint16_t>) return dt == DType::BF16 ? float_to_bf16(static_cast<float>(v)) : float_to_f16(static_cast<float>(v));
  if constexpr (std::is_integral_v<T>) {
    if (dt == DType::U8) return static_cast<T>(static_cast<int>(v * 4 + 120) & 0x7f);
    return static_cast<T>(v * 4);
  }
  return static_cast<T>(v);
}

template <typename T>
double to_double(T v, DType dt) {
  if constexpr (std::is_same_v<T, uint16_t>) return dt == DType::BF16 ? bf16_to_float(v) : f16_to_float(v);
  return static_cast<double>(v);
}

std::vector<uint8_t> make_input(DType dt, int rank, size_t n, size_t first = 0) {
  std::vector<uint8_t> buf(n * dtype_size(dt));
  for (size_t i = 0; i < n; ++i) {
    double v = value_at(rank, first + i);
    switch (dt) {
      case DType::F32: reinterpret_cast<float*>(buf.data())[i] = from_double<float>(v, dt); break;
      case DType::F64: reinterpret_cast<double*>(buf.data())[i] = from_double<double>(v, dt); break;
      case DType::I32: reinterpret_cast<int32_t*>(buf.data())[i] = from_double<int32_t>(v, dt); break;
      case DType::I64: reinterpret_cast<int64_t*>(buf.data())[i] = from_double<int64_t>(v, dt); break;
      case DType::U8: buf[i] = from_double<uint8_t>(v, dt); break;
      case DType::BF16:
      case DType::F16: reinterpret_cast<uint16_t*>(buf.data())[i] = from_double<uint16_t>(v, dt); break;
    }
  }
  return buf;
}

double element(const std::vector<uint8_t>& buf, DType dt, size_t i) {
  switch (dt) {
    case DType::F32: return reinterpret_cast<const float*>(buf.data())[i];
    case DType::F64: return reinterpret_cast<const double*>(buf.data())[i];
    case DType::I32: return reinterpret_cast<const int32_t*>(buf.data())[i];
    case DType::I64: return static_cast<double>(reinterpret_cast<const int64_t*>(buf.data())[i]);
    case DType::U8: return buf[i];
    case DType::BF16: return bf16_to_float(reinterpret_cast<const uint16_t*>(buf.data())[i]);
    case DType::F16: return f16_to_float(reinterpret_cast<const uint16_t*>(buf.data())[i]);
  }
  return 0;
}

// Reference reduction of element i over all ranks' inputs, rounded to the dtype like the
// implementation (exact for these inputs except u8 wrap-around, handled with modulo).
double reference(DType dt, ReduceOp op, int size, size_t i) {
  double acc = 0;
  for (int r = 0; r < size; ++r) {
    double v = element(make_input(dt, r, 1, i), dt, 0);
    if (r == 0) acc = v;
    else if (op == ReduceOp::Max) acc = std::max(acc, v);
    else if (op == ReduceOp::Min) acc = std::min(acc, v);
    else acc += v;
  }
  if (op == ReduceOp::Avg) {
    if (dt == DType::I32 || dt == DType::I64) acc = std::trunc(acc / size);
    else if (dt == DType::U8) acc = static_cast<double>(static_cast<uint8_t>(static_cast<int>(acc)) / size);
    else acc = acc / size;
  }
  if (dt == DType::U8 && op != ReduceOp::Avg) acc = static_cast<double>(static_cast<uint8_t>(static_cast<int>(acc)));
  if (dt == DType::BF16) acc = bf16_to_float(float_to_bf16(static_cast<float>(acc)));
  if (dt == DType::F16) acc = f16_to_float(float_to_f16(static_cast<float>(acc)));
  if (dt == DType::F32) acc = static_cast<float>(acc);
  return acc;
}

const DType kAll[] = {DType::F32, DType::F64, DType::BF16, DType::F16, DType::I32, DType::I64, DType::U8};
const ReduceOp kOps[] = {ReduceOp::Sum, ReduceOp::Avg, ReduceOp::Max, ReduceOp::Min};

void check_allreduce(Communicator& comm, size_t n, bool async) {
  for (DType dt : kAll) {
    for (ReduceOp op : kOps) {
      auto buf = make_input(dt, comm.rank(), n);
      if (async) comm.allreduce_async(buf.data(), n, dt, op)->wait();
      else comm.allreduce(buf.data(), n, dt, op);
      for (size_t i = 0; i < n; i += std::max<size_t>(1, n / 97)) {
        ASSERT_EQ(element(buf, dt, i), reference(dt, op, comm.size(), i))
            << dtype_name(dt) << " " << reduce_op_name(op) << " n=" << n << " i=" << i;
      }
    }
  }
}

CommOptions small_chunks() {
  CommOptions o;
  o.shm_chunk_bytes = 64 * 1024;  // forces many chunks for the sizes below
  o.shm_small_bytes = 4 * 1024;
  o.shm_large_bytes = 8 * 1024;  // chunked shared-memory path from 8 KiB
  return o;
}

}  // namespace

TEST(Collectives, AllreduceEveryDtypeAndOpOnePhaseAndChunked) {
  auto comm = make_mpi_communicator(test::grid().mpi_world(), "t-shm", small_chunks());
  for (size_t n : {size_t{0}, size_t{1}, size_t{7}, size_t{1000}, size_t{50'001}}) check_allreduce(*comm, n, false);
}

TEST(Collectives, AllreduceAsyncPreservesOrder) {
  auto comm = make_mpi_communicator(test::grid().mpi_world(), "t-async", small_chunks());
  check_allreduce(*comm, 3000, true);
  // Several async all-reduces in flight, waited in reverse order, then a sync one.
  std::vector<std::vector<float>> bufs(6, std::vector<float>(20'000));
  std::vector<WorkHandle> works;
  for (size_t k = 0; k < bufs.size(); ++k) {
    for (size_t i = 0; i < bufs[k].size(); ++i) bufs[k][i] = static_cast<float>(comm->rank() + k + i % 5);
    works.push_back(comm->allreduce_async(bufs[k].data(), bufs[k].size(), DType::F32, ReduceOp::Sum));
  }
  float one = 1;
  comm->allreduce(&one, 1, DType::F32, ReduceOp::Sum);
  EXPECT_EQ(one, comm->size());
  for (size_t k = bufs.size(); k-- > 0;) {
    works[k]->wait();
    EXPECT_TRUE(works[k]->done());
    int p = comm->size();
    for (size_t i = 0; i < bufs[k].size(); i += 997)
      EXPECT_EQ(bufs[k][i], static_cast<float>(p * (p - 1) / 2 + p * (k + i % 5)));
  }
}

TEST(Collectives, AllreduceDefaultOptionsAllPaths) {
  // Defaults: one-phase, MPI band and chunked shared memory, each size class once.
  auto comm = make_mpi_communicator(test::grid().mpi_world(), "t-default", CommOptions{});
  for (size_t n : {size_t{100}, size_t{100'000}, size_t{700'001}}) check_allreduce(*comm, n, false);
}

TEST(Collectives, AllreduceRawMpiPath) {
  CommOptions o;
  o.enable_shm = false;
  auto comm = make_mpi_communicator(test::grid().mpi_world(), "t-mpi", o);
  check_allreduce(*comm, 4099, false);
}

TEST(Collectives, AllreduceHierarchicalEmulatedNodes) {
  if (test::grid().world_size() < 4) GTEST_SKIP() << "needs 4 ranks (2 emulated nodes of 2)";
  CommOptions o = small_chunks();
  o.emulate_node_size = 2;
  auto comm = make_mpi_communicator(test::grid().mpi_world(), "t-hier", o);
  check_allreduce(*comm, 20'000, false);
}

// Shared-memory results are bitwise identical to raw MPI_Allreduce where the sum is exact in
// floating point (these inputs) and for integers, at every size class.
TEST(Collectives, ShmBitwiseEqualsRawMpi) {
  auto comm = make_mpi_communicator(test::grid().mpi_world(), "t-bitwise", small_chunks());
  for (size_t n : {size_t{3}, size_t{900}, size_t{100'000}}) {
    for (DType dt : {DType::F32, DType::F64, DType::I32, DType::I64}) {
      auto ours = make_input(dt, comm->rank(), n);
      auto theirs = ours;
      comm->allreduce(ours.data(), n, dt, ReduceOp::Sum);
      MPI_Datatype t = dt == DType::F32 ? MPI_FLOAT : dt == DType::F64 ? MPI_DOUBLE : dt == DType::I32 ? MPI_INT32_T : MPI_INT64_T;
      MPI_Allreduce(MPI_IN_PLACE, theirs.data(), static_cast<int>(n), t, MPI_SUM, MPI_COMM_WORLD);
      ASSERT_EQ(0, std::memcmp(ours.data(), theirs.data(), ours.size())) << dtype_name(dt) << " n=" << n;
    }
  }
}

// Random (inexact) floats: every rank ends with bitwise identical results, and two runs agree.
TEST(Collectives, ShmDeterministicAcrossRanksAndRuns) {
  auto comm = make_mpi_communicator(test::grid().mpi_world(), "t-det", small_chunks());
  const size_t n = 70'000;
  std::vector<float> a(n), b;
  Stream rng(7, "det", static_cast<uint64_t>(comm->rank()));
  for (auto& v : a) v = static_cast<float>(rng.normal());
  b = a;
  comm->allreduce(a.data(), n, DType::F32, ReduceOp::Sum);
  comm->allreduce(b.data(), n, DType::F32, ReduceOp::Sum);
  ASSERT_EQ(0, std::memcmp(a.data(), b.data(), n * 4));
  std::vector<float> all(n * comm->size());
  comm->allgather(a.data(), all.data(), n, DType::F32);
  for (int r = 1; r < comm->size(); ++r) ASSERT_EQ(0, std::memcmp(all.data(), all.data() + r * n, n * 4)) << "rank " << r;
}

// alloc_buffer memory: the zero-copy in-place path (every dtype x op, ranges at an offset inside
// the buffer, async), bitwise equal to the staged chunked path on inexact floats, the buffer
// reusable, and a rank that disagrees about using it fails as a divergence.
TEST(Collectives, SharedBufferZeroCopyEveryDtypeAndOp) {
  auto comm = make_mpi_communicator(test::grid().mpi_world(), "t-sharedbuf", small_chunks());
  const size_t cap = 64 * 1024 * 8;  // bytes per rank
  auto sb = comm->alloc_buffer(cap);
  ASSERT_EQ(sb->bytes(), cap);
  ASSERT_EQ(reinterpret_cast<uintptr_t>(sb->data()) % 64, 0u);
  auto* base = static_cast<uint8_t*>(sb->data());
  for (DType dt : kAll) {
    for (ReduceOp op : kOps) {
      for (size_t n : {size_t{5}, size_t{3001}, size_t{20'000}}) {
        for (size_t off : {size_t{0}, size_t{192}}) {
          auto in = make_input(dt, comm->rank(), n);
          std::memcpy(base + off, in.data(), in.size());
          const bool async = n == 3001;
          void* p = base + off;
          if (async) comm->allreduce_async(p, n, dt, op)->wait();
          else comm->allreduce(p, n, dt, op);
          std::vector<uint8_t> out(base + off, base + off + in.size());
          for (size_t i = 0; i < n; i += std::max<size_t>(1, n / 97))
            ASSERT_EQ(element(out, dt, i), reference(dt, op, comm->size(), i))
                << dtype_name(dt) << " " << reduce_op_name(op) << " n=" << n << " off=" << off << " i=" << i;
        }
      }
    }
  }
}

TEST(Collectives, SharedBufferBitwiseEqualsStagedPath) {
  auto comm = make_mpi_communicator(test::grid().mpi_world(), "t-sharedbits", small_chunks());
  const size_t n = 100'003;
  auto sb = comm->alloc_buffer(n * 4);
  std::vector<float> a(n);
  Stream rng(11, "sharedbits", static_cast<uint64_t>(comm->rank()));
  for (auto& v : a) v = static_cast<float>(rng.normal());
  std::vector<float> staged = a;
  std::memcpy(sb->data(), a.data(), n * 4);
  comm->allreduce(staged.data(), n, DType::F32, ReduceOp::Sum);
  comm->allreduce(sb->data(), n, DType::F32, ReduceOp::Sum);
  ASSERT_EQ(0, std::memcmp(staged.data(), sb->data(), n * 4));
  std::vector<float> all(n * comm->size());
  comm->allgather(sb->data(), all.data(), n, DType::F32);
  for (int r = 1; r < comm->size(); ++r) ASSERT_EQ(0, std::memcmp(all.data(), all.data() + r * n, n * 4)) << "rank " << r;
  // Two buffers alive at once, freed in the same order on every rank.
  auto sb2 = comm->alloc_buffer(4096);
  static_cast<int32_t*>(sb2->data())[0] = comm->rank() + 1;
  comm->allreduce(sb2->data(), 1, DType::I32, ReduceOp::Sum);
  EXPECT_EQ(static_cast<int32_t*>(sb2->data())[0], comm->size() * (comm->size() + 1) / 2);
}

TEST(Collectives, SharedBufferOnOneRankOnlyIsADivergence) {
  auto comm = make_mpi_communicator(test::grid().mpi_world(), "t-shareddiv", small_chunks());
  auto sb = comm->alloc_buffer(4 * 20'000);
  std::vector<float> plain(20'000, 1.0f);
  void* p = comm->rank() == 0 ? sb->data() : static_cast<void*>(plain.data());
  std::string msg;
  try {
    comm->allreduce(p, 20'000, DType::F32, ReduceOp::Sum);
  } catch (const CommError& e) {
    msg = e.what();
  }
  EXPECT_NE(msg.find("diverged"), std::string::npos) << msg;
  EXPECT_NE(msg.find("allreduce/shared(float32 x 20000, sum)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("allreduce(float32 x 20000, sum)"), std::string::npos) << msg;
}

TEST(Collectives, BroadcastEveryDtypeAndRoot) {
  auto& comm = test::grid().world();
  for (DType dt : kAll) {
    for (int root = 0; root < comm.size(); ++root) {
      auto buf = make_input(dt, comm.rank(), 513);
      comm.broadcast(buf.data(), 513, dt, root);
      ASSERT_EQ(buf, make_input(dt, root, 513)) << dtype_name(dt) << " root " << root;
    }
  }
}

TEST(Collectives, AllgatherEveryDtype) {
  auto& comm = test::grid().world();
  for (DType dt : kAll) {
    const size_t n = 301;
    auto mine = make_input(dt, comm.rank(), n);
    std::vector<uint8_t> all(mine.size() * comm.size());
    comm.allgather_async(mine.data(), all.data(), n, dt)->wait();
    for (int r = 0; r < comm.size(); ++r) {
      auto expect = make_input(dt, r, n);
      ASSERT_EQ(0, std::memcmp(all.data() + r * expect.size(), expect.data(), expect.size())) << dtype_name(dt);
    }
  }
}

TEST(Collectives, ReduceScatterEveryDtypeAndOp) {
  auto& comm = test::grid().world();
  const size_t n = 129;
  for (DType dt : kAll) {
    for (ReduceOp op : kOps) {
      auto send = make_input(dt, comm.rank(), n * comm.size());
      std::vector<uint8_t> recv(n * dtype_size(dt));
      comm.reduce_scatter(send.data(), recv.data(), n, dt, op);
      for (size_t i = 0; i < n; ++i)
        ASSERT_EQ(element(recv, dt, i), reference(dt, op, comm.size(), comm.rank() * n + i))
            << dtype_name(dt) << " " << reduce_op_name(op) << " i=" << i;
    }
  }
}

TEST(Collectives, AlltoallvEveryDtypeAndUnevenCounts) {
  auto& comm = test::grid().world();
  const int p = comm.size(), me = comm.rank();
  for (DType dt : kAll) {
    const size_t es = dtype_size(dt);
    // Rank s sends (s + d + 1) elements to rank d, values encoding (s, d, k).
    std::vector<size_t> sc(p), sd(p), rc(p), rd(p);
    size_t ts = 0, tr = 0;
    for (int d = 0; d < p; ++d) sc[d] = me + d + 1, sd[d] = ts, ts += sc[d];
    for (int s = 0; s < p; ++s) rc[s] = s + me + 1, rd[s] = tr, tr += rc[s];
    auto encode = [&](int s, int d, size_t k) { return make_input(dt, s * 7 + d, k + 1); };
    std::vector<uint8_t> send(ts * es), recv(tr * es);
    for (int d = 0; d < p; ++d) {
      auto v = encode(me, d, sc[d]);
      std::memcpy(send.data() + sd[d] * es, v.data(), sc[d] * es);
    }
    comm.alltoallv(send.data(), sc, sd, recv.data(), rc, rd, dt);
    for (int s = 0; s < p; ++s) {
      auto v = encode(s, me, rc[s]);
      ASSERT_EQ(0, std::memcmp(recv.data() + rd[s] * es, v.data(), rc[s] * es)) << dtype_name(dt) << " from " << s;
    }
  }
}

TEST(Collectives, AlltoallvBytesHelper) {
  auto& comm = test::grid().world();
  std::vector<std::vector<uint8_t>> out(comm.size());
  for (int d = 0; d < comm.size(); ++d) out[d].assign(static_cast<size_t>(d * 3 + comm.rank()), static_cast<uint8_t>(comm.rank() * 16 + d));
  std::vector<size_t> counts;
  auto got = comm.alltoallv_bytes(out, &counts);
  size_t off = 0;
  for (int s = 0; s < comm.size(); ++s) {
    ASSERT_EQ(counts[s], static_cast<size_t>(comm.rank() * 3 + s));
    for (size_t k = 0; k < counts[s]; ++k) ASSERT_EQ(got[off + k], static_cast<uint8_t>(s * 16 + comm.rank()));
    off += counts[s];
  }
}

TEST(Collectives, BarrierSyncAndAsync) {
  auto& comm = test::grid().world();
  comm.barrier();
  comm.barrier_async()->wait();
  SUCCEED();
}
