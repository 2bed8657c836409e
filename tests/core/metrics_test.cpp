// Metrics registry and HTTP exporter: the exact exposition text of a small registry in both
// formats (counter, gauge, histogram, labels, escaping), registration rules, concurrent updates,
// and the exporter over a real loopback socket (content negotiation, 404/405, a taken port and
// malformed addresses as ConfigErrors naming the key, prompt stop with a client still connected).
#include "conflux/core/error.h"
#include "conflux/core/metrics_exporter.h"
#include "conflux/core/metrics_registry.h"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <limits>
#include <thread>

using namespace conflux;
using namespace conflux::metrics;

namespace {

std::shared_ptr<Registry> small_registry() {
  auto r = std::make_shared<Registry>();
  r->counter("app_requests", "Requests served").inc(3);
  r->gauge("app_temperature", "Temperature in \"C\"\nsecond line \\ end").set(-1.5);
  auto& errs = r->counter_family("app_errors", "Errors by kind", {"kind", "peer"});
  errs.labels({"data", "alice"}).inc();
  errs.labels({"con\"fig", "b\\o\nb"}).inc(2);
  r->histogram("app_seconds", "Durations", {0.5, 1}).observe(0.25);
  r->histogram("app_seconds", "Durations", {0.5, 1}).observe(0.75);
  r->histogram("app_seconds", "Durations", {0.5, 1}).observe(4);
  r->counter_family("app_unused", "Never incremented", {"x"});
  return r;
}

// One HTTP request over loopback; returns the whole response ("" if the connection failed).
std::string http(uint16_t port, const std::string& request) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{10, 0};  // a bound, not a threshold: the exporter answers at once
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return "";
  }
  (void)!::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

std::string body_of(const std::string& response) {
  const size_t p = response.find("\r\n\r\n");
  return p == std::string::npos ? "" : response.substr(p + 4);
}

}  // namespace

TEST(Metrics, PrometheusTextExactly) {
  const std::string want =
      "# HELP app_requests_total Requests served\n"
      "# TYPE app_requests_total counter\n"
      "app_requests_total 3\n"
      "# HELP app_temperature Temperature in \"C\"\\nsecond line \\\\ end\n"
      "# TYPE app_temperature gauge\n"
      "app_temperature -1.5\n"
      "# HELP app_errors_total Errors by kind\n"
      "# TYPE app_errors_total counter\n"
      "app_errors_total{kind=\"con\\\"fig\",peer=\"b\\\\o\\nb\"} 2\n"
      "app_errors_total{kind=\"data\",peer=\"alice\"} 1\n"
      "# HELP app_seconds Durations\n"
      "# TYPE app_seconds histogram\n"
      "app_seconds_bucket{le=\"0.5\"} 1\n"
      "app_seconds_bucket{le=\"1\"} 2\n"
      "app_seconds_bucket{le=\"+Inf\"} 3\n"
      "app_seconds_sum 5\n"
      "app_seconds_count 3\n"
      "# HELP app_unused_total Never incremented\n"
      "# TYPE app_unused_total counter\n";
  EXPECT_EQ(small_registry()->render(Format::Prometheus), want);
}

TEST(Metrics, OpenMetricsTextExactly) {
  const std::string want =
      "# HELP app_requests Requests served\n"
      "# TYPE app_requests counter\n"
      "app_requests_total 3\n"
      "# HELP app_temperature Temperature in \\\"C\\\"\\nsecond line \\\\ end\n"
      "# TYPE app_temperature gauge\n"
      "app_temperature -1.5\n"
      "# HELP app_errors Errors by kind\n"
      "# TYPE app_errors counter\n"
      "app_errors_total{kind=\"con\\\"fig\",peer=\"b\\\\o\\nb\"} 2\n"
      "app_errors_total{kind=\"data\",peer=\"alice\"} 1\n"
      "# HELP app_seconds Durations\n"
      "# TYPE app_seconds histogram\n"
      "app_seconds_bucket{le=\"0.5\"} 1\n"
      "app_seconds_bucket{le=\"1\"} 2\n"
      "app_seconds_bucket{le=\"+Inf\"} 3\n"
      "app_seconds_sum 5\n"
      "app_seconds_count 3\n"
      "# HELP app_unused Never incremented\n"
      "# TYPE app_unused counter\n"
      "# EOF\n";
  EXPECT_EQ(small_registry()->render(Format::OpenMetrics), want);
}

