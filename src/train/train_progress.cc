#include "train/train_progress.h"

#include <algorithm>
#include <cinttypes>
#include <cmath>

#include "core/error.h"

namespace tulu {

TrainProgress::TrainProgress(int64_t total_steps, int64_t first_step, bool enabled, std::FILE* out,
                             bool interactive)
    : total_steps_(total_steps), first_step_(first_step), printer_(enabled, out, interactive) {}

std::string TrainProgress::format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto total = static_cast<int64_t>(std::llround(seconds));
  const int64_t hours = total / 3600, minutes = (total / 60) % 60, secs = total % 60;
  char buffer[48];
  if (hours > 0) {
    std::snprintf(buffer, sizeof buffer, "%" PRId64 ":%02" PRId64 ":%02" PRId64, hours, minutes,
                  secs);
  } else {
    std::snprintf(buffer, sizeof buffer, "%" PRId64 ":%02" PRId64, minutes, secs);
  }
  return buffer;
}

std::string TrainProgress::render(const StepReport& r, double elapsed) const {
  const int64_t done_here = r.step - first_step_;
  const double tokens_per_second = elapsed > 0 ? static_cast<double>(tokens_) / elapsed : 0.0;
  const double eta = done_here > 0 ? elapsed / static_cast<double>(done_here) *
                                         static_cast<double>(total_steps_ - r.step)
                                   : -1.0;
  char buffer[512];
  std::snprintf(buffer, sizeof buffer,
                "step %" PRId64 "/%" PRId64
                " | epoch %.2f | loss %.4f | lr %.3e | grad norm %.3f%s%s"
                " | %.0f tok/s | elapsed %s | ETA %s",
                r.step, total_steps_, r.epoch, r.loss, r.learning_rate, r.grad_norm,
                r.extra.empty() ? "" : " | ", r.extra.c_str(), tokens_per_second,
                format_duration(elapsed).c_str(), format_duration(eta).c_str());
  return buffer;
}

void TrainProgress::update(const StepReport& report) {
  if (!printer_.enabled()) return;
  tokens_ += report.step_tokens;
  printer_.offer(report.step, total_steps_, report.step == first_step_ + 1,
                 report.step >= total_steps_,
                 [&](double elapsed) { return render(report, elapsed); });
}

void TrainProgress::finish() {
  printer_.finish();
}

}  // namespace tulu
