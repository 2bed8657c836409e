// ProcessGrid: MPI start-up/shutdown, launcher detection and the dp x tp split.
#include "conflux/core/process_grid.h"

#include "conflux/core/build_config.h"
#include "conflux/core/checks.h"
#include "conflux/core/config.h"
#include "conflux/core/log.h"

#include "mpi/bounded_mpi.h"

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>

namespace conflux {
namespace {
std::mutex g_mpi_mu;
int g_grids = 0;
bool g_we_initialised = false;

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}

// Tags of the grid's arrival checks (point to point, before the blocking set-up on
// MPI_COMM_WORLD and before the teardown on the grid's own world communicator).
constexpr int kSetUpTag = 7301;
constexpr int kEndTag = 7302;

// This process's rank as the launcher gave it, before MPI_Init (-1: not launched by one).
int launcher_rank() {
  return env_int("OMPI_COMM_WORLD_RANK", env_int("PMIX_RANK", env_int("SLURM_PROCID", -1)));
}

// Test hook, inert unless CONFLUX_TEST_STOP_AT=POINT:RANK is set: the process of world rank RANK
// stops itself with SIGSTOP at POINT ("mpi-init": before MPI_Init; "grid-setup": inside the grid's
// constructor, before its first collective; "grid-teardown": in the destructor at the end of a
// job, after its last collective), so that tests/mpi/stall_test.sh stalls a rank at an exact
// place instead of racing the job with kill -STOP.
void test_stop_point(const char* point, int rank) {
  const char* v = std::getenv("CONFLUX_TEST_STOP_AT");
  if (!v || !*v) return;
  const std::string spec(v);
  const auto colon = spec.rfind(':');
  if (colon == std::string::npos || spec.compare(0, colon, point) != 0) return;
  if (rank < 0 || std::atoi(spec.c_str() + colon + 1) != rank) return;
  std::fprintf(stderr, "conflux: rank %d stops itself at '%s' (test hook CONFLUX_TEST_STOP_AT=%s)\n", rank, point, v);
  std::fflush(stderr);
  std::raise(SIGSTOP);
}
}  // namespace

#if CONFLUX_HAVE_NCCL
std::unique_ptr<Communicator> make_nccl_communicator(intptr_t mpi_comm, std::string name, int device,
                                                     CommOptions options);
#endif

bool nccl_compiled() { return CONFLUX_HAVE_NCCL != 0; }

#if !CONFLUX_HAVE_NCCL
int cuda_device_count(std::string* why) {
  if (why) *why = "built without CUDA/NCCL (CONFLUX_WITH_CUDA=OFF or not found at configure time)";
  return -1;
}
#endif

void GridConfig::bind(ConfigBinder& b) {
  b.field("parallel.tp", tp, "tensor-parallel size (divides the number of ranks)").range(1, 4096);
  bind_comm(b);
}

void GridConfig::bind_comm(ConfigBinder& b) {
  b.field("comm.timeout_s", timeout_s, "timeout of every collective, seconds (a dead rank is named)").min(0.1);
  b.field("comm.shm", shm, "shared-memory all-reduce between ranks of one node");
  b.field("comm.shm_small_bytes", shm_small_bytes, "one-phase shared-memory all-reduce up to this size").min(0);
  b.field("comm.shm_large_bytes", shm_large_bytes, "shared-memory reduce-scatter/all-gather from this size (MPI between)").min(0);
  b.field("comm.shm_chunk_bytes", shm_chunk_bytes, "per-rank shared-memory staging slot").range(4096, 1 << 30);
}

GridOptions GridConfig::options() const {
  GridOptions o;
  o.tp = tp;
  o.comm.timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
  o.comm.enable_shm = shm;
  o.comm.shm_small_bytes = static_cast<size_t>(std::min(shm_small_bytes, shm_chunk_bytes));
  o.comm.shm_chunk_bytes = static_cast<size_t>(shm_chunk_bytes);
  o.comm.shm_large_bytes = static_cast<size_t>(shm_large_bytes);
  return o;
}

struct ProcessGrid::Impl {
  MPI_Comm world_comm = MPI_COMM_NULL, tp_comm = MPI_COMM_NULL, dp_comm = MPI_COMM_NULL;
  std::unique_ptr<Communicator> world, dp, tp;
  std::map<std::string, std::unique_ptr<Communicator>> nccl;
  CommOptions comm_options;  // with the grid's shared CommFailure
};

