#include "train/train_progress.h"

#include <algorithm>
#include <cinttypes>
#include <cmath>

#include "core/error.h"

namespace tulu {

namespace {
constexpr double kInteractiveRefreshSeconds = 0.2;
constexpr double kLogLineSeconds = 30.0;
constexpr int64_t kLogLinesPerRun = 10;
}  // namespace

TrainProgress::TrainProgress(int64_t total_steps, int64_t first_step, bool enabled, std::FILE* out,
                             bool interactive)
    : total_steps_(total_steps),
      first_step_(first_step),
      enabled_(enabled),
      out_(out != nullptr ? out : stderr),
      interactive_(interactive),
      start_(Clock::now()),
      last_print_(start_) {}

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
  if (!enabled_) return;
  tokens_ += report.step_tokens;
  const Clock::time_point now = Clock::now();
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double since_print = std::chrono::duration<double>(now - last_print_).count();
  const bool last = report.step >= total_steps_;
  if (interactive_) {
    if (!last && line_open_ && since_print < kInteractiveRefreshSeconds) return;
    const std::string line = render(report, elapsed);
    // Blank what a longer previous line left on screen.
    const size_t pad = last_width_ > line.size() ? last_width_ - line.size() : 0;
    std::fprintf(out_, "\r%s%*s", line.c_str(), static_cast<int>(pad), "");
    last_width_ = line.size();
    line_open_ = true;
  } else {
    const int64_t every = std::max<int64_t>(1, total_steps_ / kLogLinesPerRun);
    const bool first = report.step == first_step_ + 1;
    if (!(first || last || report.step % every == 0 || since_print >= kLogLineSeconds)) return;
    std::fprintf(out_, "%s\n", render(report, elapsed).c_str());
  }
  std::fflush(out_);
  last_print_ = now;
}

void TrainProgress::finish() {
  if (enabled_ && line_open_) {
    std::fputc('\n', out_);
    std::fflush(out_);
  }
  line_open_ = false;
}

}  // namespace tulu
