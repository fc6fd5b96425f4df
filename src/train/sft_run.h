// The step arithmetic of an SFT run and what ties a checkpoint to its run.
//
// Steps follow open-instruct's finetune.py: an epoch's micro-batches are grouped into
// optimizer steps of grad_accum micro-batches (the last step of an epoch may have fewer;
// steps never span two epochs), so steps per epoch = ceil(micro_batches / grad_accum).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/json.h"
#include "train/sft_trainer.h"

namespace tulu {

struct SftPlan {
  int64_t examples = 0;
  int64_t micro_batches_per_epoch = 0;
  int64_t grad_accum = 1;           // resolved (see resolve_sft_plan)
  bool grad_accum_clamped = false;  // the requested value exceeded the micro-batches per epoch
  int64_t steps_per_epoch = 0;
  int64_t total_steps = 0;  // epochs × steps_per_epoch, or max_steps
  int64_t warmup_steps = 0;
};

// grad_accum = --grad-accum when given, else effective_batch / batch_size (at least 1); either
// is clamped to the micro-batches of an epoch (a larger value changes nothing but the
// printed effective batch). total_steps = max_steps when > 0, else epochs × steps_per_epoch.
// warm-up = --warmup-steps when ≥ 0, else int(total × warmup_ratio).
SftPlan resolve_sft_plan(const SftOptions& options, int64_t examples);

// The options a resumed run must share with the run that wrote the checkpoint (anything that
// changes the data order, the step grouping, the schedule or the update), as a flat object:
// data path (absolute) and size in bytes, seed, batch size, resolved grad accum, epochs,
// max steps, max length, lr, schedule, warm-up steps, weight decay, clip, Adam betas/eps,
// length buckets, skip bad rows. Keys are the options' flag names without "--".
Json sft_run_fingerprint(const SftOptions& options, const SftPlan& plan);

// Throws tulu::Error naming every option that differs, with both values ("--lr: 2e-05 then,
// 0.0001 now").
void check_sft_run_fingerprint(const Json& saved, const Json& current,
                               const std::string& checkpoint_dir);

// The checkpoint-<N> directories of out_dir, sorted by N (ascending).
std::vector<std::string> list_checkpoints(const std::string& out_dir);

// Removes the oldest checkpoint-<N> directories so that at most `keep` remain (keep ≤ 0:
// nothing removed).
void prune_checkpoints(const std::string& out_dir, int64_t keep);

}  // namespace tulu
