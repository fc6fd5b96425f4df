// Progress of a training run on stderr: step/total, epoch, loss, lr, grad norm, tokens/s and
// ETA. On a terminal it is one line rewritten in place ("\r", at most every 0.2 s and at the
// last step); otherwise (a log file, CI) a full line every `total/10` steps or 30 seconds,
// whichever comes first, plus the first and the last step — so logs stay short.
// Not thread-safe (the training loop calls it from one thread).
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace tulu {

struct StepReport {
  int64_t step = 0;  // optimizer steps done (1-based after the first update)
  double epoch = 0;  // fractional, as in metrics.jsonl
  double loss = 0;
  double learning_rate = 0;
  double grad_norm = 0;
  int64_t step_tokens = 0;  // input tokens processed by this step (padding-free)
  std::string extra;        // more metrics shown after the grad norm (e.g. DPO's rewards)
};

class TrainProgress {
 public:
  // total_steps: the run's last step; first_step: the step the run (re)starts after (0 for a
  // fresh run), so that rates and the ETA count only this process's work. enabled = false
  // prints nothing. `out` defaults to stderr; interactive selects the in-place line.
  TrainProgress(int64_t total_steps, int64_t first_step, bool enabled, std::FILE* out,
                bool interactive);
  // Call after each optimizer step.
  void update(const StepReport& report);
  // Ends the in-place line (newline) so that later output starts on a fresh line.
  void finish();

  // "1:02:03" / "2:03" for a duration in seconds (exposed for tests).
  static std::string format_duration(double seconds);

 private:
  using Clock = std::chrono::steady_clock;
  std::string render(const StepReport& report, double elapsed) const;

  int64_t total_steps_;
  int64_t first_step_;
  bool enabled_;
  std::FILE* out_;
  bool interactive_;
  Clock::time_point start_;
  Clock::time_point last_print_;
  int64_t tokens_ = 0;      // input tokens since start_
  bool line_open_ = false;  // an in-place line is on screen without its newline
  size_t last_width_ = 0;   // characters of the last in-place line (to blank leftovers)
};

}  // namespace tulu
