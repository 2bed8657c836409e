// Ingest's text parsers (ingest_parse.h): jsonl objects, csv rows, lines and fortune records
// from one input file's bytes. No I/O here, so the fuzz targets run the exact code ingest runs.
#include "conflux/dataplane/ingest_parse.h"

#include "conflux/core/error.h"
#include "conflux/dataplane/ingest.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <limits>

namespace conflux::dataplane {

using nlohmann::json;

namespace {

void json_value(const json& v, const std::string& where, const std::string& field, std::string* out,
                bool* is_string) {
  if (v.is_string()) {
    *out = v.get<std::string>();
    *is_string = true;
  } else if (v.is_number_integer()) {
    *out = std::to_string(v.get<int64_t>());
    *is_string = false;
  } else {
    CONFLUX_THROW(DataError, "{}: field '{}' must be an integer or a string, got {}", where, field, v.dump());
  }
}

void parse_jsonl(const std::string& path, const std::string& text, const IngestOptions& o, std::vector<IngestRecord>& docs) {
  size_t line_no = 0, pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    if (blank_text(line)) continue;
    auto where = fmt::format("{}:{}", path, line_no);
    json j;
    try {
      j = json::parse(line);
    } catch (const json::exception& e) {  // parse_error, or out_of_range for a number like 1e400
      CONFLUX_THROW(DataError, "{}: not valid JSON: {}", where, e.what());
    }
    if (!j.is_object()) CONFLUX_THROW(DataError, "{}: each line must be a JSON object", where);
    if (!j.contains(o.text_field))
      CONFLUX_THROW(DataError, "{}: missing field '{}' (choose the text field with --text-field)", where, o.text_field);
    if (!j[o.text_field].is_string())
      CONFLUX_THROW(DataError, "{}: field '{}' must be a string", where, o.text_field);
    IngestRecord d;
    d.text = j[o.text_field].get<std::string>();
    if (!o.label_field.empty()) {
      if (!j.contains(o.label_field)) CONFLUX_THROW(DataError, "{}: missing label field '{}'", where, o.label_field);
      json_value(j[o.label_field], where, o.label_field, &d.label, &d.label_is_string);
    }
    if (!o.group_field.empty()) {
      if (!j.contains(o.group_field)) CONFLUX_THROW(DataError, "{}: missing group field '{}'", where, o.group_field);
      json_value(j[o.group_field], where, o.group_field, &d.group, &d.group_is_string);
    }
    docs.push_back(std::move(d));
  }
}

bool parse_number(const std::string& cell, double* out) {
  std::string s = cell;
  s.erase(0, s.find_first_not_of(" \t\r"));
  s.erase(s.find_last_not_of(" \t\r") + 1);
  if (s.empty()) return false;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size()) return false;
  *out = v;
  return true;
}

std::vector<std::string> split_csv_line(const std::string& line) {
  std::vector<std::string> cells;
  size_t pos = 0;
  while (true) {
    size_t c = line.find(',', pos);
    cells.push_back(line.substr(pos, c == std::string::npos ? std::string::npos : c - pos));
    if (c == std::string::npos) break;
    pos = c + 1;
  }
  return cells;
}

void parse_csv(const std::string& path, const std::string& text, const IngestOptions& o, std::vector<IngestRecord>& docs) {
  auto lines = split_lines(text);
  int64_t label_col = -1;
  size_t first = 0, ncells = 0;
  if (!lines.empty()) {
    auto cells = split_csv_line(lines[0]);
    double tmp;
    bool header = std::any_of(cells.begin(), cells.end(), [&](const std::string& c) { return !parse_number(c, &tmp); });
    if (header) first = 1;
    if (!o.label_column.empty()) {
      char* end = nullptr;
      long idx = std::strtol(o.label_column.c_str(), &end, 10);
      if (*end == '\0') {
        label_col = idx;
      } else if (header) {
        for (size_t i = 0; i < cells.size(); ++i) {
          std::string c = cells[i];
          c.erase(0, c.find_first_not_of(" \t\r\""));
          c.erase(c.find_last_not_of(" \t\r\"") + 1);
          if (c == o.label_column) label_col = static_cast<int64_t>(i);
        }
      }
      if (label_col < 0 || label_col >= static_cast<int64_t>(cells.size()))
        CONFLUX_THROW(DataError, "{}: label column '{}' not found (header: {})", path, o.label_column,
                      header ? lines[0] : "none; give a 0-based index");
    }
    ncells = cells.size();
  }
  size_t line_no = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    // split_lines drops empty lines; recover line numbers approximately by counting.
    line_no = i + 1;
    if (i < first) continue;
    auto cells = split_csv_line(lines[i]);
    if (cells.size() != ncells)
      CONFLUX_THROW(DataError, "{}: row {} has {} cells, the first row has {}", path, line_no, cells.size(), ncells);
    IngestRecord d;
    for (size_t c = 0; c < cells.size(); ++c) {
      double v;
      if (!parse_number(cells[c], &v))
        CONFLUX_THROW(DataError, "{}: row {} column {}: '{}' is not a number", path, line_no, c, cells[c]);
      if (static_cast<int64_t>(c) == label_col) {
        // (bounded first: converting a double beyond int64 is undefined behaviour)
        if (!std::isfinite(v) || v != std::floor(v) || std::fabs(v) >= 0x1p63)
          CONFLUX_THROW(DataError, "{}: row {}: label '{}' is not an integer", path, line_no, cells[c]);
        d.label = std::to_string(static_cast<int64_t>(v));
      } else {
        // A finite value beyond float32 would be undefined behaviour to convert (and inf after).
        if (std::isfinite(v) && std::fabs(v) > std::numeric_limits<float>::max())
          CONFLUX_THROW(DataError, "{}: row {} column {}: '{}' is outside the float32 range", path, line_no, c,
                        cells[c]);
        d.features.push_back(static_cast<float>(v));
      }
    }
    docs.push_back(std::move(d));
  }
}

}  // namespace

bool blank_text(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isspace(c); });
}

void parse_ingest_text(const std::string& path, const std::string& text, const IngestOptions& o,
                       std::vector<IngestRecord>& docs) {
  if (o.format == "jsonl") {
    parse_jsonl(path, text, o, docs);
  } else if (o.format == "csv") {
    parse_csv(path, text, o, docs);
  } else {
    std::vector<std::string> parts;
    if (o.format == "text")
      parts.push_back(text);
    else if (o.format == "lines")
      parts = split_lines(text);
    else
      parts = split_fortunes(text);
    for (auto& p : parts) docs.push_back(IngestRecord{std::move(p), {}, "", "", false, false});
  }
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    std::string line = text.substr(pos, nl - pos);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!blank_text(line)) out.push_back(std::move(line));
    pos = nl + 1;
  }
  return out;
}

std::vector<std::string> split_fortunes(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  size_t pos = 0;
  auto flush = [&] {
    if (!blank_text(cur)) {
      while (!cur.empty() && cur.back() == '\n') cur.pop_back();
      out.push_back(cur);
    }
    cur.clear();
  };
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    if (line == "%" || line == "%\r") {
      flush();
    } else {
      cur += line;
      cur += '\n';
    }
  }
  flush();
  return out;
}

}  // namespace conflux::dataplane
