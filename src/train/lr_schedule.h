// Learning-rate schedules as transformers' get_scheduler builds them (LambdaLR multipliers
// of the base lr), and the step arithmetic of open-instruct's finetune.py.
// The multiplier is evaluated at the optimizer step index s = 0, 1, … (the scheduler is
// stepped after each optimizer step, so the first update uses s = 0 — lr 0 under warm-up).
//   linear:   s < w: s / w;  else max(0, (N − s) / max(1, N − w))
//   cosine:   s < w: s / w;  else max(0, 0.5 · (1 + cos(π · (s − w) / max(1, N − w))))
//   constant: s < w: s / w;  else 1      (transformers' constant_with_warmup)
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace tulu {

enum class LrScheduleKind { Linear, Cosine, Constant };

// "linear" | "cosine" | "constant"; tulu::Error listing them otherwise.
LrScheduleKind parse_lr_schedule(std::string_view name);
std::string_view lr_schedule_name(LrScheduleKind kind);

struct LrSchedule {
  LrScheduleKind kind = LrScheduleKind::Linear;
  double base_lr = 2e-5;
  int64_t total_steps = 1;   // N
  int64_t warmup_steps = 0;  // w
  double lr_at(int64_t step) const;
};

// open-instruct: steps per epoch = ceil(micro_batches_per_epoch / grad_accum); total =
// epochs × that; warm-up steps = int(total × warmup_ratio) unless warmup_steps ≥ 0 is given.
int64_t steps_per_epoch(int64_t micro_batches_per_epoch, int64_t grad_accum);
int64_t warmup_steps_for(int64_t total_steps, double warmup_ratio);

}  // namespace tulu
