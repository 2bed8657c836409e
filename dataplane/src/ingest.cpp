// Ingest: expands inputs, splits the sorted file list over ranks, parses each format into
// documents, tokenizes byte-level and writes the dataset with the np-independent writer.
#include "conflux/dataplane/ingest.h"

#include "conflux/core/build_config.h"
#include "conflux/core/error.h"
#include "conflux/core/log.h"
#include "conflux/core/progress.h"
#include "conflux/dataplane/distributed.h"
#include "conflux/dataplane/ingest_parse.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

namespace conflux::dataplane {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) CONFLUX_THROW(DataError, "{}: cannot open input file", path);
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) CONFLUX_THROW(DataError, "{}: read error", path);
  return ss.str();
}

void parse_file(const std::string& path, const IngestOptions& o, std::vector<IngestRecord>& docs, int64_t* bytes) {
  std::string text = read_all(path);
  *bytes += static_cast<int64_t>(text.size());
  parse_ingest_text(path, text, o, docs);
}

// Global id mapping for a label/group column: integers stay, strings get sorted ids.
struct Mapping {
  bool strings = false;
  std::map<std::string, int64_t> ids;
  std::vector<std::string> names;
};

Mapping make_mapping(Communicator& comm, const std::vector<IngestRecord>& docs, bool label) {
  std::set<std::string> local;
  int64_t any_string = 0;
  for (auto& d : docs) {
    const std::string& v = label ? d.label : d.group;
    bool s = label ? d.label_is_string : d.group_is_string;
    if (s) any_string = 1;
    local.insert(v);
  }
  comm.allreduce(&any_string, 1, DType::I64, ReduceOp::Max);
  Mapping m;
  m.strings = any_string != 0;
  if (!m.strings) return m;
  std::string mine = json(std::vector<std::string>(local.begin(), local.end())).dump();
  std::vector<size_t> sizes;
  auto all = allgather_bytes(comm, std::vector<uint8_t>(mine.begin(), mine.end()), &sizes);
  std::set<std::string> names;
  size_t pos = 0;
  for (size_t s : sizes) {
    for (auto& n : json::parse(all.begin() + pos, all.begin() + pos + s)) names.insert(n.get<std::string>());
    pos += s;
  }
  for (auto& n : names) {
    m.ids[n] = static_cast<int64_t>(m.names.size());
    m.names.push_back(n);
  }
  return m;
}

int64_t map_value(const Mapping& m, const std::string& v) {
  if (m.strings) return m.ids.at(v);
  return std::stoll(v);
}

}  // namespace

std::vector<int32_t> byte_tokens(const std::string& text, bool add_eos) {
  std::vector<int32_t> t(text.size() + (add_eos ? 1 : 0));
  for (size_t i = 0; i < text.size(); ++i) t[i] = static_cast<unsigned char>(text[i]);
  if (add_eos) t.back() = kEosId;
  return t;
}

std::vector<std::string> expand_inputs(const std::vector<std::string>& inputs,
                                       const std::vector<std::string>& exclude_suffixes) {
  std::vector<std::string> files;
  std::set<std::string> seen;
  auto consider = [&](const fs::path& p, bool explicit_arg) {
    std::string name = p.filename().string();
    if (!explicit_arg) {
      if (!name.empty() && name[0] == '.') return;
      for (auto& s : exclude_suffixes)
        if (ends_with(name, s)) return;
    }
    std::error_code ec;
    auto canon = fs::canonical(p, ec);
    if (ec) CONFLUX_THROW(DataError, "{}: cannot resolve input path: {}", p.string(), ec.message());
    if (!fs::is_regular_file(canon)) return;
    if (seen.insert(canon.string()).second) files.push_back(p.string());
  };
  for (auto& in : inputs) {
    std::error_code ec;
    if (fs::is_directory(in, ec)) {
      std::vector<fs::path> found;
      for (auto it = fs::recursive_directory_iterator(in, ec); !ec && it != fs::recursive_directory_iterator();
           it.increment(ec)) {
        std::string n = it->path().filename().string();
        if (it->is_directory() && !n.empty() && n[0] == '.') {
          it.disable_recursion_pending();
          continue;
        }
        if (!it->is_directory()) found.push_back(it->path());
      }
      if (ec) CONFLUX_THROW(DataError, "{}: cannot list input directory: {}", in, ec.message());
      std::sort(found.begin(), found.end());
      for (auto& p : found) consider(p, false);
    } else if (fs::exists(in, ec)) {
      consider(in, true);
    } else {
      CONFLUX_THROW(DataError, "input '{}' does not exist", in);
    }
  }
  if (files.empty()) CONFLUX_THROW(DataError, "no input files found in: {}", fmt::join(inputs, ", "));
  return files;
}

