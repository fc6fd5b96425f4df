// The SFT training loop (`tulu sft`): data → epochs of seeded micro-batches → gradient
// accumulation → clipping → AdamW with the lr schedule → metrics, progress, evaluation,
// checkpoints, resume. Defaults are the Tulu 2 SFT recipe (TULU2.md).
//
// Loss: each micro-batch's loss is the mean token cross-entropy over its counted targets
// (Hugging Face's CrossEntropyLoss, mean); an optimizer step's gradient is the mean of its
// micro-batches' gradients (so the last, shorter step of an epoch is not scaled down).
//
// Output directory:
//   metrics.jsonl  one row per optimizer step {"step", "epoch" (step / steps per epoch, as
//                  Hugging Face), "loss" (mean of the step's micro-batch mean losses, what the
//                  HF Trainer logs), "grad_norm" (before clipping), "learning_rate" (used for
//                  this update), "num_tokens" (cumulative target tokens), "mean_token_accuracy"
//                  (token-weighted)}, and evaluation rows {"step", "epoch", "eval_loss",
//                  "eval_mean_token_accuracy", "eval_num_tokens"} (token-weighted over the set)
//   checkpoint-<step>/  every save_every steps (train_checkpoint.h)
//   the final model (config.json, model.safetensors in the input dtype, tokenizer files)
// A resumed run repeats the uninterrupted run's operations in the same order, so with the same
// --threads its final weights and metrics are bit-identical.
#pragma once

#include <cstdint>
#include <string>

namespace tulu {

struct SftOptions {
  std::string model_dir;  // Hugging Face directory (F32/BF16/F16 weights)
  std::string data_path;  // JSONL (messages | prompt/completion | text)
  std::string output_dir;
  std::string eval_data_path;  // optional
  int64_t epochs = 2;
  double lr = 2e-5;
  std::string lr_schedule = "linear";
  double warmup_ratio = 0.03;
  int64_t warmup_steps = -1;  // ≥ 0 overrides warmup_ratio
  int64_t batch_size = 1;     // sequences per micro-batch
  int64_t grad_accum = 0;     // 0 = effective_batch / batch_size, clamped to the data
  int64_t effective_batch = 128;
  int64_t max_seq_length = 8192;
  double weight_decay = 0.0;
  double clip = -1.0;  // ≤ 0: off (open-instruct's default)
  double adam_beta1 = 0.9, adam_beta2 = 0.999, adam_eps = 1e-8;
  uint64_t seed = 42;
  int64_t max_steps = -1;        // > 0: train exactly this many optimizer steps (as Hugging
                                 // Face's max_steps: it replaces epochs — the data is cycled
                                 // epoch after epoch — and the schedule spans these steps)
  int64_t save_every = 0;        // optimizer steps between checkpoints; 0 = none (the final
                                 // model is always written)
  int64_t save_total_limit = 0;  // > 0: keep only the newest N checkpoint-<step> directories
  int64_t eval_every = 0;        // optimizer steps between evaluations; 0 = end of each epoch
  bool resume = false;           // continue from the latest OUT/checkpoint-N
  std::string resume_from;       // or from this checkpoint directory
  bool length_buckets = false;
  bool checkpoint_activations = false;
  bool skip_bad_rows = false;
  std::string dump_grads_path;  // write the first step's gradients and stop
  int threads = 0;              // 0 = all hardware threads
  bool progress = true;         // progress bar on stderr
};

// Checks every option's range; throws tulu::Error naming the option (its command-line flag),
// the allowed range and the value given. Called by run_sft first.
void validate_sft_options(const SftOptions& options);

// Runs training; throws tulu::Error on bad input. Returns 0.
int run_sft(const SftOptions& options);

}  // namespace tulu
