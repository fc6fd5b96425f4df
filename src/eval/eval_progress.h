// Progress of an evaluation pass on stderr: items done/total, items/s, elapsed and ETA,
// printed as train/progress_printer.h says (in place on a terminal; in a log the first, every
// total/10th or after 30 s, and the last item). Not thread-safe.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

#include "train/progress_printer.h"

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
  std::string label_, unit_;
  ProgressPrinter printer_;
};

}  // namespace tulu
