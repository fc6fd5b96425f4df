#include "train/sft_run.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <utility>

#include "core/error.h"
#include "train/lr_schedule.h"

namespace tulu {

namespace fs = std::filesystem;

SftPlan resolve_sft_plan(const SftOptions& options, int64_t examples) {
  TULU_CHECK(examples > 0, "no training examples");
  SftPlan plan;
  plan.examples = examples;
  plan.micro_batches_per_epoch = (examples + options.batch_size - 1) / options.batch_size;
  const int64_t requested =
      options.grad_accum > 0 ? options.grad_accum
                             : std::max<int64_t>(1, options.effective_batch / options.batch_size);
  plan.grad_accum = std::min(requested, plan.micro_batches_per_epoch);
  plan.grad_accum_clamped = requested > plan.grad_accum;
  plan.steps_per_epoch = steps_per_epoch(plan.micro_batches_per_epoch, plan.grad_accum);
  plan.total_steps =
      options.max_steps > 0 ? options.max_steps : options.epochs * plan.steps_per_epoch;
  plan.warmup_steps = options.warmup_steps >= 0
                          ? options.warmup_steps
                          : warmup_steps_for(plan.total_steps, options.warmup_ratio);
  return plan;
}

Json sft_run_fingerprint(const SftOptions& options, const SftPlan& plan) {
  std::error_code ec;
  const fs::path data = fs::absolute(options.data_path, ec).lexically_normal();
  const auto data_bytes = fs::file_size(options.data_path, ec);
  return Json{
      {"data", data.string()},
      {"data-bytes", ec ? -1 : static_cast<int64_t>(data_bytes)},
      {"seed", options.seed},
      {"batch-size", options.batch_size},
      {"grad-accum", plan.grad_accum},
      {"epochs", options.epochs},
      {"max-steps", options.max_steps > 0 ? options.max_steps : -1},
      {"max-seq-length", options.max_seq_length},
      {"lr", options.lr},
      {"lr-scheduler", options.lr_schedule},
      {"warmup-steps", plan.warmup_steps},
      {"weight-decay", options.weight_decay},
      {"clip", options.clip},
      {"adam-beta1", options.adam_beta1},
      {"adam-beta2", options.adam_beta2},
      {"adam-eps", options.adam_eps},
      {"length-buckets", options.length_buckets},
      {"skip-bad-rows", options.skip_bad_rows},
  };
}

void check_sft_run_fingerprint(const Json& saved, const Json& current,
                               const std::string& checkpoint_dir) {
  TULU_CHECK(saved.is_object(), checkpoint_dir,
             ": trainer_state.json has no run options (not a `tulu sft` checkpoint?)");
  std::string differences;
  for (const auto& [key, value] : current.items()) {
    const auto it = saved.find(key);
    TULU_CHECK(it != saved.end(), checkpoint_dir, ": trainer_state.json lacks the run option '",
               key, "' (written by another version of tulu sft?)");
    if (*it == value) continue;
    if (!differences.empty()) differences += "; ";
    if (key == "data-bytes") {
      differences += str_cat("--data: the file changed size (", it->dump(), " bytes then, ",
                             value.dump(), " now)");
    } else {
      differences += str_cat("--", key, ": ", it->dump(), " then, ", value.dump(), " now");
    }
  }
  TULU_CHECK(differences.empty(), "cannot resume: the checkpoint in ", checkpoint_dir,
             " was trained with other options (", differences,
             "); resume with the same options or start a new run");
}

std::vector<std::string> list_checkpoints(const std::string& out_dir) {
  std::vector<std::pair<int64_t, std::string>> found;
  std::error_code ec;
  if (!fs::is_directory(out_dir, ec)) return {};
  for (const auto& entry : fs::directory_iterator(out_dir, ec)) {
    const std::string name = entry.path().filename().string();
    const std::string prefix = "checkpoint-";
    if (!name.starts_with(prefix) || name.size() == prefix.size() || !entry.is_directory()) {
      continue;
    }
    const std::string digits = name.substr(prefix.size());
    if (digits.size() > 18 ||
        !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      continue;
    }
    found.emplace_back(std::stoll(digits), entry.path().string());
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> paths;
  for (auto& [step, path] : found) paths.push_back(std::move(path));
  return paths;
}

void prune_checkpoints(const std::string& out_dir, int64_t keep) {
  if (keep <= 0) return;
  const std::vector<std::string> paths = list_checkpoints(out_dir);
  const auto excess = static_cast<int64_t>(paths.size()) - keep;
  for (int64_t i = 0; i < excess; ++i) {
    std::error_code ec;
    fs::remove_all(paths[static_cast<size_t>(i)], ec);
    TULU_CHECK(!ec, "cannot remove old checkpoint '", paths[static_cast<size_t>(i)],
               "': ", ec.message());
  }
}

}  // namespace tulu
