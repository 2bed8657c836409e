// SHA-256 throughput: OpenSSL hashing one stream at a time (what the dataplane did before) vs
// the multi-buffer kernels hashing N streams together in SIMD lanes, same data, same run.
// Reports MB/s (all streams' bytes / wall time, median of --trials, one thread) per kernel and
// the ratio to OpenSSL; --threads T also times sha256_many on T threads with the automatic
// level. Every digest is checked against OpenSSL's.
//   bench_sha256 [--streams 4] [--mb 64] [--trials 3] [--threads 2] [--json]
#include "sha256_mb.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

using namespace conflux::dataplane;
using Clock = std::chrono::steady_clock;

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  size_t streams = 4, mb = 64;
  int trials = 3, threads = 2;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> long {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bench_sha256: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return std::atol(argv[++i]);
    };
    if (a == "--streams") streams = static_cast<size_t>(std::max(1L, next()));
    else if (a == "--mb") mb = static_cast<size_t>(std::max(1L, next()));
    else if (a == "--trials") trials = static_cast<int>(std::max(1L, next()));
    else if (a == "--threads") threads = static_cast<int>(std::max(1L, next()));
    else if (a == "--json") json = true;
    else {
      std::fprintf(stderr, "usage: bench_sha256 [--streams N] [--mb MB per stream] [--trials T] [--threads T] [--json]\n");
      return a == "--help" ? 0 : 2;
    }
  }
  const size_t bytes = mb << 20;
  std::vector<std::vector<uint8_t>> data(streams, std::vector<uint8_t>(bytes));
  std::vector<ByteSpan> spans;
  for (size_t s = 0; s < streams; ++s) {
    uint32_t x = 0x9e3779b9u * static_cast<uint32_t>(s + 1);
    for (auto& b : data[s]) b = static_cast<uint8_t>((x = x * 1664525u + 1013904223u) >> 24);
    spans.push_back({data[s].data(), bytes});
  }
  const double total_mb = static_cast<double>(bytes * streams) / 1e6;
  auto reference = sha256_many_with(spans, Sha256Kernel::OpenSsl);
  auto time_it = [&](auto&& fn) {
    std::vector<double> t;
    for (int r = 0; r < trials; ++r) {
      auto t0 = Clock::now();
      auto d = fn();
      t.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
      if (d != reference) {
        std::fprintf(stderr, "bench_sha256: digests differ from OpenSSL\n");
        std::exit(1);
      }
    }
    return total_mb / median(t);
  };
  struct Row {
    std::string name;
    double mbps;
  };
  std::vector<Row> rows;
  for (Sha256Kernel k : {Sha256Kernel::OpenSsl, Sha256Kernel::Avx2x8, Sha256Kernel::Avx512x8, Sha256Kernel::Avx512x16})
    if (kernel_supported(k)) rows.push_back({kernel_name(k), time_it([&] { return sha256_many_with(spans, k); })});
  rows.push_back({"auto x" + std::to_string(threads) + " threads", time_it([&] { return sha256_many(spans, threads); })});
  const double base = rows[0].mbps;
  if (json) {
    std::printf("{\"streams\": %zu, \"mb_per_stream\": %zu, \"results\": [", streams, mb);
    for (size_t i = 0; i < rows.size(); ++i)
      std::printf("%s{\"kernel\": \"%s\", \"mb_per_s\": %.1f, \"ratio_vs_openssl\": %.2f}", i ? ", " : "",
                  rows[i].name.c_str(), rows[i].mbps, rows[i].mbps / base);
    std::printf("]}\n");
  } else {
    std::printf("SHA-256, %zu streams x %zu MB, median of %d\n| kernel | MB/s | vs OpenSSL |\n|---|---|---|\n", streams,
                mb, trials);
    for (auto& r : rows) std::printf("| %s | %.0f | %.2fx |\n", r.name.c_str(), r.mbps, r.mbps / base);
  }
  return 0;
}
