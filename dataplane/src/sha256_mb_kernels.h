// Internal: the multi-buffer SHA-256 block kernels, one per ISA (sha256_mb_avx512.cpp,
// sha256_mb_avx2.cpp; x86-64 only, each compiled with its own ISA flags and called only after a
// runtime CPU check in sha256_mb.cpp).
//
// A kernel compresses `nblocks` consecutive 64-byte blocks of every lane. state holds 8 rows of
// `lanes` words (row r = hash word r of every lane, lane-minor). Lane i reads its blocks from
// ptrs[i], advancing strides[i] bytes per block (64 for a lane with data; 0 for an idle lane
// that re-reads one dummy block and whose state the caller restores afterwards).
#pragma once

#include <cstddef>
#include <cstdint>

namespace conflux::dataplane::sha256_detail {

using BlockKernel = void (*)(uint32_t* state, const uint8_t* const* ptrs, const size_t* strides, size_t nblocks);

#if defined(__x86_64__)
void blocks_x16_avx512(uint32_t* state, const uint8_t* const* ptrs, const size_t* strides, size_t nblocks);
void blocks_x8_avx512vl(uint32_t* state, const uint8_t* const* ptrs, const size_t* strides, size_t nblocks);
void blocks_x8_avx2(uint32_t* state, const uint8_t* const* ptrs, const size_t* strides, size_t nblocks);
#endif

}  // namespace conflux::dataplane::sha256_detail
