// The shared training options (training_cli.h).
#include "training_cli.h"

#include "core/error.h"

namespace tulu::cli {

void add_training_loop_options(CLI::App& app, SftOptions& o, const char* unit) {
  app.add_option("--epochs", o.epochs, "training epochs")->capture_default_str();
  app.add_option("--lr", o.lr, "peak learning rate")->capture_default_str();
  app.add_option("--lr-scheduler", o.lr_schedule, "linear, cosine or constant (after warm-up)")
      ->capture_default_str();
  app.add_option("--warmup-ratio", o.warmup_ratio, "warm-up steps as a fraction of all steps")
      ->capture_default_str();
  app.add_option("--warmup-steps", o.warmup_steps, "warm-up steps (overrides --warmup-ratio)");
  app.add_option("--batch-size", o.batch_size, str_cat(unit, " per micro-batch"))
      ->capture_default_str();
  app.add_option("--grad-accum", o.grad_accum,
                 "micro-batches per optimizer step (default: --effective-batch / --batch-size)");
  app.add_option("--effective-batch", o.effective_batch,
                 str_cat(unit,
                         " per optimizer step when --grad-accum is not given (clamped to an "
                         "epoch's data)"))
      ->capture_default_str();
  app.add_option("--max-steps", o.max_steps,
                 "train exactly this many optimizer steps (replaces --epochs; the schedule "
                 "spans them)");
  app.add_option("--weight-decay", o.weight_decay, "AdamW weight decay (not on norms)")
      ->capture_default_str();
  app.add_option("--clip", o.clip, "clip the gradient's global norm to this (<= 0: off)")
      ->capture_default_str();
  app.add_option("--adam-beta1", o.adam_beta1, "AdamW beta1")->capture_default_str();
  app.add_option("--adam-beta2", o.adam_beta2, "AdamW beta2")->capture_default_str();
  app.add_option("--adam-eps", o.adam_eps, "AdamW epsilon")->capture_default_str();
  app.add_option("--seed", o.seed, "seed of the data order")->capture_default_str();
  app.add_option("--save-every", o.save_every,
                 "write a resumable checkpoint every N optimizer steps (0 = none)")
      ->capture_default_str();
  app.add_option("--save-total-limit", o.save_total_limit,
                 "keep only the newest N checkpoints (0 = keep all)")
      ->capture_default_str();
  app.add_option("--eval-every", o.eval_every,
                 "evaluate every N optimizer steps (0 = at the end of each epoch)")
      ->capture_default_str();
  app.add_flag("--resume", o.resume, "continue from the newest checkpoint in --output");
  app.add_option("--resume-from", o.resume_from, "continue from this checkpoint directory");
  app.add_flag("--length-buckets", o.length_buckets,
               "batch examples of similar length together (less padding work)");
  app.add_flag("--checkpoint-activations", o.checkpoint_activations,
               "keep only each layer's input and recompute the layer in the backward pass");
  app.add_flag("--skip-bad-rows", o.skip_bad_rows,
               "skip malformed data rows (counted) instead of stopping");
  app.add_option("--dump-grads", o.dump_grads_path,
                 "write the first step's gradient to FILE.safetensors (+ FILE.batch.json, the "
                 "rows) and exit without training");
}

}  // namespace tulu::cli
