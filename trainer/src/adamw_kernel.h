// The fused CPU AdamW update: one pass over (parameter, gradient, first moment, second moment)
// instead of the eight passes and one temporary per tensor of the same update written with tensor
// ops. It computes torch.optim.AdamW's formula in float32, in the same order as the op-by-op form:
//   g' = g * grad_scale                                (gradient clipping folded in)
//   m  = m * beta1 + g' * (1 - beta1)
//   v  = v * beta2 + (1 - beta2) * g' * g'
//   p  = p * decay + step * (m / (sqrt(v) / sqrt_bc2 + eps))   decay = 1 - lr * weight_decay,
//                                                              step = -lr / (1 - beta1^t)
// The file has no libtorch include: it is compiled at -O3 without floating-point contraction and
// cloned for AVX-512, AVX2 and baseline x86-64 (picked at load time), so every clone gives the same
// bits. Elements are independent, so splitting a range over threads changes nothing.
#pragma once

#include <cstddef>

namespace conflux::trainer::detail {

struct AdamWScalars {
  float decay = 1.0f;  // 1 - lr * weight_decay, or 1 for parameters without decay
  float beta1 = 0.9f, one_minus_beta1 = 0.1f;
  float beta2 = 0.95f, one_minus_beta2 = 0.05f;
  float sqrt_bc2 = 1.0f;  // sqrt(1 - beta2^t)
  float eps = 1e-8f;
  float step = 0.0f;        // -lr / (1 - beta1^t)
  float grad_scale = 1.0f;  // clipping coefficient
};

void adamw_fused(float* p, const float* g, float* m, float* v, size_t n, const AdamWScalars& s);

}  // namespace conflux::trainer::detail