TEST(Metrics, ValuesAndEscapes) {
  EXPECT_EQ(format_value(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(format_value(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(format_value(std::nan("")), "NaN");
  EXPECT_EQ(format_value(0.1), "0.1");
  EXPECT_EQ(format_value(1e21), "1e+21");
  EXPECT_EQ(format_value(123456789), "123456789");
  EXPECT_EQ(escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  EXPECT_EQ(escape_help("say \"hi\"", Format::Prometheus), "say \"hi\"");
  EXPECT_EQ(escape_help("say \"hi\"", Format::OpenMetrics), "say \\\"hi\\\"");
  EXPECT_NE(std::string(content_type(Format::OpenMetrics)).find("application/openmetrics-text; version=1.0.0"),
            std::string::npos);
  EXPECT_NE(std::string(content_type(Format::Prometheus)).find("text/plain; version=0.0.4"), std::string::npos);
}

TEST(Metrics, CountersNeverDecrease) {
  Registry r;
  Counter& c = r.counter("c", "c");
  c.inc(2);
  c.inc(-1);
  c.inc(std::nan(""));
  c.inc(std::numeric_limits<double>::infinity());
  EXPECT_EQ(c.value(), 2);
  Gauge& g = r.gauge("g", "g");
  g.inc(2);
  g.dec(5);
  EXPECT_EQ(g.value(), -3);
}

TEST(Metrics, RegistrationRules) {
  Registry r;
  Counter& a = r.counter("x", "help");
  EXPECT_EQ(&a, &r.counter("x", "help"));  // shared by name
  EXPECT_THROW(r.gauge("x", "help"), InternalError);
  EXPECT_THROW(r.counter("x", "other help"), InternalError);
  EXPECT_THROW(r.counter("y_total", "h"), InternalError);
  EXPECT_THROW(r.counter("1y", "h"), InternalError);
  EXPECT_THROW(r.counter("y-z", "h"), InternalError);
  EXPECT_THROW(r.counter_family("y", "h", {"__x"}), InternalError);
  EXPECT_THROW(r.counter_family("y", "h", {"a", "a"}), InternalError);
  EXPECT_THROW(r.histogram_family("h", "h", {"le"}, {1}), InternalError);
  EXPECT_THROW(r.histogram("h", "h", {2, 1}), InternalError);
  EXPECT_THROW(r.histogram("h", "h", {1, std::numeric_limits<double>::infinity()}), InternalError);
  auto& f = r.counter_family("z", "h", {"k"});
  EXPECT_THROW(f.labels({}), InternalError);
  EXPECT_THROW(f.labels({"a", "b"}), InternalError);
  EXPECT_EQ(&f.labels({"a"}), &f.labels({"a"}));
  try {
    r.gauge("x", "help");
  } catch (const InternalError& e) {
    EXPECT_NE(e.message().find("x"), std::string::npos) << e.message();
  }
}

TEST(Metrics, ConcurrentUpdatesAreExact) {
  Registry r;
  Counter& c = r.counter("c", "c");
  Histogram& h = r.histogram("h", "h", {1});
  auto& fam = r.counter_family("f", "f", {"t"});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      Counter& mine = fam.labels({std::to_string(t % 2)});
      for (int i = 0; i < 20000; ++i) {
        c.inc();
        h.observe(i % 2 ? 0.5 : 2.0);
        mine.inc();
        if (i % 1000 == 0) (void)r.render(Format::OpenMetrics);  // concurrent scrapes
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.value(), 80000);
  const auto s = h.snapshot();
  EXPECT_EQ(s.count, 80000u);
  EXPECT_EQ(s.cumulative[0], 40000u);
  EXPECT_EQ(s.sum, 40000 * 0.5 + 40000 * 2.0);
  EXPECT_EQ(fam.labels({"0"}).value() + fam.labels({"1"}).value(), 80000);
}

TEST(Metrics, ListenAddresses) {
  EXPECT_EQ(parse_listen_address("127.0.0.1:9464", "k").host, "127.0.0.1");
  EXPECT_EQ(parse_listen_address("127.0.0.1:9464", "k").port, 9464);
  EXPECT_EQ(parse_listen_address("9464", "k").host, "127.0.0.1");  // loopback by default
  EXPECT_EQ(parse_listen_address(":9464", "k").host, "127.0.0.1");
  EXPECT_EQ(parse_listen_address("localhost:1", "k").host, "127.0.0.1");
  EXPECT_EQ(parse_listen_address("*:9464", "k").host, "0.0.0.0");
  EXPECT_EQ(parse_listen_address("[::1]:9464", "k").host, "::1");
  EXPECT_EQ(parse_listen_address("127.0.0.1:0", "k").port, 0);
  for (const char* bad : {"", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:http", "host.example:80",
                          "::1:80", "[::1]80", "[::1:80", "1.2.3.4:-1", "127.0.0.1:99999999999"}) {
    try {
      parse_listen_address(bad, "metrics.listen");
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const ConfigError& e) {
      EXPECT_NE(e.message().find("metrics.listen"), std::string::npos) << e.message();
      EXPECT_NE(e.message().find(std::string("\"") + bad + "\""), std::string::npos) << e.message();
    }
  }
}

TEST(Metrics, ExporterServesBothFormats) {
  auto reg = small_registry();
  Exporter ex(reg, "127.0.0.1:0", "metrics.listen");
  ASSERT_GT(ex.port(), 0);
  EXPECT_EQ(ex.url(), "http://127.0.0.1:" + std::to_string(ex.port()) + "/metrics");

  // What Prometheus 2.x sends: OpenMetrics preferred.
  const std::string om = http(ex.port(),
                              "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: application/openmetrics-text;"
                              "version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;"
                              "version=0.0.4;q=0.5,*/*;q=0.1\r\n\r\n");
  EXPECT_EQ(om.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << om;
  EXPECT_NE(om.find("Content-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\n"),
            std::string::npos) << om;
  EXPECT_EQ(body_of(om), reg->render(Format::OpenMetrics));

  const std::string text = http(ex.port(), "GET /metrics?x=1 HTTP/1.0\r\n\r\n");
  EXPECT_NE(text.find("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"), std::string::npos) << text;
  EXPECT_NE(text.find("Content-Length: " + std::to_string(body_of(text).size()) + "\r\n"), std::string::npos);
  EXPECT_EQ(body_of(text), reg->render(Format::Prometheus));

  const std::string head = http(ex.port(), "HEAD /metrics HTTP/1.1\r\n\r\n");
  EXPECT_EQ(head.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << head;
  EXPECT_EQ(body_of(head), "");

  EXPECT_EQ(http(ex.port(), "GET /nope HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 404 ", 0), 0u);
  EXPECT_EQ(http(ex.port(), "POST /metrics HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 405 ", 0), 0u);
  EXPECT_EQ(http(ex.port(), "garbage\r\n\r\n").rfind("HTTP/1.1 400 ", 0), 0u);
  EXPECT_EQ(ex.scrapes(), 3u);

  // A later update shows in the next scrape.
  reg->counter("app_requests", "Requests served").inc();
  EXPECT_NE(body_of(http(ex.port(), "GET /metrics HTTP/1.1\r\n\r\n")).find("app_requests_total 4\n"),
            std::string::npos);
}

TEST(Metrics, TakenPortIsAConfigErrorNamingTheKey) {
  auto reg = std::make_shared<Registry>();
  Exporter first(reg, "127.0.0.1:0", "metrics.listen");
  const std::string addr = "127.0.0.1:" + std::to_string(first.port());
  try {
    Exporter second(reg, addr, "--metrics-listen");
    FAIL() << "bound a port that is in use";
  } catch (const ConfigError& e) {
    EXPECT_NE(e.message().find("--metrics-listen"), std::string::npos) << e.message();
    EXPECT_NE(e.message().find("already in use"), std::string::npos) << e.message();
    EXPECT_NE(e.message().find(addr), std::string::npos) << e.message();
  }
  EXPECT_THROW(Exporter(reg, "127.0.0.1:port", "metrics.listen"), ConfigError);
  // An address this host does not have.
  EXPECT_THROW(Exporter(reg, "192.0.2.1:0", "metrics.listen"), ConfigError);
  EXPECT_EQ(Exporter::start(reg, "", "metrics.listen"), nullptr);
}

TEST(Metrics, StopsWithAClientConnectedAndIsIdempotent) {
  auto reg = std::make_shared<Registry>();
  auto ex = std::make_unique<Exporter>(reg, "127.0.0.1:0", "metrics.listen");
  const uint16_t port = ex->port();
  // A client that connects and sends half a request, then waits: stop() must not wait for it.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(ex->port());
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  (void)!::send(fd, "GET /met", 8, MSG_NOSIGNAL);
  ex->stop();
  ex->stop();
  ex.reset();
  ::close(fd);
  // Nothing listens any more.
  EXPECT_EQ(http(port, "GET /metrics HTTP/1.1\r\n\r\n"), "");
}

TEST(Metrics, ProcessMetricsAndConfigKey) {
  Registry r;
  register_process_metrics(r, "worker");
  const std::string t = r.render(Format::OpenMetrics);
  EXPECT_NE(t.find("conflux_info{role=\"worker\",version=\""), std::string::npos) << t;
  EXPECT_NE(t.find("conflux_start_time_seconds "), std::string::npos) << t;
  struct Cfg {
    MetricsConfig metrics;
    void bind(ConfigBinder& b) { metrics.bind(b); }
  };
  auto cfg = bind_config<Cfg>(parse_config_text("[metrics]\nlisten = \"127.0.0.1:9464\"\n", "t.toml", {}));
  EXPECT_EQ(cfg.metrics.listen, "127.0.0.1:9464");
  std::string toml;
  bind_config<Cfg>(parse_config_text("", "t.toml", {}), &toml);
  EXPECT_NE(toml.find("listen = ''"), std::string::npos) << toml;
  EXPECT_NE(toml.find("final_scrape_timeout_s = 0"), std::string::npos) << toml;
}

TEST(Metrics, WaitsForAFreshScrape) {
  auto reg = std::make_shared<Registry>();
  Exporter ex(reg, "127.0.0.1:0", "metrics.listen");
  EXPECT_FALSE(ex.wait_for_fresh_scrape(std::chrono::milliseconds(0)));
  std::atomic<bool> done{false};
  std::thread scraper([&] {  // scrapes until the wait is over (bounded: 600 x 50 ms)
    for (int i = 0; i < 600 && !done.load(); ++i) {
      http(ex.port(), "GET /metrics HTTP/1.1\r\n\r\n");
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  EXPECT_TRUE(ex.wait_for_fresh_scrape(std::chrono::seconds(60)));
  done = true;
  scraper.join();
  EXPECT_GE(ex.scrapes(), 1u);
  // stop() releases a waiter at once.
  std::thread stopper([&] { ex.stop(); });
  EXPECT_FALSE(ex.wait_for_fresh_scrape(std::chrono::seconds(60)));
  stopper.join();
}
