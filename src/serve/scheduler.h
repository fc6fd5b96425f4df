// Continuous batching: one scheduler thread owns N slots, each a Session (its own KV
// cache of ctx_size positions). Requests wait in a bounded queue; between forward steps
// they are admitted into free slots (the free slot whose cache shares the longest prefix
// with the prompt, whose keys/values are then reused), and each step then
//  1. evaluates prompt tokens of the admitted sequences still reading their prompts, at
//     most prefill_budget tokens over all of them (plan_prefill: every waiting prompt
//     gets a chunk, oldest admission first), so a long prompt neither stalls the running
//     streams for long nor keeps short prompts behind it from starting;
//  2. decodes the next token of every generating slot in one batched forward step
//     (llama/batch_decode.h).
// Results flow back through a RequestChannel per request.
//
// Threading: submit / stats / shutdown may be called from any thread; the slots, sessions
// and sequences are touched only by the scheduler thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "core/thread_pool.h"
#include "llama/batch_decode.h"
#include "llama/model.h"
#include "llama/session.h"
#include "serve/sequence.h"
#include "tokenizer/tokenizer.h"

namespace tulu {

// One event of a request's stream: a token (and/or released text) of choice `choice`, or
// that choice's end (done) with its counts, or an error that ends it.
struct SequenceEvent {
  int choice = 0;
  std::optional<SampledToken> token;
  std::string text;
  bool done = false;
  FinishReason finish_reason = FinishReason::Length;
  int prompt_tokens = 0;
  int completion_tokens = 0;
  int cached_tokens = 0;
  std::string error;  // non-empty: the choice failed (done is true)
  uint64_t step = 0;  // the scheduler step that produced it (1, 2, ...; for tests and tracing)
};

// The queue between the scheduler (producer) and the HTTP handler (consumer) of one
// request. Cancelling (client gone) makes the scheduler free the request's slots at its
// next step.
class RequestChannel {
 public:
  void push(SequenceEvent event);
  // Waits up to `timeout` for an event; false when none came.
  bool pop(SequenceEvent& event, std::chrono::milliseconds timeout);
  void cancel() { cancelled_ = true; }
  bool cancelled() const { return cancelled_; }

 private:
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<SequenceEvent> events_;
  std::atomic<bool> cancelled_{false};
};

struct SchedulerOptions {
  int slots = 4;             // concurrent sequences, ≥ 1
  int ctx_size = 2048;       // KV cache positions per slot
  int max_queue = 64;        // waiting sequences before submit refuses
  int prefill_chunk = 128;   // most prompt tokens of one sequence per step while others wait
  int prefill_budget = 512;  // most prompt tokens per step over all sequences (≥ 1)
  // Every slot's KV cache element type (llama/session.h).
  KvType kv_type = KvType::F32;
};

// How many prompt tokens each prefilling sequence evaluates in this step. remaining[i]:
// tokens left of the i-th one, in admission order. First each gets min(remaining, chunk)
// in that order while the budget lasts; what is left of the budget then goes, in the same
// order, to those with tokens left. The result sums to ≤ budget and gives the first
// sequence ≥ min(its remaining, chunk, budget) tokens (progress every step).
std::vector<size_t> plan_prefill(std::span<const size_t> remaining, size_t budget, size_t chunk);

class QueueFullError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct SchedulerStats {
  int queued = 0;
  int active = 0;
  int slots = 0;
  uint64_t cancelled = 0;  // sequences ended because their client went away
  uint64_t steps = 0;      // scheduler steps so far
};

class Scheduler {
 public:
  // The model, tokenizer and pool must outlive the scheduler. Starts the thread.
  Scheduler(const LlamaModel& model, const Tokenizer& tokenizer, ThreadPool& pool,
            SchedulerOptions options);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues the sequences of one request (choice i = sequences[i]); all or none. Throws
  // QueueFullError when the queue cannot take them, tulu::Error when the scheduler is
  // shut down.
  void submit(const std::shared_ptr<RequestChannel>& channel,
              std::vector<std::unique_ptr<Sequence>> sequences);
  SchedulerStats stats() const;
  const SchedulerOptions& options() const { return options_; }
  // Ends the thread; sequences still queued or running end with an error event.
  void shutdown();

 private:
  struct Work;
  struct Slot;
  void run();
  void admit();
  void prefill_step();
  void decode_step();
  // Applies a step's output to the slot: emits the event, frees the slot when finished.
  void after_step(Slot& slot, std::span<const float> logits);
  void finish_slot(Slot& slot, const std::string& error);

  const LlamaModel& model_;
  const Tokenizer& tokenizer_;
  ThreadPool& pool_;
  SchedulerOptions options_;
  std::vector<std::unique_ptr<Slot>> slots_;  // scheduler thread only
  BatchDecoder decoder_;                      // scheduler thread only

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::unique_ptr<Work>> queue_;  // guarded by mutex_
  bool stopping_ = false;                    // guarded by mutex_
  std::atomic<int> active_{0};
  std::atomic<uint64_t> cancelled_{0};
  std::atomic<uint64_t> steps_{0};
  uint64_t admissions_ = 0;  // scheduler thread only: orders the slots' admissions
  std::thread thread_;
};

}  // namespace tulu
