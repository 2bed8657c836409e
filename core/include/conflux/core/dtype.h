// Element types and reduction operators understood by collectives, wire protocol and formats.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace conflux {

enum class DType : uint8_t { F32, F64, BF16, F16, I32, I64, U8 };
enum class ReduceOp : uint8_t { Sum, Avg, Max, Min };

size_t dtype_size(DType t);
std::string_view dtype_name(DType t);  // "float32", "bfloat16", ...
bool parse_dtype(std::string_view name, DType* out);
std::string_view reduce_op_name(ReduceOp op);

// bfloat16 / float16 <-> float32 conversions (round to nearest even).
float bf16_to_float(uint16_t v);
uint16_t float_to_bf16(float f);
float f16_to_float(uint16_t v);
uint16_t float_to_f16(float f);

}  // namespace conflux
