// conflux-worker: connects to a coordinator, says hello, runs tasks on local data, heartbeats,
// reconnects after faults, and on SIGTERM/SIGINT finishes or abandons its task explicitly and
// exits 0. Exit codes: 0 ok, 1 user error (keys, files), 2 usage, 3 no coordinator, 4 internal.
#include "executors.h"

#include <conflux/cli/cli.h>
#include <conflux/core/error.h>
#include <conflux/core/log.h>
#include <conflux/core/metrics_exporter.h>
#include <conflux/protocol/endpoint.h>
#include <conflux/protocol/worker.h>

#include <boost/program_options.hpp>

#include <atomic>
#include <csignal>
#include <signal.h>
#include <cstdio>
#include <cstdlib>
#include <iostream>

namespace po = boost::program_options;
using namespace conflux;

namespace {

std::atomic<bool> g_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free, "signal handler needs a lock-free flag");

void on_signal(int) { g_stop.store(true); }

int run(int argc, char** argv) {
  po::options_description o("options");
  std::string level;
  double drain_s = 10, give_up_s = 0;
  int heartbeat_ms = 1000, dead_after_ms = 5000;
  uint64_t chunk_mib = 8, cache_mib = 1024;
  uint32_t slots = 1;
  protocol::WorkerOptions w;
  std::string server_key, key, metrics_listen;
  o.add_options()
    ("help,h", "show this help")
    ("connect", po::value(&w.connect)->required(), "coordinator endpoint, tcp://HOST:PORT")
    ("server-key", po::value(&server_key), "coordinator public key file (.pub)")
    ("key", po::value(&key), "this worker's secret key file (.key, mode 0600)")
    ("data", po::value(&w.data_path), "local dataset directory (only a summary is sent)")
    ("name", po::value(&w.name), "display name (the identity in --insecure mode)")
    ("insecure", po::bool_switch(&w.insecure), "plaintext, unauthenticated (local tests only)")
    ("heartbeat-ms", cli::number(&heartbeat_ms, 1), "heartbeat interval (default 1000)")
    ("dead-after-ms", cli::number(&dead_after_ms, 1), "silence before reconnecting (default 5000)")
    ("drain-timeout", cli::number(&drain_s, 0.0), "seconds a running task may finish on SIGTERM (10)")
    ("give-up-after", cli::number(&give_up_s, 0.0), "exit 3 after this many seconds without coordinator (0 = never)")
    ("exit-on-bye", po::bool_switch(&w.exit_on_bye), "exit 0 when the coordinator says bye")
    ("chunk-mib", cli::number(&chunk_mib, 1, 64), "payload per wire message for results (8; 1-64, under the 72 MiB frame limit)")
    ("slots", cli::number(&slots, 1, 1024), "tasks run at once (1; 1-1024); an executor may allow fewer of its kind")
    ("shared-cache-mib", cli::number(&cache_mib, 0, 1 << 20), "cache of shared inputs (models), LRU (1024; at most 1 TiB)")
    ("metrics-listen", po::value(&metrics_listen), "serve Prometheus metrics on HOST:PORT (GET /metrics; loopback "
                                                  "unless a host is given; docs/operations.md)")
    ("log-level", po::value(&level), "trace|debug|info|warn|error");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, o), vm);
    if (vm.count("help")) {
      std::cout << "usage: conflux-worker --connect tcp://HOST:PORT --server-key FILE --key FILE "
                   "[--data DATASET] [--name NAME] [--insecure]\n"
                   "Connects to a Conflux coordinator and runs the tasks it sends.\n\n"
                << o
                << "Example:\n  conflux-worker --connect tcp://coord:5555 --server-key "
                   "coordinator.pub --key alice.key --data data/alice --name alice\n";
      return kExitOk;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    CONFLUX_THROW(UsageError, "{} (see conflux-worker --help)", e.what());
  }
  protocol::check_endpoint(w.connect, protocol::EndpointUse::Connect, "--connect");
  if (!metrics_listen.empty()) metrics::parse_listen_address(metrics_listen, "--metrics-listen");
  if (!level.empty()) {
    log::Level l;
    if (!log::parse_level(level, &l)) CONFLUX_THROW(UsageError, "bad --log-level '{}'", level);
    log::set_level(l);
  }
  if (!w.insecure) {
    if (server_key.empty() || key.empty()) {
      CONFLUX_THROW(UsageError, "--server-key and --key are required (or --insecure for tests)");
    }
    protocol::load_worker_keys(&w, server_key, key);
  }
  w.heartbeat_interval = std::chrono::milliseconds(heartbeat_ms);
  w.server_dead_after = std::chrono::milliseconds(dead_after_ms);
  w.drain_timeout = std::chrono::milliseconds(static_cast<int64_t>(drain_s * 1000));
  w.give_up_after = std::chrono::milliseconds(static_cast<int64_t>(give_up_s * 1000));
  w.link.chunk_bytes = chunk_mib << 20;
  w.slots = slots;
  w.shared_cache_bytes = cache_mib << 20;
  auto registry = std::make_shared<protocol::ExecutorRegistry>();
  worker::register_worker_executors(*registry);
  // Declared before the Worker, so the Worker (whose counters live in it) goes first.
  std::shared_ptr<metrics::Registry> metrics_registry;
  std::unique_ptr<metrics::Exporter> exporter;
  if (!metrics_listen.empty()) {
    metrics_registry = std::make_shared<metrics::Registry>();
    metrics::register_process_metrics(*metrics_registry, "worker");
    w.metrics = metrics_registry.get();
  }
  protocol::Worker worker(std::move(w), registry);
  exporter = metrics::Exporter::start(metrics_registry, metrics_listen, "--metrics-listen");
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  int rc = worker.run(g_stop);
  log::info("worker: exiting with code {} after {} task(s)", rc, worker.tasks_done());
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  int rc;
  try {
    rc = run(argc, argv);
  } catch (const Error& e) {
    std::cerr << describe_for_user(e) << "\n";
    rc = exit_code(e.kind());
  } catch (const std::exception& e) {
    std::cerr << "conflux-worker: internal error: " << e.what() << "\n";
    rc = kExitInternal;
  }
  // An executor that ignored cancellation may still run on a detached thread: leave without
  // running static destructors under it.
  std::fflush(nullptr);
  std::_Exit(rc);
}
