// Reduction kernels for the shared-memory collectives.
#include "reduce_kernels.h"

#include "conflux/core/error.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace conflux::detail {
namespace {
constexpr size_t kBlock = 2048;

template <typename T>
inline T combine(T a, T b, ReduceOp op) {
  switch (op) {
    case ReduceOp::Max: return a > b ? a : b;
    case ReduceOp::Min: return a < b ? a : b;
    default: return static_cast<T>(a + b);
  }
}

template <typename T, ReduceOp Op>
void reduce_native(T* out, const T* const* in, int p, size_t n, int avg_divisor) {
  T acc[kBlock];
  for (size_t base = 0; base < n; base += kBlock) {
    size_t m = std::min(kBlock, n - base);
    const T* a = in[0] + base;
    for (size_t i = 0; i < m; ++i) acc[i] = a[i];
    for (int j = 1; j < p; ++j) {
      const T* b = in[j] + base;
      if constexpr (Op == ReduceOp::Max) {
        for (size_t i = 0; i < m; ++i) acc[i] = acc[i] > b[i] ? acc[i] : b[i];
      } else if constexpr (Op == ReduceOp::Min) {
        for (size_t i = 0; i < m; ++i) acc[i] = acc[i] < b[i] ? acc[i] : b[i];
      } else {
        for (size_t i = 0; i < m; ++i) acc[i] = static_cast<T>(acc[i] + b[i]);
      }
    }
    if constexpr (Op == ReduceOp::Avg) {
      T d = static_cast<T>(avg_divisor);
      for (size_t i = 0; i < m; ++i) acc[i] = static_cast<T>(acc[i] / d);
    }
    std::memcpy(out + base, acc, m * sizeof(T));
  }
}

template <float (*ToF)(uint16_t), uint16_t (*FromF)(float), ReduceOp Op>
void reduce_half(uint16_t* out, const uint16_t* const* in, int p, size_t n, int avg_divisor) {
  float acc[kBlock];
  for (size_t base = 0; base < n; base += kBlock) {
    size_t m = std::min(kBlock, n - base);
    for (size_t i = 0; i < m; ++i) acc[i] = ToF(in[0][base + i]);
    for (int j = 1; j < p; ++j) {
      const uint16_t* b = in[j] + base;
      for (size_t i = 0; i < m; ++i) acc[i] = combine(acc[i], ToF(b[i]), Op == ReduceOp::Avg ? ReduceOp::Sum : Op);
    }
    if constexpr (Op == ReduceOp::Avg) {
      float d = static_cast<float>(avg_divisor);
      for (size_t i = 0; i < m; ++i) acc[i] /= d;
    }
    for (size_t i = 0; i < m; ++i) out[base + i] = FromF(acc[i]);
  }
}

template <typename T>
void reduce_typed(void* out, const void* const* in, int p, size_t n, ReduceOp op, int d) {
  auto o = static_cast<T*>(out);
  auto i = reinterpret_cast<const T* const*>(in);
  switch (op) {
    case ReduceOp::Sum: return reduce_native<T, ReduceOp::Sum>(o, i, p, n, d);
    case ReduceOp::Avg: return reduce_native<T, ReduceOp::Avg>(o, i, p, n, d);
    case ReduceOp::Max: return reduce_native<T, ReduceOp::Max>(o, i, p, n, d);
    case ReduceOp::Min: return reduce_native<T, ReduceOp::Min>(o, i, p, n, d);
  }
}

template <float (*ToF)(uint16_t), uint16_t (*FromF)(float)>
void reduce_half_typed(void* out, const void* const* in, int p, size_t n, ReduceOp op, int d) {
  auto o = static_cast<uint16_t*>(out);
  auto i = reinterpret_cast<const uint16_t* const*>(in);
  switch (op) {
    case ReduceOp::Sum: return reduce_half<ToF, FromF, ReduceOp::Sum>(o, i, p, n, d);
    case ReduceOp::Avg: return reduce_half<ToF, FromF, ReduceOp::Avg>(o, i, p, n, d);
    case ReduceOp::Max: return reduce_half<ToF, FromF, ReduceOp::Max>(o, i, p, n, d);
    case ReduceOp::Min: return reduce_half<ToF, FromF, ReduceOp::Min>(o, i, p, n, d);
  }
}
}  // namespace

void reduce_rows(void* out, const void* const* in, int p, size_t n, DType dtype, ReduceOp op, int avg_divisor) {
  switch (dtype) {
    case DType::F32: return reduce_typed<float>(out, in, p, n, op, avg_divisor);
    case DType::F64: return reduce_typed<double>(out, in, p, n, op, avg_divisor);
    case DType::I32: return reduce_typed<int32_t>(out, in, p, n, op, avg_divisor);
    case DType::I64: return reduce_typed<int64_t>(out, in, p, n, op, avg_divisor);
    case DType::U8: return reduce_typed<uint8_t>(out, in, p, n, op, avg_divisor);
    case DType::BF16: return reduce_half_typed<bf16_to_float, float_to_bf16>(out, in, p, n, op, avg_divisor);
    case DType::F16: return reduce_half_typed<f16_to_float, float_to_f16>(out, in, p, n, op, avg_divisor);
  }
}

void divide_in_place(void* data, size_t n, DType dtype, int divisor) {
  const void* in[1] = {data};
  reduce_rows(data, in, 1, n, dtype, ReduceOp::Avg, divisor);
}

}  // namespace conflux::detail
