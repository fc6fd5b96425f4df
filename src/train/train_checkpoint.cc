// Training checkpoints: OUT/checkpoint-<N>/ = model files + training_state.safetensors +
// trainer_state.json, written in a temporary sibling and renamed into place.
#include "train/train_checkpoint.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "core/file_io.h"
#include "llama/checkpoint.h"
#include "llama/tensor_store.h"

namespace tulu {

namespace {

constexpr const char* kStateFile = "training_state.safetensors";
constexpr const char* kTrainerStateFile = "trainer_state.json";
constexpr int kFormatVersion = 1;
// Tensor name prefixes in training_state.safetensors, in file order.
constexpr const char* kMaster = "master.";
constexpr const char* kExpAvg = "exp_avg.";
constexpr const char* kExpAvgSq = "exp_avg_sq.";

void fsync_dir(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  TULU_CHECK(fd >= 0, "cannot open directory '", path, "' for fsync: ", std::strerror(errno));
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  // Some filesystems refuse fsync on directories (EINVAL); the rename is atomic regardless.
  TULU_CHECK(rc == 0 || err == EINVAL, "fsync of '", path, "' failed: ", std::strerror(err));
}

// "checkpoint-<digits>" → N; -1 for any other name.
int64_t checkpoint_number(const std::string& name) {
  static const std::string prefix = "checkpoint-";
  if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) return -1;
  const char* first = name.data() + prefix.size();
  const char* last = name.data() + name.size();
  if (last - first > 18) return -1;
  int64_t value = 0;
  auto [ptr, ec] = std::from_chars(first, last, value);
  if (ec != std::errc() || ptr != last || *first == '-' || *first == '+') return -1;
  return value;
}

// Removes OUT/.checkpoint-<N>.tmp-<pid> directories left by a process that crashed mid-save
// (its pid no longer exists); a live process's temporary directory is left alone.
void remove_dead_temporaries(const std::string& out_dir) {
  std::error_code ec;
  std::filesystem::directory_iterator it(out_dir, ec);
  if (ec) return;
  for (const auto& entry : it) {
    const std::string name = entry.path().filename().string();
    const size_t tag = name.rfind(".tmp-");
    if (name.rfind(".checkpoint-", 0) != 0 || tag == std::string::npos) continue;
    int64_t pid = 0;
    const char* first = name.data() + tag + 5;
    const char* last = name.data() + name.size();
    auto [ptr, parse_ec] = std::from_chars(first, last, pid);
    if (parse_ec != std::errc() || ptr != last || pid <= 0 || pid > INT32_MAX) continue;
    if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;
    std::filesystem::remove_all(entry.path(), ec);
  }
}

void write_training_state(const std::string& path, const ParamLayout& layout, const float* params,
                          const AdamW& optimizer) {
  const float* sources[3] = {params, optimizer.exp_avg().data(), optimizer.exp_avg_sq().data()};
  const char* prefixes[3] = {kMaster, kExpAvg, kExpAvgSq};
  std::vector<TensorSpecToWrite> specs;
  for (const char* prefix : prefixes) {
    for (const ParamEntry& e : layout.entries())
      specs.push_back({prefix + e.name, DType::F32, e.shape});
  }
  const size_t count = layout.entries().size();
  write_safetensors_streamed(
      path, specs,
      [&](size_t i, void* out) {
        const ParamEntry& e = layout.entries()[i % count];
        std::memcpy(out, sources[i / count] + e.offset, e.numel * sizeof(float));
      },
      {{"format", "pt"},
       {"content", "tulu training state: fp32 master weights and AdamW moments"}});
}

Json trainer_state_json(const TrainerState& state, const AdamW& optimizer) {
  const AdamWOptions& o = optimizer.options();
  Json json = {
      {"format_version", kFormatVersion},
      {"global_step", state.global_step},
      {"epoch", state.epoch},
      {"micro_batch_in_epoch", state.micro_batch_in_epoch},
      {"optimizer_step", optimizer.step()},
      {"adamw",
       {{"beta1", o.beta1}, {"beta2", o.beta2}, {"eps", o.eps}, {"weight_decay", o.weight_decay}}},
      {"run", state.run.is_null() ? Json::object() : state.run},
      {"extra", state.extra.is_null() ? Json::object() : state.extra},
  };
  return json;
}

// The run options saved in a checkpoint must equal the current ones, key by key.
void check_run_matches(const Json& saved, const Json& current, const std::string& source) {
  TULU_CHECK(saved.is_object(), source, ": field 'run': expected an object, got ",
             json_preview(saved));
  for (const auto& [key, value] : current.items()) {
    TULU_CHECK(saved.contains(key), source, ": the checkpoint has no run option '", key,
               "' (it was written by a different configuration); cannot resume");
    TULU_CHECK(saved[key] == value, source, ": run option '", key, "' was ",
               json_preview(saved[key]), " when the checkpoint was written, now ",
               json_preview(value), "; resume with the same value or start a new run");
  }
  for (const auto& [key, value] : saved.items()) {
    TULU_CHECK(current.contains(key), source, ": the checkpoint has run option '", key,
               "' = ", json_preview(value), " that this run does not set; cannot resume");
  }
}

int64_t nonnegative(const Json& json, const char* key, const std::string& source) {
  const int64_t value = json_int(json, key, source);
  TULU_CHECK(value >= 0, source, ": field '", key, "': expected an integer >= 0, got ", value);
  return value;
}

}  // namespace

