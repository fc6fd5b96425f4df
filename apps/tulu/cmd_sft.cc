// tulu sft: supervised fine-tuning (the Tulu 2 SFT recipe by default) of a Hugging Face
// model directory on JSON Lines data; writes the fine-tuned model (Hugging Face layout),
// metrics.jsonl and, with --save-every, resumable checkpoints into --output.
//
//   tulu sft -m MODEL --data train.jsonl -o OUT [--epochs 2 --lr 2e-5 --batch-size 1 ...]
//   tulu sft -m MODEL --data train.jsonl -o OUT --save-every 100 --resume   (continue)
//   tulu sft -m MODEL --data train.jsonl --dump-grads g.safetensors         (first gradient)
//
// Ranges are checked by validate_sft_options (tulu::Error naming the flag → exit 1).
#include <memory>

#include "command.h"
#include "train/sft_trainer.h"
#include "training_cli.h"

namespace tulu::cli {

namespace {

RunFunction setup(CLI::App& app) {
  auto o = std::make_shared<SftOptions>();
  auto model = std::make_shared<ModelOptions>();
  add_model_options(app, *model);
  app.add_option("--data", o->data_path,
                 "training data, JSON Lines: {\"messages\": [{\"role\", \"content\"}, ...]} "
                 "(Tulu format), {\"prompt\", \"completion\"} or {\"text\"} (pre-training)")
      ->required();
  app.add_option("-o,--output", o->output_dir,
                 "output directory: final model, metrics.jsonl, checkpoint-<step>/");
  app.add_option("--eval-data", o->eval_data_path, "evaluation data (same formats)");
  app.add_option("--max-seq-length", o->max_seq_length, "tokens per example (longer: truncated)")
      ->capture_default_str();
  add_training_loop_options(app, *o, "sequences");
  auto no_progress = std::make_shared<bool>(false);
  app.add_flag("--no-progress", *no_progress, "no progress line on stderr");
  return [o, model, no_progress] {
    o->progress = !*no_progress;
    o->model_dir = model->model_dir;
    o->threads = model->threads;
    return run_sft(*o);
  };
}

const bool registered = register_command(
    {"sft", "supervised fine-tuning (Tulu 2 SFT defaults): JSONL data -> fine-tuned model", 300,
     setup});

}  // namespace

}  // namespace tulu::cli
