// Checkpoint directories (see checkpoint.h).
#include "conflux/trainer/checkpoint.h"

#include "conflux/core/atomic_file.h"
#include "conflux/core/communicator.h"
#include "conflux/core/error.h"
#include "conflux/core/log.h"
#include "conflux/trainer/safetensors.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;

namespace conflux::trainer {
namespace {

std::string shard_json(const ShardSpec& s) {
  nlohmann::json j = {{"global_shape", s.global_shape}, {"dim", s.dim}, {"offset", s.offset}};
  return j.dump();
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

std::string save_checkpoint(const std::string& root, const TrainerState& state, GptImpl& model,
                            AdamW* optimizer, const Lineage& lineage, Communicator* world,
                            int dp_rank, int keep_last) {
  const int rank = world ? world->rank() : 0;
  const fs::path final_dir = fs::path(root) / checkpoint_dir_name(state.step);
  const fs::path tmp_dir = fs::path(root) / (std::string(kCheckpointLeftoverPrefix) + checkpoint_dir_name(state.step));
  if (rank == 0) {
    fs::create_directories(root);
    remove_checkpoint_leftovers(root);
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
    write_file_atomic((tmp_dir / "trainer_state.json").string(),
                      trainer_state_text(state, optimizer ? optimizer->steps() : 0));
    write_file_atomic((tmp_dir / "lineage.json").string(), lineage_text(lineage));
  }
  barrier(world);
  if (rank == 0) {
    publish_directory(tmp_dir.string(), final_dir.string());
    // An old step directory is first renamed to a leftover name, so a crash while deleting it
    // never leaves a partly deleted directory that still looks complete.
    auto all = list_checkpoints(root);
    for (size_t i = 0; keep_last > 0 && i + static_cast<size_t>(keep_last) < all.size(); ++i) {
      const fs::path doomed = fs::path(root) / (std::string(kCheckpointLeftoverPrefix) + "old-" + fs::path(all[i]).filename().string());
      fs::rename(all[i], doomed);
      fs::remove_all(doomed);
    }
  }
  barrier(world);
  return final_dir.string();
}

namespace {

// The "shard.<name>" metadata of one tensor of `path`, checked against the tensor it describes.
ShardSpec parse_shard(const std::string& text, const std::string& path, const std::string& name,
                      const torch::Tensor& t) {
  ShardSpec spec;
  try {
    const nlohmann::json j = nlohmann::json::parse(text);
    spec.global_shape = j.at("global_shape").get<std::vector<int64_t>>();
    spec.dim = j.at("dim").get<int64_t>();
    spec.offset = j.at("offset").get<int64_t>();
  } catch (const nlohmann::json::exception& e) {
    CONFLUX_THROW(DataError, "{}: tensor '{}': metadata 'shard.{}' is malformed: {}", path, name, name, e.what());
  }
  const auto local = t.sizes().vec();
  bool ok = std::all_of(spec.global_shape.begin(), spec.global_shape.end(), [](int64_t d) { return d >= 0; });
  if (spec.dim < 0) {
    ok = ok && spec.global_shape == local;
  } else {
    ok = ok && spec.global_shape.size() == local.size() && spec.dim < t.dim() && spec.offset >= 0 &&
         spec.offset + local[spec.dim] <= spec.global_shape[spec.dim];
    for (int64_t d = 0; ok && d < t.dim(); ++d)
      ok = d == spec.dim || spec.global_shape[d] == local[d];
  }
  if (!ok)
    CONFLUX_THROW(DataError, "{}: tensor '{}' of shape {} does not fit its shard metadata {}", path,
                  name, fmt::join(local, "x"), text);
  return spec;
}

void check_finite(const torch::Tensor& t, const std::string& path, const std::string& name,
                  NonFinite policy) {
  if (!t.is_floating_point()) return;
  const int64_t bad = t.numel() - torch::isfinite(t).sum().item<int64_t>();
  if (bad == 0) return;
  if (policy == NonFinite::Reject)
    CONFLUX_THROW(DataError, "{}: tensor '{}' has {} non-finite value(s) (NaN or Inf): the "
                  "checkpoint is corrupt or training diverged", path, name, bad);
  log::warn("LOADING NON-FINITE WEIGHTS: {}: tensor '{}' has {} NaN/Inf value(s); results computed "
            "from this checkpoint are meaningless", path, name, bad);
}

}  // namespace

std::vector<std::pair<std::string, torch::Tensor>> load_global_tensors(const std::string& dir,
                                                                      const std::string& kind,
                                                                      NonFinite non_finite) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  std::map<std::string, size_t> index;
  for (const auto& path : files_of(dir, kind)) {
    SafetensorsFile f = read_safetensors(path);
    for (const auto& [name, t] : f.tensors) {
      check_finite(t, path, name, non_finite);
      auto mit = f.metadata.find("shard." + name);
      if (mit == f.metadata.end())
        CONFLUX_THROW(DataError, "{}: tensor '{}' has no shard metadata", path, name);
      const ShardSpec spec = parse_shard(mit->second, path, name, t);
      auto it = index.find(name);
      if (it == index.end()) {
        index[name] = out.size();
        out.emplace_back(name, spec.dim < 0 ? t : torch::zeros(spec.global_shape, t.options()));
        it = index.find(name);
      }
      torch::Tensor& g = out[it->second].second;
      if (g.sizes().vec() != spec.global_shape || g.scalar_type() != t.scalar_type())
        CONFLUX_THROW(DataError, "{}: tensor '{}' global shape or dtype differs between tp files", path, name);
      if (spec.dim >= 0) g.narrow(spec.dim, spec.offset, t.size(spec.dim)).copy_(t);
    }
  }
  return out;
}

namespace {
void load_into(const std::string& dir, const std::string& kind, const std::string& prefix,
               const std::vector<ParamInfo>& infos, std::vector<torch::Tensor> targets,
               NonFinite non_finite = NonFinite::Reject) {
  auto globals = load_global_tensors(dir, kind, non_finite);
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

void load_model(const std::string& dir, GptImpl& model, NonFinite non_finite) {
  auto infos = model.param_infos();
  std::vector<torch::Tensor> targets;
  for (auto& p : infos) targets.push_back(p.tensor);
  load_into(dir, "model", "", infos, targets, non_finite);
}

void load_optimizer(const std::string& dir, AdamW& optimizer) {
  load_into(dir, "optim", "exp_avg.", optimizer.params(), optimizer.exp_avg());
  load_into(dir, "optim", "exp_avg_sq.", optimizer.params(), optimizer.exp_avg_sq());
  optimizer.set_steps(load_optimizer_step(dir));
}

}  // namespace conflux::trainer
