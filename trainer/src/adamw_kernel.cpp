// Fused CPU AdamW kernel (see adamw_kernel.h).
#include "adamw_kernel.h"

#include <cmath>

namespace conflux::trainer::detail {

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CONFLUX_ADAMW_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CONFLUX_ADAMW_CLONES
#endif

CONFLUX_ADAMW_CLONES
void adamw_fused(float* __restrict p, const float* __restrict g, float* __restrict m, float* __restrict v,
                 size_t n, const AdamWScalars& s) {
  const float decay = s.decay, b1 = s.beta1, c1 = s.one_minus_beta1, b2 = s.beta2, c2 = s.one_minus_beta2;
  const float sqrt_bc2 = s.sqrt_bc2, eps = s.eps, step = s.step, scale = s.grad_scale;
  for (size_t i = 0; i < n; ++i) {
    const float gi = g[i] * scale;
    const float mi = m[i] * b1 + gi * c1;
    const float vi = v[i] * b2 + c2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    const float denom = std::sqrt(vi) / sqrt_bc2 + eps;
    p[i] = p[i] * decay + step * (mi / denom);
  }
}

}  // namespace conflux::trainer::detail
