// The continuous-batching scheduler on a small random model with the real Llama 2
// tokenizer: sequences run concurrently through batched decode steps (more requests than
// slots, so some queue; prompts evaluated a few tokens per step, interleaved with
// decoding) give exactly generate()'s ids, text and finish reason (greedy, seeded
// sampling, stop strings, EOS, max tokens, a full context); several waiting prompts are
// evaluated in the same step within the per-step prompt budget (plan_prefill) while
// running sequences keep getting a token every step; a full queue refuses; cancelling
// frees the slot; bad sequence parameters are errors; metrics render.
#include "serve/scheduler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "generate/generator.h"
#include "serve/metrics.h"
#include "../llama/checkpoint_test_util.h"

namespace tulu {
namespace {

std::unique_ptr<LlamaModel> random_model(uint32_t seed) {
  return testing_util::random_llama_model(testing_util::tiny_llama_config(), seed);
}

struct Outcome {
  std::vector<int> ids;
  std::string text;
  FinishReason finish = FinishReason::Length;
  std::string error;
};

// Drains a channel of `choices` choices (test timeout: 60 s).
std::vector<Outcome> drain(RequestChannel& channel, int choices) {
  std::vector<Outcome> out(static_cast<size_t>(choices));
  int remaining = choices;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (remaining > 0 && std::chrono::steady_clock::now() < deadline) {
    SequenceEvent e;
    if (!channel.pop(e, std::chrono::milliseconds(100))) continue;
    Outcome& o = out.at(static_cast<size_t>(e.choice));
    if (e.token) o.ids.push_back(e.token->id);
    o.text += e.text;
    if (e.done) {
      o.finish = e.finish_reason;
      o.error = e.error;
      --remaining;
    }
  }
  EXPECT_EQ(remaining, 0) << "timed out";
  return out;
}

class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tokenizer_ = Tokenizer::load_dir(TULU_SOURCE_DIR "/data/llama2-tokenizer");
    model_ = random_model(21);
  }
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<LlamaModel> model_;
  ThreadPool pool_{2};
};

TEST_F(SchedulerTest, ConcurrentSequencesEqualGenerate) {
  const std::array<std::string, 5> prompts = {"The quick brown fox", "Once upon a time", "Hello",
                                              "1 2 3 4 5 6 7 8 9 10", "A"};
  std::array<GenerateOptions, 5> options;
  options[0].max_new_tokens = 20;
  options[1].max_new_tokens = 25;
  options[1].sampling.temperature = 0.9;
  options[1].sampling.top_p = 0.8;
  options[1].sampling.seed = 5;
  options[2].max_new_tokens = 30;
  options[3].max_new_tokens = 12;
  options[3].sampling.temperature = 1.0;
  options[3].sampling.top_k = 40;
  options[3].sampling.seed = 9;
  options[4].max_new_tokens = 200;  // runs into the 64-token context
  for (auto& o : options) {
    if (o.sampling.temperature == 1.0 && o.sampling.top_k == 0) o.sampling.temperature = 0.0;
  }
  // Reference: generate() one at a time in a fresh session of the same capacity.
  std::vector<GenerateResult> expected;
  for (size_t i = 0; i < prompts.size(); ++i) {
    Session session(*model_, 64, pool_);
    const auto ids = tokenizer_->encode(prompts[i], true);
    expected.push_back(
        generate(session, *tokenizer_, ids, options[i], [](std::string_view) { return true; }));
  }
  // A stop string from the middle of run 2's text, and run 0's 7th token as EOS.
  const std::string& text2 = expected[2].text;
  ASSERT_GT(text2.size(), 12u);
  options[2].stop_strings = {text2.substr(6, 4)};
  options[0].eos_ids = {expected[0].ids[6]};
  for (size_t i : {0u, 2u}) {
    Session session(*model_, 64, pool_);
    expected[i] = generate(session, *tokenizer_, tokenizer_->encode(prompts[i], true), options[i],
                           [](std::string_view) { return true; });
  }
  EXPECT_EQ(expected[0].finish_reason, FinishReason::Eos);
  EXPECT_EQ(expected[2].finish_reason, FinishReason::StopString);
  EXPECT_EQ(expected[4].finish_reason, FinishReason::ContextFull);

  Scheduler scheduler(
      *model_, *tokenizer_, pool_,
      {.slots = 3, .ctx_size = 64, .max_queue = 8, .prefill_chunk = 4, .prefill_budget = 6});
  std::vector<std::shared_ptr<RequestChannel>> channels;
  for (size_t i = 0; i < prompts.size(); ++i) {
    SequenceParams params;
    params.prompt_ids = tokenizer_->encode(prompts[i], true);
    params.options = options[i];
    std::vector<std::unique_ptr<Sequence>> sequences;
    sequences.push_back(std::make_unique<Sequence>(*tokenizer_, params));
    channels.push_back(std::make_shared<RequestChannel>());
    scheduler.submit(channels.back(), std::move(sequences));
  }
  for (size_t i = 0; i < prompts.size(); ++i) {
    const Outcome got = drain(*channels[i], 1).at(0);
    EXPECT_EQ(got.error, "");
    EXPECT_EQ(got.ids, expected[i].ids) << "sequence " << i;
    EXPECT_EQ(got.text, expected[i].text) << "sequence " << i;
    EXPECT_EQ(got.finish, expected[i].finish_reason) << "sequence " << i;
  }
  EXPECT_EQ(scheduler.stats().active, 0);
}

