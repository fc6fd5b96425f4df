#include "eval/eval_progress.h"

#include <algorithm>
#include <cinttypes>
#include <utility>

#include "train/train_progress.h"

namespace tulu {

namespace {
constexpr double kInteractiveRefreshSeconds = 0.2;
constexpr double kLogLineSeconds = 30.0;
constexpr int64_t kLogLinesPerRun = 10;
}  // namespace

EvalProgress::EvalProgress(std::string label, std::string unit, bool enabled, std::FILE* out,
                           bool interactive)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      enabled_(enabled),
      out_(out != nullptr ? out : stderr),
      interactive_(interactive),
      start_(Clock::now()),
      last_print_(start_) {}

std::string EvalProgress::render(int64_t done, int64_t total, double elapsed) const {
  const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0.0;
  const double eta =
      done > 0 ? elapsed / static_cast<double>(done) * static_cast<double>(total - done) : -1.0;
  char buffer[512];
  std::snprintf(
      buffer, sizeof buffer, "%s: %" PRId64 "/%" PRId64 " %s | %.2f %s/s | elapsed %s | ETA %s",
      label_.c_str(), done, total, unit_.c_str(), rate, unit_.c_str(),
      TrainProgress::format_duration(elapsed).c_str(), TrainProgress::format_duration(eta).c_str());
  return buffer;
}

void EvalProgress::update(int64_t done, int64_t total) {
  if (!enabled_) return;
  const Clock::time_point now = Clock::now();
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double since_print = std::chrono::duration<double>(now - last_print_).count();
  const bool last = done >= total;
  if (interactive_) {
    if (!last && line_open_ && since_print < kInteractiveRefreshSeconds) return;
    const std::string line = render(done, total, elapsed);
    // Blank what a longer previous line left on screen.
    const size_t pad = last_width_ > line.size() ? last_width_ - line.size() : 0;
    std::fprintf(out_, "\r%s%*s", line.c_str(), static_cast<int>(pad), "");
    last_width_ = line.size();
    line_open_ = true;
  } else {
    const int64_t every = std::max<int64_t>(1, total / kLogLinesPerRun);
    if (!(done == 1 || last || done % every == 0 || since_print >= kLogLineSeconds)) return;
    std::fprintf(out_, "%s\n", render(done, total, elapsed).c_str());
  }
  std::fflush(out_);
  last_print_ = now;
}

void EvalProgress::finish() {
  if (enabled_ && line_open_) {
    std::fputc('\n', out_);
    std::fflush(out_);
  }
  line_open_ = false;
}

}  // namespace tulu
