// Server counters and latency histograms, rendered in the Prometheus text format
// (version 0.0.4) for GET /metrics. Thread-safe.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "serve/scheduler.h"

namespace tulu {

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double value);
  // Appends `name_bucket{le=..}`, `name_sum`, `name_count` lines.
  void render(const std::string& name, std::string& out) const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket (not cumulative); last = +Inf
  double sum_ = 0.0;
  uint64_t count_ = 0;
};

class Metrics {
 public:
  Metrics();
  void count_request(const std::string& route, int status);
  void add_tokens(int prompt_tokens, int generated_tokens);
  void observe_latency(double request_seconds);
  void observe_time_to_first_token(double seconds);
  // With the scheduler's current state.
  std::string render(const SchedulerStats& scheduler) const;

 private:
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  uint64_t prompt_tokens_ = 0, generated_tokens_ = 0;
  Histogram latency_, first_token_;
};

}  // namespace tulu
