// CURVE key files and the allow-list of worker public keys.
//
// Files (docs/protocol.md): NAME.key holds the Z85 secret key (40 characters) on one line, mode
// 0600; NAME.pub holds "Z85PUBLICKEY NAME". An allow-list is one public key per line with an
// optional name after it ('#' at the start of a line or after a blank starts a comment; '#' inside
// a key is a Z85 character), so `cat a.pub b.pub > allow.txt` makes one.
// A worker's identity is its allow-list name, or its Z85 public key when no name is given.
// Errors name the file and line. Thread safety: AllowList is immutable after load.
#pragma once

#include <map>
#include <optional>
#include <string>

namespace conflux::protocol {

struct CurveKeyPair {
  std::string public_key;  // Z85, 40 chars
  std::string secret_key;  // Z85, 40 chars
};

CurveKeyPair generate_keypair();
bool is_z85_key(const std::string& text);
// Public key of a Z85 secret key; throws DataError if it is not a valid key.
std::string public_from_secret(const std::string& secret_z85);

// Writes BASE.key (0600) and BASE.pub atomically (temp file + rename). Refuses to replace
// existing files unless `overwrite`; leaves nothing half-written on failure. Throws IoError.
void write_keypair(const std::string& base, const CurveKeyPair& keys, const std::string& name,
                   bool overwrite);
// Reads a .key file (refuses one readable by group/others); returns both halves.
CurveKeyPair read_secret_key_file(const std::string& path);
// Reads the first key of a .pub file.
std::string read_public_key_file(const std::string& path);

class AllowList {
 public:
  static AllowList load(const std::string& path);
  // Adds a key; throws DataError on a malformed key or a duplicate key/name.
  void add(const std::string& public_z85, const std::string& name);
  // The identity for an admitted key, or nullopt if the key is not listed.
  std::optional<std::string> identity_for(const std::string& public_z85) const;
  size_t size() const { return by_key_.size(); }

 private:
  std::map<std::string, std::string> by_key_;  // key -> identity
  std::map<std::string, std::string> by_identity_;
};

}  // namespace conflux::protocol