std::string save_training_checkpoint(const std::string& out_dir, const LlamaConfig& config,
                                     const ParamLayout& layout, const float* params,
                                     const AdamW& optimizer, const TrainerState& state,
                                     const std::string& source_model_dir) {
  TULU_CHECK(state.global_step >= 0, "checkpoint: global step must be >= 0, got ",
             state.global_step);
  TULU_CHECK(optimizer.exp_avg().size() == layout.total() &&
                 optimizer.exp_avg_sq().size() == layout.total(),
             "checkpoint: optimizer state has ", optimizer.exp_avg().size(), " values, layout ",
             layout.total());
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  TULU_CHECK(!ec && is_directory(out_dir), "cannot create output directory '", out_dir,
             "': ", ec.message());
  const std::string name = str_cat("checkpoint-", state.global_step);
  const std::string final_dir = join_path(out_dir, name);
  const std::string tmp_dir = join_path(out_dir, str_cat(".", name, ".tmp-", ::getpid()));
  std::filesystem::remove_all(tmp_dir, ec);
  remove_dead_temporaries(out_dir);
  try {
    std::filesystem::create_directories(tmp_dir, ec);
    TULU_CHECK(!ec, "cannot create '", tmp_dir, "': ", ec.message());
    // Each file below is written to a temporary name, fsync'ed and renamed (by the writers).
    save_hf_model(tmp_dir, config, layout, params, source_model_dir);
    write_training_state(join_path(tmp_dir, kStateFile), layout, params, optimizer);
    write_file_atomic(join_path(tmp_dir, kTrainerStateFile),
                      trainer_state_json(state, optimizer).dump(2) + "\n");
    fsync_dir(tmp_dir);
    if (std::filesystem::exists(final_dir, ec)) {
      std::filesystem::remove_all(final_dir, ec);
      TULU_CHECK(!ec, "cannot replace '", final_dir, "': ", ec.message());
    }
    TULU_CHECK(std::rename(tmp_dir.c_str(), final_dir.c_str()) == 0, "cannot rename '", tmp_dir,
               "' to '", final_dir, "': ", std::strerror(errno));
    fsync_dir(out_dir);
  } catch (...) {
    std::filesystem::remove_all(tmp_dir, ec);
    throw;
  }
  return final_dir;
}

