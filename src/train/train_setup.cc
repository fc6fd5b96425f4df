#include "train/train_setup.h"

#include <filesystem>

#include "core/error.h"
#include "core/file_io.h"
#include "llama/gguf_llama.h"
#include "llama/model.h"
#include "train/sft_run.h"
#include "train/train_checkpoint.h"

namespace tulu {

namespace fs = std::filesystem;

void check_input_file(const std::string& path, const char* flag) {
  std::error_code ec;
  TULU_CHECK(fs::exists(path, ec), flag, ": no such file '", path, "'");
  TULU_CHECK(!fs::is_directory(path, ec), flag, ": '", path, "' is a directory, not a JSONL file");
}

std::string resolve_resume_checkpoint(const std::string& output_dir, bool resume,
                                      const std::string& resume_from) {
  if (!resume_from.empty()) {
    TULU_CHECK(is_directory(resume_from), "--resume-from: '", resume_from,
               "' is not a checkpoint directory");
    return resume_from;
  }
  if (resume) {
    const std::string latest = find_latest_checkpoint(output_dir);
    TULU_CHECK(!latest.empty(), "--resume: no checkpoint-<step> directory in '", output_dir,
               "' to resume from (checkpoints are written every --save-every steps)");
    return latest;
  }
  const std::vector<std::string> existing = list_checkpoints(output_dir);
  TULU_CHECK(existing.empty(), "--output '", output_dir, "' already holds ", existing.back(),
             " from an earlier run: pass --resume to continue it, or use another directory");
  return {};
}

LoadedTrainModel load_model_for_training(const std::string& model_dir, const char* flag) {
  TULU_CHECK(!find_gguf_model(model_dir).has_value(), flag, " '", model_dir,
             "' is a GGUF model; training needs a Hugging Face model directory with F32, BF16 "
             "or F16 weights (safetensors or pytorch_model.bin)");
  try {
    const std::unique_ptr<LlamaModel> model = LlamaModel::load(model_dir);
    LoadedTrainModel loaded;
    loaded.config = model->config();
    loaded.weight_format = model->weight_format();
    loaded.parameter_count = model->parameter_count();
    loaded.layout = std::make_unique<ParamLayout>(load_master_weights(*model, loaded.params));
    return loaded;  // the mapped checkpoint is released here: training reads the fp32 copy
  } catch (const Error& e) {
    if (std::string(flag) == "--model") throw;
    fail(flag, " '", model_dir, "': ", e.what());
  }
}

}  // namespace tulu
