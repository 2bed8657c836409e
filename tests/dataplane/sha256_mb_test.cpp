// Multi-buffer SHA-256 (dataplane/src/sha256_mb.h): every kernel this CPU runs against OpenSSL's
// one-message SHA-256 and the FIPS 180-4 example vectors, on the block-boundary lengths, random
// lengths, unequal lanes, more and fewer messages than lanes, unaligned data, pieces of odd
// sizes fed through the streaming context, files, threads and the CONFLUX_SHA_ISA switch.
#include "conflux/core/error.h"
#include "lane_hasher.h"
#include "sha256_mb.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>

namespace conflux::dataplane {
namespace {

const Sha256Kernel kAllKernels[] = {Sha256Kernel::OpenSsl, Sha256Kernel::Avx2x8, Sha256Kernel::Avx512x8,
                                    Sha256Kernel::Avx512x16};

std::string openssl_hex(const void* data, size_t size) {
  Sha256Digest d;
  unsigned int len = 0;
  EXPECT_EQ(EVP_Digest(data, size, d.data(), &len, EVP_sha256(), nullptr), 1);
  EXPECT_EQ(len, 32u);
  return digest_hex(d);
}

std::vector<uint8_t> random_bytes(size_t n, uint64_t seed) {
  std::mt19937_64 g(seed);
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(g());
  return v;
}

// Messages of the given lengths, each starting `skew` bytes into its own allocation (unaligned).
struct Messages {
  std::vector<std::vector<uint8_t>> store;
  std::vector<ByteSpan> spans;
  Messages(const std::vector<size_t>& lengths, uint64_t seed, size_t skew = 0) {
    for (size_t i = 0; i < lengths.size(); ++i) store.push_back(random_bytes(lengths[i] + skew + i % 7, seed + i));
    for (size_t i = 0; i < lengths.size(); ++i) spans.push_back({store[i].data() + skew + i % 7, lengths[i]});
  }
};

void expect_matches_openssl(const std::vector<ByteSpan>& spans, const std::vector<Sha256Digest>& got,
                            const std::string& what) {
  ASSERT_EQ(got.size(), spans.size()) << what;
  for (size_t i = 0; i < spans.size(); ++i)
    EXPECT_EQ(digest_hex(got[i]), openssl_hex(spans[i].data, spans[i].size))
        << what << ": message " << i << " of " << spans.size() << " (" << spans[i].size << " bytes)";
}

class Sha256Kernels : public ::testing::TestWithParam<Sha256Kernel> {
 protected:
  void SetUp() override {
    if (!kernel_supported(GetParam())) GTEST_SKIP() << kernel_name(GetParam()) << " is not supported by this CPU";
  }
};

TEST_P(Sha256Kernels, FipsVectors) {
  const std::string abc = "abc";
  const std::string two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";  // 448 bits
  const std::string million_a(1000000, 'a');
  std::vector<ByteSpan> spans = {{abc.data(), abc.size()}, {two_blocks.data(), two_blocks.size()},
                                 {"", 0}, {million_a.data(), million_a.size()}};
  auto d = sha256_many_with(spans, GetParam());
  EXPECT_EQ(digest_hex(d[0]), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(digest_hex(d[1]), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(digest_hex(d[2]), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(digest_hex(d[3]), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_P(Sha256Kernels, BlockBoundaryLengthsOneCall) {
  // More messages than lanes, so lanes are refilled; every padding case (0..9 bytes of room).
  std::vector<size_t> lengths = {0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 121, 127, 128, 129, 183, 184, 191, 192};
  Messages m(lengths, 1);
  expect_matches_openssl(m.spans, sha256_many_with(m.spans, GetParam()), kernel_name(GetParam()));
  for (size_t len : lengths) {  // and each alone (all other lanes idle)
    Messages one({len}, 100 + len);
    expect_matches_openssl(one.spans, sha256_many_with(one.spans, GetParam()), "alone");
  }
}

TEST_P(Sha256Kernels, RandomLengthsUnaligned) {
  std::mt19937_64 g(7);
  std::vector<size_t> lengths(53);
  for (auto& l : lengths) l = g() % 100001;
  for (size_t skew : {0, 1, 3, 17, 63}) {
    Messages m(lengths, 1000 + skew, skew);
    expect_matches_openssl(m.spans, sha256_many_with(m.spans, GetParam()), "skew " + std::to_string(skew));
  }
}

TEST_P(Sha256Kernels, UnequalLanesAndFewerThanLanes) {
  Messages unequal({100000, 0, 3, 64, 200000, 1, 5000, 70, 130, 9, 65, 0, 64 * 1000 + 55, 2, 8, 4, 1}, 5);
  expect_matches_openssl(unequal.spans, sha256_many_with(unequal.spans, GetParam()), "unequal");
  Messages few({99999, 3, 4096}, 6, 5);
  expect_matches_openssl(few.spans, sha256_many_with(few.spans, GetParam()), "three messages");
  expect_matches_openssl({}, sha256_many_with({}, GetParam()), "no messages");
}

// The streaming context: each lane's message arrives in pieces of odd sizes (different per
// lane), fed only when the lane asks; finished lanes start the next message.
TEST_P(Sha256Kernels, StreamingPiecesOfOddSizes) {
  std::mt19937_64 g(11);
  std::vector<size_t> lengths(41);
  for (auto& l : lengths) l = g() % 20000;
  lengths[0] = 0;
  lengths[1] = 64;
  lengths[2] = 1;
  Messages m(lengths, 77, 1);
  const size_t piece_sizes[] = {1, 7, 63, 65, 127, 1000, 64, 3};
  MultiSha256 ctx(GetParam());
  const size_t lanes = ctx.lanes();
  EXPECT_EQ(lanes, kernel_lanes(GetParam()));
  std::vector<size_t> msg(lanes), pos(lanes), fed_pieces(lanes);
  std::vector<Sha256Digest> out(lengths.size());
  std::vector<bool> seen(lengths.size(), false);
  size_t next = 0, runs = 0;
  auto load = [&](size_t l) {
    if (next == lengths.size()) return ctx.reset(l);
    msg[l] = next++;
    pos[l] = 0;
    ctx.start(l);
    EXPECT_EQ(ctx.state(l), MultiSha256::Lane::NeedsData);
  };
  auto feed = [&](size_t l) {
    const ByteSpan& s = m.spans[msg[l]];
    if (pos[l] == s.size) return ctx.finish(l);
    size_t n = std::min(piece_sizes[(l + fed_pieces[l]++) % 8], s.size - pos[l]);
    ctx.feed(l, static_cast<const uint8_t*>(s.data) + pos[l], n);
    pos[l] += n;
  };
  for (size_t l = 0; l < lanes; ++l) load(l);
  for (bool active = true; active && runs < 10000000; ++runs) {
    active = false;
    for (size_t l = 0; l < lanes; ++l) {
      if (ctx.state(l) == MultiSha256::Lane::Done) {
        out[msg[l]] = ctx.digest(l);
        seen[msg[l]] = true;
        load(l);
      }
      if (ctx.state(l) == MultiSha256::Lane::NeedsData) feed(l);
      active = active || ctx.state(l) != MultiSha256::Lane::Idle;
    }
    ctx.run();
  }
  for (size_t i = 0; i < lengths.size(); ++i) EXPECT_TRUE(seen[i]) << "message " << i << " never finished";
  expect_matches_openssl(m.spans, out, "streaming");
}

TEST_P(Sha256Kernels, MisuseIsAnError) {
  MultiSha256 ctx(GetParam());
  EXPECT_THROW(ctx.feed(0, "x", 1), InternalError);  // idle lane
  EXPECT_THROW(ctx.digest(0), InternalError);
  ctx.start(0);
  EXPECT_THROW(ctx.start(0), InternalError);
  ctx.reset(0);
  EXPECT_EQ(ctx.state(0), MultiSha256::Lane::Idle);
}

INSTANTIATE_TEST_SUITE_P(All, Sha256Kernels, ::testing::ValuesIn(kAllKernels),
                         [](const auto& info) { return std::string(kernel_name(info.param)); });

// The ISA levels through the public entry points (threads, grouping, files).
class Sha256Levels : public ::testing::TestWithParam<Sha256Isa> {
 protected:
  void SetUp() override {
    try {
      resolve_isa(GetParam());
    } catch (const ConfigError& e) {
      GTEST_SKIP() << e.what();
    }
  }
};

TEST_P(Sha256Levels, ManyOnThreads) {
  std::mt19937_64 g(3);
  for (size_t count : {1, 2, 5, 16, 17, 40}) {
    std::vector<size_t> lengths(count);
    for (auto& l : lengths) l = g() % 300000;
    Messages m(lengths, count, 2);
    for (int threads : {1, 2, 3})
      expect_matches_openssl(m.spans, sha256_many(m.spans, threads, GetParam()),
                             std::to_string(count) + " messages on " + std::to_string(threads) + " threads");
  }
}

TEST_P(Sha256Levels, FilesInPieces) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("conflux_sha_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  // Around the 1 MiB read piece: empty, short, exactly one and two pieces, one byte over.
  std::vector<size_t> sizes = {0, 1, 100, (1 << 20) - 1, 1 << 20, (1 << 20) + 1, 2 << 20, (2 << 20) + 77, 333333};
  std::vector<std::string> paths;
  std::vector<std::vector<uint8_t>> data;
  for (size_t i = 0; i < sizes.size(); ++i) {
    data.push_back(random_bytes(sizes[i], 50 + i));
    paths.push_back((dir / ("f" + std::to_string(i))).string());
    std::FILE* f = std::fopen(paths.back().c_str(), "wb");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(std::fwrite(data.back().data(), 1, sizes[i], f), sizes[i]);
    std::fclose(f);
  }
  for (int threads : {1, 2}) {
    auto d = sha256_files(paths, threads, GetParam());
    for (size_t i = 0; i < sizes.size(); ++i)
      EXPECT_EQ(digest_hex(d[i]), openssl_hex(data[i].data(), sizes[i])) << paths[i];
  }
  // A missing file: the error names it; with an error list the others still hash.
  std::vector<std::string> with_missing = paths;
  with_missing.insert(with_missing.begin() + 2, (dir / "missing.h5").string());
  try {
    sha256_files(with_missing, 2, GetParam());
    ADD_FAILURE() << "no error for a missing file";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("missing.h5: cannot open to compute its checksum"), std::string::npos)
        << e.what();
  }
  std::vector<std::exception_ptr> errors;
  auto d = sha256_files(with_missing, 1, GetParam(), &errors);
  ASSERT_EQ(errors.size(), with_missing.size());
  for (size_t i = 0; i < with_missing.size(); ++i) {
    EXPECT_EQ(errors[i] != nullptr, i == 2) << i;
    if (i != 2) {
      EXPECT_EQ(digest_hex(d[i]), openssl_hex(data[i - (i > 2)].data(), sizes[i - (i > 2)]));
    }
  }
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(All, Sha256Levels,
                         ::testing::Values(Sha256Isa::Scalar, Sha256Isa::Avx2, Sha256Isa::Avx512),
                         [](const auto& info) {
                           return std::string(info.param == Sha256Isa::Scalar ? "scalar"
                                              : info.param == Sha256Isa::Avx2 ? "avx2" : "avx512");
                         });

TEST(Sha256Isa, EnvironmentSelectsAndChecksTheLevel) {
  const char* old = std::getenv("CONFLUX_SHA_ISA");
  std::string saved = old ? old : "";
  ::setenv("CONFLUX_SHA_ISA", "scalar", 1);
  EXPECT_EQ(resolve_isa(), Sha256Isa::Scalar);
  EXPECT_EQ(kernel_for(4, resolve_isa()), Sha256Kernel::OpenSsl);
  EXPECT_EQ(preferred_batch(), 1u);
  ::setenv("CONFLUX_SHA_ISA", "avx3", 1);
  try {
    resolve_isa();
    ADD_FAILURE() << "no error for CONFLUX_SHA_ISA=avx3";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("CONFLUX_SHA_ISA='avx3'"), std::string::npos) << e.what();
  }
  if (kernel_supported(Sha256Kernel::Avx2x8)) {
    ::setenv("CONFLUX_SHA_ISA", "avx2", 1);
    EXPECT_EQ(kernel_for(3, resolve_isa()), Sha256Kernel::OpenSsl);
    EXPECT_EQ(kernel_for(4, resolve_isa()), Sha256Kernel::Avx2x8);
    EXPECT_EQ(kernel_for(40, resolve_isa()), Sha256Kernel::Avx2x8);
  }
  ::unsetenv("CONFLUX_SHA_ISA");
  if (kernel_supported(Sha256Kernel::Avx512x16)) {
    EXPECT_EQ(resolve_isa(), Sha256Isa::Avx512);
    EXPECT_EQ(kernel_for(1, Sha256Isa::Avx512), Sha256Kernel::OpenSsl);
    EXPECT_EQ(kernel_for(2, Sha256Isa::Avx512), Sha256Kernel::OpenSsl);
    EXPECT_EQ(kernel_for(3, Sha256Isa::Avx512), Sha256Kernel::Avx512x8);
    EXPECT_EQ(kernel_for(8, Sha256Isa::Avx512), Sha256Kernel::Avx512x8);
    EXPECT_EQ(kernel_for(9, Sha256Isa::Avx512), Sha256Kernel::Avx512x16);
  }
  if (!saved.empty()) ::setenv("CONFLUX_SHA_ISA", saved.c_str(), 1);
}

// LaneHasher (shard images hashed in lanes as they are built): buffers added one after another,
// some while others are half hashed, more than the kernel has lanes, empty and odd sizes.
TEST(LaneHasher, BuffersAddedOverTimeMatchOpenSsl) {
  const std::vector<size_t> lengths = {(3u << 20) + 7, 0, 1, 64, 55, (1u << 20) + 13, 100000, 5u << 20, 119,
                                       (2u << 20) + 1, 4096, 65};
  Messages m(lengths, 99, 3);
  LaneHasher h(lengths.size());
  EXPECT_GE(h.lanes(), 1u);
  for (size_t i = 0; i < lengths.size(); ++i) {
    h.add(i, m.spans[i].data, m.spans[i].size);
    if (i % 3 == 2) h.wait_below(2);  // let some finish while later ones are still to come
  }
  std::vector<Sha256Digest> got = h.finish();
  expect_matches_openssl(m.spans, got, "LaneHasher");
  for (size_t i = 0; i < lengths.size(); ++i) EXPECT_TRUE(h.hashed(i)) << i;
}

// The hasher waits to fill its lanes while more buffers are announced; a producer that stops
// early (fewer buffers than announced) or waits for room still gets every digest.
TEST(LaneHasher, FewerBuffersThanAnnouncedAndWaitsForRoom) {
  const std::vector<size_t> lengths = {(2u << 20) + 3, 700, 1u << 20, 64, 5000};
  Messages m(lengths, 7, 1);
  {
    LaneHasher h(40);  // announces more than come
    for (size_t i = 0; i < lengths.size(); ++i) h.add(i, m.spans[i].data, m.spans[i].size);
    expect_matches_openssl(m.spans, h.finish(), "LaneHasher, early finish");
  }
  {
    LaneHasher h(40);
    for (size_t i = 0; i < lengths.size(); ++i) {
      h.add(i, m.spans[i].data, m.spans[i].size);
      h.wait_below(1);  // the producer waits: the hasher must run with one busy lane
      EXPECT_TRUE(h.hashed(i)) << i;
    }
    expect_matches_openssl(m.spans, h.finish(), "LaneHasher, one at a time");
  }
}

}  // namespace
}  // namespace conflux::dataplane
