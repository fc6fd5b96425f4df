#include "train/progress_printer.h"

#include <algorithm>

namespace tulu {

namespace {
constexpr double kInteractiveRefreshSeconds = 0.2;
constexpr double kLogLineSeconds = 30.0;
constexpr int64_t kLogLinesPerRun = 10;
}  // namespace

ProgressPrinter::ProgressPrinter(bool enabled, std::FILE* out, bool interactive)
    : enabled_(enabled),
      out_(out != nullptr ? out : stderr),
      interactive_(interactive),
      start_(Clock::now()),
      last_print_(start_) {}

double ProgressPrinter::elapsed() const {
  return std::chrono::duration<double>(Clock::now() - start_).count();
}

void ProgressPrinter::offer(int64_t index, int64_t total, bool first, bool last,
                            const std::function<std::string(double elapsed)>& render) {
  if (!enabled_) return;
  const Clock::time_point now = Clock::now();
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double since_print = std::chrono::duration<double>(now - last_print_).count();
  if (interactive_) {
    if (!last && line_open_ && since_print < kInteractiveRefreshSeconds) return;
    const std::string line = render(elapsed);
    // Blank what a longer previous line left on screen.
    const size_t pad = last_width_ > line.size() ? last_width_ - line.size() : 0;
    std::fprintf(out_, "\r%s%*s", line.c_str(), static_cast<int>(pad), "");
    last_width_ = line.size();
    line_open_ = true;
  } else {
    const int64_t every = std::max<int64_t>(1, total / kLogLinesPerRun);
    if (!(first || last || index % every == 0 || since_print >= kLogLineSeconds)) return;
    std::fprintf(out_, "%s\n", render(elapsed).c_str());
  }
  std::fflush(out_);
  last_print_ = now;
}

void ProgressPrinter::finish() {
  if (enabled_ && line_open_) {
    std::fputc('\n', out_);
    std::fflush(out_);
  }
  line_open_ = false;
}

}  // namespace tulu
