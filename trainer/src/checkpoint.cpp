// Checkpoint directories (see checkpoint.h).
#include "conflux/trainer/checkpoint.h"

#include "conflux/core/communicator.h"
#include "conflux/core/error.h"
#include "conflux/trainer/safetensors.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;

namespace conflux::trainer {
namespace {

std::string step_name(int64_t step) { return fmt::format("step-{:08d}", step); }

std::string shard_json(const ShardSpec& s) {
  nlohmann::json j = {{"global_shape", s.global_shape}, {"dim", s.dim}, {"offset", s.offset}};
  return j.dump();
}

void write_text(const fs::path& path, const std::string& text) {
  fs::path tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) CONFLUX_THROW(IoError, "cannot create {}", tmp.string());
    out << text;
    out.flush();
    if (!out) CONFLUX_THROW(IoError, "write to {} failed", tmp.string());
  }
  fs::rename(tmp, path);
}

nlohmann::json read_json(const fs::path& path) {
  std::ifstream in(path);
  if (!in) CONFLUX_THROW(IoError, "cannot open {}", path.string());
  try {
    return nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    CONFLUX_THROW(DataError, "{}: not valid JSON: {}", path.string(), e.what());
  }
}

nlohmann::json model_json(const GptConfig& c) {
  return {{"vocab_size", c.vocab_size}, {"context", c.context}, {"n_layer", c.n_layer},
          {"n_head", c.n_head},         {"d_model", c.d_model}, {"dropout", c.dropout},
          {"init_seed", c.init_seed}};
}

void barrier(Communicator* world) {
  if (world && world->size() > 1) world->barrier();
}

std::vector<std::string> files_of(const std::string& dir, const std::string& kind) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string n = e.path().filename().string();
    if (n.rfind(kind + "-tp", 0) == 0 && e.path().extension() == ".safetensors")
      out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  if (out.empty()) CONFLUX_THROW(DataError, "{}: no {}-tp*.safetensors files", dir, kind);
  return out;
}

}  // namespace

