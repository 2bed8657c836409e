// HTTP exporter of a metrics registry (see metrics_exporter.h).
//
// The serving thread, step by step:
//  a. poll() the listening socket and the wake pipe, without timeout;
//  b. the pipe readable: stop() was called, leave;
//  c. accept one connection; read the request head (up to 16 KiB, 2 s deadline, the pipe still
//     watched), answer, close. A slow or silent client costs at most the deadline, never a hang.
#include "conflux/core/metrics_exporter.h"

#include "conflux/core/build_config.h"
#include "conflux/core/error.h"
#include "conflux/core/log.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace conflux::metrics {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kConnectionDeadline = std::chrono::seconds(2);
constexpr size_t kMaxRequestHead = 16 * 1024;

bool all_digits(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return s;
}

// Waits until `fd` has `events` or the wake pipe fires or the deadline passes.
bool wait_for(int fd, short events, int wake, Clock::time_point deadline) {
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p[2] = {{fd, events, 0}, {wake, POLLIN, 0}};
    const int n = ::poll(p, 2, static_cast<int>(left));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    if (p[1].revents) return false;  // stopping
    if (p[0].revents) return true;
  }
}

bool send_all(int fd, const std::string& data, int wake, Clock::time_point deadline) {
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      off += static_cast<size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      if (!wait_for(fd, POLLOUT, wake, deadline)) return false;
    } else {
      return false;
    }
  }
  return true;
}

std::string response(int status, const char* reason, const std::string& type, const std::string& body,
                     bool head, const std::string& extra = "") {
  std::string r = fmt::format("HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n"
                              "Connection: close\r\n{}\r\n",
                              status, reason, type, body.size(), extra);
  if (!head) r += body;
  return r;
}

}  // namespace

ListenAddress parse_listen_address(const std::string& text, const std::string& key) {
  auto bad = [&](const std::string& why) {
    CONFLUX_THROW(ConfigError, "{} = \"{}\": {} (expected HOST:PORT, e.g. \"127.0.0.1:9464\", "
                  "\"[::1]:9464\", \"*:9464\" for every interface, or \"\" for no endpoint)",
                  key, text, why);
  };
  std::string host, port;
  if (!text.empty() && text[0] == '[') {
    const size_t close = text.find(']');
    if (close == std::string::npos) bad("unclosed [ in the IPv6 address");
    host = text.substr(1, close - 1);
    if (close + 1 >= text.size() || text[close + 1] != ':') bad("no :PORT after the IPv6 address");
    port = text.substr(close + 2);
  } else if (const size_t colon = text.rfind(':'); colon != std::string::npos) {
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string::npos) bad("an IPv6 address must be written in brackets, [::1]:PORT");
  } else {
    port = text;
  }
  if (!all_digits(port) || port.size() > 5 || std::stoul(port) > 65535)
    bad(port.empty() ? "no port" : "port '" + port + "' is not a number in 0-65535");
  ListenAddress a;
  a.port = static_cast<uint16_t>(std::stoul(port));
  if (host.empty() || host == "localhost") {
    a.host = "127.0.0.1";
  } else if (host == "*") {
    a.host = "0.0.0.0";
  } else {
    in_addr v4{};
    in6_addr v6{};
    if (::inet_pton(AF_INET, host.c_str(), &v4) != 1 && ::inet_pton(AF_INET6, host.c_str(), &v6) != 1)
      bad("'" + host + "' is not an IP address (or localhost, or *)");
    a.host = host;
  }
  return a;
}

void MetricsConfig::bind(ConfigBinder& b) {
  b.field("metrics.listen", listen,
          "serve Prometheus/OpenMetrics metrics on HOST:PORT (GET /metrics; \"\" = off; loopback unless "
          "a host is given; see docs/operations.md)");
  b.field("metrics.final_scrape_timeout_s", final_scrape_timeout_s,
          "when the run ends, wait up to this many seconds for one more scrape so the final values "
          "are recorded (0 = exit at once)").range(0, 3600);
}

