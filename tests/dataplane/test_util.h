// Helpers shared by the dataplane tests: temporary directories and small tables.
#pragma once

#include "conflux/dataplane/table.h"
#include "conflux/dataplane/writer.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <unistd.h>

namespace conflux::dataplane::test {

// A fresh directory under /tmp removed at scope exit.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/conflux-dp-XXXXXX";
    char* p = ::mkdtemp(tmpl);
    if (!p) std::abort();
    path_ = p;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

// Schema: tokens, text, features[3], label, group.
inline Schema full_schema() {
  return Schema({{"tokens", Role::Tokens, 0},
                 {"text", Role::Text, 0},
                 {"x", Role::Features, 3},
                 {"label", Role::Label, 0},
                 {"group", Role::Group, 0}});
}

// Row i: text "doc<i>" repeated (i % 4 + 1) times, tokens = its bytes, x = (i, 2i, -i), label i%3,
// group i%5.
inline Table make_rows(int64_t begin, int64_t end) {
  Table t(full_schema());
  for (int64_t i = begin; i < end; ++i) {
    std::string text;
    for (int k = 0; k <= i % 4; ++k) text += "doc" + std::to_string(i) + " ";
    std::vector<int32_t> toks(text.begin(), text.end());
    float x[3] = {static_cast<float>(i), 2.0f * i, -1.0f * i};
    int64_t label = i % 3, group = i % 5;
    t.append_row({{reinterpret_cast<const char*>(toks.data()), toks.size() * 4},
                  text,
                  {reinterpret_cast<const char*>(x), sizeof x},
                  {reinterpret_cast<const char*>(&label), 8},
                  {reinterpret_cast<const char*>(&group), 8}});
  }
  return t;
}

// Writes rows [0, n) of make_rows as a dataset at `out`, `per` rows per shard.
inline void write_dataset(const std::string& out, int64_t n, int64_t per) {
  DatasetWriter w(out, full_schema());
  Manifest m;
  m.schema = full_schema();
  m.tokenizer = byte_tokenizer_json();
  for (int64_t s = 0; s * per < n; ++s)
    m.shards.push_back(w.write_shard(s, make_rows(s * per, std::min(n, (s + 1) * per))));
  w.commit(m);
}

}  // namespace conflux::dataplane::test
