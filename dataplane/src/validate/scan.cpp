// Vectorised scans for the validators (see scan.h): one always-inline body each, compiled per ISA
// level by CONFLUX_VARIANTS and dispatched on first use.
#include "scan.h"

#include "multiversion.h"

#include <cstring>

namespace conflux::dataplane {
namespace {

// Blocks of 16 tokens (one cache line), stopping once the count reaches cap.
CONFLUX_INLINE void count_content_body(const int32_t* __restrict t, size_t n, int64_t cap, int64_t* out) {
  int64_t c = 0;
  size_t i = 0;
  for (; i + 16 <= n && c < cap; i += 16) {
    int32_t k = 0;
    for (size_t l = 0; l < 16; ++l) k += static_cast<uint32_t>(t[i + l]) < 256u;
    c += k;
  }
  for (; i < n && c < cap; ++i) c += static_cast<uint32_t>(t[i]) < 256u;
  *out = c < cap ? c : cap;
}

// A float is NaN/Inf when its exponent bits are all ones.
CONFLUX_INLINE void first_nonfinite_body(const float* __restrict x, size_t n, size_t* out) {
  constexpr size_t kBlock = 64;
  size_t i = 0;
  for (; i < n; i += kBlock) {
    const size_t m = n - i < kBlock ? n - i : kBlock;
    uint32_t bad = 0;
    for (size_t k = 0; k < m; ++k) {
      uint32_t b;
      std::memcpy(&b, x + i + k, 4);
      bad |= static_cast<uint32_t>((b & 0x7f800000u) == 0x7f800000u);
    }
    if (bad) break;
  }
  if (i > n) i = n;  // no block had one
  for (; i < n; ++i) {
    uint32_t b;
    std::memcpy(&b, x + i, 4);
    if ((b & 0x7f800000u) == 0x7f800000u) break;
  }
  *out = i;
}

CONFLUX_INLINE void rows_nonfinite_body(const float* __restrict x, size_t rows, size_t dim, uint8_t* __restrict bad) {
  for (size_t r = 0; r < rows; ++r) {
    const float* row = x + r * dim;
    uint32_t any = 0;
    for (size_t k = 0; k < dim; ++k) {
      uint32_t b;
      std::memcpy(&b, row + k, 4);
      any |= static_cast<uint32_t>((b & 0x7f800000u) == 0x7f800000u);
    }
    bad[r] = static_cast<uint8_t>(any);
  }
}

CONFLUX_INLINE void ascii_prefix64_body(const unsigned char* __restrict p, size_t n, size_t* out) {
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    uint64_t acc = 0;
    for (size_t k = 0; k < 8; ++k) {
      uint64_t w;
      std::memcpy(&w, p + i + 8 * k, 8);
      acc |= w;
    }
    if (acc & 0x8080808080808080ull) break;
  }
  *out = i;
}

CONFLUX_VARIANTS(count_content_kernel, count_content_body, (const int32_t* t, size_t n, int64_t cap, int64_t* out),
                 (t, n, cap, out))
CONFLUX_VARIANTS(first_nonfinite_kernel, first_nonfinite_body, (const float* x, size_t n, size_t* out), (x, n, out))
CONFLUX_VARIANTS(rows_nonfinite_kernel, rows_nonfinite_body,
                 (const float* x, size_t rows, size_t dim, uint8_t* bad), (x, rows, dim, bad))
CONFLUX_VARIANTS(ascii_prefix64_kernel, ascii_prefix64_body, (const unsigned char* p, size_t n, size_t* out),
                 (p, n, out))

}  // namespace

int64_t count_content_tokens(const int32_t* t, size_t n, int64_t cap) {
  int64_t c;
  count_content_kernel(t, n, cap, &c);
  return c;
}

size_t first_nonfinite(const float* x, size_t n) {
  size_t i;
  first_nonfinite_kernel(x, n, &i);
  return i;
}

void rows_nonfinite(const float* x, size_t rows, size_t dim, uint8_t* bad) { rows_nonfinite_kernel(x, rows, dim, bad); }

size_t ascii_prefix64(const unsigned char* p, size_t n) {
  size_t i;
  ascii_prefix64_kernel(p, n, &i);
  return i;
}

bool count_content_tokens_isa(int isa, const int32_t* t, size_t n, int64_t cap, int64_t* out) {
  auto fn = count_content_kernel_at(isa);
  if (fn) fn(t, n, cap, out);
  return fn != nullptr;
}

bool first_nonfinite_isa(int isa, const float* x, size_t n, size_t* out) {
  auto fn = first_nonfinite_kernel_at(isa);
  if (fn) fn(x, n, out);
  return fn != nullptr;
}

bool ascii_prefix64_isa(int isa, const unsigned char* p, size_t n, size_t* out) {
  auto fn = ascii_prefix64_kernel_at(isa);
  if (fn) fn(p, n, out);
  return fn != nullptr;
}

bool rows_nonfinite_isa(int isa, const float* x, size_t rows, size_t dim, uint8_t* bad) {
  auto fn = rows_nonfinite_kernel_at(isa);
  if (fn) fn(x, rows, dim, bad);
  return fn != nullptr;
}

}  // namespace conflux::dataplane
