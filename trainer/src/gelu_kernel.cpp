// GELU for gradient-free forwards (see gelu_kernel.h).
#include "gelu_kernel.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace conflux::trainer::detail {

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CONFLUX_GELU_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CONFLUX_GELU_CLONES
#endif

CONFLUX_GELU_CLONES
void gelu_tanh_inplace(float* __restrict x, size_t n) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f, kCubic = 0.044715f;
  constexpr float kLog2e = 1.44269504088896341f, kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: (f + kRound) - kRound rounds f to an integer
  for (size_t i = 0; i < n; ++i) {
    const float v = x[i];
    const float z = kSqrt2OverPi * (v + kCubic * v * v * v);
    const float t = std::min(std::max(-2.0f * z, -87.0f), 88.0f);  // exp(t), t = -2z
    const float k = (t * kLog2e + kRound) - kRound;                 // nearest integer to t / ln 2
    const float r = (t - k * kLn2Hi) - k * kLn2Lo;                  // |r| <= ln 2 / 2
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    const float er = (p * (r * r) + r) + 1.0f;                      // exp(r)
    const int32_t bits = (static_cast<int32_t>(k) + 127) * (1 << 23);  // 2^k, k in [-126, 127]
    float two_k;
    std::memcpy(&two_k, &bits, sizeof two_k);
    x[i] = v / (1.0f + er * two_k);
  }
}

}  // namespace conflux::trainer::detail
