#include "serve/metrics.h"

#include "core/error.h"

namespace tulu {

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double value) {
  size_t i = 0;
  while (i < bounds_.size() && value > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += value;
  ++count_;
}

void Histogram::render(const std::string& name, std::string& out) const {
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    out += str_cat(name, "_bucket{le=\"", bounds_[i], "\"} ", cumulative, "\n");
  }
  out += str_cat(name, "_bucket{le=\"+Inf\"} ", count_, "\n");
  out += str_cat(name, "_sum ", sum_, "\n", name, "_count ", count_, "\n");
}

namespace {
std::vector<double> latency_buckets() {
  return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};
}
}  // namespace

Metrics::Metrics() : latency_(latency_buckets()), first_token_(latency_buckets()) {}

void Metrics::count_request(const std::string& route, int status) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++requests_[{route, status}];
}

void Metrics::add_tokens(int prompt_tokens, int generated_tokens) {
  std::lock_guard<std::mutex> lock(mutex_);
  prompt_tokens_ += static_cast<uint64_t>(prompt_tokens);
  generated_tokens_ += static_cast<uint64_t>(generated_tokens);
}

void Metrics::observe_latency(double request_seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  latency_.observe(request_seconds);
}

void Metrics::observe_time_to_first_token(double seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  first_token_.observe(seconds);
}

std::string Metrics::render(const SchedulerStats& scheduler) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string out;
  out += "# HELP tulu_requests_total HTTP requests answered, by route and status.\n";
  out += "# TYPE tulu_requests_total counter\n";
  for (const auto& [key, count] : requests_) {
    out += str_cat("tulu_requests_total{route=\"", key.first, "\",status=\"", key.second, "\"} ",
                   count, "\n");
  }
  out += "# HELP tulu_prompt_tokens_total Prompt tokens of finished generations.\n";
  out += "# TYPE tulu_prompt_tokens_total counter\n";
  out += str_cat("tulu_prompt_tokens_total ", prompt_tokens_, "\n");
  out += "# HELP tulu_generated_tokens_total Tokens generated.\n";
  out += "# TYPE tulu_generated_tokens_total counter\n";
  out += str_cat("tulu_generated_tokens_total ", generated_tokens_, "\n");
  out += "# HELP tulu_queue_length Sequences waiting for a slot.\n";
  out += "# TYPE tulu_queue_length gauge\n";
  out += str_cat("tulu_queue_length ", scheduler.queued, "\n");
  out += "# HELP tulu_active_slots Slots generating or processing a prompt.\n";
  out += "# TYPE tulu_active_slots gauge\n";
  out += str_cat("tulu_active_slots ", scheduler.active, "\n");
  out += "# HELP tulu_slots Slots (concurrent sequences).\n# TYPE tulu_slots gauge\n";
  out += str_cat("tulu_slots ", scheduler.slots, "\n");
  out += "# HELP tulu_cancelled_sequences_total Sequences stopped because the client left.\n";
  out += "# TYPE tulu_cancelled_sequences_total counter\n";
  out += str_cat("tulu_cancelled_sequences_total ", scheduler.cancelled, "\n");
  out += "# HELP tulu_request_duration_seconds Generation request latency.\n";
  out += "# TYPE tulu_request_duration_seconds histogram\n";
  latency_.render("tulu_request_duration_seconds", out);
  out += "# HELP tulu_time_to_first_token_seconds Time from request to first token.\n";
  out += "# TYPE tulu_time_to_first_token_seconds histogram\n";
  first_token_.render("tulu_time_to_first_token_seconds", out);
  return out;
}

}  // namespace tulu
