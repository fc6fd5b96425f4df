// Progress of a training run on stderr: step/total, epoch, loss, lr, grad norm, tokens/s and
// ETA, printed as progress_printer.h says (in place on a terminal; in a log the first, every
// total/10th or after 30 s, and the last step).
// Not thread-safe (the training loop calls it from one thread).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

#include "train/progress_printer.h"

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
  std::string render(const StepReport& report, double elapsed) const;

  int64_t total_steps_;
  int64_t first_step_;
  ProgressPrinter printer_;
  int64_t tokens_ = 0;  // input tokens since the start
};

}  // namespace tulu
