#include "train/train_loop.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/error.h"

namespace tulu {

EpochPlan plan_epoch_checked(const std::vector<int64_t>& lengths, const BatchPlanOptions& options,
                             const SftPlan& plan, const TrainerState& state) {
  const int64_t per_epoch = plan.micro_batches_per_epoch;
  EpochPlan epoch_plan = plan_epoch(lengths, options, state.epoch);
  TULU_CHECK(static_cast<int64_t>(epoch_plan.size()) == per_epoch, "internal: epoch ", state.epoch,
             " has ", epoch_plan.size(), " micro-batches, expected ", per_epoch);
  TULU_CHECK(
      state.micro_batch_in_epoch % plan.grad_accum == 0 && state.micro_batch_in_epoch < per_epoch,
      "checkpoint position: micro-batch ", state.micro_batch_in_epoch, " of epoch ", state.epoch,
      " is not the start of a step");
  return epoch_plan;
}

OptimizerStepResult apply_optimizer_step(std::vector<float>& params, std::vector<float>& grads,
                                         AdamW& optimizer, const LrSchedule& schedule, double clip,
                                         double loss, int64_t global_step, ThreadPool& pool) {
  OptimizerStepResult result;
  result.grad_norm = clip_grad_norm(grads.data(), grads.size(), clip);
  TULU_CHECK(std::isfinite(loss) && std::isfinite(result.grad_norm), "training diverged at step ",
             global_step + 1, ": loss ", loss, ", gradient norm ", result.grad_norm,
             " (try a lower --lr or --clip 1.0)");
  result.learning_rate = schedule.lr_at(global_step);
  optimizer.update(params.data(), grads.data(), result.learning_rate, pool);
  std::fill(grads.begin(), grads.end(), 0.0f);
  return result;
}

bool advance_trainer_state(TrainerState& state, int64_t end, int64_t per_epoch) {
  ++state.global_step;
  state.micro_batch_in_epoch = end;
  if (end != per_epoch) return false;
  ++state.epoch;
  state.micro_batch_in_epoch = 0;
  return true;
}

double run_train_loop(const TrainLoopParts& parts, TrainerState& state, AdamW& optimizer,
                      int64_t num_tokens, double last_loss, MetricsLog& metrics) {
  const SftOptions& o = parts.options;
  const SftPlan& plan = parts.plan;
  TrainProgress progress(plan.total_steps, state.global_step, o.progress, stderr,
                         isatty(STDERR_FILENO) != 0);
  const int64_t per_epoch = plan.micro_batches_per_epoch;
  while (state.global_step < plan.total_steps) {
    const EpochPlan epoch_plan =
        plan_epoch_checked(parts.lengths, parts.batch_options, plan, state);
    while (state.global_step < plan.total_steps) {
      const int64_t first = state.micro_batch_in_epoch;
      const int64_t end = std::min(first + plan.grad_accum, per_epoch);
      const StepGradient gradient = parts.gradient(epoch_plan, first, end);
      const OptimizerStepResult update =
          apply_optimizer_step(parts.params, parts.grads, optimizer, parts.schedule, o.clip,
                               gradient.loss, state.global_step, parts.pool);
      const bool epoch_end = advance_trainer_state(state, end, per_epoch);
      num_tokens += gradient.target_tokens;
      last_loss = gradient.loss;
      const int64_t step = state.global_step;
      const double epoch = static_cast<double>(step) / static_cast<double>(plan.steps_per_epoch);
      parts.report(
          StepDone{step, epoch, gradient.loss, update.learning_rate, update.grad_norm, num_tokens},
          metrics, progress);

      const bool last = step == plan.total_steps;
      const bool eval_due = o.eval_every > 0 ? step % o.eval_every == 0 : epoch_end;
      if (parts.evaluate && (eval_due || last)) parts.evaluate(step, metrics, progress);
      if (o.save_every > 0 && step % o.save_every == 0) {
        state.extra = Json{{"num_tokens", num_tokens}, {"loss", gradient.loss}};
        save_training_checkpoint(o.output_dir, parts.config, parts.layout, parts.params.data(),
                                 optimizer, state, o.model_dir);
        prune_checkpoints(o.output_dir, o.save_total_limit);
      }
      if (epoch_end) break;
    }
  }
  progress.finish();
  return last_loss;
}

}  // namespace tulu
