// Private helpers of the secure-aggregation sources (little-endian loads/stores, libsodium init).
#pragma once

#include <cstdint>
#include <cstring>

namespace conflux::federated::secagg::detail {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "secure aggregation reads the ChaCha20 keystream as little-endian words");

void ensure_sodium();  // sodium_init() once; InternalError if it fails

inline void store_le64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline uint64_t load_le64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t{p[i]} << (8 * i);
  return v;
}
inline void store_le32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline uint32_t load_le32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);  // little-endian host (static_assert above)
  return v;
}

}  // namespace conflux::federated::secagg::detail
