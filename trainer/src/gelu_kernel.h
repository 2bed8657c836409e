// GELU (tanh approximation) in place, for inference: the function torch::gelu(x, "tanh") computes,
//   gelu(x) = 0.5 x (1 + tanh(z)),  z = sqrt(2/pi) (x + 0.044715 x^3),
// written with the identity 0.5 (1 + tanh z) = 1 / (1 + exp(-2 z)) as x / (1 + exp(-2 z)), and exp
// as Cephes' expf (range reduction by ln 2 in two parts, a degree-5 polynomial, 2^n from the
// exponent bits; -2z clamped to [-87, 88] so 2^n stays a normal float). One exp instead of
// libtorch's SLEEF tanh, which was 13 % of an evaluation worker's profile (docs/benchmarks.md).
// The results differ from torch::gelu by float rounding (a few ulp; the trainer tests bound it),
// so the training forward (with autograd) keeps torch::gelu and only gradient-free forwards
// (evaluation, generation, validation) use this. No libtorch include: compiled at -O3 without
// floating-point contraction and cloned for AVX-512, AVX2 and baseline x86-64, so every clone gives
// the same bits; elements are independent.
#pragma once

#include <cstddef>

namespace conflux::trainer::detail {

void gelu_tanh_inplace(float* x, size_t n);

}  // namespace conflux::trainer::detail