ProcessGrid::ProcessGrid(GridOptions options) : impl_(std::make_unique<Impl>()) {
  const std::chrono::milliseconds timeout = options.comm.timeout;
  {
    std::lock_guard<std::mutex> lock(g_mpi_mu);
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) {
      // A process not started by mpirun/srun is an MPI singleton, for which Open MPI first starts
      // an orted helper (1-2 s here). Isolated mode skips it: Conflux never spawns or connects
      // processes. Only the singleton component reads this, and a value the user set wins.
      ::setenv("OMPI_MCA_ess_singleton_isolated", "1", /*overwrite=*/0);
      const int rank = launcher_rank();
      test_stop_point("mpi-init", rank);
      // MPI_Init waits for every rank of the job to start MPI; one stalled before it (on a hung
      // file system while reading its config, say) would keep the others here forever, and MPI
      // cannot name it yet.
      detail::StallGuard guard(timeout,
                               fmt::format("MPI_Init did not complete within {:.1f} s (comm.timeout_s) on {}: another "
                                           "rank of the job has not started MPI (stopped, hung, or slow to start; "
                                           "MPI cannot name it before it starts). This rank ends the job",
                                           std::chrono::duration<double>(timeout).count(),
                                           rank < 0 ? std::string("this process")
                                                    : fmt::format("rank {} (as launched)", rank)),
                               detail::StallGuard::End::Exit);
      int provided = 0;
      MPI_CHECK(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided));
      g_we_initialised = true;
    }
    ++g_grids;
  }
  try {
    set_up(std::move(options));
  } catch (...) {
    // The destructor will not run: undo this grid's share of the MPI lifetime here. MPI stays
    // initialised: after a communication failure main() ends the job with MPI_Abort.
    std::lock_guard<std::mutex> lock(g_mpi_mu);
    --g_grids;
    throw;
  }
}

void ProcessGrid::set_up(GridOptions options) {
  MPI_CHECK(MPI_Query_thread(&thread_level_));
  if (thread_level_ < MPI_THREAD_MULTIPLE)
    log::warn("MPI provides thread level {} < MPI_THREAD_MULTIPLE; async collectives need it", thread_level_);
  MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &world_rank_));
  MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &world_size_));
  char host[MPI_MAX_PROCESSOR_NAME];
  int len = 0;
  MPI_CHECK(MPI_Get_processor_name(host, &len));
  launch_.host = std::string(host, len);
  set_error_context(world_rank_, launch_.host);
  log::set_rank(world_rank_);

  if (std::getenv("SLURM_STEP_ID") && std::getenv("SLURM_PROCID")) {
    launch_.launcher = "srun";
  } else if (std::getenv("OMPI_COMM_WORLD_RANK")) {
    launch_.launcher = "mpirun";
  } else {
    launch_.launcher = "none";
  }
  tp_ = options.tp;
  if (tp_ < 1 || world_size_ % tp_ != 0)
    CONFLUX_THROW(ConfigError, "tensor-parallel size {} must be >= 1 and divide the number of ranks ({})", tp_,
                  world_size_);

  // Every call below is a blocking collective with no deadline (MPI_Comm_split_type, _dup,
  // _split, and the communicators' own splits and shared-memory windows): first check, with a
  // deadline, that every rank is here, naming the ones that are not. The set-up itself then takes
  // milliseconds; the guard ends the job should a rank stall inside it all the same.
  const std::chrono::milliseconds timeout = options.comm.timeout;
  test_stop_point("grid-setup", world_rank_);
  detail::check_arrival(MPI_COMM_WORLD, "world", "the process grid set-up", timeout, kSetUpTag);
  detail::StallGuard guard(timeout,
                           fmt::format("the process grid set-up (communicator splits, shared-memory windows) did "
                                       "not complete within {:.1f} s (comm.timeout_s) although every rank had "
                                       "arrived: a rank stopped or hung inside it. This rank aborts the job",
                                       std::chrono::duration<double>(timeout).count()),
                           detail::StallGuard::End::Abort);
  MPI_Comm node;
  MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, world_rank_, MPI_INFO_NULL, &node));
  int node_rank = 0;
  MPI_CHECK(MPI_Comm_rank(node, &node_rank));
  MPI_CHECK(MPI_Comm_size(node, &launch_.local_size));
  MPI_Comm_free(&node);
  launch_.local_rank = env_int("OMPI_COMM_WORLD_LOCAL_RANK", env_int("SLURM_LOCALID", node_rank));

  // One failure state for every communicator of the grid: a stalled tp peer also means the dp and
  // world collectives (and their teardown) must not wait for it.
  options.comm.failure = std::make_shared<CommFailure>();
  impl_->comm_options = options.comm;
  MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &impl_->world_comm));
  // tp groups: adjacent ranks (same dp index); dp groups: same tp index.
  MPI_CHECK(MPI_Comm_split(MPI_COMM_WORLD, world_rank_ / tp_, world_rank_, &impl_->tp_comm));
  MPI_CHECK(MPI_Comm_split(MPI_COMM_WORLD, world_rank_ % tp_, world_rank_, &impl_->dp_comm));
  impl_->world = make_mpi_communicator(reinterpret_cast<intptr_t>(impl_->world_comm), "world", options.comm);
  impl_->tp = make_mpi_communicator(reinterpret_cast<intptr_t>(impl_->tp_comm), "tp", options.comm);
  impl_->dp = make_mpi_communicator(reinterpret_cast<intptr_t>(impl_->dp_comm), "dp", options.comm);
}

