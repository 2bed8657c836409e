// Multi-buffer SHA-256: kernel choice (CPU check, CONFLUX_SHA_ISA), the lockstep lane context
// (message pieces, padding, finalisation, refilling) and hashing whole buffers (see sha256_mb.h).
#include "sha256_mb.h"

#include "conflux/core/cpu_features.h"
#include "conflux/core/error.h"
#include "parallel.h"
#include "sha256_mb_kernels.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <numeric>

namespace conflux::dataplane {

using namespace sha256_detail;

namespace {

constexpr uint32_t kH0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                             0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
constexpr size_t kMaxLanes = 16;
alignas(64) const uint8_t kIdleBlock[64] = {};  // what idle lanes read (their state is restored)

bool cpu_avx2() { return isa_usable(IsaLevel::Avx2); }
bool cpu_avx512() { return isa_usable(IsaLevel::Avx512); }  // F+DQ+BW+VL and the OS's ZMM state

BlockKernel kernel_fn(Sha256Kernel k) {
  switch (k) {
#if defined(__x86_64__)
    case Sha256Kernel::Avx2x8: return blocks_x8_avx2;
    case Sha256Kernel::Avx512x8: return blocks_x8_avx512vl;
    case Sha256Kernel::Avx512x16: return blocks_x16_avx512;
#endif
    default: return nullptr;
  }
}

}  // namespace

const char* kernel_name(Sha256Kernel k) {
  switch (k) {
    case Sha256Kernel::OpenSsl: return "openssl";
    case Sha256Kernel::Avx2x8: return "avx2x8";
    case Sha256Kernel::Avx512x8: return "avx512x8";
    case Sha256Kernel::Avx512x16: return "avx512x16";
  }
  return "?";
}

size_t kernel_lanes(Sha256Kernel k) {
  switch (k) {
    case Sha256Kernel::OpenSsl: return 1;
    case Sha256Kernel::Avx2x8:
    case Sha256Kernel::Avx512x8: return 8;
    case Sha256Kernel::Avx512x16: return 16;
  }
  return 1;
}

bool kernel_supported(Sha256Kernel k) {
  switch (k) {
    case Sha256Kernel::OpenSsl: return true;
    case Sha256Kernel::Avx2x8: return cpu_avx2();
    case Sha256Kernel::Avx512x8:
    case Sha256Kernel::Avx512x16: return cpu_avx512();
  }
  return false;
}

Sha256Isa resolve_isa(Sha256Isa requested) {
  const char* what = "requested";
  if (requested == Sha256Isa::Auto) {
    const char* env = std::getenv("CONFLUX_SHA_ISA");
    if (!env || !*env) return cpu_avx512() ? Sha256Isa::Avx512 : cpu_avx2() ? Sha256Isa::Avx2 : Sha256Isa::Scalar;
    std::string v = env;
    if (v == "scalar") requested = Sha256Isa::Scalar;
    else if (v == "avx2") requested = Sha256Isa::Avx2;
    else if (v == "avx512") requested = Sha256Isa::Avx512;
    else CONFLUX_THROW(ConfigError, "CONFLUX_SHA_ISA='{}': expected scalar, avx2 or avx512", v);
    what = "CONFLUX_SHA_ISA";
  }
  if (requested == Sha256Isa::Avx512 && !cpu_avx512())
    CONFLUX_THROW(ConfigError, "SHA-256 level avx512 ({}) needs AVX-512 F/BW/VL, which this CPU (or build) lacks", what);
  if (requested == Sha256Isa::Avx2 && !cpu_avx2())
    CONFLUX_THROW(ConfigError, "SHA-256 level avx2 ({}) needs AVX2, which this CPU (or build) lacks", what);
  return requested;
}

// One lane of a kernel runs at about half OpenSSL's one-stream speed (bench_sha256: AVX-512
// ymm lanes ~0.55x, AVX2 lanes ~0.37x), so lanes pay off from 3 messages (AVX-512) or 4 (AVX2);
// the 16-lane zmm kernel beats two rounds of the 8-lane one from 9 messages.
Sha256Kernel kernel_for(size_t messages, Sha256Isa level) {
  if (level == Sha256Isa::Avx512 && messages >= 3)
    return messages > 8 ? Sha256Kernel::Avx512x16 : Sha256Kernel::Avx512x8;
  if (level == Sha256Isa::Avx2 && messages >= 4) return Sha256Kernel::Avx2x8;
  return Sha256Kernel::OpenSsl;
}

size_t preferred_batch(Sha256Isa requested) {
  return kernel_lanes(kernel_for(kMaxLanes, resolve_isa(requested)));
}

std::string digest_hex(const Sha256Digest& d) {
  static const char* k = "0123456789abcdef";
  std::string s(64, '0');
  for (size_t i = 0; i < d.size(); ++i) {
    s[2 * i] = k[d[i] >> 4];
    s[2 * i + 1] = k[d[i] & 15];
  }
  return s;
}

// ---- The lane context --------------------------------------------------------------------

struct LaneData {
  MultiSha256::Lane st = MultiSha256::Lane::Idle;
  const uint8_t* p = nullptr;  // fed bytes not yet taken into a segment
  size_t n = 0;
  alignas(64) uint8_t part[128];  // an incomplete block, then the padding (1 or 2 blocks)
  size_t part_len = 0;
  uint64_t total = 0;  // message bytes fed
  bool finishing = false, padded = false;
  const uint8_t* seg = nullptr;  // the blocks the kernel reads next
  size_t seg_blocks = 0;
  Sha256Digest out{};
  EVP_MD_CTX* evp = nullptr;  // OpenSSL kernel only
};

struct MultiSha256::Impl {
  size_t lanes = 1;
  BlockKernel fn = nullptr;
  alignas(64) uint32_t state[8 * kMaxLanes];  // row r = word r of every lane
  std::vector<LaneData> lane;

