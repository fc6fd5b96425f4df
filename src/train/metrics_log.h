// metrics.jsonl of a training run: one JSON object per line, written and flushed line by line
// so that a killed run leaves every completed step on disk (at most the last line is partial).
// Training rows carry "step", evaluation rows too; on resume every row after the checkpoint's
// step is removed first, so the file reads as if the run had never stopped.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

#include "core/json.h"

namespace tulu {

class MetricsLog {
 public:
  // Fresh run: creates (or empties) path. Throws tulu::Error naming the path.
  static MetricsLog create(const std::string& path);
  // Resumed run: keeps the rows whose "step" is ≤ keep_through_step (rewriting the file
  // atomically), drops a partial last line (a run killed mid-write), then appends. A missing
  // file is started empty. A malformed complete line is an error naming path and line.
  static MetricsLog resume(const std::string& path, int64_t keep_through_step);

  MetricsLog(MetricsLog&& other) noexcept;
  MetricsLog& operator=(MetricsLog&& other) = delete;
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;
  ~MetricsLog();

  // Appends row.dump() and a newline, then flushes.
  void write(const Json& row);
  const std::string& path() const { return path_; }
  // Rows kept from the earlier run (resume only).
  int64_t kept_rows() const { return kept_rows_; }

 private:
  MetricsLog(std::string path, std::FILE* file, int64_t kept_rows);
  std::string path_;
  std::FILE* file_ = nullptr;
  int64_t kept_rows_ = 0;
};

}  // namespace tulu
