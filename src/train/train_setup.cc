#include "train/train_setup.h"

#include <cinttypes>
#include <cstdio>
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

AdamWOptions adamw_options(const SftOptions& options) {
  AdamWOptions adam;
  adam.beta1 = options.adam_beta1;
  adam.beta2 = options.adam_beta2;
  adam.eps = options.adam_eps;
  adam.weight_decay = options.weight_decay;
  return adam;
}

RunStart start_or_resume_run(const std::string& output_dir, const std::string& resume_dir,
                             const ParamLayout& layout, float* params, AdamW& optimizer, Json run,
                             int64_t total_steps) {
  RunStart start;
  start.state.run = std::move(run);
  std::error_code ec;
  std::filesystem::create_directories(output_dir, ec);
  TULU_CHECK(!ec, "--output: cannot create '", output_dir, "': ", ec.message());
  start.metrics_path = join_path(output_dir, "metrics.jsonl");
  if (resume_dir.empty()) {
    start.metrics = std::make_unique<MetricsLog>(MetricsLog::create(start.metrics_path));
    return start;
  }
  TrainerState saved;
  load_training_checkpoint(resume_dir, layout, params, optimizer, saved);
  check_sft_run_fingerprint(saved.run, start.state.run, resume_dir);
  TULU_CHECK(saved.global_step <= total_steps, resume_dir, ": checkpoint step ", saved.global_step,
             " is past this run's last step ", total_steps);
  saved.run = start.state.run;
  start.state = saved;
  if (start.state.extra.is_object()) {
    start.num_tokens = json_opt_int(start.state.extra, "num_tokens", resume_dir).value_or(0);
    start.last_loss = json_opt_number(start.state.extra, "loss", resume_dir).value_or(0.0);
  }
  start.metrics = std::make_unique<MetricsLog>(
      MetricsLog::resume(start.metrics_path, start.state.global_step));
  std::printf("resuming from %s: step %" PRId64 " of %" PRId64 " (epoch %" PRId64
              ", micro-batch %" PRId64 "), %" PRId64 " metrics rows kept\n",
              resume_dir.c_str(), start.state.global_step, total_steps, start.state.epoch,
              start.state.micro_batch_in_epoch, start.metrics->kept_rows());
  std::fflush(stdout);
  return start;
}

int train_and_save(const SftOptions& options, const std::string& resume_dir,
                   LoadedTrainModel& loaded, Json run, int64_t total_steps, const TrainLoop& loop) {
  AdamW optimizer(*loaded.layout, adamw_options(options));
  RunStart start = start_or_resume_run(options.output_dir, resume_dir, *loaded.layout,
                                       loaded.params.data(), optimizer, std::move(run),
                                       total_steps);
  const double last_loss =
      loop(start.state, optimizer, start.num_tokens, start.last_loss, *start.metrics);
  save_hf_model(options.output_dir, loaded.config, *loaded.layout, loaded.params.data(),
                options.model_dir);
  std::printf("trained %" PRId64 " steps (last loss %.4f); wrote the model to %s, metrics to %s\n",
              start.state.global_step, last_loss, options.output_dir.c_str(),
              start.metrics_path.c_str());
  return 0;
}

}  // namespace tulu