  // Points the lane at its next whole blocks; false when it needs more data first (-> NeedsData).
  bool next_segment(size_t i) {
    LaneData& L = lane[i];
    if (L.seg_blocks > 0) return true;
    if (L.part_len == 0 && L.n >= 64) {  // straight from the caller's bytes
      L.seg = L.p;
      L.seg_blocks = L.n / 64;
      L.p += L.seg_blocks * 64;
      L.n -= L.seg_blocks * 64;
      return true;
    }
    size_t take = std::min(64 - L.part_len, L.n);
    if (take) std::memcpy(L.part + L.part_len, L.p, take);
    L.p += take;
    L.n -= take;
    L.part_len += take;
    if (L.part_len == 64) {
      L.seg = L.part;
      L.seg_blocks = 1;
      L.part_len = 0;
      return true;
    }
    if (!L.finishing) {
      L.st = Lane::NeedsData;
      return false;
    }
    // Padding (FIPS 180-4 5.1.1): 0x80, zeros, the message length in bits as 64-bit big-endian.
    size_t blocks = L.part_len + 9 <= 64 ? 1 : 2;
    L.part[L.part_len] = 0x80;
    std::memset(L.part + L.part_len + 1, 0, blocks * 64 - L.part_len - 1);
    uint64_t bits = L.total * 8;
    for (int b = 0; b < 8; ++b) L.part[blocks * 64 - 1 - b] = static_cast<uint8_t>(bits >> (8 * b));
    L.seg = L.part;
    L.seg_blocks = blocks;
    L.part_len = 0;
    L.padded = true;
    return true;
  }

