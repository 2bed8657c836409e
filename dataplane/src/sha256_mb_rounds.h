// Internal: the SHA-256 compression function (FIPS 180-4, section 6.2.2) written once over a
// SIMD "lane vector" type, for the multi-buffer kernels: each 32-bit lane of a vector holds the
// same word of a different message, so one pass of the 64 rounds compresses one 64-byte block of
// every lane. A kernel file (one per ISA, compiled with that ISA's flags) defines a traits struct
// V with:
//   using T = <vector type>;  T add(T, T); T xor3(T, T, T); T ch(T e, T f, T g); T maj(T, T, T);
//   template <int n> T ror(T); template <int n> T shr(T); T set1(uint32_t);
// and calls compress<V>(state, w) with w[16] = the block's big-endian words, already transposed
// so that w[t] holds word t of every lane. Only <cstdint> here: these files are compiled with
// ISA flags, and no inline library code may be instantiated in them (it could be picked by the
// linker for the portable parts of the library).
#pragma once

#include <cstdint>

namespace conflux::dataplane::sha256_detail {
namespace {

alignas(64) constexpr uint32_t kK[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

// One block for every lane: s[0..7] = a..h in, a..h + the block's contribution out.
// w[16] is the message schedule window (overwritten).
template <class V>
inline __attribute__((always_inline)) void compress(typename V::T s[8], typename V::T w[16]) {
  using T = typename V::T;
  T a = s[0], b = s[1], c = s[2], d = s[3], e = s[4], f = s[5], g = s[6], h = s[7];
#pragma GCC unroll 64
  for (int t = 0; t < 64; ++t) {
    if (t >= 16) {  // W_t = s1(W_t-2) + W_t-7 + s0(W_t-15) + W_t-16, in a 16-word window
      T w2 = w[(t - 2) & 15], w15 = w[(t - 15) & 15];
      T s1 = V::xor3(V::template ror<17>(w2), V::template ror<19>(w2), V::template shr<10>(w2));
      T s0 = V::xor3(V::template ror<7>(w15), V::template ror<18>(w15), V::template shr<3>(w15));
      w[t & 15] = V::add(V::add(s1, w[(t - 7) & 15]), V::add(s0, w[t & 15]));
    }
    T big_s1 = V::xor3(V::template ror<6>(e), V::template ror<11>(e), V::template ror<25>(e));
    T t1 = V::add(V::add(h, big_s1), V::add(V::ch(e, f, g), V::add(V::set1(kK[t]), w[t & 15])));
    T big_s0 = V::xor3(V::template ror<2>(a), V::template ror<13>(a), V::template ror<22>(a));
    T t2 = V::add(big_s0, V::maj(a, b, c));
    h = g;
    g = f;
    f = e;
    e = V::add(d, t1);
    d = c;
    c = b;
    b = a;
    a = V::add(t1, t2);
  }
  s[0] = V::add(s[0], a);
  s[1] = V::add(s[1], b);
  s[2] = V::add(s[2], c);
  s[3] = V::add(s[3], d);
  s[4] = V::add(s[4], e);
  s[5] = V::add(s[5], f);
  s[6] = V::add(s[6], g);
  s[7] = V::add(s[7], h);
}

}  // namespace
}  // namespace conflux::dataplane::sha256_detail
