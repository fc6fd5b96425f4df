// Saving and restoring training output in Hugging Face layout.
//
// A model directory (the final output, and inside every checkpoint): config.json
// (llama_config_to_json), generation_config.json and the tokenizer files (tokenizer.json,
// tokenizer.model, tokenizer_config.json, special_tokens_map.json) copied from the source
// model directory when it has them, and model.safetensors with every parameter in its stored
// dtype (fp32 master weights rounded to nearest even for BF16/F16). Loads in `tulu` and in
// transformers unchanged.
//
// A training checkpoint OUT/checkpoint-<step>/ adds what --resume needs:
//   training_state.safetensors  fp32 "master.<name>", "exp_avg.<name>", "exp_avg_sq.<name>"
//   trainer_state.json          step, epoch, position in the epoch, optimizer step, options
//                               fingerprint (see TrainerState)
// It is built in a temporary sibling directory (files fsync'ed) and renamed into place, so a
// crash leaves either the complete checkpoint or none.
#pragma once

#include <cstdint>
#include <string>

#include "core/json.h"
#include "llama/config.h"
#include "train/optimizer.h"
#include "train/param_set.h"

namespace tulu {

// Writes the model files into dir (created if needed; each file written atomically).
void save_hf_model(const std::string& dir, const LlamaConfig& config, const ParamLayout& layout,
                   const float* params, const std::string& source_model_dir);

struct TrainerState {
  int64_t global_step = 0;          // optimizer steps done
  int64_t epoch = 0;                // epoch of the next micro-batch
  int64_t micro_batch_in_epoch = 0; // index of the next micro-batch in that epoch's plan
  Json run;                         // options that must match on resume (seed, batch size,
                                    // data file, …); compared key by key on load
  Json extra;                       // free-form (e.g. last loss), written as is
};

// Writes OUT/checkpoint-<global_step>/ atomically (temporary dir + rename); replaces an
// existing directory of that name. Returns its path.
std::string save_training_checkpoint(const std::string& out_dir, const LlamaConfig& config,
                                     const ParamLayout& layout, const float* params,
                                     const AdamW& optimizer, const TrainerState& state,
                                     const std::string& source_model_dir);

// Restores params, the optimizer (moments, step) and state from a checkpoint directory.
// Errors name the file and tensor (missing, wrong shape, wrong dtype).
void load_training_checkpoint(const std::string& checkpoint_dir, const ParamLayout& layout,
                              float* params, AdamW& optimizer, TrainerState& state);

// The checkpoint-<N> directory with the largest N in out_dir; empty when there is none.
std::string find_latest_checkpoint(const std::string& out_dir);

}  // namespace tulu
