// safetensors header: build/parse round trip, and every malformed header a DataError whose message
// names the file and the tensor or field (never a JSON exception or InternalError).
#include "conflux/core/error.h"
#include "conflux/core/safetensors_header.h"

#include <gtest/gtest.h>

#include <cstring>

using namespace conflux;

namespace {

const std::string kPath = "/ckpt/model-tp00-of-01.safetensors";

// The DataError message parsing `json` with `data_size` bytes of data gives ("" if none).
std::string rejection(const std::string& json, uint64_t data_size = 64) {
  try {
    parse_safetensors_header(json, data_size, kPath);
  } catch (const DataError& e) {
    return e.message();
  }
  return "";
}

TEST(SafetensorsHeader, BuildParseRoundTripAligned) {
  std::vector<SafetensorsEntry> in = {{"wte.weight", DType::F32, {4, 2}, 0, 32},
                                      {"step", DType::I64, {}, 32, 40},
                                      {"mask", DType::U8, {0}, 40, 40}};
  const std::string bytes = build_safetensors_header(in, {{"format", "conflux-gpt-1"}});
  ASSERT_EQ(bytes.size() % 8, 0u);
  const uint64_t n = safetensors_header_length(reinterpret_cast<const unsigned char*>(bytes.data()),
                                               bytes.size() + 40, kPath);
  EXPECT_EQ(n, bytes.size() - 8);
  const SafetensorsHeader h = parse_safetensors_header(std::string_view(bytes).substr(8), 40, kPath);
  EXPECT_EQ(h.data_start, bytes.size());
  EXPECT_EQ(h.metadata.at("format"), "conflux-gpt-1");
  ASSERT_EQ(h.tensors.size(), 3u);
  for (size_t i = 0; i < in.size(); ++i) {
    EXPECT_EQ(h.tensors[i].name, in[i].name);
    EXPECT_EQ(h.tensors[i].dtype, in[i].dtype);
    EXPECT_EQ(h.tensors[i].shape, in[i].shape);
    EXPECT_EQ(h.tensors[i].begin, in[i].begin);
    EXPECT_EQ(h.tensors[i].end, in[i].end);
  }
}

TEST(SafetensorsHeader, LengthPastTheFileIsNamed) {
  unsigned char len[8] = {0x00, 0x01, 0, 0, 0, 0, 0, 0};  // 256
  try {
    safetensors_header_length(len, 100, kPath);
    FAIL();
  } catch (const DataError& e) {
    EXPECT_EQ(e.message(), kPath + ": header length 256 exceeds the file size 100");
  }
  EXPECT_THROW(safetensors_header_length(len, 7, kPath), DataError);
}

TEST(SafetensorsHeader, EveryMalformedHeaderIsADataErrorNamingFileAndTensor) {
  const std::string ok = R"("dtype": "F32", "shape": [2], "data_offsets": [0, 8])";
  // Each case: the header, then the part of the message after "<path>: ".
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]})",
       "safetensors header is not valid JSON"},
      {"[1, 2]", "safetensors header is not a JSON object (array)"},
      {R"({"a": 5})", "tensor 'a': entry is not an object (number)"},
      {R"({"a": {"shape": [2], "data_offsets": [0, 8]}})", "tensor 'a': field 'dtype' is missing"},
      {R"({"a": {"dtype": "F32", "data_offsets": [0, 8]}})", "tensor 'a': field 'shape' is missing"},
      {R"({"a": {"dtype": "F32", "shape": [2]}})", "tensor 'a': field 'data_offsets' is missing"},
      {R"({"a": {"dtype": "F8", "shape": [2], "data_offsets": [0, 8]}})",
       "tensor 'a': unknown dtype \"F8\" (known: F32 F64 BF16 F16 I32 I64 U8)"},
      {R"({"a": {"dtype": 3, "shape": [2], "data_offsets": [0, 8]}})", "tensor 'a': unknown dtype 3"},
      {R"({"a": {"dtype": "F32", "shape": 2, "data_offsets": [0, 8]}})",
       "tensor 'a': field 'shape' is not an array"},
      {R"({"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}})",
       "tensor 'a': shape [-2] has a dimension that is not a non-negative integer"},
      {R"({"a": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 8]}})",
       "tensor 'a': shape [1.5] has a dimension"},
      {R"({"a": {"dtype": "F64", "shape": [4294967296, 4294967296], "data_offsets": [0, 8]}})",
       "tensor 'a': shape [4294967296,4294967296] overflows"},
      {R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0]}})",
       "tensor 'a': field 'data_offsets' is not [begin, end]"},
      {R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [-1, 8]}})",
       "tensor 'a': data_offsets[0] is not a non-negative integer (-1)"},
      {R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 12]}})",
       "tensor 'a': data_offsets [0, 12] do not match its shape (8 bytes)"},
      {R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [60, 68]}})",
       "tensor 'a': data_offsets [60, 68] do not match its shape (8 bytes) or exceed the data section (64 bytes)"},
      {R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}})", "tensor 'a': data_offsets [8, 0]"},
      {"{\"__metadata__\": [], \"a\": {" + ok + "}}", "field '__metadata__' is not an object"},
      {"{\"__metadata__\": {\"k\": 1}, \"a\": {" + ok + "}}", "metadata 'k' is not a string"},
      {"\xff\xfe", "safetensors header is not valid JSON"},
      {"", "safetensors header is not valid JSON"},
  };
  for (const auto& [json, want] : cases) {
    const std::string got = rejection(json);
    EXPECT_EQ(got.rfind(kPath + ": " + want, 0), 0u) << "header " << json << "\n got: " << got;
  }
  EXPECT_EQ(rejection("{\"a\": {" + ok + "}}"), "");
}

}  // namespace
