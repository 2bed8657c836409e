// safetensors header parsing and building (see safetensors_header.h). Every check happens before
// any value is used, on types nlohmann::json reports, so no JSON exception escapes.
#include "conflux/core/safetensors_header.h"

#include "conflux/core/error.h"

#include <nlohmann/json.hpp>

#include <limits>

namespace conflux {
namespace {

using ojson = nlohmann::ordered_json;

uint64_t offset_at(const ojson& offs, size_t i, const std::string& path, const std::string& name) {
  if (!offs[i].is_number_unsigned())
    CONFLUX_THROW(DataError, "{}: tensor '{}': data_offsets[{}] is not a non-negative integer ({})",
                  path, name, i, offs[i].dump());
  return offs[i].get<uint64_t>();
}

SafetensorsEntry parse_entry(const std::string& name, const ojson& e, uint64_t data_size,
                             const std::string& path) {
  if (!e.is_object())
    CONFLUX_THROW(DataError, "{}: tensor '{}': entry is not an object ({})", path, name, e.type_name());
  for (const char* key : {"dtype", "shape", "data_offsets"})
    if (!e.contains(key)) CONFLUX_THROW(DataError, "{}: tensor '{}': field '{}' is missing", path, name, key);
  SafetensorsEntry t;
  t.name = name;
  const ojson& dt = e["dtype"];
  if (!dt.is_string() || !parse_safetensors_dtype(dt.get<std::string>(), &t.dtype))
    CONFLUX_THROW(DataError, "{}: tensor '{}': unknown dtype {} (known: F32 F64 BF16 F16 I32 I64 U8)",
                  path, name, dt.dump());
  const ojson& shape = e["shape"];
  if (!shape.is_array())
    CONFLUX_THROW(DataError, "{}: tensor '{}': field 'shape' is not an array", path, name);
  uint64_t bytes = dtype_size(t.dtype);
  for (const ojson& d : shape) {
    if (!d.is_number_unsigned() || d.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      CONFLUX_THROW(DataError, "{}: tensor '{}': shape {} has a dimension that is not a non-negative "
                    "integer", path, name, shape.dump());
    const uint64_t v = d.get<uint64_t>();
    if (v != 0 && bytes > std::numeric_limits<uint64_t>::max() / v)
      CONFLUX_THROW(DataError, "{}: tensor '{}': shape {} overflows", path, name, shape.dump());
    bytes *= v;
    t.shape.push_back(static_cast<int64_t>(v));
  }
  const ojson& offs = e["data_offsets"];
  if (!offs.is_array() || offs.size() != 2)
    CONFLUX_THROW(DataError, "{}: tensor '{}': field 'data_offsets' is not [begin, end]", path, name);
  t.begin = offset_at(offs, 0, path, name);
  t.end = offset_at(offs, 1, path, name);
  if (t.end < t.begin || t.end - t.begin != bytes || t.end > data_size)
    CONFLUX_THROW(DataError, "{}: tensor '{}': data_offsets [{}, {}] do not match its shape ({} bytes) "
                  "or exceed the data section ({} bytes)", path, name, t.begin, t.end, bytes, data_size);
  return t;
}

}  // namespace

uint64_t safetensors_header_length(const unsigned char first8[8], uint64_t file_size,
                                   const std::string& path) {
  if (file_size < 8)
    CONFLUX_THROW(DataError, "{}: {} bytes is too short for a safetensors file", path, file_size);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(first8[i]) << (8 * i);
  if (n > file_size - 8)
    CONFLUX_THROW(DataError, "{}: header length {} exceeds the file size {}", path, n, file_size);
  return n;
}

SafetensorsHeader parse_safetensors_header(std::string_view json, uint64_t data_size,
                                           const std::string& path) {
  ojson header;
  try {
    header = ojson::parse(json.begin(), json.end());
  } catch (const ojson::exception& e) {
    CONFLUX_THROW(DataError, "{}: safetensors header is not valid JSON: {}", path, e.what());
  }
  if (!header.is_object())
    CONFLUX_THROW(DataError, "{}: safetensors header is not a JSON object ({})", path, header.type_name());
  SafetensorsHeader h;
  h.data_start = 8 + json.size();
  for (const auto& [name, entry] : header.items()) {
    if (name != "__metadata__") {
      h.tensors.push_back(parse_entry(name, entry, data_size, path));
      continue;
    }
    if (!entry.is_object())
      CONFLUX_THROW(DataError, "{}: field '__metadata__' is not an object", path);
    for (const auto& [k, v] : entry.items()) {
      if (!v.is_string()) CONFLUX_THROW(DataError, "{}: metadata '{}' is not a string", path, k);
      h.metadata[k] = v.get<std::string>();
    }
  }
  return h;
}

SafetensorsHeader read_safetensors_header(std::istream& in, const std::string& path) {
  in.seekg(0, std::ios::end);
  const uint64_t size = static_cast<uint64_t>(in.tellg());
  in.seekg(0);
  unsigned char len[8] = {};
  in.read(reinterpret_cast<char*>(len), size < 8 ? 0 : 8);
  const uint64_t n = safetensors_header_length(len, size, path);
  std::string json(n, '\0');
  in.read(json.data(), static_cast<std::streamsize>(n));
  if (!in) CONFLUX_THROW(IoError, "{}: short read of the header", path);
  return parse_safetensors_header(json, size - 8 - n, path);
}

std::string build_safetensors_header(const std::vector<SafetensorsEntry>& tensors,
                                     const std::map<std::string, std::string>& metadata) {
  ojson header = ojson::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  for (const SafetensorsEntry& t : tensors)
    header[t.name] = {{"dtype", std::string(dtype_info(t.dtype).safetensors)}, {"shape", t.shape},
                      {"data_offsets", {t.begin, t.end}}};
  std::string json = header.dump();
  while (json.size() % 8 != 0) json.push_back(' ');  // the data section starts 8-byte aligned
  const uint64_t n = json.size();
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(n >> (8 * i));
  return out + json;
}

}  // namespace conflux
