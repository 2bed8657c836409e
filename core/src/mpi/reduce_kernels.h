// Element-wise reduction of P input rows into one output, in rank order 0..P-1 for every element
// (so every rank, and every algorithm, produces bitwise identical results). bf16/f16 accumulate
// in float32 and round once. Processed in blocks that stay in L1 so the compiler vectorises the
// inner loops.
#pragma once

#include "conflux/core/dtype.h"

#include <cstddef>
#include <cstdint>

namespace conflux::detail {

// out[i] = op(in[0][i], ..., in[p-1][i]) for i < n; `out` may alias in[k]. Avg divides the sum by
// `avg_divisor` (integer division for integer types).
void reduce_rows(void* out, const void* const* in, int p, size_t n, DType dtype, ReduceOp op, int avg_divisor);

// data[i] /= divisor (for Avg after a hierarchical sum).
void divide_in_place(void* data, size_t n, DType dtype, int divisor);

}  // namespace conflux::detail