IngestResult ingest(Communicator& comm, const IngestOptions& o) {
  static const std::set<std::string> kFormats = {"jsonl", "text", "lines", "fortune", "csv"};
  if (!kFormats.count(o.format))
    CONFLUX_THROW(UsageError, "unknown input format '{}' (jsonl|text|lines|fortune|csv)", o.format);
  if (o.output.empty()) CONFLUX_THROW(UsageError, "ingest needs an output directory");
  if (o.rows_per_shard < 1) CONFLUX_THROW(UsageError, "rows_per_shard must be >= 1");
  auto excl = o.exclude_suffixes;
  if (o.format == "fortune" && excl.empty()) excl = {".dat"};
  auto files = expand_inputs(o.inputs, excl);

  // Contiguous, byte-balanced file ranges per rank (same list on every rank: sorted paths).
  std::vector<int64_t> cum{0};
  for (auto& f : files) cum.push_back(cum.back() + static_cast<int64_t>(fs::file_size(f)) + 1);
  auto bounds = balanced_boundaries(cum, comm.size(), 1);
  int64_t fb = bounds[comm.rank()], fe = bounds[comm.rank() + 1];

  IngestResult res;
  std::vector<IngestRecord> docs;
  std::vector<int64_t> file_of_doc;
  {
    ProgressOptions po;
    po.rank = comm.rank();
    po.unit = "files";
    Progress progress("ingest", static_cast<uint64_t>(fe - fb), po);
    for (int64_t i = fb; i < fe; ++i) {
      parse_file(files[i], o, docs, &res.bytes_in);
      file_of_doc.resize(docs.size(), i);
      progress.advance(1);
    }
  }
  // Drop empty documents.
  std::vector<IngestRecord> kept;
  std::vector<int64_t> kept_file;
  for (size_t i = 0; i < docs.size(); ++i) {
    if (o.format != "csv" && o.skip_empty && blank_text(docs[i].text)) {
      ++res.skipped_empty;
      continue;
    }
    kept.push_back(std::move(docs[i]));
    kept_file.push_back(file_of_doc[i]);
  }
  docs.clear();

  // Schema.
  std::vector<Field> fields;
  int64_t dim = -1;
  if (o.format == "csv") {
    for (auto& d : kept) {
      if (dim < 0) dim = static_cast<int64_t>(d.features.size());
      if (static_cast<int64_t>(d.features.size()) != dim)
        CONFLUX_THROW(DataError, "csv inputs have rows with {} and {} feature columns", dim, d.features.size());
    }
    std::vector<int64_t> dims(static_cast<size_t>(comm.size()));
    comm.allgather(&dim, dims.data(), 1, DType::I64);
    for (int64_t d : dims) {
      if (d >= 0 && dim >= 0 && d != dim)
        CONFLUX_THROW(DataError, "csv inputs disagree on the number of feature columns ({} vs {})", dim, d);
      if (d >= 0) dim = d;
    }
    if (dim < 1) CONFLUX_THROW(DataError, "csv inputs hold no feature columns");
    fields.push_back({"features", Role::Features, dim});
  } else {
    fields.push_back({"tokens", Role::Tokens, 0});
    if (o.keep_text) fields.push_back({"text", Role::Text, 0});
  }
  bool has_label = !o.label_field.empty() || !o.label_column.empty();
  bool has_group = !o.group_field.empty() || o.group_by_file;
  if (has_label) fields.push_back({"label", Role::Label, 0});
  if (has_group) fields.push_back({"group", Role::Group, 0});
  Schema schema(fields);

  Mapping labels, groups;
  if (has_label) labels = make_mapping(comm, kept, true);
  if (has_group && !o.group_by_file) groups = make_mapping(comm, kept, false);

  Table table(schema);
  table.reserve_rows(static_cast<int64_t>(kept.size()));
  for (size_t i = 0; i < kept.size(); ++i) {
    const IngestRecord& d = kept[i];
    std::vector<std::string_view> row;
    std::vector<int32_t> toks;
    int64_t label = 0, group = 0;
    if (o.format == "csv") {
      row.emplace_back(reinterpret_cast<const char*>(d.features.data()), d.features.size() * 4);
    } else {
      toks = byte_tokens(d.text, o.add_eos);
      row.emplace_back(reinterpret_cast<const char*>(toks.data()), toks.size() * 4);
      if (o.keep_text) row.emplace_back(d.text);
    }
    if (has_label) {
      label = map_value(labels, d.label);
      row.emplace_back(reinterpret_cast<const char*>(&label), 8);
    }
    if (has_group) {
      group = o.group_by_file ? kept_file[i] : map_value(groups, d.group);
      row.emplace_back(reinterpret_cast<const char*>(&group), 8);
    }
    table.append_row(row);
  }

  std::vector<int64_t> stats = {fe - fb, res.bytes_in, res.skipped_empty};
  allreduce_sum(comm, stats);
  res.files = stats[0];
  res.bytes_in = stats[1];
  res.skipped_empty = stats[2];

  Manifest m;
  m.schema = schema;
  if (o.format != "csv") m.tokenizer = byte_tokenizer_json();
  json stage = {{"stage", "ingest"},
                {"tool", std::string("conflux ") + CONFLUX_VERSION},
                {"time", static_cast<int64_t>(std::time(nullptr))},
                {"command", o.command_line},
                {"params",
                 {{"format", o.format},
                  {"inputs", o.inputs},
                  {"text_field", o.text_field},
                  {"label_field", o.label_field},
                  {"group_field", o.group_field},
                  {"label_column", o.label_column},
                  {"group_by_file", o.group_by_file},
                  {"keep_text", o.keep_text},
                  {"add_eos", o.add_eos},
                  {"rows_per_shard", o.rows_per_shard}}},
                {"files", res.files},
                {"bytes_in", res.bytes_in},
                {"dropped", {{"empty", res.skipped_empty}}}};
  if (labels.strings) stage["label_names"] = labels.names;
  if (groups.strings) stage["group_names"] = groups.names;
  if (o.group_by_file) {
    json names = json::array();
    for (auto& f : files) names.push_back(fs::path(f).filename().string());
    stage["group_names"] = names;
  }
  m.provenance = json::array({stage});
  WriterOptions wo;
  wo.allow_empty = o.allow_empty;
  wo.empty_reason = fmt::format("no documents in {} input file(s) of {} bytes ({} empty document(s) skipped)",
                                res.files, res.bytes_in, res.skipped_empty);
  wo.allow_empty_how = "--allow-empty";
  m = write_distributed(comm, o.output, table, o.rows_per_shard, m, wo);
  int64_t rows = table.rows();
  comm.allreduce(&rows, 1, DType::I64, ReduceOp::Sum);
  res.rows = rows;
  if (comm.rank() == 0) res.manifest = m;
  return res;
}

}  // namespace conflux::dataplane
