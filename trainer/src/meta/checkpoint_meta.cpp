// Checkpoint metadata (see checkpoint_meta.h): no libtorch in this file or its library.
#include "conflux/trainer/checkpoint_meta.h"

#include "conflux/core/atomic_file.h"
#include "conflux/core/error.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <sodium.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <initializer_list>

namespace fs = std::filesystem;

namespace conflux::trainer {
namespace {

using json = nlohmann::json;

json read_json(const fs::path& path) {
  std::ifstream in(path);
  if (!in) CONFLUX_THROW(DataError, "{}: cannot open (is this a complete checkpoint directory?)", path.string());
  try {
    return json::parse(in);
  } catch (const std::exception& e) {
    CONFLUX_THROW(DataError, "{}: not valid JSON: {}", path.string(), e.what());
  }
}

// A typed field at a dotted path ("data.epoch"); DataError naming the file and the field.
template <typename T>
T field(const json& root, std::initializer_list<const char*> keys, const fs::path& file) {
  std::string name;
  const json* j = &root;
  for (const char* k : keys) {
    name += name.empty() ? k : std::string(".") + k;
    if (!j->is_object() || !j->contains(k))
      CONFLUX_THROW(DataError, "{}: field '{}' is missing", file.string(), name);
    j = &(*j)[k];
  }
  try {
    return j->get<T>();
  } catch (const json::exception&) {
    CONFLUX_THROW(DataError, "{}: field '{}' has the wrong type ({}: {})", file.string(), name,
                  j->type_name(), j->dump().substr(0, 80));
  }
}

// An unsigned field written as a JSON number: get<uint64_t> would accept a negative one.
uint64_t unsigned_field(const json& root, std::initializer_list<const char*> keys, const fs::path& file) {
  const json* j = &root;
  for (const char* k : keys) j = j->is_object() && j->contains(k) ? &(*j)[k] : nullptr;
  if (j && j->is_number_integer() && !j->is_number_unsigned())
    CONFLUX_THROW(DataError, "{}: field '{}' must not be negative ({})", file.string(),
                  fmt::join(keys, "."), j->dump());
  return field<uint64_t>(root, keys, file);
}

}  // namespace

std::string checkpoint_dir_name(int64_t step) { return fmt::format("step-{:08d}", step); }

std::vector<std::string> list_checkpoints(const std::string& root) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    const std::string n = e.path().filename().string();
    if (e.is_directory() && n.rfind("step-", 0) == 0 && fs::exists(e.path() / "trainer_state.json"))
      out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::optional<std::string> latest_checkpoint(const std::string& root) {
  auto all = list_checkpoints(root);
  if (all.empty()) return std::nullopt;
  return all.back();
}

size_t remove_checkpoint_leftovers(const std::string& root) {
  size_t removed = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    if (e.path().filename().string().rfind(kCheckpointLeftoverPrefix, 0) != 0) continue;
    std::error_code rm;
    fs::remove_all(e.path(), rm);
    if (rm) CONFLUX_THROW(IoError, "cannot remove the leftover '{}': {}", e.path().string(), rm.message());
    ++removed;
  }
  return removed + remove_atomic_temps(root);
}

std::string trainer_state_text(const TrainerState& state, int64_t optimizer_step) {
  json acc = json::array();
  for (const auto& e : state.accountant)
    acc.push_back({{"noise_multiplier", e.noise_multiplier}, {"sample_rate", e.sample_rate},
                   {"steps", e.steps}});
  const GptConfig& c = state.model;
  json st = {
      {"step", state.step},
      {"optimizer_step", optimizer_step},
      {"data", {{"epoch", state.epoch}, {"epoch_position", state.epoch_position},
                {"tokens_seen", state.tokens_seen}}},
      {"rng", {{"seed", state.seed},
               {"scheme", "derived: shuffle=Stream(seed,'shuffle',epoch), dropout/sampling/noise "
                          "seeds=Stream(seed,purpose,step,rank)"}}},
      {"privacy", {{"noise_private", state.noise_private}, {"accountant", acc}}},
      {"model", {{"vocab_size", c.vocab_size}, {"context", c.context}, {"n_layer", c.n_layer},
                 {"n_head", c.n_head}, {"d_model", c.d_model}, {"dropout", c.dropout},
                 {"init_seed", c.init_seed}}}};
  return st.dump(2) + "\n";
}

std::string lineage_text(const Lineage& lineage) {
  json config = json::object();
  if (!lineage.config_json.empty()) {
    try {
      config = json::parse(lineage.config_json);
    } catch (const json::exception& e) {
      CONFLUX_THROW(InternalError, "lineage: the effective config is not JSON: {}", e.what());
    }
  }
  json lin = {{"config", config},
              {"dataset", {{"dir", lineage.dataset_dir}, {"manifest_sha256", lineage.manifest_sha256}}},
              {"world", {{"dp", lineage.dp}, {"tp", lineage.tp}}}};
  if (!lineage.init_checkpoint.empty())
    lin["init"] = {{"checkpoint", lineage.init_checkpoint}, {"digest", lineage.init_digest}};
  return lin.dump(2) + "\n";
}