TEST(PlanPrefill, ChunksOldestFirstWithinTheBudget) {
  using V = std::vector<size_t>;
  auto plan = [](V remaining, size_t budget, size_t chunk) {
    return plan_prefill(remaining, budget, chunk);
  };
  // Everything fits: each gets all it has left.
  EXPECT_EQ(plan({5, 3, 9}, 512, 128), (V{5, 3, 9}));
  // A chunk each, oldest first, until the budget ends.
  EXPECT_EQ(plan({8, 8, 8, 8}, 8, 4), (V{4, 4, 0, 0}));
  EXPECT_EQ(plan({8, 8, 8}, 10, 4), (V{4, 4, 2}));
  // A long prompt first does not keep the short ones behind it waiting; the budget left
  // after a chunk each goes back to it.
  EXPECT_EQ(plan({300, 5, 2}, 256, 128), (V{249, 5, 2}));
  EXPECT_EQ(plan({1000}, 512, 128), (V{512}));
  // A budget below a chunk still makes progress on the oldest.
  EXPECT_EQ(plan({50, 50}, 3, 128), (V{3, 0}));
  EXPECT_EQ(plan({2, 50}, 3, 128), (V{2, 1}));
  EXPECT_EQ(plan({}, 16, 4), V{});
  // Never more than the budget, never more than a sequence has left.
  std::mt19937 gen(3);
  for (int trial = 0; trial < 500; ++trial) {
    V remaining(gen() % 6);
    for (size_t& r : remaining) r = 1 + gen() % 300;
    const size_t budget = 1 + gen() % 600;
    const size_t chunk = 1 + gen() % 200;
    const V p = plan(remaining, budget, chunk);
    size_t total = 0, wanted = 0;
    for (size_t i = 0; i < p.size(); ++i) {
      EXPECT_LE(p[i], remaining[i]);
      total += p[i];
      wanted += remaining[i];
    }
    EXPECT_EQ(total, std::min(budget, wanted));
    if (!remaining.empty()) {
      EXPECT_GE(p[0], std::min({remaining[0], chunk, budget}));
    }
  }
}

