// The step loop shared by the training commands (`tulu sft`, `tulu dpo`): the epoch plans and
// the resume position, each step's optimizer tail (clip, divergence check, AdamW update,
// zeroed gradients, step counters), the eval schedule and the periodic checkpoints. A trainer
// supplies only what differs: the gradient of a step's micro-batches, its metrics row and
// progress line, and its evaluation.
// Not thread-safe: one loop runs on the calling thread (the pool parallelises inside steps).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "core/thread_pool.h"
#include "llama/config.h"
#include "train/batching.h"
#include "train/lr_schedule.h"
#include "train/metrics_log.h"
#include "train/optimizer.h"
#include "train/param_set.h"
#include "train/sft_run.h"
#include "train/sft_trainer.h"
#include "train/train_checkpoint.h"
#include "train/train_progress.h"

namespace tulu {

// One epoch's micro-batches in training order (plan_epoch's result: example indices).
using EpochPlan = std::vector<std::vector<int64_t>>;

// The epoch plan for state.epoch, checked against the step plan: it must hold
// plan.micro_batches_per_epoch micro-batches, and state.micro_batch_in_epoch (a resumed
// checkpoint's position) must be the start of a step. Throws tulu::Error otherwise.
EpochPlan plan_epoch_checked(const std::vector<int64_t>& lengths, const BatchPlanOptions& options,
                             const SftPlan& plan, const TrainerState& state);

// What the optimizer tail of one step did.
struct OptimizerStepResult {
  double learning_rate = 0;
  double grad_norm = 0;  // before clipping
};

// The end of one step once its gradient is in `grads` (params.size() floats): clips to
// `clip` (<= 0: off), throws tulu::Error when the loss or the gradient norm is not finite
// ("training diverged at step <global_step + 1>"), updates params with AdamW at the
// schedule's rate for global_step, and zeroes grads for the next step.
OptimizerStepResult apply_optimizer_step(std::vector<float>& params, std::vector<float>& grads,
                                         AdamW& optimizer, const LrSchedule& schedule, double clip,
                                         double loss, int64_t global_step, ThreadPool& pool);

// Moves state past the step that used micro-batches up to `end` of an epoch of `per_epoch`:
// global_step + 1, and the next epoch when `end` closes this one. Returns whether it did.
bool advance_trainer_state(TrainerState& state, int64_t end, int64_t per_epoch);

// What a trainer's gradient pass reports to the loop.
struct StepGradient {
  double loss = 0;            // the step's mean loss (checked for divergence, saved on resume)
  int64_t target_tokens = 0;  // counted into num_tokens
};

// What the loop tells a trainer after a step's update, for its metrics row and progress line.
struct StepDone {
  int64_t step = 0;  // global step just finished (1-based)
  double epoch = 0;  // step / steps_per_epoch
  double loss = 0;
  double learning_rate = 0;
  double grad_norm = 0;
  int64_t num_tokens = 0;  // target tokens trained so far, this step included
};

struct TrainLoopParts {
  const SftOptions& options;  // clip, eval_every, save_every, output paths, progress
  const SftPlan& plan;
  const LrSchedule& schedule;
  const BatchPlanOptions& batch_options;
  const std::vector<int64_t>& lengths;  // per example, for plan_epoch
  const LlamaConfig& config;            // written with checkpoints
  const ParamLayout& layout;
  std::vector<float>& params;
  std::vector<float>& grads;  // zero on entry; zeroed after each step
  ThreadPool& pool;
  // Accumulates the gradient of micro-batches [first, end) of epoch_plan into grads.
  std::function<StepGradient(const EpochPlan& epoch_plan, int64_t first, int64_t end)> gradient;
  // Writes the step's metrics row and updates the progress line.
  std::function<void(const StepDone& done, MetricsLog& metrics, TrainProgress& progress)> report;
  // Evaluates at `step` (null without eval data): when eval_every divides it (or, with
  // eval_every 0, at each epoch end) and at the last step.
  std::function<void(int64_t step, MetricsLog& metrics, TrainProgress& progress)> evaluate;
};

// The loop from `state` to plan.total_steps (a TrainLoop's body): returns the last step's
// loss. num_tokens and last_loss are where the run starts. Every save_every steps it writes
// OUT/checkpoint-<step> (state.extra holds num_tokens and the loss) and prunes old ones.
double run_train_loop(const TrainLoopParts& parts, TrainerState& state, AdamW& optimizer,
                      int64_t num_tokens, double last_loss, MetricsLog& metrics);

}  // namespace tulu