TrainerState load_trainer_state(const std::string& dir) {
  const fs::path path = fs::path(dir) / "trainer_state.json";
  const json j = read_json(path);
  TrainerState s;
  s.step = field<int64_t>(j, {"step"}, path);
  s.epoch = field<int64_t>(j, {"data", "epoch"}, path);
  s.epoch_position = field<int64_t>(j, {"data", "epoch_position"}, path);
  s.tokens_seen = field<int64_t>(j, {"data", "tokens_seen"}, path);
  s.seed = unsigned_field(j, {"rng", "seed"}, path);
  s.noise_private = field<bool>(j, {"privacy", "noise_private"}, path);
  const json acc = field<json>(j, {"privacy", "accountant"}, path);
  if (!acc.is_array())
    CONFLUX_THROW(DataError, "{}: field 'privacy.accountant' must be an array", path.string());
  for (const json& e : acc)
    s.accountant.push_back({field<double>(e, {"noise_multiplier"}, path),
                            field<double>(e, {"sample_rate"}, path), field<int64_t>(e, {"steps"}, path)});
  s.model.vocab_size = field<int64_t>(j, {"model", "vocab_size"}, path);
  s.model.context = field<int64_t>(j, {"model", "context"}, path);
  s.model.n_layer = field<int64_t>(j, {"model", "n_layer"}, path);
  s.model.n_head = field<int64_t>(j, {"model", "n_head"}, path);
  s.model.d_model = field<int64_t>(j, {"model", "d_model"}, path);
  s.model.dropout = field<double>(j, {"model", "dropout"}, path);
  s.model.init_seed = unsigned_field(j, {"model", "init_seed"}, path);
  if (s.step < 0) CONFLUX_THROW(DataError, "{}: field 'step' is negative ({})", path.string(), s.step);
  return s;
}

int64_t load_optimizer_step(const std::string& dir) {
  const fs::path path = fs::path(dir) / "trainer_state.json";
  const json j = read_json(path);
  return j.contains("optimizer_step") ? field<int64_t>(j, {"optimizer_step"}, path) : 0;
}

Lineage load_lineage(const std::string& dir) {
  const fs::path path = fs::path(dir) / "lineage.json";
  const json j = read_json(path);
  Lineage l;
  const json config = field<json>(j, {"config"}, path);
  if (!config.is_object()) CONFLUX_THROW(DataError, "{}: field 'config' must be an object", path.string());
  l.config_json = config.dump();
  l.dataset_dir = field<std::string>(j, {"dataset", "dir"}, path);
  l.manifest_sha256 = field<std::string>(j, {"dataset", "manifest_sha256"}, path);
  l.dp = field<int>(j, {"world", "dp"}, path);
  l.tp = field<int>(j, {"world", "tp"}, path);
  if (j.contains("init")) {
    l.init_checkpoint = field<std::string>(j, {"init", "checkpoint"}, path);
    l.init_digest = field<std::string>(j, {"init", "digest"}, path);
  }
  return l;
}

namespace {
std::string hex(const unsigned char* d, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    out += digits[d[i] >> 4];
    out += digits[d[i] & 15];
  }
  return out;
}
}  // namespace

std::string checkpoint_digest(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string n = e.path().filename().string();
    if (n.rfind("model-", 0) == 0 && e.path().extension() == ".safetensors") names.push_back(n);
  }
  if (ec) CONFLUX_THROW(IoError, "cannot list the checkpoint '{}': {}", dir, ec.message());
  if (names.empty()) CONFLUX_THROW(DataError, "checkpoint '{}' has no model-*.safetensors file", dir);
  std::sort(names.begin(), names.end());
  std::string lines;
  std::vector<char> buf(1 << 20);
  unsigned char out[crypto_hash_sha256_BYTES];
  for (const auto& n : names) {
    const std::string path = dir + "/" + n;
    std::ifstream in(path, std::ios::binary);
    if (!in) CONFLUX_THROW(IoError, "cannot read '{}'", path);
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    while (in) {
      in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
      if (in.gcount() > 0)
        crypto_hash_sha256_update(&st, reinterpret_cast<const unsigned char*>(buf.data()),
                                  static_cast<unsigned long long>(in.gcount()));
    }
    if (in.bad()) CONFLUX_THROW(IoError, "cannot read '{}'", path);
    crypto_hash_sha256_final(&st, out);
    lines += n + " " + hex(out, sizeof out) + "\n";
  }
  crypto_hash_sha256(out, reinterpret_cast<const unsigned char*>(lines.data()), lines.size());
  return hex(out, sizeof out);
}

}  // namespace conflux::trainer
