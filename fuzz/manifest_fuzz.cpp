// libFuzzer target for the dataset manifest parser (Manifest::parse, dataplane/src/manifest.cpp):
// the input is a whole manifest.json. Every input must either parse or be rejected with
// conflux::DataError; any other exception escaping (a JSON type_error, InternalError), a crash,
// a leak or undefined behaviour is a bug. An accepted manifest must hold valid shard entries and
// survive a to_json_text/parse round trip unchanged.
#include <conflux/core/error.h>
#include <conflux/dataplane/manifest.h>

#include <string>

using namespace conflux;
using namespace conflux::dataplane;

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const Manifest m = Manifest::parse(text, "fuzz/manifest.json");
    for (const ShardInfo& s : m.shards)
      check(s.rows >= 0 && s.bytes >= 0 && !s.file.empty() && s.sha256.size() == 64);
    const Manifest again = Manifest::parse(m.to_json_text(), "round-trip/manifest.json");
    check(again.to_json_text() == m.to_json_text() && again.num_rows() == m.num_rows());
  } catch (const DataError&) {
    // the only acceptable rejection
  } catch (...) {
    __builtin_trap();  // anything else is a bug
  }
  return 0;
}
