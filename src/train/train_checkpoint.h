// Saving and restoring training output in Hugging Face layout.
//
// A model directory (the final output, and inside every checkpoint): config.json
// (llama_config_to_json), generation_config.json and the tokenizer files (tokenizer.json,
// tokenizer.model, tokenizer_config.json, special_tokens_map.json) copied from the source
// model directory when it has them, and model.safetensors with every parameter in its stored
// dtype (fp32 master weights rounded to nearest even for BF16/F16). Loads in `tulu` and in
// transformers unchanged.
//
// A model directory also gets: generation_config.json / tokenizer files only when present in
// source_model_dir (skipped when it is empty, not a directory, or dir itself); a stale
// model.safetensors.index.json (and the shards it names) from an earlier save is removed,
// since loaders prefer it over model.safetensors. config.json's torch_dtype is the stored
// dtype of the first parameter (the embedding), as transformers records it.
//
// A training checkpoint OUT/checkpoint-<step>/ adds what --resume needs:
//   training_state.safetensors  fp32 "master.<name>", "exp_avg.<name>", "exp_avg_sq.<name>"
//                               (all masters, then all first moments, then second moments)
//   trainer_state.json          {"format_version": 1, "global_step", "epoch",
//                               "micro_batch_in_epoch", "optimizer_step" (AdamW::step()),
//                               "adamw": {beta1, beta2, eps, weight_decay} (informational),
//                               "run", "extra"}
// It is built in OUT/.checkpoint-<step>.tmp-<pid> (files fsync'ed, then the directory),
// renamed to OUT/checkpoint-<step> (an existing one is removed first) and OUT fsync'ed, so a
// crash leaves either the complete checkpoint or none (plus, at worst, a leftover .tmp
// directory, which find_latest_checkpoint ignores and the next save removes once its
// process is gone).
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
  int64_t global_step = 0;           // optimizer steps done
  int64_t epoch = 0;                 // epoch of the next micro-batch
  int64_t micro_batch_in_epoch = 0;  // index of the next micro-batch in that epoch's plan
  Json run;                          // options that must match on resume (seed, batch size,
                                     // data file, …); compared key by key on load
  Json extra;                        // free-form (e.g. last loss), written as is
};

// Writes OUT/checkpoint-<global_step>/ atomically (temporary dir + rename); replaces an
// existing directory of that name. Returns its path.
std::string save_training_checkpoint(const std::string& out_dir, const LlamaConfig& config,
                                     const ParamLayout& layout, const float* params,
                                     const AdamW& optimizer, const TrainerState& state,
                                     const std::string& source_model_dir);

// Restores params, the optimizer (moments, step) and state from a checkpoint directory.
// Errors name the file and tensor (missing, wrong shape, wrong dtype, unexpected tensor) or
// the trainer_state.json field. If state.run is a non-empty object on entry, it must equal
// the checkpoint's run key by key (a mismatch names the key and both values). Nothing is
// written to params / optimizer / state unless the whole checkpoint is valid.
void load_training_checkpoint(const std::string& checkpoint_dir, const ParamLayout& layout,
                              float* params, AdamW& optimizer, TrainerState& state);

// The checkpoint-<N> directory (N decimal digits) with the largest N in out_dir; empty when
// there is none or out_dir does not exist. Other names (.checkpoint-N.tmp-PID) are ignored.
std::string find_latest_checkpoint(const std::string& out_dir);

}  // namespace tulu
