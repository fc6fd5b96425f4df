#include "eval/eval_progress.h"

#include <algorithm>
#include <cinttypes>
#include <utility>

#include "train/train_progress.h"

namespace tulu {

EvalProgress::EvalProgress(std::string label, std::string unit, bool enabled, std::FILE* out,
                           bool interactive)
    : label_(std::move(label)), unit_(std::move(unit)), printer_(enabled, out, interactive) {}

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
  printer_.offer(done, total, done == 1, done >= total,
                 [&](double elapsed) { return render(done, total, elapsed); });
}

void EvalProgress::finish() {
  printer_.finish();
}

}  // namespace tulu
