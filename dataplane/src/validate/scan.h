// Internal: vectorised scans used by the validators (content tokens, NaN/Inf, ASCII prefix),
// compiled for AVX-512, AVX2 and the baseline with runtime dispatch (multiversion.h). Pure
// functions; exact integer results, identical on every ISA level.
#pragma once

#include <cstddef>
#include <cstdint>

namespace conflux::dataplane {

// Tokens with 0 <= id < 256, counted up to `cap`: min(count, cap) (the scan stops there, so a
// check that only needs "at least one" reads one cache line per record).
int64_t count_content_tokens(const int32_t* t, size_t n, int64_t cap = INT64_MAX);
// Index of the first NaN/Inf in x[0..n), or n if all are finite (branch-free scan of 64-value
// blocks, then the block holding the first one).
size_t first_nonfinite(const float* x, size_t n);
// bad[r] = 1 if row r of a rows x dim float block has a NaN/Inf, else 0.
void rows_nonfinite(const float* x, size_t rows, size_t dim, uint8_t* bad);
// Length of the longest prefix of whole 64-byte blocks that is pure ASCII (a multiple of 64).
size_t ascii_prefix64(const unsigned char* p, size_t n);

// Per ISA level (0 baseline, 1 AVX2, 2 AVX-512; false if this CPU lacks it), for tests.
bool count_content_tokens_isa(int isa, const int32_t* t, size_t n, int64_t cap, int64_t* out);
bool first_nonfinite_isa(int isa, const float* x, size_t n, size_t* out);
bool ascii_prefix64_isa(int isa, const unsigned char* p, size_t n, size_t* out);
bool rows_nonfinite_isa(int isa, const float* x, size_t rows, size_t dim, uint8_t* bad);

}  // namespace conflux::dataplane
