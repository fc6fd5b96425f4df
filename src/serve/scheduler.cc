// The continuous-batching loop (see scheduler.h).
#include "serve/scheduler.h"

#include <algorithm>

#include "core/error.h"

namespace tulu {

void RequestChannel::push(SequenceEvent event) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    events_.push_back(std::move(event));
  }
  ready_.notify_one();
}

bool RequestChannel::pop(SequenceEvent& event, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (!ready_.wait_for(lock, timeout, [&] { return !events_.empty(); })) return false;
  event = std::move(events_.front());
  events_.pop_front();
  return true;
}

namespace {

// The event that ends a choice.
SequenceEvent end_event(int choice, const Sequence& sequence, int cached_tokens,
                        const std::string& error, uint64_t step) {
  SequenceEvent done;
  done.choice = choice;
  done.done = true;
  done.finish_reason = sequence.finish_reason();
  done.prompt_tokens = static_cast<int>(sequence.params().prompt_ids.size());
  done.completion_tokens = static_cast<int>(sequence.generated().size());
  done.cached_tokens = cached_tokens;
  done.error = error;
  done.step = step;
  return done;
}

}  // namespace

// A queued sequence.
struct Scheduler::Work {
  std::shared_ptr<RequestChannel> channel;
  int choice = 0;
  std::unique_ptr<Sequence> sequence;
};

struct Scheduler::Slot {
  Session session;
  std::unique_ptr<Work> work;  // null = free
  size_t prefilled = 0;        // prompt tokens in the cache so far
  bool decoding = false;       // prompt done; next_input() waits to be evaluated
  int cached_tokens = 0;       // prompt tokens reused from the previous occupant
  uint64_t admitted = 0;       // admission order (prompt evaluation goes oldest first)
  Slot(const LlamaModel& model, int ctx, ThreadPool& pool, int max_batch, KvType kv_type)
      : session(model, ctx, pool, max_batch, kv_type) {}
};

Scheduler::Scheduler(const LlamaModel& model, const Tokenizer& tokenizer, ThreadPool& pool,
                     SchedulerOptions options)
    : model_(model),
      tokenizer_(tokenizer),
      pool_(pool),
      options_(options),
      decoder_(model, std::max(options.slots, 1), std::max(options.ctx_size, 1), pool) {
  TULU_CHECK(options_.slots >= 1, "--slots must be >= 1, got ", options_.slots);
  TULU_CHECK(options_.ctx_size >= 1, "--ctx-size must be >= 1, got ", options_.ctx_size);
  TULU_CHECK(options_.max_queue >= 1, "--queue must be >= 1, got ", options_.max_queue);
  TULU_CHECK(options_.prefill_chunk >= 1, "prefill chunk must be >= 1");
  TULU_CHECK(options_.prefill_budget >= 1, "--prefill-budget must be >= 1, got ",
             options_.prefill_budget);
  for (int i = 0; i < options_.slots; ++i) {
    slots_.push_back(
        std::make_unique<Slot>(model, options_.ctx_size, pool, options_.prefill_chunk,
                               options_.kv_type));
  }
  thread_ = std::thread([this] { run(); });
}

Scheduler::~Scheduler() {
  shutdown();
}

void Scheduler::submit(const std::shared_ptr<RequestChannel>& channel,
                       std::vector<std::unique_ptr<Sequence>> sequences) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    TULU_CHECK(!stopping_, "the server is shutting down");
    if (queue_.size() + sequences.size() > static_cast<size_t>(options_.max_queue)) {
      throw QueueFullError(str_cat("the request queue is full (", queue_.size(),
                                   " waiting, at most ", options_.max_queue, "); retry later"));
    }
    for (size_t i = 0; i < sequences.size(); ++i) {
      auto work = std::make_unique<Work>();
      work->channel = channel;
      work->choice = static_cast<int>(i);
      work->sequence = std::move(sequences[i]);
      queue_.push_back(std::move(work));
    }
  }
  wake_.notify_one();
}

SchedulerStats Scheduler::stats() const {
  SchedulerStats s;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    s.queued = static_cast<int>(queue_.size());
  }
  s.active = active_.load();
  s.slots = options_.slots;
  s.cancelled = cancelled_.load();
  s.steps = steps_.load();
  return s;
}

void Scheduler::shutdown() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void Scheduler::run() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || active_.load() > 0 || !queue_.empty(); });
      if (stopping_) {
        for (auto& work : queue_) {
          SequenceEvent event;
          event.choice = work->choice;
          event.done = true;
          event.error = "the server is shutting down";
          work->channel->push(std::move(event));
        }
        queue_.clear();
        break;
      }
    }
    ++steps_;
    admit();
    // Cancelled requests (client gone) free their slots before any compute.
    for (auto& slot : slots_) {
      if (slot->work && slot->work->channel->cancelled()) {
        slot->work->sequence->cancel();
        ++cancelled_;
        finish_slot(*slot, "");
      }
    }
    prefill_step();
    decode_step();
  }
  for (auto& slot : slots_) {
    if (slot->work) finish_slot(*slot, "the server is shutting down");
  }
}

