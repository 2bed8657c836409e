// `conflux doctor`: checks that this node (and, under mpirun/srun, every rank) can run Conflux:
// MPI, parallel HDF5, ZeroMQ with CURVE, libtorch and its BLAS, CUDA/NCCL, Slurm.
#include "conflux/cli/cli.h"
#include "conflux/core/build_config.h"
#include "conflux/core/error.h"
#include "conflux/core/process_grid.h"

#include <hdf5.h>
#include <link.h>
#include <mpi.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>
#include <unistd.h>
#include <zmq.h>

#include <chrono>
#include <cstdlib>
#include <iostream>

namespace conflux::cli {
namespace {

enum class Status { Ok, Warn, Fail };
struct Check {
  std::string name;
  Status status;
  std::string detail;
};

const char* status_text(Status s) { return s == Status::Ok ? "ok" : s == Status::Warn ? "WARN" : "FAIL"; }

Check check_mpi(ProcessGrid& grid) {
  char version[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  MPI_Get_library_version(version, &len);
  std::string v(version, len);
  v = v.substr(0, v.find(','));
  const char* levels[] = {"single", "funneled", "serialized", "multiple"};
  int lvl = grid.mpi_thread_level();
  std::string detail = fmt::format("{}; {} rank(s), {} per node on {}; thread level {}; launcher {}", v,
                                   grid.world_size(), grid.launch().local_size, grid.launch().host,
                                   lvl >= 0 && lvl <= 3 ? levels[lvl] : "?", grid.launch().launcher);
  return {"MPI", lvl == MPI_THREAD_MULTIPLE ? Status::Ok : Status::Fail,
          lvl == MPI_THREAD_MULTIPLE ? detail : detail + " (MPI_THREAD_MULTIPLE is required for async collectives)"};
}

Check check_hdf5(ProcessGrid& grid) {
  unsigned maj, min, rel;
  H5get_libversion(&maj, &min, &rel);
#ifndef H5_HAVE_PARALLEL
  return {"HDF5", Status::Fail, fmt::format("{}.{}.{} is a serial build; Conflux needs parallel HDF5", maj, min, rel)};
#else
  // Collective create + independent write + read back through the MPI-IO driver.
  std::string path = fmt::format("/tmp/conflux-doctor-{}.h5", static_cast<long>(getppid()));
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  H5Pset_fapl_mpio(fapl, reinterpret_cast<MPI_Comm>(grid.mpi_world()), MPI_INFO_NULL);
  H5E_auto2_t old_fn;
  void* old_data;
  H5Eget_auto2(H5E_DEFAULT, &old_fn, &old_data);
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  bool ok = false;
  hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
  if (file >= 0) {
    hsize_t dims[1] = {static_cast<hsize_t>(grid.world_size())};
    hid_t space = H5Screate_simple(1, dims, nullptr);
    hid_t ds = H5Dcreate2(file, "ranks", H5T_NATIVE_INT, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t start[1] = {static_cast<hsize_t>(grid.world_rank())}, count[1] = {1};
    H5Sselect_hyperslab(space, H5S_SELECT_SET, start, nullptr, count, nullptr);
    hid_t mem = H5Screate_simple(1, count, nullptr);
    int mine = grid.world_rank() * 10, back = -1;
    ok = H5Dwrite(ds, H5T_NATIVE_INT, mem, space, H5P_DEFAULT, &mine) >= 0 &&
         H5Dread(ds, H5T_NATIVE_INT, mem, space, H5P_DEFAULT, &back) >= 0 && back == mine;
    H5Sclose(mem);
    H5Dclose(ds);
    H5Sclose(space);
    H5Fclose(file);
  }
  H5Pclose(fapl);
  H5Eset_auto2(H5E_DEFAULT, old_fn, old_data);
  MPI_Barrier(reinterpret_cast<MPI_Comm>(grid.mpi_world()));
  if (grid.world_rank() == 0) std::remove(path.c_str());
  return {"HDF5", ok ? Status::Ok : Status::Fail,
          fmt::format("{}.{}.{} parallel; MPI-IO collective file create/write/read in /tmp {}", maj, min, rel,
                      ok ? "works" : "FAILED")};
#endif
}

Check check_zmq() {
  int maj, min, pat;
  zmq_version(&maj, &min, &pat);
  bool curve = zmq_has("curve");
  char pub[41], sec[41];
  bool keys = curve && zmq_curve_keypair(pub, sec) == 0;
  return {"ZeroMQ", curve && keys ? Status::Ok : Status::Fail,
          fmt::format("{}.{}.{}; CURVE {}", maj, min, pat, curve ? (keys ? "available (keypair generated)" : "keypair failed") : "NOT available")};
}

struct BlasInfo {
  std::string path;
};
int find_blas(struct dl_phdr_info* info, size_t, void* data) {
  std::string name = info->dlpi_name ? info->dlpi_name : "";
  auto* out = static_cast<BlasInfo*>(data);
  if ((name.find("libblas") != std::string::npos || name.find("openblas") != std::string::npos ||
       name.find("libmkl") != std::string::npos) && out->path.empty())
    out->path = name;
  return 0;
}

Check check_torch(double* gflops_out) {
  int threads = at::get_num_threads();
  const int64_t n = 1024;
  auto a = torch::randn({n, n}), b = torch::randn({n, n});
  auto c = torch::matmul(a, b);  // warm up, loads BLAS
  int reps = 0;
  auto t0 = std::chrono::steady_clock::now();
  double secs = 0;
  do {
    c = torch::matmul(a, b);
    ++reps;
    secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  } while (secs < 0.3 && reps < 200);
  double gflops = 2.0 * n * n * n * reps / secs / 1e9;
  *gflops_out = gflops;
  BlasInfo blas;
  dl_iterate_phdr(find_blas, &blas);
  char real[4096];
  std::string resolved = blas.path;
  if (!blas.path.empty() && realpath(blas.path.c_str(), real)) resolved = real;
  bool reference = resolved.find("openblas") == std::string::npos && resolved.find("mkl") == std::string::npos;
  std::string detail = fmt::format("libtorch {}; {} intra-op thread(s); BLAS {}; float32 matmul {}x{}: {:.1f} GFLOP/s",
                                   TORCH_VERSION, threads, resolved.empty() ? "(none found)" : resolved, n, n, gflops);
  if (reference)
    return {"libtorch", Status::Warn,
            detail + " -- this is the slow reference BLAS; install libopenblas0-openmp (scripts/install-deps.sh) "
                     "for ~40x faster training"};
  return {"libtorch", Status::Ok, detail};
}

Check check_cuda() {
  std::string why;
  int n = cuda_device_count(&why);
  if (n < 0) return {"CUDA/NCCL", Status::Warn, "not compiled in: " + why};
  if (n == 0) return {"CUDA/NCCL", Status::Warn, "NCCL back end compiled in; no CUDA device visible" + (why.empty() ? "" : " (" + why + ")")};
  return {"CUDA/NCCL", Status::Ok, fmt::format("NCCL back end compiled in; {} CUDA device(s) visible", n)};
}

Check check_slurm() {
  const char* job = std::getenv("SLURM_JOB_ID");
  bool srun = access("/usr/bin/srun", X_OK) == 0;
  if (!job)
    return {"Slurm", Status::Ok,
            fmt::format("not inside a Slurm job; srun {}", srun ? "available (/usr/bin/srun)" : "not installed")};
  auto env = [](const char* k) { const char* v = std::getenv(k); return std::string(v ? v : "-"); };
  return {"Slurm", Status::Ok,
          fmt::format("job {} step {}, task {}/{} (local {}), nodes {}", env("SLURM_JOB_ID"), env("SLURM_STEP_ID"),
                      env("SLURM_PROCID"), env("SLURM_NTASKS"), env("SLURM_LOCALID"), env("SLURM_JOB_NODELIST"))};
}

int doctor(const Args& args) {
  po::options_description opts("options");
  bool json = false;
  opts.add_options()("json", po::bool_switch(&json), "machine-readable report on stdout");
  po::variables_map vm;
  if (!parse(args, opts, nullptr, vm,
             {"doctor", "[--json]",
              "Checks MPI (ranks, thread level, launcher), parallel HDF5, ZeroMQ with CURVE, libtorch (version, "
              "threads, BLAS and a matmul GFLOP/s), CUDA/NCCL and the Slurm environment. Under mpirun or srun every "
              "rank checks itself and rank 0 reports. Exits 1 when something required is broken.",
              "mpirun -np 2 conflux doctor"}))
    return 0;
  ProcessGrid grid;
  double gflops = 0;
  std::vector<Check> checks = {check_mpi(grid), check_hdf5(grid), check_zmq(), check_torch(&gflops), check_cuda(),
                               check_slurm()};
  // Every rank's worst status and BLAS speed reach rank 0.
  int worst = 0;
  for (auto& c : checks) worst = std::max(worst, static_cast<int>(c.status));
  std::vector<int> worsts(grid.world_size());
  std::vector<double> speeds(grid.world_size());
  MPI_Comm world = reinterpret_cast<MPI_Comm>(grid.mpi_world());
  MPI_Gather(&worst, 1, MPI_INT, worsts.data(), 1, MPI_INT, 0, world);
  MPI_Gather(&gflops, 1, MPI_DOUBLE, speeds.data(), 1, MPI_DOUBLE, 0, world);
  int global_worst = 0;
  for (int w : worsts) global_worst = std::max(global_worst, w);
  MPI_Bcast(&global_worst, 1, MPI_INT, 0, world);
  if (grid.world_rank() == 0) {
    if (json) {
      nlohmann::json j;
      j["version"] = CONFLUX_VERSION;
      for (auto& c : checks) j["checks"].push_back({{"name", c.name}, {"status", status_text(c.status)}, {"detail", c.detail}});
      j["ranks"] = grid.world_size();
      j["rank_status"] = worsts;
      j["rank_matmul_gflops"] = speeds;
      j["ok"] = global_worst < static_cast<int>(Status::Fail);
      std::cout << j.dump(2) << "\n";
    } else {
      std::cout << "conflux " << CONFLUX_VERSION << " doctor\n";
      for (auto& c : checks) std::printf("  %-4s  %-10s %s\n", status_text(c.status), c.name.c_str(), c.detail.c_str());
      if (grid.world_size() > 1) {
        std::string per;
        for (int r = 0; r < grid.world_size(); ++r)
          per += fmt::format("{}{}:{}/{:.0f}", r ? " " : "", r, status_text(static_cast<Status>(worsts[r])), speeds[r]);
        std::printf("  %-4s  %-10s rank:status/GFLOP/s  %s\n", status_text(static_cast<Status>(global_worst)), "ranks",
                    per.c_str());
      }
      std::cout << (global_worst == static_cast<int>(Status::Fail) ? "result: BROKEN (see FAIL lines)\n"
                    : global_worst == static_cast<int>(Status::Warn) ? "result: usable, with warnings\n"
                                                                     : "result: all good\n");
    }
    std::cout.flush();
  }
  return global_worst == static_cast<int>(Status::Fail) ? kExitUser : 0;
}

CONFLUX_VERB("doctor", "check MPI, parallel HDF5, ZeroMQ/CURVE, libtorch/BLAS, CUDA/NCCL, Slurm", doctor);

}  // namespace
}  // namespace conflux::cli
