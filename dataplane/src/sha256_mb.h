// Internal: multi-buffer SHA-256 (FIPS 180-4) for shard checksums.
//
// The digests are the standard SHA-256 of each message (what `sha256sum` prints); the speed
// comes from hashing several messages at once, one message per 32-bit SIMD lane, with the block
// kernels of sha256_mb_kernels.h: 16 lanes (AVX-512, zmm), 8 lanes (AVX-512VL, ymm: faster than
// zmm for up to 8 messages on these cores), 8 lanes (AVX2). OpenSSL (EVP, one message at a time)
// serves CPUs without AVX2, other architectures and single messages. The level is chosen at run
// time from the CPU; CONFLUX_SHA_ISA=scalar|avx2|avx512 caps it (tests, comparisons).
//
// MultiSha256 is the streaming form (data arriving in pieces, e.g. files read chunk by chunk):
// lanes advance in lockstep; a lane whose message ends is padded, finalised and can start the
// next message. sha256_many / sha256_files hash whole buffers / files, split over threads when
// there are more messages than one kernel's lanes.
// Thread safety: a MultiSha256 is used by one thread; the free functions are reentrant.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <vector>

namespace conflux::dataplane {

using Sha256Digest = std::array<uint8_t, 32>;

// An ISA level (CONFLUX_SHA_ISA) and the concrete kernels.
enum class Sha256Isa { Auto, Scalar, Avx2, Avx512 };
enum class Sha256Kernel { OpenSsl, Avx2x8, Avx512x8, Avx512x16 };

const char* kernel_name(Sha256Kernel kernel);  // "openssl", "avx2x8", "avx512x8", "avx512x16"
size_t kernel_lanes(Sha256Kernel kernel);
bool kernel_supported(Sha256Kernel kernel);  // this CPU (and build) can run it
// The level to use for `requested`: Auto reads CONFLUX_SHA_ISA (unset: the best the CPU has).
// A level the CPU lacks, or a bad CONFLUX_SHA_ISA value, throws ConfigError.
Sha256Isa resolve_isa(Sha256Isa requested = Sha256Isa::Auto);
// The kernel for `messages` messages hashed on one thread at `level` (resolved).
Sha256Kernel kernel_for(size_t messages, Sha256Isa level);
// How many messages to hash together per thread for the best use of the lanes (1 for OpenSSL).
size_t preferred_batch(Sha256Isa requested = Sha256Isa::Auto);

std::string digest_hex(const Sha256Digest& d);

class MultiSha256 {
 public:
  enum class Lane {
    Idle,       // no message: start() one
    NeedsData,  // feed() the next piece or finish()
    Busy,       // has data to hash: run()
    Done        // digest ready: digest() or start() the next message
  };
  explicit MultiSha256(Sha256Kernel kernel);
  ~MultiSha256();
  MultiSha256(const MultiSha256&) = delete;
  MultiSha256& operator=(const MultiSha256&) = delete;

  size_t lanes() const;
  Sha256Kernel kernel() const { return kernel_; }
  Lane state(size_t lane) const;
  // Begins a new message on an Idle or Done lane (-> NeedsData).
  void start(size_t lane);
  // The next piece of the lane's message (lane NeedsData -> Busy). The bytes must stay valid
  // and unchanged until the lane is NeedsData or Done again.
  void feed(size_t lane, const void* data, size_t size);
  // The message ends after what was fed (NeedsData -> Busy; Done after run()).
  void finish(size_t lane);
  // Drops the lane's message (any state -> Idle).
  void reset(size_t lane);
  // Hashes in lockstep until at least one Busy lane becomes NeedsData or Done, or none is Busy.
  void run();
  // The digest of a Done lane.
  const Sha256Digest& digest(size_t lane) const;

 private:
  struct Impl;
  Sha256Kernel kernel_;
  std::unique_ptr<Impl> impl_;
};

struct ByteSpan {
  const void* data;
  size_t size;
};

// SHA-256 of every buffer, in order. `threads` > 1 splits the messages over threads when there
// are more than one kernel's lanes.
std::vector<Sha256Digest> sha256_many(const std::vector<ByteSpan>& buffers, int threads = 1,
                                      Sha256Isa isa = Sha256Isa::Auto);
// The same with one given kernel on the calling thread (tests, benchmarks).
std::vector<Sha256Digest> sha256_many_with(const std::vector<ByteSpan>& buffers, Sha256Kernel kernel);

// How messages of these sizes are split over up to `threads` threads: the message indices of
// each group (one group per thread), balanced by size.
std::vector<std::vector<size_t>> sha256_groups(const std::vector<size_t>& sizes, int threads, Sha256Isa level);

// SHA-256 of every file, read in 1 MiB pieces with the files of one thread in lanes. A file
// that cannot be opened or read throws DataError naming it (the lowest failing index); with
// `errors` given, per-file errors are stored there instead (digest left zero) and nothing throws.
std::vector<Sha256Digest> sha256_files(const std::vector<std::string>& paths, int threads,
                                       Sha256Isa isa = Sha256Isa::Auto,
                                       std::vector<std::exception_ptr>* errors = nullptr);

}  // namespace conflux::dataplane
