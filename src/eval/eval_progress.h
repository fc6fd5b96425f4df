// Progress of an evaluation pass on stderr: items done/total, items/s, elapsed and ETA. On a
// terminal one line rewritten in place ("\r", at most every 0.2 s and at the last item);
// otherwise (a log file, CI) a full line for the first item, every total/10 items or 30 s, and
// the last — as train/train_progress.h does for training steps. Not thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace tulu {

class EvalProgress {
 public:
  // label names the pass ("policy", "reference"); unit names the items ("pairs").
  // enabled = false prints nothing; out = nullptr means stderr.
  EvalProgress(std::string label, std::string unit, bool enabled, std::FILE* out, bool interactive);
  // Call after each item with (items done, items total).
  void update(int64_t done, int64_t total);
  // Ends the in-place line (newline) so that later output starts on a fresh line.
  void finish();

  // "label: 3/10 pairs | 2.5 pairs/s | elapsed 0:01 | ETA 0:03" (exposed for tests).
  std::string render(int64_t done, int64_t total, double elapsed_seconds) const;

 private:
  using Clock = std::chrono::steady_clock;
  std::string label_, unit_;
  bool enabled_;
  std::FILE* out_;
  bool interactive_;
  Clock::time_point start_;
  Clock::time_point last_print_;
  bool line_open_ = false;  // an in-place line is on screen without its newline
  size_t last_width_ = 0;   // characters of the last in-place line (to blank leftovers)
};

}  // namespace tulu
