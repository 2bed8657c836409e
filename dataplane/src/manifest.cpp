// manifest.json parsing/serialisation with validation. No HDF5 or OpenSSL here (the SHA-256
// helpers declared in manifest.h live in sha256_mb_files.cpp), so the fuzz build compiles it alone.
#include "conflux/dataplane/manifest.h"

#include "conflux/core/error.h"

#include <fstream>
#include <limits>
#include <sstream>

namespace conflux::dataplane {

using nlohmann::json;

int64_t Manifest::num_rows() const {
  int64_t n = 0;
  for (auto& s : shards) n += s.rows;
  return n;
}

json schema_to_json(const Schema& schema) {
  json arr = json::array();
  for (auto& f : schema.fields()) {
    arr.push_back({{"name", f.name},
                   {"role", role_name(f.role)},
                   {"dtype", std::string(dtype_name(f.dtype()))},
                   {"shape", f.shape()}});
  }
  return arr;
}

Schema schema_from_json(const json& j, const std::string& where) {
  if (!j.is_array()) CONFLUX_THROW(DataError, "{}: 'schema' must be an array of fields", where);
  std::vector<Field> fields;
  for (size_t i = 0; i < j.size(); ++i) {
    const json& e = j[i];
    auto ctx = fmt::format("{}: schema[{}]", where, i);
    if (!e.is_object() || !e.contains("name") || !e["name"].is_string() || !e.contains("role") ||
        !e["role"].is_string() || !e.contains("dtype") || !e["dtype"].is_string() ||
        !e.contains("shape") || !e["shape"].is_array())
      CONFLUX_THROW(DataError, "{}: needs string 'name', 'role', 'dtype' and array 'shape'", ctx);
    Field f;
    f.name = e["name"].get<std::string>();
    if (!parse_role(e["role"].get<std::string>(), &f.role))
      CONFLUX_THROW(DataError, "{} ('{}'): unknown role '{}' (tokens|text|features|label|group|meta)",
                    ctx, f.name, e["role"].get<std::string>());
    if (e["dtype"].get<std::string>() != dtype_name(f.dtype()))
      CONFLUX_THROW(DataError, "{} ('{}'): dtype '{}' but role {} stores {}", ctx, f.name,
                    e["dtype"].get<std::string>(), role_name(f.role), dtype_name(f.dtype()));
    auto shape = e["shape"];
    if (f.role == Role::Features) {
      if (shape.size() != 1 || !shape[0].is_number_integer() || shape[0].get<int64_t>() < 1)
        CONFLUX_THROW(DataError, "{} ('{}'): features shape must be [d] with d >= 1", ctx, f.name);
      f.dim = shape[0].get<int64_t>();
    } else if (shape != json(f.shape())) {
      CONFLUX_THROW(DataError, "{} ('{}'): shape {} does not match role {} (expected {})", ctx, f.name,
                    shape.dump(), role_name(f.role), json(f.shape()).dump());
    }
    fields.push_back(f);
  }
  try {
    return Schema(std::move(fields));
  } catch (const DataError& e) {
    CONFLUX_THROW(DataError, "{}: {}", where, e.message());
  }
}

json byte_tokenizer_json() {
  return {{"kind", "bytes"}, {"vocab_size", kVocabSize}, {"pad", kPadId}, {"eos", kEosId},
          {"mask", kMaskId}};
}

std::string shard_file_name(int64_t index) { return fmt::format("part-{:05d}.h5", index); }

std::string Manifest::to_json_text() const {
  json shards_j = json::array();
  for (auto& s : shards)
    shards_j.push_back({{"file", s.file}, {"rows", s.rows}, {"bytes", s.bytes}, {"sha256", s.sha256}});
  json j = {{"format", kFormatName},
            {"format_version", format_version},
            {"schema", schema_to_json(schema)},
            {"rows", num_rows()},
            {"shards", shards_j},
            {"tokenizer", tokenizer},
            {"provenance", provenance},
            {"privacy", privacy}};
  return j.dump(2) + "\n";
}

Manifest Manifest::parse(const std::string& text, const std::string& where) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number like 1e400
    CONFLUX_THROW(DataError, "{}: not valid JSON: {}", where, e.what());
  }
  if (!j.is_object()) CONFLUX_THROW(DataError, "{}: must be a JSON object", where);
  // (json::value would throw a type_error, not a DataError, for a non-string "format")
  if (!j.contains("format") || !j["format"].is_string() || j["format"].get<std::string>() != kFormatName)
    CONFLUX_THROW(DataError, "{}: 'format' must be \"{}\" (is this a Conflux dataset?)", where, kFormatName);
  if (!j.contains("format_version") || !j["format_version"].is_number_integer())
    CONFLUX_THROW(DataError, "{}: missing integer 'format_version'", where);
  Manifest m;
  m.format_version = j["format_version"].get<int>();
  if (m.format_version != kFormatVersion)
    CONFLUX_THROW(DataError, "{}: format_version {} is not supported (this build reads {})", where,
                  m.format_version, kFormatVersion);
  if (!j.contains("schema")) CONFLUX_THROW(DataError, "{}: missing 'schema'", where);
  m.schema = schema_from_json(j["schema"], where);
  if (!j.contains("shards") || !j["shards"].is_array())
    CONFLUX_THROW(DataError, "{}: missing array 'shards'", where);
  int64_t total_rows = 0;  // num_rows() must not overflow
  for (size_t i = 0; i < j["shards"].size(); ++i) {
    const json& s = j["shards"][i];
    if (!s.is_object() || !s.contains("file") || !s["file"].is_string() || !s.contains("rows") ||
        !s["rows"].is_number_integer() || !s.contains("bytes") || !s["bytes"].is_number_integer() ||
        !s.contains("sha256") || !s["sha256"].is_string())
      CONFLUX_THROW(DataError, "{}: shards[{}] needs 'file', 'rows', 'bytes' and 'sha256'", where, i);
    ShardInfo si{s["file"].get<std::string>(), s["rows"].get<int64_t>(), s["bytes"].get<int64_t>(),
                 s["sha256"].get<std::string>()};
    if (si.rows < 0 || si.bytes < 0 || si.file.empty() || si.file.find('/') != std::string::npos ||
        si.sha256.size() != 64)
      CONFLUX_THROW(DataError, "{}: shards[{}] ('{}') has an invalid file name, row/byte count or sha256",
                    where, i, si.file);
    if (si.rows > std::numeric_limits<int64_t>::max() - total_rows)
      CONFLUX_THROW(DataError, "{}: shards[{}] ('{}'): the row counts add up past 2^63", where, i, si.file);
    total_rows += si.rows;
    m.shards.push_back(si);
  }
  if (j.contains("rows") && j["rows"].is_number_integer() && j["rows"].get<int64_t>() != m.num_rows())
    CONFLUX_THROW(DataError, "{}: 'rows' is {} but the shards hold {}", where, j["rows"].get<int64_t>(),
                  m.num_rows());
  if (j.contains("tokenizer")) m.tokenizer = j["tokenizer"];
  if (j.contains("provenance")) {
    if (!j["provenance"].is_array()) CONFLUX_THROW(DataError, "{}: 'provenance' must be an array", where);
    m.provenance = j["provenance"];
  }
  if (j.contains("privacy")) m.privacy = j["privacy"];
  return m;
}

Manifest Manifest::load(const std::string& dir) {
  std::string path = dir + "/" + kManifestFile;
  std::ifstream in(path, std::ios::binary);
  if (!in) CONFLUX_THROW(DataError, "{}: cannot open the dataset manifest (is '{}' a Conflux dataset directory?)", path, dir);
  std::stringstream ss;
  ss << in.rdbuf();
  return parse(ss.str(), path);
}

}  // namespace conflux::dataplane