void Scheduler::admit() {
  std::lock_guard<std::mutex> lock(mutex_);
  // Sequences whose client left while they waited end without taking a slot (and free
  // their place in the queue), wherever they are in it.
  for (auto it = queue_.begin(); it != queue_.end();) {
    Work& work = **it;
    if (!work.channel->cancelled()) {
      ++it;
      continue;
    }
    work.sequence->cancel();
    work.channel->push(end_event(work.choice, *work.sequence, 0, "", steps_.load()));
    ++cancelled_;
    it = queue_.erase(it);
  }
  while (!queue_.empty()) {
    const std::vector<int>& prompt = queue_.front()->sequence->params().prompt_ids;
    // The free slot whose cached tokens share the longest prefix with the prompt.
    Slot* best = nullptr;
    size_t best_common = 0;
    for (auto& slot : slots_) {
      if (slot->work) continue;
      const std::span<const int> cached = slot->session.tokens();
      size_t common = 0;
      const size_t limit = std::min(cached.size(), prompt.size());
      while (common < limit && cached[common] == prompt[common]) ++common;
      if (best == nullptr || common > best_common) {
        best = slot.get();
        best_common = common;
      }
    }
    if (best == nullptr) return;
    // The last prompt token is always evaluated: its logits choose the first new token.
    best_common = std::min(best_common, prompt.size() - 1);
    best->session.rewind(static_cast<int>(best_common));
    best->prefilled = best_common;
    best->cached_tokens = static_cast<int>(best_common);
    best->decoding = false;
    best->admitted = ++admissions_;
    best->work = std::move(queue_.front());
    queue_.pop_front();
    ++active_;
  }
}

std::vector<size_t> plan_prefill(std::span<const size_t> remaining, size_t budget, size_t chunk) {
  std::vector<size_t> plan(remaining.size(), 0);
  size_t left = budget;
  for (size_t i = 0; i < remaining.size() && left > 0; ++i) {
    plan[i] = std::min({remaining[i], chunk, left});
    left -= plan[i];
  }
  for (size_t i = 0; i < remaining.size() && left > 0; ++i) {
    const size_t more = std::min(remaining[i] - plan[i], left);
    plan[i] += more;
    left -= more;
  }
  return plan;
}

void Scheduler::prefill_step() {
  // The slots still reading their prompts, oldest admission first (slots are few: a scan
  // and a sort are fine).
  std::vector<Slot*> waiting;
  for (auto& slot : slots_) {
    if (slot->work && !slot->decoding) waiting.push_back(slot.get());
  }
  if (waiting.empty()) return;
  std::sort(waiting.begin(), waiting.end(),
            [](const Slot* a, const Slot* b) { return a->admitted < b->admitted; });
  std::vector<size_t> remaining;
  for (const Slot* slot : waiting) {
    remaining.push_back(slot->work->sequence->params().prompt_ids.size() - slot->prefilled);
  }
  const std::vector<size_t> plan =
      plan_prefill(remaining, static_cast<size_t>(options_.prefill_budget),
                   static_cast<size_t>(options_.prefill_chunk));
  for (size_t i = 0; i < waiting.size(); ++i) {
    if (plan[i] == 0) continue;
    Slot& slot = *waiting[i];
    const std::vector<int>& prompt = slot.work->sequence->params().prompt_ids;
    try {
      // Session::eval runs more than its max_batch (= prefill_chunk) in chunks.
      const std::span<const float> logits = slot.session.eval(
          std::span<const int>(prompt).subspan(slot.prefilled, plan[i]), /*all_logits=*/false);
      slot.prefilled += plan[i];
      if (slot.prefilled == prompt.size()) {
        slot.decoding = true;
        after_step(slot, logits);
      }
    } catch (const std::exception& e) {
      finish_slot(slot, e.what());
    }
  }
}

void Scheduler::decode_step() {
  std::vector<Slot*> ready;
  std::vector<Session*> sessions;
  std::vector<int> tokens;
  for (auto& slot : slots_) {
    if (!slot->work || !slot->decoding) continue;
    ready.push_back(slot.get());
    sessions.push_back(&slot->session);
    tokens.push_back(slot->work->sequence->next_input());
  }
  if (ready.empty()) return;
  // All generating slots advance together: one forward step, rows = slots.
  std::span<const float> logits;
  try {
    logits = decoder_.decode(sessions, tokens);
  } catch (const std::exception& e) {
    for (Slot* slot : ready) finish_slot(*slot, e.what());
    return;
  }
  const size_t vocab = logits.size() / ready.size();
  for (size_t i = 0; i < ready.size(); ++i) {
    try {
      after_step(*ready[i], logits.subspan(i * vocab, vocab));
    } catch (const std::exception& e) {
      finish_slot(*ready[i], e.what());
    }
  }
}

void Scheduler::after_step(Slot& slot, std::span<const float> logits) {
  Sequence& sequence = *slot.work->sequence;
  StepOutput out = sequence.step(logits, slot.session.pos(), slot.session.capacity());
  if (out.token || !out.text.empty()) {
    SequenceEvent event;
    event.choice = slot.work->choice;
    event.token = std::move(out.token);
    event.text = std::move(out.text);
    event.step = steps_.load();
    slot.work->channel->push(std::move(event));
  }
  if (sequence.finished()) finish_slot(slot, "");
}

void Scheduler::finish_slot(Slot& slot, const std::string& error) {
  SequenceEvent done =
      end_event(slot.work->choice, *slot.work->sequence, slot.cached_tokens, error, steps_.load());
  // The slot is free before the client hears of the end (stats() agree with what it saw).
  const std::shared_ptr<RequestChannel> channel = slot.work->channel;
  slot.work.reset();
  slot.decoding = false;
  --active_;
  channel->push(std::move(done));
}

}  // namespace tulu