TEST_F(SchedulerTest, WaitingPromptsShareAStepAndRunningOnesKeepDecoding) {
  // Four 8-token prompts, chunks of 4, 8 prompt tokens per step: the first two prompts
  // are read in steps 1-2 (4 + 4 tokens each step), the other two in steps 3-4 — one
  // prompt chunk per step would give first tokens at steps 2, 4, 6, 8. Sequences 0 and 1
  // get a token in every step from step 2 on, while 2 and 3 are still reading.
  const std::vector<std::vector<int>> prompts = {{1, 450, 4996, 17354, 1701, 29916, 432, 17204},
                                                 {1, 9038, 2501, 263, 931, 727, 471, 263},
                                                 {1, 15043, 3186, 29892, 920, 526, 366, 29973},
                                                 {1, 29871, 29896, 29871, 29906, 29871, 29941, 13}};
  GenerateOptions options;
  options.max_new_tokens = 6;
  options.sampling.temperature = 0.0;
  Scheduler scheduler(
      *model_, *tokenizer_, pool_,
      {.slots = 4, .ctx_size = 64, .max_queue = 8, .prefill_chunk = 4, .prefill_budget = 8});
  std::vector<std::unique_ptr<Sequence>> sequences;
  for (const auto& prompt : prompts) {
    SequenceParams params;
    params.prompt_ids = prompt;
    params.options = options;
    sequences.push_back(std::make_unique<Sequence>(*tokenizer_, params));
  }
  auto channel = std::make_shared<RequestChannel>();
  scheduler.submit(channel, std::move(sequences));  // all queued at once
  std::vector<std::vector<uint64_t>> token_steps(prompts.size());
  std::vector<std::vector<int>> ids(prompts.size());
  int remaining = static_cast<int>(prompts.size());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (remaining > 0 && std::chrono::steady_clock::now() < deadline) {
    SequenceEvent e;
    if (!channel->pop(e, std::chrono::milliseconds(100))) continue;
    const auto i = static_cast<size_t>(e.choice);
    if (e.token) {
      token_steps[i].push_back(e.step);
      ids[i].push_back(e.token->id);
    }
    if (e.done) {
      EXPECT_EQ(e.error, "");
      --remaining;
    }
  }
  ASSERT_EQ(remaining, 0) << "timed out";
  const std::array<uint64_t, 4> first_token_step = {2, 2, 4, 4};
  for (size_t i = 0; i < prompts.size(); ++i) {
    ASSERT_EQ(token_steps[i].size(), 6u) << "sequence " << i;
    EXPECT_EQ(token_steps[i][0], first_token_step[i]) << "sequence " << i;
    // After the first token (sampled from the prompt's last logits), the same step
    // decodes the next: then one token per step, never skipped.
    for (size_t t = 1; t < token_steps[i].size(); ++t) {
      EXPECT_EQ(token_steps[i][t], first_token_step[i] + t - 1) << "sequence " << i;
    }
    Session session(*model_, 64, pool_);
    const GenerateResult expected =
        generate(session, *tokenizer_, prompts[i], options, [](std::string_view) { return true; });
    EXPECT_EQ(ids[i], expected.ids) << "sequence " << i;
  }
}

TEST_F(SchedulerTest, FullQueueRefusesAndCancelFreesTheSlot) {
  Scheduler scheduler(*model_, *tokenizer_, pool_,
                      {.slots = 1, .ctx_size = 256, .max_queue = 2, .prefill_chunk = 16});
  auto make = [&](int n) {
    std::vector<std::unique_ptr<Sequence>> sequences;
    for (int i = 0; i < n; ++i) {
      SequenceParams params;
      params.prompt_ids = tokenizer_->encode("Go on and on", true);
      params.options.max_new_tokens = 100000;  // ends at the context (or a cancel)
      sequences.push_back(std::make_unique<Sequence>(*tokenizer_, params));
    }
    return sequences;
  };
  auto running = std::make_shared<RequestChannel>();
  scheduler.submit(running, make(1));
  SequenceEvent first;
  ASSERT_TRUE(running->pop(first, std::chrono::seconds(30)));  // it is in the slot now
  auto waiting = std::make_shared<RequestChannel>();
  scheduler.submit(waiting, make(2));  // fills the queue
  EXPECT_THROW(scheduler.submit(std::make_shared<RequestChannel>(), make(1)), QueueFullError);
  running->cancel();
  const Outcome cancelled = drain(*running, 1).at(0);
  EXPECT_EQ(cancelled.finish, FinishReason::Cancelled);
  EXPECT_EQ(scheduler.stats().cancelled, 1u);
  waiting->cancel();
  drain(*waiting, 2);
  EXPECT_EQ(scheduler.stats().active, 0);
  EXPECT_EQ(scheduler.stats().queued, 0);
}

