// `conflux bench allreduce`: nccl-tests-style table of Conflux's all-reduce next to raw
// MPI_Allreduce, measured in the same run, interleaved, with results checked.
#include "conflux/cli/cli.h"
#include "conflux/core/dtype.h"
#include "conflux/core/error.h"
#include "conflux/core/process_grid.h"

#include <mpi.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>
#include <vector>

namespace conflux::cli {
namespace {

MPI_Datatype mpi_type_for(DType t) {
  switch (t) {
    case DType::F32: return MPI_FLOAT;
    case DType::F64: return MPI_DOUBLE;
    case DType::I32: return MPI_INT32_T;
    case DType::I64: return MPI_INT64_T;
    default: return MPI_DATATYPE_NULL;
  }
}

// Fills with rank-dependent small integers (exact in every supported dtype).
// A byte range (the bench's buffer: a vector, or alloc_buffer memory with --buffers shared).
struct Bytes {
  uint8_t* ptr;
  size_t len;
  uint8_t* data() const { return ptr; }
  size_t size() const { return len; }
};

void fill(const Bytes& buf, DType dt, int rank) {
  size_t n = buf.size() / dtype_size(dt);
  for (size_t i = 0; i < n; ++i) {
    double v = static_cast<double>((i + static_cast<size_t>(rank) * 3) % 17);
    switch (dt) {
      case DType::F32: reinterpret_cast<float*>(buf.data())[i] = static_cast<float>(v); break;
      case DType::F64: reinterpret_cast<double*>(buf.data())[i] = v; break;
      case DType::I32: reinterpret_cast<int32_t*>(buf.data())[i] = static_cast<int32_t>(v); break;
      case DType::I64: reinterpret_cast<int64_t*>(buf.data())[i] = static_cast<int64_t>(v); break;
      default: break;
    }
  }
}

bool verify(const Bytes& buf, DType dt, int size) {
  size_t n = buf.size() / dtype_size(dt);
  for (size_t i = 0; i < n; ++i) {
    double expect = 0;
    for (int r = 0; r < size; ++r) expect += static_cast<double>((i + static_cast<size_t>(r) * 3) % 17);
    double got = 0;
    switch (dt) {
      case DType::F32: got = reinterpret_cast<const float*>(buf.data())[i]; break;
      case DType::F64: got = reinterpret_cast<const double*>(buf.data())[i]; break;
      case DType::I32: got = reinterpret_cast<const int32_t*>(buf.data())[i]; break;
      case DType::I64: got = static_cast<double>(reinterpret_cast<const int64_t*>(buf.data())[i]); break;
      default: break;
    }
    if (got != expect) return false;
  }
  return true;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::string human(size_t bytes) {
  if (bytes >= (1u << 20)) return fmt::format("{}M", bytes >> 20);
  if (bytes >= 1024) return fmt::format("{}K", bytes >> 10);
  return fmt::format("{}", bytes);
}

int bench_allreduce(const Args& args) {
  po::options_description opts("options");
  std::string dtype_name_s = "float32", min_s = "1K", max_s = "256M";
  int rounds = 5;
  double target_ms = 60;
  bool json = false;
  int64_t small = -1, chunk = -1, large = -1;
  std::string buffers = "user";
  opts.add_options()("dtype", po::value(&dtype_name_s), "float32, float64, int32 or int64")(
      "min-bytes", po::value(&min_s), "smallest size (suffix K/M)")("max-bytes", po::value(&max_s), "largest size")(
      "rounds", number(&rounds, 1), "interleaved measurement rounds per size (median reported)")(
      "target-ms", number(&target_ms, 0.0), "time per measurement; sets the iteration count")(
      "shm-small-bytes", number(&small, 0), "override the one-phase shared-memory threshold")(
      "shm-chunk-bytes", number(&chunk, 1), "override the shared-memory staging slot size")(
      "shm-large-bytes", number(&large, 0), "override where the chunked shared-memory algorithm starts")(
      "buffers", po::value(&buffers),
      "user: ordinary memory (staged through shared memory); shared: Communicator::alloc_buffer memory "
      "(zero-copy in place), for both Conflux and MPI")(
      "json", po::bool_switch(&json), "JSON lines on stdout instead of the table");
  po::variables_map vm;
  if (!parse(args, opts, nullptr, vm,
             {"bench allreduce", "[--dtype float32] [--min-bytes 1K] [--max-bytes 256M] [--json]",
              "Measures Conflux's all-reduce (sum) and raw MPI_Allreduce side by side in the same run, interleaved "
              "round by round, for sizes from --min-bytes to --max-bytes (x4 steps). Prints time, algbw and busbw "
              "(algbw x 2(n-1)/n) for both and the ratio (MPI time / Conflux time; > 1 means Conflux is faster). "
              "Both results are checked against the exact sum.",
              "mpirun -np 2 conflux bench allreduce --max-bytes 64M"}))
    return 0;
  auto parse_size = [](const std::string& s) -> size_t {
    size_t mult = 1;
    std::string num = s;
    if (!s.empty() && (s.back() == 'K' || s.back() == 'k')) mult = 1024, num.pop_back();
    else if (!s.empty() && (s.back() == 'M' || s.back() == 'm')) mult = 1024 * 1024, num.pop_back();
    else if (!s.empty() && (s.back() == 'G' || s.back() == 'g')) mult = 1024ull * 1024 * 1024, num.pop_back();
    try {
      return std::stoull(num) * mult;
    } catch (...) {
      CONFLUX_THROW(UsageError, "bad size '{}' (use e.g. 4096, 64K, 256M)", s);
    }
  };
  DType dt;
  if (!parse_dtype(dtype_name_s, &dt) || mpi_type_for(dt) == MPI_DATATYPE_NULL)
    CONFLUX_THROW(UsageError, "--dtype must be float32, float64, int32 or int64 (got '{}')", dtype_name_s);
  size_t lo = parse_size(min_s), hi = parse_size(max_s);
  if (lo < dtype_size(dt) || hi < lo) CONFLUX_THROW(UsageError, "need {} <= --min-bytes <= --max-bytes", dtype_size(dt));
  if (buffers != "user" && buffers != "shared")
    CONFLUX_THROW(UsageError, "--buffers must be user or shared (got '{}')", buffers);

  GridOptions go;
  if (small >= 0) go.comm.shm_small_bytes = static_cast<size_t>(small);
  if (chunk > 0) go.comm.shm_chunk_bytes = static_cast<size_t>(chunk);
  if (large >= 0) go.comm.shm_large_bytes = static_cast<size_t>(large);
  ProcessGrid grid(go);
  Communicator& comm = grid.world();
  MPI_Comm raw;
  MPI_Comm_dup(reinterpret_cast<MPI_Comm>(grid.mpi_world()), &raw);
  const int p = grid.world_size();
  const bool root = grid.world_rank() == 0;
  if (root && !json) {
    std::printf("# conflux bench allreduce: %d ranks, dtype %s, op sum, %d rounds, median per size, %s buffers\n", p,
                dtype_name_s.c_str(), rounds, buffers.c_str());
    std::printf("# ratio = MPI_Allreduce time / Conflux time (>1: Conflux faster); busbw = algbw * 2(n-1)/n\n");
    std::printf("# %9s %10s %8s | %10s %8s %8s | %10s %8s %8s | %6s %6s\n", "size", "count", "type", "conflux us",
                "algbw", "busbw", "mpi us", "algbw", "busbw", "ratio", "check");
  }
  bool all_ok = true;
  for (size_t bytes = lo; bytes <= hi; bytes *= 4) {
    size_t count = bytes / dtype_size(dt);
    std::vector<uint8_t> user;
    std::unique_ptr<SharedBuffer> shared;
    if (buffers == "shared") {
      shared = comm.alloc_buffer(count * dtype_size(dt));
    } else {
      user.resize(count * dtype_size(dt));
    }
    const Bytes buf{shared ? static_cast<uint8_t*>(shared->data()) : user.data(), count * dtype_size(dt)};
    // Correctness first (untimed): both implementations on the same inputs.
    fill(buf, dt, grid.world_rank());
    comm.allreduce(buf.data(), count, dt, ReduceOp::Sum);
    int ok_c = verify(buf, dt, p);
    fill(buf, dt, grid.world_rank());
    MPI_Allreduce(MPI_IN_PLACE, buf.data(), static_cast<int>(count), mpi_type_for(dt), MPI_SUM, raw);
    int ok_m = verify(buf, dt, p);
    int oks[2] = {ok_c, ok_m};
    MPI_Allreduce(MPI_IN_PLACE, oks, 2, MPI_INT, MPI_MIN, raw);
    // Iteration count from a quick probe of MPI's time (same on all ranks).
    double t0 = MPI_Wtime();
    MPI_Allreduce(MPI_IN_PLACE, buf.data(), static_cast<int>(count), mpi_type_for(dt), MPI_SUM, raw);
    double probe = MPI_Wtime() - t0;
    MPI_Allreduce(MPI_IN_PLACE, &probe, 1, MPI_DOUBLE, MPI_MAX, raw);
    int iters = std::clamp(static_cast<int>(target_ms / 1000 / std::max(probe, 1e-7)), 2, 20000);
    std::vector<double> tc, tm;
    for (int r = 0; r < rounds; ++r) {
      for (int pass = 0; pass < 2; ++pass) {
        bool ours = (pass + r) % 2 == 0;  // alternate which goes first
        MPI_Barrier(raw);
        double start = MPI_Wtime();
        for (int i = 0; i < iters; ++i) {
          if (ours) comm.allreduce(buf.data(), count, dt, ReduceOp::Sum);
          else MPI_Allreduce(MPI_IN_PLACE, buf.data(), static_cast<int>(count), mpi_type_for(dt), MPI_SUM, raw);
        }
        double el = (MPI_Wtime() - start) / iters;
        MPI_Allreduce(MPI_IN_PLACE, &el, 1, MPI_DOUBLE, MPI_MAX, raw);
        (ours ? tc : tm).push_back(el);
      }
    }
    double c = median(tc), m = median(tm);
    double algc = static_cast<double>(bytes) / c / 1e9, algm = static_cast<double>(bytes) / m / 1e9;
    double factor = 2.0 * (p - 1) / p;
    bool ok = oks[0] && oks[1];
    all_ok = all_ok && ok;
    if (root) {
      if (json) {
        nlohmann::json j = {{"bytes", bytes}, {"count", count}, {"dtype", dtype_name_s}, {"ranks", p},
                            {"conflux_us", c * 1e6}, {"conflux_algbw", algc}, {"conflux_busbw", algc * factor},
                            {"mpi_us", m * 1e6}, {"mpi_algbw", algm}, {"mpi_busbw", algm * factor},
                            {"ratio", m / c}, {"check", ok}, {"iters", iters}, {"buffers", buffers}};
        std::cout << j.dump() << std::endl;
      } else {
        std::printf("  %9s %10zu %8s | %10.1f %8.2f %8.2f | %10.1f %8.2f %8.2f | %6.2f %6s\n", human(bytes).c_str(),
                    count, dtype_name_s.c_str(), c * 1e6, algc, algc * factor, m * 1e6, algm, algm * factor, m / c,
                    ok ? "ok" : (oks[0] ? "MPI!" : "WRONG"));
        std::fflush(stdout);
      }
    }
  }
  MPI_Comm_free(&raw);
  if (!all_ok) CONFLUX_THROW(InternalError, "an all-reduce result did not match the exact sum (see the check column)");
  return 0;
}

CONFLUX_VERB("bench allreduce", "all-reduce bandwidth: Conflux vs raw MPI_Allreduce, side by side", bench_allreduce);

}  // namespace
}  // namespace conflux::cli
