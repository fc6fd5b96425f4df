// Learning-rate multipliers transcribed from transformers' optimization.py (the lr_lambda of
// get_linear_schedule_with_warmup, get_cosine_schedule_with_warmup with num_cycles 0.5, and
// get_constant_schedule_with_warmup), evaluated in double in the same operation order, so
// lr_at(s) equals LambdaLR's base_lr * lr_lambda(s) bit for bit.
#include "train/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/error.h"

namespace tulu {

LrScheduleKind parse_lr_schedule(std::string_view name) {
  if (name == "linear") return LrScheduleKind::Linear;
  if (name == "cosine") return LrScheduleKind::Cosine;
  if (name == "constant") return LrScheduleKind::Constant;
  fail("unknown lr schedule '", name, "' (expected linear, cosine or constant)");
}

std::string_view lr_schedule_name(LrScheduleKind kind) {
  switch (kind) {
    case LrScheduleKind::Linear:
      return "linear";
    case LrScheduleKind::Cosine:
      return "cosine";
    case LrScheduleKind::Constant:
      return "constant";
  }
  return "unknown";
}

namespace {

double multiplier(LrScheduleKind kind, int64_t step, int64_t total, int64_t warmup) {
  const double s = static_cast<double>(step);
  if (step < warmup) {
    // transformers: float(current_step) / float(max(1, num_warmup_steps)) (the constant
    // schedule writes max(1.0, ...), the same value for an integer w ≥ 1).
    return s / static_cast<double>(std::max<int64_t>(1, warmup));
  }
  const double decay_span = static_cast<double>(std::max<int64_t>(1, total - warmup));
  switch (kind) {
    case LrScheduleKind::Linear:
      return std::max(0.0, static_cast<double>(total - step) / decay_span);
    case LrScheduleKind::Cosine: {
      const double progress = static_cast<double>(step - warmup) / decay_span;
      // math.pi * float(num_cycles) * 2.0 * progress with num_cycles = 0.5: the first two
      // products are exact, so this is pi * progress.
      return std::max(0.0, 0.5 * (1.0 + std::cos(std::numbers::pi * 0.5 * 2.0 * progress)));
    }
    case LrScheduleKind::Constant:
      return 1.0;
  }
  return 0.0;
}

}  // namespace

double LrSchedule::lr_at(int64_t step) const {
  TULU_CHECK(step >= 0, "lr schedule: step must be >= 0, got ", step);
  return base_lr * multiplier(kind, step, total_steps, warmup_steps);
}

int64_t steps_per_epoch(int64_t micro_batches_per_epoch, int64_t grad_accum) {
  TULU_CHECK(micro_batches_per_epoch >= 0, "micro-batches per epoch must be >= 0, got ",
             micro_batches_per_epoch);
  TULU_CHECK(grad_accum >= 1, "gradient accumulation steps must be >= 1, got ", grad_accum);
  // math.ceil(len(train_dataloader) / gradient_accumulation_steps)
  return (micro_batches_per_epoch + grad_accum - 1) / grad_accum;
}

int64_t warmup_steps_for(int64_t total_steps, double warmup_ratio) {
  TULU_CHECK(total_steps >= 0, "total steps must be >= 0, got ", total_steps);
  TULU_CHECK(std::isfinite(warmup_ratio) && warmup_ratio >= 0.0 && warmup_ratio <= 1.0,
             "warmup ratio must be in [0, 1], got ", warmup_ratio);
  // int(max_train_steps * warmup_ratio): Python's int() truncates toward zero.
  return static_cast<int64_t>(static_cast<double>(total_steps) * warmup_ratio);
}

}  // namespace tulu