Exporter::Exporter(std::shared_ptr<const Registry> registry, const std::string& listen, const std::string& key)
    : registry_(std::move(registry)) {
  CONFLUX_CHECK(registry_ != nullptr, "metrics exporter without a registry");
  const ListenAddress a = parse_listen_address(listen, key);
  host_ = a.host;
  const bool v6 = a.host.find(':') != std::string::npos;
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (v6) {
    auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(a.port);
    ::inet_pton(AF_INET6, a.host.c_str(), &s6->sin6_addr);
    len = sizeof(sockaddr_in6);
  } else {
    auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
    s4->sin_family = AF_INET;
    s4->sin_port = htons(a.port);
    ::inet_pton(AF_INET, a.host.c_str(), &s4->sin_addr);
    len = sizeof(sockaddr_in);
  }
  listen_fd_ = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (listen_fd_ < 0) CONFLUX_THROW(IoError, "{} = \"{}\": socket(): {}", key, listen, std::strerror(errno));
  // Rebinding right after a previous run (TIME_WAIT) must work; a live listener on the port
  // still makes bind() fail with EADDRINUSE on Linux.
  const int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(listen_fd_, 16) != 0) {
    const int err = errno;
    ::close(listen_fd_);
    listen_fd_ = -1;
    if (err == EADDRINUSE)
      CONFLUX_THROW(ConfigError, "{} = \"{}\": port {} is already in use on {} (another process "
                    "listens there; choose another port, or 0 for a free one)", key, listen, a.port, a.host);
    CONFLUX_THROW(ConfigError, "{} = \"{}\": cannot listen on {} port {}: {}", key, listen, a.host, a.port,
                  std::strerror(err));
  }
  sockaddr_storage bound{};
  socklen_t blen = sizeof bound;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&bound), &blen);
  port_ = ntohs(v6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                   : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) {
    const int err = errno;
    ::close(listen_fd_);
    listen_fd_ = -1;
    CONFLUX_THROW(IoError, "metrics exporter: pipe2(): {}", std::strerror(err));
  }
  thread_ = std::thread([this] { serve(); });
  log::info("metrics: serving {} ({} = \"{}\")", url(), key, listen);
}

Exporter::~Exporter() { stop(); }

std::unique_ptr<Exporter> Exporter::start(std::shared_ptr<const Registry> registry, const std::string& listen,
                                          const std::string& key) {
  if (listen.empty()) return nullptr;
  return std::make_unique<Exporter>(std::move(registry), listen, key);
}

void Exporter::stop() {
  std::lock_guard<std::mutex> lock(stop_mu_);
  if (stopped_) return;
  stopped_ = true;
  {
    std::lock_guard<std::mutex> l(scrape_mu_);
    serving_ = false;
  }
  scraped_.notify_all();
  const char b = 1;
  if (wake_[1] >= 0) (void)!::write(wake_[1], &b, 1);
  if (thread_.joinable()) thread_.join();
  for (int* fd : {&listen_fd_, &wake_[0], &wake_[1]}) {
    if (*fd >= 0) ::close(*fd);
    *fd = -1;
  }
}

uint64_t Exporter::scrapes() const {
  std::lock_guard<std::mutex> l(scrape_mu_);
  return scrapes_done_;
}

bool Exporter::wait_for_fresh_scrape(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> l(scrape_mu_);
  // Scrapes are answered one at a time: the next one to start is number started + 1.
  const uint64_t want = scrapes_started_ + 1;
  return scraped_.wait_for(l, timeout, [&] { return scrapes_done_ >= want || !serving_; }) &&
         scrapes_done_ >= want;
}

void Exporter::final_scrape(const MetricsConfig& config) {
  if (config.final_scrape_timeout_s <= 0) return;
  log::info("metrics: waiting up to {} s for a scrape of the final values (metrics.final_scrape_timeout_s)",
            config.final_scrape_timeout_s);
  if (!wait_for_fresh_scrape(std::chrono::milliseconds(static_cast<int64_t>(config.final_scrape_timeout_s * 1000))))
    log::warn("metrics: no scrape within {} s; the final values were not collected", config.final_scrape_timeout_s);
}