  // One kernel call over the lanes with segments; lanes without keep their state. True when a
  // lane finished its message.
  bool step(size_t blocks) {
    bool done = false;
    const uint8_t* ptrs[kMaxLanes];
    size_t strides[kMaxLanes];
    alignas(64) uint32_t saved[8 * kMaxLanes];
    std::memcpy(saved, state, sizeof(uint32_t) * 8 * lanes);
    for (size_t i = 0; i < lanes; ++i) {
      bool on = lane[i].st == Lane::Busy && lane[i].seg_blocks > 0;
      ptrs[i] = on ? lane[i].seg : kIdleBlock;
      strides[i] = on ? 64 : 0;
    }
    fn(state, ptrs, strides, blocks);
    for (size_t i = 0; i < lanes; ++i) {
      LaneData& L = lane[i];
      if (strides[i] == 0) {
        for (size_t r = 0; r < 8; ++r) state[r * lanes + i] = saved[r * lanes + i];
        continue;
      }
      L.seg += 64 * blocks;
      L.seg_blocks -= blocks;
      if (L.seg_blocks == 0 && L.padded) {
        for (size_t r = 0; r < 8; ++r)
          for (int b = 0; b < 4; ++b) L.out[4 * r + b] = static_cast<uint8_t>(state[r * lanes + i] >> (24 - 8 * b));
        L.st = Lane::Done;
        done = true;
      }
    }
    return done;
  }
};

MultiSha256::MultiSha256(Sha256Kernel kernel) : kernel_(kernel), impl_(std::make_unique<Impl>()) {
  if (!kernel_supported(kernel))
    CONFLUX_THROW(ConfigError, "SHA-256 kernel {} is not supported by this CPU (or build)", kernel_name(kernel));
  impl_->lanes = kernel_lanes(kernel);
  impl_->fn = kernel_fn(kernel);
  impl_->lane.resize(impl_->lanes);
  std::memset(impl_->state, 0, sizeof(impl_->state));
}

MultiSha256::~MultiSha256() {
  for (auto& L : impl_->lane) EVP_MD_CTX_free(L.evp);
}

size_t MultiSha256::lanes() const { return impl_->lanes; }

MultiSha256::Lane MultiSha256::state(size_t lane) const { return impl_->lane.at(lane).st; }

void MultiSha256::start(size_t lane) {
  LaneData& L = impl_->lane.at(lane);
  CONFLUX_CHECK(L.st == Lane::Idle || L.st == Lane::Done, "SHA-256 lane {} is still hashing", lane);
  EVP_MD_CTX* evp = L.evp;
  L = LaneData();
  L.evp = evp;
  L.st = Lane::NeedsData;
  if (kernel_ == Sha256Kernel::OpenSsl) {
    if (!L.evp) L.evp = EVP_MD_CTX_new();
    if (!L.evp || EVP_DigestInit_ex(L.evp, EVP_sha256(), nullptr) != 1)
      CONFLUX_THROW(InternalError, "OpenSSL SHA-256 init failed");
    return;
  }
  for (size_t r = 0; r < 8; ++r) impl_->state[r * impl_->lanes + lane] = kH0[r];
}

void MultiSha256::feed(size_t lane, const void* data, size_t size) {
  LaneData& L = impl_->lane.at(lane);
  CONFLUX_CHECK(L.st == Lane::NeedsData && !L.finishing, "SHA-256 lane {} does not take data now", lane);
  L.total += size;
  if (kernel_ == Sha256Kernel::OpenSsl) {  // hashed at once; the lane keeps asking for data
    if (size && EVP_DigestUpdate(L.evp, data, size) != 1) CONFLUX_THROW(InternalError, "OpenSSL SHA-256 failed");
    return;
  }
  L.p = static_cast<const uint8_t*>(data);
  L.n = size;
  L.st = Lane::Busy;
}

void MultiSha256::finish(size_t lane) {
  LaneData& L = impl_->lane.at(lane);
  CONFLUX_CHECK(L.st == Lane::NeedsData || L.st == Lane::Busy, "SHA-256 lane {} has no message to finish", lane);
  L.finishing = true;
  if (kernel_ == Sha256Kernel::OpenSsl) {
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(L.evp, L.out.data(), &len) != 1 || len != 32)
      CONFLUX_THROW(InternalError, "OpenSSL SHA-256 failed");
    L.st = Lane::Done;
    return;
  }
  L.st = Lane::Busy;
}

