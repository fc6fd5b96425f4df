// When and how a progress line of long work (training steps, evaluated pairs) reaches the
// terminal or a log: on a terminal one line rewritten in place ("\r", at most every 0.2 s and
// always at the last item); otherwise (a log file, CI) a full line for the first item, every
// total/10 items or 30 s, whichever comes first, and the last — so logs stay short.
// TrainProgress and EvalProgress render their own text and share this. Not thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>

namespace tulu {

class ProgressPrinter {
 public:
  // enabled = false prints nothing; out = nullptr means stderr.
  ProgressPrinter(bool enabled, std::FILE* out, bool interactive);

  bool enabled() const { return enabled_; }
  // Seconds since construction.
  double elapsed() const;
  // Prints render(elapsed) when due for item `index` of `total` (first: this process's first
  // item; last: the final one). render is called only when a line is printed.
  void offer(int64_t index, int64_t total, bool first, bool last,
             const std::function<std::string(double elapsed)>& render);
  // Ends the in-place line (newline) so that later output starts on a fresh line.
  void finish();

 private:
  using Clock = std::chrono::steady_clock;
  bool enabled_;
  std::FILE* out_;
  bool interactive_;
  Clock::time_point start_;
  Clock::time_point last_print_;
  bool line_open_ = false;  // an in-place line is on screen without its newline
  size_t last_width_ = 0;   // characters of the last in-place line (to blank leftovers)
};

}  // namespace tulu