std::string Exporter::url() const {
  const std::string h = host_ == "0.0.0.0" ? "127.0.0.1" : host_ == "::" ? "::1" : host_;
  return h.find(':') != std::string::npos ? fmt::format("http://[{}]:{}/metrics", h, port_)
                                          : fmt::format("http://{}:{}/metrics", h, port_);
}

void Exporter::serve() {
  for (;;) {
    pollfd p[2] = {{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    const int n = ::poll(p, 2, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 || p[1].revents) return;
    if (!(p[0].revents & POLLIN)) continue;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) continue;  // the client gave up, or EMFILE: try again on the next poll
    try {
      handle(fd);
    } catch (const std::exception& e) {
      log::warn("metrics: request failed: {}", e.what());
    }
    ::close(fd);
  }
}

void Exporter::handle(int fd) {
  const auto deadline = Clock::now() + kConnectionDeadline;
  std::string req;
  char buf[4096];
  while (req.find("\r\n\r\n") == std::string::npos && req.find("\n\n") == std::string::npos) {
    if (req.size() > kMaxRequestHead) {
      send_all(fd, response(431, "Request Header Fields Too Large", "text/plain", "request head too large\n", false),
               wake_[0], deadline);
      return;
    }
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
      req.append(buf, static_cast<size_t>(n));
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      if (!wait_for(fd, POLLIN, wake_[0], deadline)) return;
    } else {
      return;  // closed or failed before a full request
    }
  }
  const size_t eol = req.find_first_of("\r\n");
  const std::string line = req.substr(0, eol);
  const size_t s1 = line.find(' '), s2 = line.find(' ', s1 == std::string::npos ? s1 : s1 + 1);
  if (s1 == std::string::npos || s2 == std::string::npos || line.compare(s2 + 1, 5, "HTTP/") != 0) {
    send_all(fd, response(400, "Bad Request", "text/plain", "malformed request line\n", false), wake_[0], deadline);
    return;
  }
  const std::string method = line.substr(0, s1);
  std::string path = line.substr(s1 + 1, s2 - s1 - 1);
  path = path.substr(0, path.find('?'));
  const bool head = method == "HEAD";
  if (method != "GET" && !head) {
    send_all(fd, response(405, "Method Not Allowed", "text/plain", "only GET and HEAD\n", false,
                          "Allow: GET, HEAD\r\n"),
             wake_[0], deadline);
    return;
  }
  if (path == "/metrics") {
    // Content negotiation: Prometheus asks for application/openmetrics-text first.
    const std::string lreq = lower(req);
    const size_t accept = lreq.find("\naccept:");
    const bool om = accept != std::string::npos &&
                    lreq.substr(accept, lreq.find('\n', accept + 1) - accept).find("application/openmetrics-text") !=
                        std::string::npos;
    const Format f = om ? Format::OpenMetrics : Format::Prometheus;
    {
      std::lock_guard<std::mutex> l(scrape_mu_);
      ++scrapes_started_;
    }
    const std::string body = registry_->render(f);
    const bool sent = send_all(fd, response(200, "OK", content_type(f), body, head), wake_[0], deadline);
    {
      std::lock_guard<std::mutex> l(scrape_mu_);
      if (sent) {
        ++scrapes_done_;
      } else {
        --scrapes_started_;  // its client gave up: it did not collect the values
      }
    }
    if (sent) scraped_.notify_all();
  } else if (path == "/") {
    send_all(fd, response(200, "OK", "text/plain; charset=utf-8", "Conflux metrics: GET /metrics\n", head),
             wake_[0], deadline);
  } else {
    send_all(fd, response(404, "Not Found", "text/plain", "not found; metrics are at /metrics\n", head),
             wake_[0], deadline);
  }
  ::shutdown(fd, SHUT_WR);
}

void register_process_metrics(Registry& registry, const std::string& role) {
  registry.gauge_family("conflux_info", "Conflux process: role and version (always 1)", {"role", "version"})
      .labels({role, CONFLUX_VERSION})
      .set(1);
  registry.gauge("conflux_start_time_seconds", "Unix time the process started serving metrics")
      .set(std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count());
}

}  // namespace conflux::metrics
