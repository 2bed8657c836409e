// manifest.json: the description of a dataset directory (format "conflux-dataset", version 1).
//
//   { "format": "conflux-dataset", "format_version": 1,
//     "schema": [ {"name": "tokens", "role": "tokens", "dtype": "int32", "shape": [-1]}, ... ],
//     "rows": 1234,
//     "shards": [ {"file": "part-00000.h5", "rows": 1000, "bytes": 52144, "sha256": "ab12..."} ],
//     "tokenizer": {"kind": "bytes", "vocab_size": 259, "pad": 256, "eos": 257, "mask": 258},
//     "provenance": [ {stage record}, ... ],     // oldest first; the whole chain
//     "privacy": { "entries": [...], "total": {...} } }
// Full description in docs/formats.md. Parsing validates every key and throws DataError naming
// the manifest path and the key. Thread safety: plain values.
#pragma once

#include "conflux/dataplane/schema.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace conflux::dataplane {

inline constexpr const char* kFormatName = "conflux-dataset";
inline constexpr int kFormatVersion = 1;
inline constexpr const char* kManifestFile = "manifest.json";

// Byte-level tokenizer: token ids 0..255 are bytes; special ids follow.
inline constexpr int32_t kPadId = 256;
inline constexpr int32_t kEosId = 257;
inline constexpr int32_t kMaskId = 258;
inline constexpr int32_t kVocabSize = 259;

struct ShardInfo {
  std::string file;  // relative to the dataset directory: "part-00000.h5"
  int64_t rows = 0;
  int64_t bytes = 0;
  std::string sha256;  // lowercase hex of the whole file
};

struct Manifest {
  int format_version = kFormatVersion;
  Schema schema;
  std::vector<ShardInfo> shards;
  nlohmann::json tokenizer = nlohmann::json::object();   // empty when there is no tokens field
  nlohmann::json provenance = nlohmann::json::array();   // stage records, oldest first
  nlohmann::json privacy = nlohmann::json::object();     // the ledger (see ledger.h)

  int64_t num_rows() const;
  // Serialises with a stable key order (nlohmann sorts keys), 2-space indent, trailing newline.
  std::string to_json_text() const;
  // Parses and validates; `where` names the file in errors.
  static Manifest parse(const std::string& text, const std::string& where);
  static Manifest load(const std::string& dir);  // reads dir/manifest.json
};

nlohmann::json schema_to_json(const Schema& schema);
Schema schema_from_json(const nlohmann::json& j, const std::string& where);
nlohmann::json byte_tokenizer_json();

// "part-00042.h5"
std::string shard_file_name(int64_t index);

// SHA-256 of a file / of bytes, lowercase hex.
std::string sha256_file(const std::string& path);
std::string sha256_hex(const void* data, size_t size);

}  // namespace conflux::dataplane
