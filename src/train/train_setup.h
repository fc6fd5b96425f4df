// Setup shared by the training commands (`tulu sft`, `tulu dpo`): input checks, the
// checkpoint to resume from, and loading a model's fp32 master weights.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "llama/config.h"
#include "train/param_set.h"

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

}  // namespace tulu