void load_training_checkpoint(const std::string& checkpoint_dir, const ParamLayout& layout,
                              float* params, AdamW& optimizer, TrainerState& state) {
  TULU_CHECK(is_directory(checkpoint_dir), "checkpoint '", checkpoint_dir, "' is not a directory");
  const std::string state_json_path = join_path(checkpoint_dir, kTrainerStateFile);
  const std::string tensors_path = join_path(checkpoint_dir, kStateFile);
  TULU_CHECK(file_exists(state_json_path), "checkpoint '", checkpoint_dir, "': missing ",
             kTrainerStateFile, " (not a training checkpoint, or an incomplete copy)");
  TULU_CHECK(file_exists(tensors_path), "checkpoint '", checkpoint_dir, "': missing ", kStateFile,
             " (not a training checkpoint, or an incomplete copy)");

  // Everything is validated before anything is written to the outputs.
  const Json json = read_json_file(state_json_path);
  const std::string& src = state_json_path;
  TULU_CHECK(json.is_object(), src, ": expected a JSON object, got ", json_preview(json));
  const int64_t version = json_int(json, "format_version", src);
  TULU_CHECK(version == kFormatVersion, src, ": field 'format_version': expected ", kFormatVersion,
             ", got ", version);
  TrainerState loaded;
  loaded.global_step = nonnegative(json, "global_step", src);
  loaded.epoch = nonnegative(json, "epoch", src);
  loaded.micro_batch_in_epoch = nonnegative(json, "micro_batch_in_epoch", src);
  const int64_t optimizer_step = nonnegative(json, "optimizer_step", src);
  TULU_CHECK(json.contains("run"), src, ": field 'run' is missing");
  TULU_CHECK(json.contains("extra"), src, ": field 'extra' is missing");
  loaded.run = json["run"];
  loaded.extra = json["extra"];
  if (state.run.is_object() && !state.run.empty()) check_run_matches(loaded.run, state.run, src);

  TensorStore store;
  read_safetensors(tensors_path, store);
  const char* prefixes[3] = {kMaster, kExpAvg, kExpAvgSq};
  std::vector<const float*> sources;
  size_t expected_count = 0;
  for (const char* prefix : prefixes) {
    for (const ParamEntry& e : layout.entries()) {
      const std::string name = prefix + e.name;
      ++expected_count;
      TULU_CHECK(store.contains(name), tensors_path, ": missing tensor '", name, "'");
      const TensorView& view = store.get(name).view;
      TULU_CHECK(view.dtype == DType::F32, tensors_path, ": tensor '", name,
                 "': expected dtype F32, file has ", dtype_name(view.dtype));
      TULU_CHECK(view.shape == e.shape, tensors_path, ": tensor '", name, "': expected shape ",
                 shape_to_string(e.shape), ", file has ", shape_to_string(view.shape));
      sources.push_back(view.f32());
    }
  }
  if (store.size() != expected_count) {
    for (const auto& [name, t] : store.tensors()) {
      bool known = false;
      for (const char* prefix : prefixes) {
        const std::string p = prefix;
        if (name.compare(0, p.size(), p) == 0) {
          for (const ParamEntry& e : layout.entries()) known = known || name == p + e.name;
        }
      }
      TULU_CHECK(known, tensors_path, ": unexpected tensor '", name,
                 "' (the checkpoint belongs to a model with a different configuration)");
    }
  }
  TULU_CHECK(optimizer.exp_avg().size() == layout.total() &&
                 optimizer.exp_avg_sq().size() == layout.total(),
             "checkpoint: optimizer state has ", optimizer.exp_avg().size(), " values, layout ",
             layout.total());

  const size_t count = layout.entries().size();
  float* targets[3] = {params, optimizer.exp_avg().data(), optimizer.exp_avg_sq().data()};
  for (size_t i = 0; i < sources.size(); ++i) {
    const ParamEntry& e = layout.entries()[i % count];
    std::memcpy(targets[i / count] + e.offset, sources[i], e.numel * sizeof(float));
  }
  optimizer.set_step(optimizer_step);
  state = std::move(loaded);
}

std::string find_latest_checkpoint(const std::string& out_dir) {
  if (!is_directory(out_dir)) return {};
  std::error_code ec;
  std::filesystem::directory_iterator it(out_dir, ec);
  TULU_CHECK(!ec, "cannot list '", out_dir, "': ", ec.message());
  int64_t best = -1;
  std::string best_name;
  for (const auto& entry : it) {
    const std::string name = entry.path().filename().string();
    const int64_t n = checkpoint_number(name);
    if (n < 0 || !entry.is_directory(ec)) continue;
    if (n > best) {
      best = n;
      best_name = name;
    }
  }
  return best < 0 ? std::string() : join_path(out_dir, best_name);
}

}  // namespace tulu
