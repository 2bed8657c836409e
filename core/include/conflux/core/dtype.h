// Element types and reduction operators understood by collectives, wire protocol and formats.
//
// kDTypes is the one table of element types: the name Conflux uses (configs, manifests, reports),
// the safetensors header name, the size in bytes and the protocol's wire value
// (protocol/proto/conflux_protocol.proto, static_assert'ed there). Every format maps through it;
// a new type is one row here (then the switch statements the compiler points at).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace conflux {

enum class DType : uint8_t { F32, F64, BF16, F16, I32, I64, U8 };
enum class ReduceOp : uint8_t { Sum, Avg, Max, Min };

struct DTypeInfo {
  DType type;
  std::string_view name;         // "float32"
  std::string_view safetensors;  // "F32"
  size_t size;                   // bytes per element
  int wire;                      // wire::DType value (0 is "unspecified" on the wire)
};

// Indexed by the enum's value.
inline constexpr DTypeInfo kDTypes[] = {
    {DType::F32, "float32", "F32", 4, 1},  {DType::F64, "float64", "F64", 8, 2},
    {DType::BF16, "bfloat16", "BF16", 2, 3}, {DType::F16, "float16", "F16", 2, 4},
    {DType::I32, "int32", "I32", 4, 5},    {DType::I64, "int64", "I64", 8, 6},
    {DType::U8, "uint8", "U8", 1, 7}};

constexpr const DTypeInfo& dtype_info(DType t) { return kDTypes[static_cast<size_t>(t)]; }
constexpr size_t dtype_size(DType t) { return dtype_info(t).size; }
constexpr std::string_view dtype_name(DType t) { return dtype_info(t).name; }
bool parse_dtype(std::string_view name, DType* out);              // "float32" -> F32
bool parse_safetensors_dtype(std::string_view name, DType* out);  // "F32" -> F32
bool dtype_from_wire(int wire, DType* out);                       // 1 -> F32; false for unknown
std::string_view reduce_op_name(ReduceOp op);

// bfloat16 / float16 <-> float32 conversions (round to nearest even).
float bf16_to_float(uint16_t v);
uint16_t float_to_bf16(float f);
float f16_to_float(uint16_t v);
uint16_t float_to_f16(float f);

}  // namespace conflux
