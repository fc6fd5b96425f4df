// The DPO training loop (`tulu dpo`): preference pairs → epochs of seeded micro-batches of
// pairs → per micro-batch one policy forward over [chosen..., rejected...] → the DPO loss
// family (dpo_loss.h) against reference log-probs → weighted backward → gradient
// accumulation → clipping → AdamW with the lr schedule → metrics, progress, evaluation,
// checkpoints, resume. It reuses the SFT loop's parts: the step plan and run fingerprint
// (sft_run.h; batch size and effective batch count PAIRS), batching, metrics log, progress,
// checkpoints, grad dump.
//
// Loss of a step: the mean over all the step's pairs of the pair loss; its gradient is what
// the update uses (each sequence's backward weight = ∂loss_pair/∂logp / pairs in the step).
//
// Reference: a frozen copy of the starting weights (default), --ref-model DIR (fp32/bf16/f16
// Hugging Face weights; quantized models are refused, training needs fp32 masters), or
// --precompute-ref FILE (dpo_ref_cache.h): log-probs of every pair computed once before
// training with the reference (the starting weights or --ref-model), then no reference
// model in memory. All three give the same losses (the same forwards on the same weights).
// simpo uses no reference: none is loaded.
//
// Output directory as `tulu sft` (sft_trainer.h), with metrics.jsonl rows
//   {"step", "epoch", "loss", "rewards/chosen", "rewards/rejected", "rewards/accuracies",
//    "rewards/margins", "logps/chosen", "logps/rejected", "logits/chosen", "logits/rejected",
//    "learning_rate", "grad_norm" (before clipping), "num_tokens" (cumulative completion
//    tokens, both sides)} and evaluation rows {"step", "epoch", "eval_loss",
//    "eval_rewards/chosen", ...} over the whole --eval-data set.
#pragma once

#include <cstdint>
#include <string>

#include "train/dpo_loss.h"
#include "train/sft_trainer.h"

namespace tulu {

struct DpoOptions {
  // Every `tulu sft` option, counted in pairs; train.max_seq_length mirrors max_length (it
  // enters the run fingerprint). Defaults: the Tulu 2 DPO recipe (default_dpo_options()).
  SftOptions train;
  DpoLossOptions loss;
  int64_t max_length = 8192;        // prompt + longer completion, tokens
  int64_t max_prompt_length = -1;   // -1: no separate prompt limit
  std::string ref_model_dir;        // empty: a frozen copy of the starting weights
  std::string precompute_ref_path;  // empty: reference log-probs computed each step
};

// Tulu 2 DPO: β 0.1, lr 5e-7, linear schedule, warm-up ratio 0.1, weight decay 0,
// Adam(0.9, 0.999, 1e-8), effective batch 32 pairs, 3 epochs, max length 8192.
DpoOptions default_dpo_options();

// Checks every option; throws tulu::Error naming the flag, the allowed range and the value.
void validate_dpo_training_options(const DpoOptions& options);

// Runs training; throws tulu::Error on bad input. Returns 0.
int run_dpo(const DpoOptions& options);

}  // namespace tulu