TEST_F(SchedulerTest, CancelledWhileQueuedLeavesTheQueueAtOnce) {
  Scheduler scheduler(*model_, *tokenizer_, pool_,
                      {.slots = 1, .ctx_size = 256, .max_queue = 2, .prefill_chunk = 16});
  auto make = [&] {
    std::vector<std::unique_ptr<Sequence>> sequences;
    SequenceParams params;
    params.prompt_ids = tokenizer_->encode("Go on and on", true);
    params.options.max_new_tokens = 100000;  // ends at the context (or a cancel)
    sequences.push_back(std::make_unique<Sequence>(*tokenizer_, params));
    return sequences;
  };
  auto running = std::make_shared<RequestChannel>();
  scheduler.submit(running, make());
  SequenceEvent first;
  ASSERT_TRUE(running->pop(first, std::chrono::seconds(30)));  // it holds the only slot
  auto front = std::make_shared<RequestChannel>();
  auto back = std::make_shared<RequestChannel>();
  scheduler.submit(front, make());
  scheduler.submit(back, make());
  EXPECT_THROW(scheduler.submit(std::make_shared<RequestChannel>(), make()), QueueFullError);
  // The one behind the queue's front leaves while the slot is still busy.
  back->cancel();
  SequenceEvent end;
  ASSERT_TRUE(back->pop(end, std::chrono::seconds(10)));
  EXPECT_TRUE(end.done);
  EXPECT_EQ(end.finish_reason, FinishReason::Cancelled);
  EXPECT_EQ(end.completion_tokens, 0);
  EXPECT_EQ(scheduler.stats().queued, 1);
  EXPECT_EQ(scheduler.stats().active, 1);
  EXPECT_NO_THROW(scheduler.submit(std::make_shared<RequestChannel>(), make()));  // room again
  running->cancel();
  front->cancel();
}

TEST_F(SchedulerTest, BadSequenceParametersAreErrors) {
  SequenceParams ok;
  ok.prompt_ids = {1, 2};
  EXPECT_NO_THROW(Sequence(*tokenizer_, ok));
  SequenceParams p = ok;
  p.prompt_ids.clear();
  EXPECT_THROW(Sequence(*tokenizer_, p), Error);
  p = ok;
  p.options.max_new_tokens = 0;
  EXPECT_THROW(Sequence(*tokenizer_, p), Error);
  p = ok;
  p.presence_penalty = 2.5;
  EXPECT_THROW(Sequence(*tokenizer_, p), Error);
  p = ok;
  p.frequency_penalty = -3;
  EXPECT_THROW(Sequence(*tokenizer_, p), Error);
  p = ok;
  p.top_logprobs = 21;
  EXPECT_THROW(Sequence(*tokenizer_, p), Error);
  p = ok;
  p.options.sampling.temperature = -1;
  EXPECT_THROW(Sequence(*tokenizer_, p), Error);
  p = ok;
  p.options.stop_strings = {""};
  EXPECT_THROW(Sequence(*tokenizer_, p), Error);
}

TEST(Metrics, RendersCumulativeHistogramsAndCounters) {
  Metrics m;
  m.count_request("/generate", 200);
  m.count_request("/generate", 200);
  m.count_request("/generate", 422);
  m.add_tokens(10, 5);
  m.observe_latency(0.003);
  m.observe_latency(0.2);
  m.observe_latency(1000);
  const std::string text = m.render({.queued = 3, .active = 2, .slots = 4, .cancelled = 1});
  EXPECT_NE(text.find("tulu_requests_total{route=\"/generate\",status=\"200\"} 2\n"),
            std::string::npos);
  EXPECT_NE(text.find("tulu_requests_total{route=\"/generate\",status=\"422\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("tulu_generated_tokens_total 5\n"), std::string::npos);
  EXPECT_NE(text.find("tulu_queue_length 3\n"), std::string::npos);
  EXPECT_NE(text.find("tulu_request_duration_seconds_bucket{le=\"0.005\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("tulu_request_duration_seconds_bucket{le=\"0.25\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("tulu_request_duration_seconds_bucket{le=\"+Inf\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("tulu_request_duration_seconds_count 3\n"), std::string::npos);
}

}  // namespace
}  // namespace tulu