void MultiSha256::reset(size_t lane) {
  LaneData& L = impl_->lane.at(lane);
  EVP_MD_CTX* evp = L.evp;
  L = LaneData();
  L.evp = evp;
}

void MultiSha256::run() {
  if (kernel_ == Sha256Kernel::OpenSsl) return;
  Impl& im = *impl_;
  for (;;) {
    bool changed = false, busy = false;
    size_t blocks = SIZE_MAX;
    for (size_t i = 0; i < im.lanes; ++i) {
      if (im.lane[i].st != Lane::Busy) continue;
      if (!im.next_segment(i)) {
        changed = true;
        continue;
      }
      busy = true;
      blocks = std::min(blocks, im.lane[i].seg_blocks);
    }
    if (changed || !busy) return;
    if (im.step(blocks)) return;
  }
}

const Sha256Digest& MultiSha256::digest(size_t lane) const {
  const LaneData& L = impl_->lane.at(lane);
  CONFLUX_CHECK(L.st == Lane::Done, "SHA-256 lane {} has no digest yet", lane);
  return L.out;
}

// ---- Whole buffers -----------------------------------------------------------------------

std::vector<Sha256Digest> sha256_many_with(const std::vector<ByteSpan>& buffers, Sha256Kernel kernel) {
  std::vector<Sha256Digest> out(buffers.size());
  // Longest first, so the lanes run out at about the same time.
  std::vector<size_t> order(buffers.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return buffers[a].size > buffers[b].size; });
  MultiSha256 ctx(kernel);
  std::vector<size_t> msg(ctx.lanes());
  size_t next = 0;
  auto load = [&](size_t lane) {
    if (next == order.size()) return ctx.reset(lane);
    msg[lane] = order[next++];
    ctx.start(lane);
    ctx.feed(lane, buffers[msg[lane]].data, buffers[msg[lane]].size);
    ctx.finish(lane);
  };
  for (size_t l = 0; l < ctx.lanes(); ++l) load(l);
  for (bool active = true; active;) {
    ctx.run();
    active = false;
    for (size_t l = 0; l < ctx.lanes(); ++l) {
      if (ctx.state(l) == MultiSha256::Lane::Done) {
        out[msg[l]] = ctx.digest(l);
        load(l);
      }
      active = active || ctx.state(l) != MultiSha256::Lane::Idle;
    }
  }
  return out;
}

std::vector<std::vector<size_t>> sha256_groups(const std::vector<size_t>& sizes, int threads, Sha256Isa level) {
  const size_t n = sizes.size();
  const size_t lanes = kernel_lanes(kernel_for(n, level));
  size_t groups = std::max<size_t>(1, std::min<size_t>(static_cast<size_t>(std::max(threads, 1)), (n + lanes - 1) / lanes));
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return sizes[a] > sizes[b]; });
  std::vector<std::vector<size_t>> out(groups);
  for (size_t i = 0; i < n; ++i) out[i % groups].push_back(order[i]);
  return out;
}

std::vector<Sha256Digest> sha256_many(const std::vector<ByteSpan>& buffers, int threads, Sha256Isa isa) {
  const Sha256Isa level = resolve_isa(isa);
  std::vector<size_t> sizes;
  for (auto& b : buffers) sizes.push_back(b.size);
  auto groups = sha256_groups(sizes, threads, level);
  std::vector<Sha256Digest> out(buffers.size());
  parallel_for(groups.size(), static_cast<int>(groups.size()), [&](size_t g) {
    std::vector<ByteSpan> mine;
    for (size_t i : groups[g]) mine.push_back(buffers[i]);
    auto d = sha256_many_with(mine, kernel_for(mine.size(), level));
    for (size_t j = 0; j < d.size(); ++j) out[groups[g][j]] = d[j];
  });
  return out;
}

}  // namespace conflux::dataplane
