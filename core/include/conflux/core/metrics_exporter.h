// The HTTP endpoint a Prometheus server scrapes: `GET /metrics` answers the registry's metrics
// in OpenMetrics 1.0 when the request's Accept header asks for application/openmetrics-text
// (Prometheus does), else in the Prometheus text format 0.0.4. Also `GET /` (a pointer to
// /metrics) and HEAD; anything else is 404 / 405 / 400. Plain POSIX sockets, one background
// thread, one connection at a time (a scrape is small), `Connection: close`.
//
// Address ("listen"): "HOST:PORT", "[IPv6]:PORT", ":PORT" or "PORT" (both meaning 127.0.0.1),
// "*:PORT" or "0.0.0.0:PORT" for every interface; HOST is an IP address or "localhost"; PORT 0
// takes a free port (see port()). The default is loopback only: exposing metrics beyond the
// host is the operator's explicit choice.
//
//   [metrics]
//   listen = "127.0.0.1:9464"       # or `--metrics-listen 127.0.0.1:9464`; "" = no endpoint
//   final_scrape_timeout_s = 30     # a short job waits (at most 30 s) for one scrape of its
//                                   # final values before it exits; 0 = exit at once
//
// Contract: the constructor binds and listens before it returns (a scrape right after works), or
// throws ConfigError naming `key` (the config key or flag the address came from) when the
// address is malformed, the port is taken or the address cannot be bound. The destructor (or
// stop(), idempotent) wakes the thread through a pipe and joins it at once: no request, slow
// client or scrape delays it beyond the read/write deadline of one connection (2 s), and it
// never delays process exit otherwise. Thread safety: stop() and the accessors may be called
// from any thread; the registry must stay alive while the exporter runs (it holds a shared_ptr).
#pragma once

#include "conflux/core/config.h"
#include "conflux/core/metrics_registry.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace conflux::metrics {

struct ListenAddress {
  std::string host;  // numeric address to bind ("127.0.0.1", "::1", "0.0.0.0")
  uint16_t port = 0;
};
// Parses a listen address (see above); ConfigError naming `key` and the text if malformed.
ListenAddress parse_listen_address(const std::string& text, const std::string& key);

// The `[metrics]` section, for every stage config that can serve metrics.
struct MetricsConfig {
  std::string listen;  // "" = no endpoint
  double final_scrape_timeout_s = 0;
  void bind(ConfigBinder& b);
};

class Exporter {
 public:
  Exporter(std::shared_ptr<const Registry> registry, const std::string& listen, const std::string& key);
  ~Exporter();
  Exporter(const Exporter&) = delete;
  Exporter& operator=(const Exporter&) = delete;

  // Starts an exporter when `listen` is non-empty, else returns nullptr.
  static std::unique_ptr<Exporter> start(std::shared_ptr<const Registry> registry,
                                         const std::string& listen, const std::string& key);

  void stop();
  // Waits until a scrape that started after this call has been answered (so the scraper holds
  // the values as they are now), at most `timeout`; false on timeout or when stopped.
  bool wait_for_fresh_scrape(std::chrono::milliseconds timeout);
  // wait_for_fresh_scrape(config.final_scrape_timeout_s) when that is > 0, with a log line.
  void final_scrape(const MetricsConfig& config);
  uint16_t port() const { return port_; }
  // "http://127.0.0.1:9464/metrics" (the bound address; for "*" the loopback one).
  std::string url() const;
  uint64_t scrapes() const;  // GET /metrics answered

 private:
  void serve();
  void handle(int fd);

  std::shared_ptr<const Registry> registry_;
  std::string host_;
  uint16_t port_ = 0;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};  // pipe: stop() writes, the thread polls the read end
  std::mutex stop_mu_;
  bool stopped_ = false;
  mutable std::mutex scrape_mu_;
  std::condition_variable scraped_;
  uint64_t scrapes_started_ = 0, scrapes_done_ = 0;  // under scrape_mu_; one at a time
  bool serving_ = true;                              // under scrape_mu_
  std::thread thread_;
};

// The metrics every Conflux process exposes: conflux_info{role,version} = 1 and
// conflux_start_time_seconds (Unix time). `role`: "train", "evaluate", "worker", "federate".
void register_process_metrics(Registry& registry, const std::string& role);

}  // namespace conflux::metrics
