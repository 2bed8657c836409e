// libFuzzer target for ingest's text parsers (parse_ingest_text, dataplane/src/ingest_parse.cpp):
// the bytes of one input file go through the jsonl parser (with and without label/group fields),
// the fortune and line splitters and the csv reader, exactly as `conflux ingest` parses a file.
// Every rejection must be a conflux::DataError; any other exception escaping (a JSON
// type_error, std::out_of_range, InternalError), a crash, a leak or undefined behaviour is a bug.
// Accepted records must be what the format promises (fortune and line records are never blank).
#include <conflux/core/error.h>
#include <conflux/dataplane/ingest.h>

#include <string>
#include <vector>

using namespace conflux;
using namespace conflux::dataplane;

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

std::vector<IngestRecord> parse_expecting_data_errors(const std::string& text, const IngestOptions& o) {
  std::vector<IngestRecord> out;
  try {
    parse_ingest_text("fuzz.input", text, o, out);
  } catch (const DataError&) {
    out.clear();  // a named rejection: fine
  } catch (...) {
    __builtin_trap();  // anything else is a bug
  }
  return out;
}

IngestOptions with_format(const std::string& format) {
  IngestOptions o;
  o.format = format;
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  parse_expecting_data_errors(text, with_format("jsonl"));
  IngestOptions labelled = with_format("jsonl");
  labelled.label_field = "label";
  labelled.group_field = "group";
  for (const IngestRecord& r : parse_expecting_data_errors(text, labelled))
    check(!r.label.empty() && !r.group.empty());
  for (const char* format : {"fortune", "lines"})
    for (const IngestRecord& r : parse_expecting_data_errors(text, with_format(format))) check(!blank_text(r.text));
  parse_expecting_data_errors(text, with_format("csv"));
  IngestOptions csv_label = with_format("csv");
  csv_label.label_column = "label";
  parse_expecting_data_errors(text, csv_label);
  return 0;
}
