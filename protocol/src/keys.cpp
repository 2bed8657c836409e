// CURVE keypair generation, key-file writing (core/atomic_file.h), key-file reading and allow-list parsing.
#include <conflux/protocol/keys.h>

#include <conflux/core/atomic_file.h>
#include <conflux/core/error.h>

#include <zmq.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

namespace conflux::protocol {
namespace {

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

// Lines of a text file with comments ('#') removed and blank lines skipped: (line no, text).
std::vector<std::pair<int, std::string>> content_lines(const std::string& path) {
  std::ifstream in(path);
  if (!in) CONFLUX_THROW(IoError, "cannot open {}: {}", path, std::strerror(errno));
  std::vector<std::pair<int, std::string>> out;
  std::string line;
  int no = 0;
  while (std::getline(in, line)) {
    ++no;
    // '#' is a Z85 character, so it starts a comment only at the line start or after a blank.
    for (size_t i = 0; i < line.size(); ++i) {
      if (line[i] == '#' && (i == 0 || line[i - 1] == ' ' || line[i - 1] == '\t')) {
        line.resize(i);
        break;
      }
    }
    line = trim(line);
    if (!line.empty()) out.emplace_back(no, line);
  }
  return out;
}

}  // namespace

bool is_z85_key(const std::string& text) {
  if (text.size() != 40) return false;
  uint8_t raw[32];
  return zmq_z85_decode(raw, text.c_str()) != nullptr;
}

CurveKeyPair generate_keypair() {
  char pub[41], sec[41];
  if (zmq_curve_keypair(pub, sec) != 0) {
    CONFLUX_THROW(InternalError, "zmq_curve_keypair failed: {} (libzmq built without CURVE?)",
                  zmq_strerror(zmq_errno()));
  }
  return CurveKeyPair{pub, sec};
}

std::string public_from_secret(const std::string& secret_z85) {
  if (!is_z85_key(secret_z85)) CONFLUX_THROW(DataError, "not a Z85 CURVE secret key (40 chars)");
  char pub[41];
  if (zmq_curve_public(pub, secret_z85.c_str()) != 0) {
    CONFLUX_THROW(DataError, "cannot derive the public key: {}", zmq_strerror(zmq_errno()));
  }
  return pub;
}

void write_keypair(const std::string& base, const CurveKeyPair& keys, const std::string& name,
                   bool overwrite) {
  if (!is_z85_key(keys.public_key) || !is_z85_key(keys.secret_key)) {
    CONFLUX_THROW(DataError, "write_keypair: keys are not 40-character Z85 strings");
  }
  if (name.find_first_of(" \t\r\n#") != std::string::npos) {
    CONFLUX_THROW(UsageError, "key name '{}' must not contain spaces or '#'", name);
  }
  // Checked for both files before writing either; the no-replace rename checks again.
  for (const char* ext : {".key", ".pub"})
    if (!overwrite && ::access((base + ext).c_str(), F_OK) == 0)
      CONFLUX_THROW(IoError, "{}{} exists; refusing to overwrite a key (pass --force)", base, ext);
  write_file_atomic(base + ".key",
                    "# Conflux CURVE secret key for '" + name + "' (keep private)\n" +
                        keys.secret_key + "\n",
                    AtomicWriteOptions{0600, overwrite});
  write_file_atomic(base + ".pub", keys.public_key + " " + name + "\n",
                    AtomicWriteOptions{0644, overwrite});
}

CurveKeyPair read_secret_key_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    CONFLUX_THROW(IoError, "cannot read key file {}: {}", path, std::strerror(errno));
  }
  if (st.st_mode & 077) {
    CONFLUX_THROW(DataError, "secret key file {} is readable by others (mode {:o}); chmod 600 it",
                  path, st.st_mode & 0777);
  }
  auto lines = content_lines(path);
  if (lines.size() != 1 || !is_z85_key(lines[0].second)) {
    CONFLUX_THROW(DataError, "{}: expected exactly one 40-character Z85 secret key", path);
  }
  return CurveKeyPair{public_from_secret(lines[0].second), lines[0].second};
}

std::string read_public_key_file(const std::string& path) {
  auto lines = content_lines(path);
  if (lines.empty()) CONFLUX_THROW(DataError, "{}: no public key in the file", path);
  std::string key = lines[0].second.substr(0, lines[0].second.find_first_of(" \t"));
  if (!is_z85_key(key)) {
    CONFLUX_THROW(DataError, "{}:{}: '{}' is not a 40-character Z85 public key", path,
                  lines[0].first, key);
  }
  return key;
}

void AllowList::add(const std::string& key, const std::string& name) {
  if (!is_z85_key(key)) CONFLUX_THROW(DataError, "'{}' is not a 40-character Z85 public key", key);
  std::string identity = name.empty() ? key : name;
  if (by_key_.count(key)) CONFLUX_THROW(DataError, "key {} is listed twice", key);
  if (by_identity_.count(identity)) {
    CONFLUX_THROW(DataError, "identity '{}' is given to two keys", identity);
  }
  by_key_[key] = identity;
  by_identity_[identity] = key;
}

AllowList AllowList::load(const std::string& path) {
  AllowList list;
  for (const auto& [no, text] : content_lines(path)) {
    std::istringstream words(text);
    std::string key, name, extra;
    words >> key >> name >> extra;
    if (!extra.empty()) {
      CONFLUX_THROW(DataError, "{}:{}: expected 'KEY [NAME]', found more words", path, no);
    }
    try {
      list.add(key, name);
    } catch (const DataError& e) {
      CONFLUX_THROW(DataError, "{}:{}: {}", path, no, e.message());
    }
  }
  return list;
}

std::optional<std::string> AllowList::identity_for(const std::string& key) const {
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return std::nullopt;
  return it->second;
}

}  // namespace conflux::protocol
