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
  app.add_option("--epochs", o->epochs, "training epochs")->capture_default_str();
  app.add_option("--lr", o->lr, "peak learning rate")->capture_default_str();
  app.add_option("--lr-scheduler", o->lr_schedule, "linear, cosine or constant (after warm-up)")
      ->capture_default_str();
  app.add_option("--warmup-ratio", o->warmup_ratio, "warm-up steps as a fraction of all steps")
      ->capture_default_str();
  app.add_option("--warmup-steps", o->warmup_steps, "warm-up steps (overrides --warmup-ratio)");
  app.add_option("--batch-size", o->batch_size, "sequences per micro-batch")->capture_default_str();
  app.add_option("--grad-accum", o->grad_accum,
                 "micro-batches per optimizer step (default: --effective-batch / --batch-size)");
  app.add_option("--effective-batch", o->effective_batch,
                 "sequences per optimizer step when --grad-accum is not given (clamped to an "
                 "epoch's data)")
      ->capture_default_str();
  app.add_option("--max-seq-length", o->max_seq_length, "tokens per example (longer: truncated)")
      ->capture_default_str();
  app.add_option("--max-steps", o->max_steps,
                 "train exactly this many optimizer steps (replaces --epochs; the schedule "
                 "spans them)");
  app.add_option("--weight-decay", o->weight_decay, "AdamW weight decay (not on norms)")
      ->capture_default_str();
  app.add_option("--clip", o->clip, "clip the gradient's global norm to this (<= 0: off)")
      ->capture_default_str();
  app.add_option("--adam-beta1", o->adam_beta1, "AdamW beta1")->capture_default_str();
  app.add_option("--adam-beta2", o->adam_beta2, "AdamW beta2")->capture_default_str();
  app.add_option("--adam-eps", o->adam_eps, "AdamW epsilon")->capture_default_str();
  app.add_option("--seed", o->seed, "seed of the data order")->capture_default_str();
  app.add_option("--save-every", o->save_every,
                 "write a resumable checkpoint every N optimizer steps (0 = none)")
      ->capture_default_str();
  app.add_option("--save-total-limit", o->save_total_limit,
                 "keep only the newest N checkpoints (0 = keep all)")
      ->capture_default_str();
  app.add_option("--eval-every", o->eval_every,
                 "evaluate every N optimizer steps (0 = at the end of each epoch)")
      ->capture_default_str();
  app.add_flag("--resume", o->resume, "continue from the newest checkpoint in --output");
  app.add_option("--resume-from", o->resume_from, "continue from this checkpoint directory");
  app.add_flag("--length-buckets", o->length_buckets,
               "batch examples of similar length together (less padding work)");
  app.add_flag("--checkpoint-activations", o->checkpoint_activations,
               "keep only each layer's input and recompute the layer in the backward pass");
  app.add_flag("--skip-bad-rows", o->skip_bad_rows,
               "skip malformed data rows (counted) instead of stopping");
  app.add_option("--dump-grads", o->dump_grads_path,
                 "write the first step's gradient to FILE.safetensors (+ FILE.batch.json, the "
                 "rows) and exit without training");
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
