// libFuzzer target for the safetensors header parser (core/safetensors_header.h): the input is a
// whole file (8-byte length, JSON header, data). Every input must either parse or be rejected
// with conflux::DataError; any other exception escaping (a JSON exception, InternalError), a
// crash, a leak or undefined behaviour is a bug. An accepted header must describe tensors inside
// the data section whose sizes match their shapes, and must survive a build/parse round trip.
#include <conflux/core/error.h>
#include <conflux/core/safetensors_header.h>

#include <cstring>

using namespace conflux;

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = "fuzz.safetensors";
  unsigned char first8[8] = {};
  std::memcpy(first8, data, size < 8 ? size : 8);
  try {
    const uint64_t n = safetensors_header_length(first8, size, path);
    const uint64_t data_size = size - 8 - n;
    const std::string_view json(reinterpret_cast<const char*>(data) + 8, n);
    const SafetensorsHeader h = parse_safetensors_header(json, data_size, path);
    check(h.data_start == 8 + n);
    for (const SafetensorsEntry& t : h.tensors) {
      uint64_t bytes = dtype_size(t.dtype);
      for (int64_t d : t.shape) {
        check(d >= 0);
        bytes *= static_cast<uint64_t>(d);
      }
      check(t.begin <= t.end && t.end <= data_size && t.end - t.begin == bytes);
    }
    const std::string rebuilt = build_safetensors_header(h.tensors, h.metadata);
    const SafetensorsHeader again =
        parse_safetensors_header(std::string_view(rebuilt).substr(8), data_size, path);
    check(again.tensors.size() == h.tensors.size() && again.metadata == h.metadata);
    for (size_t i = 0; i < h.tensors.size(); ++i)
      check(again.tensors[i].name == h.tensors[i].name && again.tensors[i].shape == h.tensors[i].shape &&
            again.tensors[i].begin == h.tensors[i].begin && again.tensors[i].dtype == h.tensors[i].dtype);
  } catch (const DataError&) {
    // the only acceptable rejection
  }
  return 0;
}