std::vector<std::string> list_checkpoints(const std::string& root) {
  std::vector<std::string> out;
  if (!fs::exists(root)) return out;
  for (const auto& e : fs::directory_iterator(root)) {
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

std::string save_checkpoint(const std::string& root, const TrainerState& state, GptImpl& model,
                            AdamW* optimizer, const Lineage& lineage, Communicator* world,
                            int dp_rank, int keep_last) {
  const int rank = world ? world->rank() : 0;
  const fs::path final_dir = fs::path(root) / step_name(state.step);
  const fs::path tmp_dir = fs::path(root) / (".tmp-" + step_name(state.step));
  if (rank == 0) {
    fs::create_directories(root);
    fs::remove_all(tmp_dir);
    fs::create_directories(tmp_dir);
  }
  barrier(world);
  const TpGroup& tp = model.tp();
  if (dp_rank == 0) {
    const std::string suffix = fmt::format("-tp{:02d}-of-{:02d}.safetensors", tp.rank, tp.size);
    std::vector<std::pair<std::string, torch::Tensor>> weights, moments;
    std::map<std::string, std::string> meta{{"format", "conflux-gpt-1"},
                                            {"tp_rank", std::to_string(tp.rank)},
                                            {"tp_size", std::to_string(tp.size)}};
    std::map<std::string, std::string> opt_meta = meta;
    auto infos = model.param_infos();
    for (const auto& p : infos) {
      weights.emplace_back(p.name, p.tensor);
      meta["shard." + p.name] = shard_json(p.spec);
    }
    // The optimizer holds only trainable parameters (frozen ones have no moments).
    for (size_t i = 0; optimizer && i < optimizer->params().size(); ++i) {
      const ParamInfo& p = optimizer->params()[i];
      moments.emplace_back("exp_avg." + p.name, optimizer->exp_avg()[i]);
      moments.emplace_back("exp_avg_sq." + p.name, optimizer->exp_avg_sq()[i]);
      opt_meta["shard.exp_avg." + p.name] = shard_json(p.spec);
      opt_meta["shard.exp_avg_sq." + p.name] = shard_json(p.spec);
    }
    write_safetensors((tmp_dir / ("model" + suffix)).string(), weights, meta);
    if (optimizer) write_safetensors((tmp_dir / ("optim" + suffix)).string(), moments, opt_meta);
  }
  if (rank == 0) {
    nlohmann::json acc = nlohmann::json::array();
    for (const auto& e : state.accountant)
      acc.push_back({{"noise_multiplier", e.noise_multiplier}, {"sample_rate", e.sample_rate},
                     {"steps", e.steps}});
    nlohmann::json st = {
        {"step", state.step},
        {"optimizer_step", optimizer ? optimizer->steps() : 0},
        {"data", {{"epoch", state.epoch}, {"epoch_position", state.epoch_position},
                  {"tokens_seen", state.tokens_seen}}},
        {"rng", {{"seed", state.seed},
                 {"scheme", "derived: shuffle=Stream(seed,'shuffle',epoch), dropout/sampling/noise "
                            "seeds=Stream(seed,purpose,step,rank)"}}},
        {"privacy", {{"noise_private", state.noise_private}, {"accountant", acc}}},
        {"model", model_json(state.model)}};
    write_text(tmp_dir / "trainer_state.json", st.dump(2) + "\n");
    nlohmann::json config = lineage.config_json.empty() ? nlohmann::json::object()
                                                        : nlohmann::json::parse(lineage.config_json);
    nlohmann::json lin = {{"config", config},
                          {"dataset", {{"dir", lineage.dataset_dir},
                                       {"manifest_sha256", lineage.manifest_sha256}}},
                          {"world", {{"dp", lineage.dp}, {"tp", lineage.tp}}}};
    write_text(tmp_dir / "lineage.json", lin.dump(2) + "\n");
  }
  barrier(world);
  if (rank == 0) {
    fs::remove_all(final_dir);
    fs::rename(tmp_dir, final_dir);
    auto all = list_checkpoints(root);
    for (size_t i = 0; keep_last > 0 && i + static_cast<size_t>(keep_last) < all.size(); ++i)
      fs::remove_all(all[i]);
  }
  barrier(world);
  return final_dir.string();
}

TrainerState load_trainer_state(const std::string& dir) {
  const fs::path path = fs::path(dir) / "trainer_state.json";
  nlohmann::json j = read_json(path);
  TrainerState s;
  try {
    s.step = j.at("step").get<int64_t>();
    s.epoch = j.at("data").at("epoch").get<int64_t>();
    s.epoch_position = j.at("data").at("epoch_position").get<int64_t>();
    s.tokens_seen = j.at("data").at("tokens_seen").get<int64_t>();
    s.seed = j.at("rng").at("seed").get<uint64_t>();
    s.noise_private = j.at("privacy").at("noise_private").get<bool>();
    for (const auto& e : j.at("privacy").at("accountant"))
      s.accountant.push_back({e.at("noise_multiplier").get<double>(),
                              e.at("sample_rate").get<double>(), e.at("steps").get<int64_t>()});
    const auto& m = j.at("model");
    s.model.vocab_size = m.at("vocab_size").get<int64_t>();
    s.model.context = m.at("context").get<int64_t>();
    s.model.n_layer = m.at("n_layer").get<int64_t>();
    s.model.n_head = m.at("n_head").get<int64_t>();
    s.model.d_model = m.at("d_model").get<int64_t>();
    s.model.dropout = m.at("dropout").get<double>();
    s.model.init_seed = m.at("init_seed").get<uint64_t>();
  } catch (const nlohmann::json::exception& e) {
    CONFLUX_THROW(DataError, "{}: missing or malformed field: {}", path.string(), e.what());
  }
  return s;
}

std::vector<std::pair<std::string, torch::Tensor>> load_global_tensors(const std::string& dir,
                                                                      const std::string& kind) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  std::map<std::string, size_t> index;
  for (const auto& path : files_of(dir, kind)) {
    SafetensorsFile f = read_safetensors(path);
    for (const auto& [name, t] : f.tensors) {
      auto mit = f.metadata.find("shard." + name);
      if (mit == f.metadata.end())
        CONFLUX_THROW(DataError, "{}: tensor '{}' has no shard metadata", path, name);
      nlohmann::json spec = nlohmann::json::parse(mit->second);
      auto global_shape = spec.at("global_shape").get<std::vector<int64_t>>();
      const int64_t dim = spec.at("dim").get<int64_t>(), offset = spec.at("offset").get<int64_t>();
      auto it = index.find(name);
      if (it == index.end()) {
        index[name] = out.size();
        out.emplace_back(name, dim < 0 ? t : torch::zeros(global_shape, t.options()));
        it = index.find(name);
      }
      torch::Tensor& g = out[it->second].second;
      if (g.sizes().vec() != global_shape)
        CONFLUX_THROW(DataError, "{}: tensor '{}' global shape differs between tp files", path, name);
      if (dim >= 0) {
        if (dim >= t.dim() || offset < 0 || offset + t.size(dim) > global_shape[dim])
          CONFLUX_THROW(DataError, "{}: tensor '{}' slice [{}, +{}) on dim {} is outside {}", path,
                        name, offset, t.size(dim), dim, fmt::join(global_shape, "x"));
        g.narrow(dim, offset, t.size(dim)).copy_(t);
      }
    }
  }
  return out;
}

namespace {
void load_into(const std::string& dir, const std::string& kind, const std::string& prefix,
               const std::vector<ParamInfo>& infos, std::vector<torch::Tensor> targets) {
  auto globals = load_global_tensors(dir, kind);
  std::map<std::string, torch::Tensor> by_name(globals.begin(), globals.end());
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < infos.size(); ++i) {
    const std::string name = prefix + infos[i].name;
    auto it = by_name.find(name);
    if (it == by_name.end())
      CONFLUX_THROW(DataError, "{}: checkpoint has no tensor '{}'", dir, name);
    if (it->second.sizes().vec() != infos[i].spec.global_shape)
      CONFLUX_THROW(DataError, "{}: tensor '{}' has global shape {} but the model expects {}", dir,
                    name, fmt::join(it->second.sizes().vec(), "x"),
                    fmt::join(infos[i].spec.global_shape, "x"));
    targets[i].copy_(local_slice(it->second, infos[i].spec, targets[i].sizes().vec()));
  }
}
}  // namespace

void load_model(const std::string& dir, GptImpl& model) {
  auto infos = model.param_infos();
  std::vector<torch::Tensor> targets;
  for (auto& p : infos) targets.push_back(p.tensor);
  load_into(dir, "model", "", infos, targets);
}

void load_optimizer(const std::string& dir, AdamW& optimizer) {
  load_into(dir, "optim", "exp_avg.", optimizer.params(), optimizer.exp_avg());
  load_into(dir, "optim", "exp_avg_sq.", optimizer.params(), optimizer.exp_avg_sq());
  nlohmann::json j = read_json(fs::path(dir) / "trainer_state.json");
  optimizer.set_steps(j.value("optimizer_step", int64_t{0}));
}

}  // namespace conflux::trainer
