// Setup shared by the training commands (`tulu sft`, `tulu dpo`): input checks, the
// checkpoint to resume from, and loading a model's fp32 master weights.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/json.h"
#include "llama/config.h"
#include "train/metrics_log.h"
#include "train/optimizer.h"
#include "train/param_set.h"
#include "train/sft_trainer.h"
#include "train/train_checkpoint.h"

namespace tulu {

// Throws tulu::Error naming `flag` when path does not exist or is a directory.
void check_input_file(const std::string& path, const char* flag);

// The checkpoint to resume from (empty for a fresh run): resume_from when given, else with
// `resume` the latest OUT/checkpoint-N. A fresh run refuses an output directory that already
// holds checkpoints: resuming later would pick up the old run's.
std::string resolve_resume_checkpoint(const std::string& output_dir, bool resume,
                                      const std::string& resume_from);

struct LoadedTrainModel {
  LlamaConfig config;
  std::unique_ptr<ParamLayout> layout;  // stable address: AdamW keeps a reference
  std::vector<float> params;            // fp32 master weights, layout order
  std::string weight_format;
  int64_t parameter_count = 0;
};

// Loads a Hugging Face model directory's weights as fp32 masters (GGUF and quantized
// weights are refused: training needs F32/BF16/F16). `flag` names the option in errors.
LoadedTrainModel load_model_for_training(const std::string& model_dir,
                                         const char* flag = "--model");

// AdamW settings from the training options (betas, eps, weight decay).
AdamWOptions adamw_options(const SftOptions& options);

// Where a run starts: its trainer state, counters and open metrics log.
struct RunStart {
  TrainerState state;
  int64_t num_tokens = 0;  // target tokens trained so far
  double last_loss = 0;
  std::string metrics_path;  // OUT/metrics.jsonl
  std::unique_ptr<MetricsLog> metrics;
};

// Creates output_dir and a fresh metrics.jsonl; or, when resume_dir is set, restores params
// and the optimizer from that checkpoint, checks its run fingerprint equals `run` (error
// naming every differing option) and its step is ≤ total_steps, keeps the metrics rows up to
// its step, and prints where the run resumes.
RunStart start_or_resume_run(const std::string& output_dir, const std::string& resume_dir,
                             const ParamLayout& layout, float* params, AdamW& optimizer, Json run,
                             int64_t total_steps);

// A trainer's loop from `state` on: returns the last step's loss. num_tokens and last_loss
// are where the run starts (0 or the resumed checkpoint's values).
using TrainLoop = std::function<double(TrainerState& state, AdamW& optimizer, int64_t num_tokens,
                                       double last_loss, MetricsLog& metrics)>;

// The part every trainer shares after its setup: AdamW from the options, a fresh start or
// the resume from resume_dir (start_or_resume_run), the loop, the final model written to
// options.output_dir (save_hf_model, config and tokenizer files taken from
// options.model_dir) and the closing summary line. Returns 0.
int train_and_save(const SftOptions& options, const std::string& resume_dir,
                   LoadedTrainModel& loaded, Json run, int64_t total_steps, const TrainLoop& loop);

}  // namespace tulu
