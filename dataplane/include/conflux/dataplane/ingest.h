// Ingest: raw files -> a Conflux dataset.
//
// Formats (IngestOptions::format):
//   jsonl    one JSON object per line; `text_field` (string) becomes the document, optional
//            `label_field` / `group_field` (integer or string; strings get ids in sorted order,
//            the names are recorded in the manifest's ingest provenance)
//   text     one document per file
//   lines    one document per non-empty line
//   fortune  records separated by lines holding only "%" (the fortune(6) format)
//   csv      rows of numbers -> a `features` field [d]; an optional header line (detected when
//            a cell is not a number); `label_column` (name or 0-based index) becomes `label`
// Text is tokenized byte-level: token = byte value (0..255), then kEosId (257) ends each
// document (add_eos); pad = 256 and mask = 258 are reserved (vocabulary 259). With keep_text the
// original UTF-8 is stored in a `text` field (for evaluation references).
// Inputs: files and directories (directories expand to their regular files, recursively, sorted
// by path; hidden files, files with an excluded suffix, and second paths to the same file — such
// as fortune's *.u8 symlinks — are skipped). Under MPI the sorted file list is split into
// contiguous byte-balanced ranges, one per rank; rows keep the global file order, so the dataset
// is identical for any number of ranks. Errors name the file and line. Inputs that give no
// document (0-byte or blank files) are a DataError, and the output is left as it was, unless
// allow_empty (see WriterOptions).
#pragma once

#include "conflux/core/communicator.h"
#include "conflux/dataplane/ingest_parse.h"  // the per-file text parsers
#include "conflux/dataplane/manifest.h"

#include <string>
#include <vector>

namespace conflux::dataplane {

struct IngestOptions {
  std::vector<std::string> inputs;
  std::string output;
  std::string format = "jsonl";  // jsonl | text | lines | fortune | csv
  std::string text_field = "text";
  std::string label_field;       // jsonl: optional
  std::string group_field;       // jsonl: optional
  std::string label_column;      // csv: optional (name or index)
  bool group_by_file = false;    // group = index of the source file in the sorted input list
  bool keep_text = false;
  bool add_eos = true;
  bool skip_empty = true;        // drop documents that are empty after trimming whitespace
  std::vector<std::string> exclude_suffixes;  // default for fortune: ".dat"
  int64_t rows_per_shard = 65536;
  bool allow_empty = false;      // write a dataset of zero rows (never over one that has rows)
  std::string command_line;      // recorded in provenance
};

struct IngestResult {
  int64_t rows = 0;
  int64_t files = 0;
  int64_t bytes_in = 0;
  int64_t skipped_empty = 0;
  Manifest manifest;  // rank 0
};

IngestResult ingest(Communicator& comm, const IngestOptions& options);

// Building blocks, exposed for tests.
std::vector<std::string> expand_inputs(const std::vector<std::string>& inputs,
                                       const std::vector<std::string>& exclude_suffixes);
std::vector<int32_t> byte_tokens(const std::string& text, bool add_eos);

}  // namespace conflux::dataplane
