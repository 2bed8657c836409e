// `conflux keygen NAME`: writes a CURVE keypair for the wire protocol: NAME.key (Z85 secret,
// mode 0600) and NAME.pub ("Z85PUBLIC NAME", ready to append to a coordinator's allow-list).
#include <conflux/cli/cli.h>
#include <conflux/core/error.h>
#include <conflux/protocol/keys.h>

#include <nlohmann/json.hpp>

#include <iostream>

namespace {

int keygen(const conflux::cli::Args& args) {
  namespace po = conflux::cli::po;
  std::string name, out_dir = ".";
  bool force = false, json = false;
  po::options_description o("options");
  o.add_options()("name", po::value(&name)->required(), "key name (file stem and identity)")(
      "out-dir", po::value(&out_dir), "directory for NAME.key and NAME.pub (default .)")(
      "force", po::bool_switch(&force), "replace existing key files")(
      "json", po::bool_switch(&json), "print the result as JSON");
  po::positional_options_description pos;
  pos.add("name", 1);
  po::variables_map vm;
  if (!conflux::cli::parse(args, o, &pos, vm,
                           {"keygen", "NAME [--out-dir DIR] [--force] [--json]",
                            "Creates a CURVE keypair for the coordinator or a worker. Give the "
                            "worker NAME.key; put NAME.pub lines in the coordinator's allow-list "
                            "file; give workers the coordinator's .pub.",
                            "conflux keygen alice --out-dir keys && cat keys/alice.pub >> allow.txt"})) {
    return 0;
  }
  if (name.empty() || name.find('/') != std::string::npos) {
    CONFLUX_THROW(UsageError, "key name '{}' must be non-empty and contain no '/'", name);
  }
  auto keys = conflux::protocol::generate_keypair();
  std::string base = out_dir + "/" + name;
  conflux::protocol::write_keypair(base, keys, name, force);
  nlohmann::json j{{"name", name},
                   {"secret_key_file", base + ".key"},
                   {"public_key_file", base + ".pub"},
                   {"public_key", keys.public_key}};
  conflux::cli::emit(json, j.dump(),
                     "wrote " + base + ".key (secret, mode 0600) and " + base + ".pub\npublic key " +
                         keys.public_key);
  return 0;
}

CONFLUX_VERB("keygen", "create a CURVE keypair (NAME.key, NAME.pub) for the wire protocol", keygen);

}  // namespace
