// The data summary a worker puts in its hello: counts and names from the dataset manifest and
// a digest of it, never any rows.
#include <conflux/protocol/worker.h>

#include <nlohmann/json.hpp>
#include <sodium.h>

#include <fstream>
#include <sstream>

namespace conflux::protocol {

wire::DataSummary summarize_dataset(const std::string& path) {
  wire::DataSummary s;
  std::string base = path;
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  s.set_dataset(base.substr(base.find_last_of('/') == std::string::npos ? 0
                                                                        : base.find_last_of('/') + 1));
  std::ifstream in(path + "/manifest.json", std::ios::binary);
  if (!in) {
    (*s.mutable_extra())["error"] = "no readable manifest.json";
    return s;
  }
  std::stringstream buf;
  buf << in.rdbuf();
  const std::string text = buf.str();
  unsigned char digest[32];
  if (sodium_init() >= 0) {
    crypto_generichash(digest, sizeof digest, reinterpret_cast<const unsigned char*>(text.data()),
                       text.size(), nullptr, 0);
    static const char* hex = "0123456789abcdef";
    std::string h;
    for (unsigned char c : digest) {
      h += hex[c >> 4];
      h += hex[c & 15];
    }
    s.set_manifest_digest(h);
  }
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    (*s.mutable_extra())["error"] = "manifest.json is not a JSON object";
    return s;
  }
  uint64_t rows = 0;
  if (j.contains("shards") && j["shards"].is_array()) {
    for (const auto& sh : j["shards"]) {
      if (sh.is_object() && sh.contains("rows") && sh["rows"].is_number_unsigned()) {
        rows += sh["rows"].get<uint64_t>();
      }
    }
    (*s.mutable_extra())["shards"] = std::to_string(j["shards"].size());
  }
  s.set_rows(rows);
  const nlohmann::json* fields = nullptr;
  if (j.contains("schema")) {
    const auto& sc = j["schema"];
    if (sc.is_object() && sc.contains("fields")) fields = &sc["fields"];
    if (sc.is_array()) fields = &sc;
  }
  if (fields && fields->is_array()) {
    for (const auto& f : *fields) {
      if (f.is_object() && f.contains("name") && f["name"].is_string()) {
        s.add_fields(f["name"].get<std::string>());
      }
    }
  }
  if (j.contains("format_version") && j["format_version"].is_primitive()) {
    (*s.mutable_extra())["format_version"] = j["format_version"].dump();
  }
  return s;
}

}  // namespace conflux::protocol