ProcessGrid::~ProcessGrid() {
  // After a communication failure, or while an exception unwinds past the grid, a peer may be
  // stalled or still waiting inside a collective: MPI_Comm_free, MPI_Win_free (the communicators'
  // own teardown, which they skip by the same rule) and MPI_Finalize could wait for it forever.
  // Skip them; main()'s error handler reports the error and ends the job with MPI_Abort.
  const bool abandon = failed() || std::uncaught_exceptions() > 0;
  // At the end of a job that went well, the teardown and MPI_Finalize are collectives with no
  // deadline, and a rank stopped after the last collective would block them forever: check first,
  // with a deadline, that every rank got here. If one did not, report it and abort the job (a
  // destructor cannot throw). Exit code 3: every collective completed, but a rank of the job did
  // not end, and what it still had to do after its last collective is unknown here
  // (docs/reliability.md).
  std::optional<detail::StallGuard> guard;
  if (!abandon && world_size_ > 1) {
    test_stop_point("grid-teardown", world_rank_);
    try {
      detail::check_arrival(impl_->world_comm, "world", "the end of the job (before MPI_Finalize)",
                            impl_->comm_options.timeout, kEndTag,
                            "Every collective of the job completed; the job is aborted with exit code 3 instead of "
                            "waiting for that rank in MPI_Finalize");
    } catch (const Error& e) {
      impl_->comm_options.failure->set(e.message());
      std::cerr << describe_for_user(e) << std::endl;
      abort(kExitComm);
    }
    guard.emplace(impl_->comm_options.timeout,
                  fmt::format("the end of the job (communicator teardown, MPI_Finalize) did not complete within "
                              "{:.1f} s (comm.timeout_s) although every rank had arrived: a rank stopped or hung "
                              "inside it. Every collective of the job completed. This rank ends the job",
                              std::chrono::duration<double>(impl_->comm_options.timeout).count()),
                  detail::StallGuard::End::Abort);
  }
  impl_->nccl.clear();
  impl_->world.reset();
  impl_->tp.reset();
  impl_->dp.reset();
  if (!abandon)
    for (MPI_Comm* c : {&impl_->world_comm, &impl_->tp_comm, &impl_->dp_comm})
      if (*c != MPI_COMM_NULL) MPI_Comm_free(c);
  std::lock_guard<std::mutex> lock(g_mpi_mu);
  if (--g_grids == 0 && g_we_initialised && !abandon) {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (guard) guard->exit_instead_of_abort();  // MPI_Abort is not allowed once MPI_Finalize began
    if (!finalized) MPI_Finalize();
    g_we_initialised = false;
  }
}

bool ProcessGrid::failed() const { return impl_->comm_options.failure && impl_->comm_options.failure->failed(); }

Communicator& ProcessGrid::world() { return *impl_->world; }
Communicator& ProcessGrid::dp() { return *impl_->dp; }
Communicator& ProcessGrid::tp() { return *impl_->tp; }

Communicator& ProcessGrid::nccl(const std::string& group, int device) {
  auto it = impl_->nccl.find(group);
  if (it != impl_->nccl.end()) return *it->second;
#if CONFLUX_HAVE_NCCL
  MPI_Comm comm = group == "world" ? impl_->world_comm
                  : group == "dp"  ? impl_->dp_comm
                  : group == "tp"  ? impl_->tp_comm
                                   : MPI_COMM_NULL;
  if (comm == MPI_COMM_NULL) CONFLUX_THROW(UsageError, "unknown communicator group '{}' (world, dp or tp)", group);
  auto c = make_nccl_communicator(reinterpret_cast<intptr_t>(comm), "nccl-" + group, device, impl_->comm_options);
  auto& ref = *c;
  impl_->nccl[group] = std::move(c);
  return ref;
#else
  (void)device;
  CONFLUX_THROW(CommError, "this build of Conflux has no NCCL back end (configure with CONFLUX_WITH_CUDA=ON "
                           "on a machine with CUDA and NCCL)");
#endif
}

intptr_t ProcessGrid::mpi_world() const { return reinterpret_cast<intptr_t>(impl_->world_comm); }

void ProcessGrid::abort(int code) const {
  std::fflush(stdout);
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, code);
  std::abort();
}

}  // namespace conflux
