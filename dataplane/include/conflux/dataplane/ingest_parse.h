// Ingest's text parsers: one input file's bytes -> records, with no I/O, MPI or HDF5, so the
// fuzz targets (fuzz/ingest_fuzz.cpp) can call them exactly as `conflux ingest` does. Formats and
// their rules are described in ingest.h. Every rejection is a DataError naming `path` (and the
// line or row). Thread safety: pure functions.
#pragma once

#include <string>
#include <vector>

namespace conflux::dataplane {

struct IngestOptions;

// One document or csv row before tokenization.
struct IngestRecord {
  std::string text;
  std::vector<float> features;  // csv
  std::string label, group;     // raw value text ("" = none)
  bool label_is_string = false, group_is_string = false;
};

// Parses the whole content `text` of the input file `path` in `options.format`
// (jsonl | text | lines | fortune | csv) and appends its records to `out`.
void parse_ingest_text(const std::string& path, const std::string& text, const IngestOptions& options,
                       std::vector<IngestRecord>& out);

std::vector<std::string> split_fortunes(const std::string& text);
std::vector<std::string> split_lines(const std::string& text);
// True when `s` holds only whitespace (such documents are dropped unless skip_empty is off).
bool blank_text(const std::string& s);

}  // namespace conflux::dataplane
